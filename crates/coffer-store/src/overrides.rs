//! Personal overrides: a User token's own value for a secret, kept in
//! [`Tree::Overrides`] beside the shared value, sealed to (environment, secret, token).
//! They are written in the transaction of the batch that carries them and removed with
//! their secret, its environment, its app, or the token's revocation.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec;
use crate::error::{InternalError, StoreError};
use crate::keys;
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::{OverrideInput, PersonalOverride, Timestamp};
use crate::store::{tx_get, Store};
use crate::validate::limits;

/// The stored override of one (environment, token, secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OverrideRecord {
    id: Uuid,
    is_active: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// The value, sealed to [`keys::override_location`].
    sealed: Vec<u8>,
}

/// An override to write, sealed before the transaction so that a retried closure
/// writes the same bytes.
pub(crate) struct PreparedOverride {
    owner: Uuid,
    /// The id and time an override gets when its token has none for the secret yet.
    fresh_id: Uuid,
    now: Timestamp,
    value: String,
    is_active: bool,
    sealed: Vec<u8>,
}

impl PreparedOverride {
    /// The token it is written for.
    pub(crate) fn owner(&self) -> Uuid {
        self.owner
    }

    /// The override as it is when its token had none for the secret before.
    pub(crate) fn as_new(&self) -> PersonalOverride {
        PersonalOverride {
            id: self.fresh_id,
            value: self.value.clone(),
            is_active: self.is_active,
            created_at: self.now,
            updated_at: self.now,
        }
    }
}

/// The override value counts against the limit of a secret value.
fn check_override_size(value: &str) -> Result<(), StoreError> {
    if value.len() > limits::MAX_VALUE_BYTES {
        return Err(StoreError::FieldTooLarge {
            field: "override.value",
            limit: limits::MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// The secret id at the end of an override key.
fn secret_of_key(key: &[u8]) -> Result<Uuid, StoreError> {
    key.get(32..48)
        .and_then(|bytes| Uuid::from_slice(bytes).ok())
        .ok_or_else(|| {
            StoreError::Internal(InternalError::Codec {
                tree: Tree::Overrides.name(),
                reason: format!("override key of {} bytes", key.len()),
            })
        })
}

/// The override of (env, secret, owner), read inside a transaction.
pub(crate) fn tx_override(
    tx: &dyn KvTx,
    env_id: Uuid,
    secret_id: Uuid,
    owner: Uuid,
) -> Result<Option<OverrideRecord>, TxAbort<StoreError>> {
    tx_get(
        tx,
        Tree::Overrides,
        &keys::personal_override(env_id, owner, secret_id),
    )
}

/// Removes the override of (env, secret, owner), if any, inside a transaction.
pub(crate) fn tx_remove_override(
    tx: &dyn KvTx,
    env_id: Uuid,
    secret_id: Uuid,
    owner: Uuid,
) -> Result<(), TxAbort<StoreError>> {
    Ok(tx.remove(
        Tree::Overrides,
        &keys::personal_override(env_id, owner, secret_id),
    )?)
}

/// Writes an override inside a transaction. Replacing one keeps its id and creation
/// time. Returns the override as its owner now sees it.
pub(crate) fn tx_put_override(
    tx: &dyn KvTx,
    env_id: Uuid,
    secret_id: Uuid,
    prepared: &PreparedOverride,
) -> Result<PersonalOverride, TxAbort<StoreError>> {
    let mut shown = prepared.as_new();
    if let Some(existing) = tx_override(tx, env_id, secret_id, prepared.owner)? {
        shown.id = existing.id;
        shown.created_at = existing.created_at;
    }
    let record = OverrideRecord {
        id: shown.id,
        is_active: shown.is_active,
        created_at: shown.created_at,
        updated_at: shown.updated_at,
        sealed: prepared.sealed.clone(),
    };
    tx.insert(
        Tree::Overrides,
        &keys::personal_override(env_id, prepared.owner, secret_id),
        &codec::encode(&record),
    )?;
    Ok(shown)
}

impl<B: KvBackend> Store<B> {
    /// Checks and seals `owner`'s override of a secret.
    pub(crate) fn prepare_override(
        &self,
        env_id: Uuid,
        secret_id: Uuid,
        owner: Uuid,
        input: &OverrideInput,
        now: Timestamp,
    ) -> Result<PreparedOverride, StoreError> {
        check_override_size(&input.value)?;
        let location = keys::override_location(env_id, secret_id, owner);
        Ok(PreparedOverride {
            owner,
            fresh_id: Uuid::new_v4(),
            now,
            value: input.value.clone(),
            is_active: input.is_active,
            sealed: self.keys.seal(&location, input.value.as_bytes()),
        })
    }

    /// Decrypts `owner`'s override of a secret.
    pub(crate) fn open_override(
        &self,
        env_id: Uuid,
        secret_id: Uuid,
        owner: Uuid,
        record: &OverrideRecord,
    ) -> Result<PersonalOverride, StoreError> {
        let location = keys::override_location(env_id, secret_id, owner);
        let plain = self
            .keys
            .open(&location, &record.sealed)
            .map_err(|_| StoreError::Internal(InternalError::Crypto))?;
        let value =
            String::from_utf8(plain).map_err(|_| StoreError::Internal(InternalError::Crypto))?;
        Ok(PersonalOverride {
            id: record.id,
            value,
            is_active: record.is_active,
            created_at: record.created_at,
            updated_at: record.updated_at,
        })
    }

    /// Every override `owner` has in an environment, by secret id, still sealed: one
    /// prefix scan, empty (and cheap) for a token that has none there.
    pub(crate) fn overrides_of(
        &self,
        env_id: Uuid,
        owner: Uuid,
    ) -> Result<HashMap<Uuid, OverrideRecord>, StoreError> {
        let mut found = HashMap::new();
        let prefix = keys::personal_override_prefix(env_id, owner);
        for pair in self.kv.scan_prefix(Tree::Overrides, &prefix) {
            let (key, bytes) = pair?;
            let record = codec::decode(Tree::Overrides.name(), &bytes)?;
            found.insert(secret_of_key(&key)?, record);
        }
        Ok(found)
    }

    /// The keys of every token's overrides of these secrets of an environment. Callers
    /// hold the environment's write lock, so the list cannot go stale.
    pub(crate) fn override_keys_of_secrets(
        &self,
        env_id: Uuid,
        secret_ids: &HashSet<Uuid>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut doomed = Vec::new();
        for pair in self.kv.scan_prefix(Tree::Overrides, env_id.as_bytes()) {
            let key = pair?.0;
            if secret_ids.contains(&secret_of_key(&key)?) {
                doomed.push(key);
            }
        }
        Ok(doomed)
    }

    /// The keys of every override of one token, in every environment. Callers hold
    /// every environment's write lock, so the list cannot go stale.
    pub(crate) fn override_keys_of_token(
        &self,
        token_id: Uuid,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut doomed = Vec::new();
        for pair in self.kv.scan_prefix(Tree::Overrides, &[]) {
            let key = pair?.0;
            if key.get(16..32) == Some(token_id.as_bytes().as_slice()) {
                doomed.push(key);
            }
        }
        Ok(doomed)
    }
}
