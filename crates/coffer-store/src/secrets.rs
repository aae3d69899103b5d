//! Secrets: list, get, batch create/update/delete, history. Batches are one transaction;
//! the uniqueness index is checked and written inside it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::codec;
use crate::error::{InternalError, StoreError};
use crate::idempotency::{trees_keeping, AnswerToKeep};
use crate::keys;
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::{
    Environment, ListPage, ListPosition, NewSecret, OverrideChange, Secret, SecretFilter,
    SecretType, SecretUpdate, Timestamp, VersionAction, VersionActor,
};
use crate::overrides::{
    tx_override, tx_put_override, tx_remove_override, OverrideRecord, PreparedOverride,
};
use crate::store::{abort, tx_error, tx_get, Store};
use crate::validate::{
    check_sizes, limits, normalize_key, normalize_path, normalize_tags, upper_case_key,
};

/// The trees a create reads or changes (the audit tree is added by the write): a new
/// secret has no older version to move to history.
pub(crate) const CREATE_TREES: &[Tree] = &[Tree::Envs, Tree::Secrets, Tree::SecretIndex];
/// The trees an update or delete reads or changes.
pub(crate) const CHANGE_TREES: &[Tree] =
    &[Tree::Envs, Tree::Secrets, Tree::SecretIndex, Tree::History];
/// [`CREATE_TREES`] for a batch that carries personal overrides (a transaction costs in
/// proportion to the trees it spans: batches without any leave the overrides out).
pub(crate) const CREATE_OVERRIDE_TREES: &[Tree] = &[
    Tree::Envs,
    Tree::Secrets,
    Tree::SecretIndex,
    Tree::Overrides,
];
/// [`CHANGE_TREES`] for a write that reads or changes personal overrides.
pub(crate) const CHANGE_OVERRIDE_TREES: &[Tree] = &[
    Tree::Envs,
    Tree::Secrets,
    Tree::SecretIndex,
    Tree::History,
    Tree::Overrides,
];

/// The current record of a secret (also the body of each history entry), in its
/// layout since versions name their writer ([`SECRET_LAYOUT`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub(crate) path: String,
    pub(crate) key_digest: [u8; 32],
    pub(crate) tags: Vec<String>,
    pub(crate) secret_type: SecretType,
    pub(crate) version: u64,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    /// [`SealedFields`], encrypted and bound to (env, secret, version).
    pub(crate) sealed: Vec<u8>,
    /// What this version did.
    pub(crate) action: VersionAction,
    /// Who wrote it; `None` in records of the first layout.
    pub(crate) actor: Option<VersionActor>,
}

/// The layout of secret and history records whose versions name their writer. Records
/// of the first layout ([`codec::RECORD_LAYOUT`]) are still read: their actor is
/// unknown, their action follows from the version number (no rollback existed then).
const SECRET_LAYOUT: u8 = 2;

/// A secret record of the first layout.
#[derive(Serialize, Deserialize)]
pub(crate) struct SecretRecordV1 {
    path: String,
    key_digest: [u8; 32],
    tags: Vec<String>,
    secret_type: SecretType,
    version: u64,
    created_at: Timestamp,
    updated_at: Timestamp,
    sealed: Vec<u8>,
}

impl From<SecretRecordV1> for SecretRecord {
    fn from(old: SecretRecordV1) -> Self {
        SecretRecord {
            action: match old.version {
                1 => VersionAction::Create,
                _ => VersionAction::Update,
            },
            actor: None,
            path: old.path,
            key_digest: old.key_digest,
            tags: old.tags,
            secret_type: old.secret_type,
            version: old.version,
            created_at: old.created_at,
            updated_at: old.updated_at,
            sealed: old.sealed,
        }
    }
}

/// The fields that never leave the process in clear.
#[derive(Serialize, Deserialize)]
pub(crate) struct SealedFields {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) comment: String,
}

/// One entry of the history tree; `None` marks the deletion (whose content is that of
/// the version before it: each version is stored once).
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryRecord {
    pub(crate) record: Option<SecretRecord>,
    pub(crate) at: Timestamp,
    /// Who deleted the secret, for a deletion of this layout.
    pub(crate) deleted_by: Option<VersionActor>,
}

/// A history record of the first layout.
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryRecordV1 {
    pub(crate) record: Option<SecretRecordV1>,
    pub(crate) at: Timestamp,
}

#[cfg(test)]
impl From<SecretRecord> for SecretRecordV1 {
    fn from(new: SecretRecord) -> Self {
        SecretRecordV1 {
            path: new.path,
            key_digest: new.key_digest,
            tags: new.tags,
            secret_type: new.secret_type,
            version: new.version,
            created_at: new.created_at,
            updated_at: new.updated_at,
            sealed: new.sealed,
        }
    }
}

/// Encodes a secret record in the current layout.
pub(crate) fn encode_secret(record: &SecretRecord) -> Vec<u8> {
    codec::encode_as(SECRET_LAYOUT, record)
}

/// Decodes a secret record of either layout.
pub(crate) fn decode_secret(bytes: &[u8]) -> Result<SecretRecord, StoreError> {
    let tree = Tree::Secrets.name();
    match bytes.first() {
        Some(&codec::RECORD_LAYOUT) => {
            codec::decode::<SecretRecordV1>(tree, bytes).map(SecretRecord::from)
        }
        _ => codec::decode_as(SECRET_LAYOUT, tree, bytes),
    }
}

/// Decodes a history record of either layout.
pub(crate) fn decode_history(bytes: &[u8]) -> Result<HistoryRecord, StoreError> {
    let tree = Tree::History.name();
    match bytes.first() {
        Some(&codec::RECORD_LAYOUT) => {
            let old: HistoryRecordV1 = codec::decode(tree, bytes)?;
            Ok(HistoryRecord {
                record: old.record.map(SecretRecord::from),
                at: old.at,
                deleted_by: None,
            })
        }
        _ => codec::decode_as(SECRET_LAYOUT, tree, bytes),
    }
}

/// A validated create entry, sealed before the transaction so a retried closure
/// writes the same bytes.
pub(crate) struct PreparedSecret {
    pub(crate) secret: Secret,
    pub(crate) record: SecretRecord,
    pub(crate) personal: Option<PreparedOverride>,
}

/// A validated update entry.
pub(crate) struct PreparedUpdate {
    pub(crate) update: SecretUpdate,
    pub(crate) key: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) personal: PreparedChange,
}

/// An update worked out before its transaction, from the secret's record as read then
/// (with the environment held): the new version, sealed. Decrypting the current value
/// and sealing the new one happen outside the commit, which runs under the audit
/// chain's lock that all writers share; the transaction uses this only if the record
/// it reads is byte for byte the one it was worked out from, and works the update out
/// again otherwise.
pub(crate) struct SealedUpdate {
    /// The stored record it was worked out from.
    base: Vec<u8>,
    /// The secret as the update leaves it.
    secret: Secret,
    /// Its new record.
    written: SecretRecord,
}

/// What an update does to the writer's personal override, checked and sealed.
pub(crate) enum PreparedChange {
    /// The writer is no User token, or leaves the override as it is.
    Keep,
    Remove,
    Set(PreparedOverride),
}

pub(crate) fn secret_event(
    action: AuditAction,
    app_id: Uuid,
    env_id: Uuid,
    secrets: &[Secret],
) -> AuditEvent {
    AuditEvent {
        app_id: Some(app_id),
        env_id: Some(env_id),
        secret_ids: secrets.iter().map(|s| s.id).collect(),
        version: match secrets {
            [one] => Some(one.version),
            _ => None,
        },
        ..AuditEvent::new(action)
    }
}

pub(crate) fn check_batch_len(len: usize) -> Result<(), StoreError> {
    match len {
        0 => Err(StoreError::EmptyBatch),
        n if n > limits::MAX_BATCH => Err(StoreError::BatchTooLarge {
            max: limits::MAX_BATCH,
        }),
        _ => Ok(()),
    }
}

/// Writes `record` as the current version of a secret. The version it replaces moves
/// to the history tree: each version is stored once, and [`Store::secret_history`] reads
/// the current one from the secrets tree.
pub(crate) fn put_version(
    tx: &dyn KvTx,
    env_id: Uuid,
    id: Uuid,
    record: &SecretRecord,
    replaced: Option<&SecretRecord>,
) -> Result<(), TxAbort<StoreError>> {
    if let Some(old) = replaced {
        retire_version(tx, env_id, id, old)?;
    }
    tx.insert(
        Tree::Secrets,
        &keys::secret(env_id, id),
        &encode_secret(record),
    )?;
    Ok(())
}

/// Moves a version that is no longer current to the history tree.
pub(crate) fn retire_version(
    tx: &dyn KvTx,
    env_id: Uuid,
    id: Uuid,
    old: &SecretRecord,
) -> Result<(), TxAbort<StoreError>> {
    put_history(
        tx,
        env_id,
        id,
        old.version,
        Some(old.clone()),
        old.updated_at,
        None,
    )
}

/// Writes a history entry: a retired version (`record`), or the deletion marker
/// (`None`, with who deleted).
pub(crate) fn put_history(
    tx: &dyn KvTx,
    env_id: Uuid,
    id: Uuid,
    version: u64,
    record: Option<SecretRecord>,
    at: Timestamp,
    deleted_by: Option<VersionActor>,
) -> Result<(), TxAbort<StoreError>> {
    let entry = HistoryRecord {
        record,
        at,
        deleted_by,
    };
    tx.insert(
        Tree::History,
        &keys::history(env_id, id, version),
        &codec::encode_as(SECRET_LAYOUT, &entry),
    )?;
    Ok(())
}

/// The value of a uniqueness-index entry: the secret's id and current version. The
/// version is what catches a secret record put back from an older copy of itself (both
/// records are authenticated, so they must agree).
pub(crate) fn index_entry(id: Uuid, version: u64) -> [u8; 24] {
    let mut entry = [0u8; 24];
    entry[..16].copy_from_slice(id.as_bytes());
    entry[16..].copy_from_slice(&version.to_be_bytes());
    entry
}

/// The (id, version) of a uniqueness-index entry.
pub(crate) fn parse_index_entry(bytes: &[u8]) -> Result<(Uuid, u64), StoreError> {
    match <[u8; 24]>::try_from(bytes) {
        Ok(entry) => {
            let id = Uuid::from_slice(&entry[..16]).expect("16 bytes make a UUID");
            let version = u64::from_be_bytes(entry[16..].try_into().expect("8 bytes"));
            Ok((id, version))
        }
        Err(_) => Err(StoreError::Internal(InternalError::Codec {
            tree: Tree::SecretIndex.name(),
            reason: format!("index entry of {} bytes", bytes.len()),
        })),
    }
}

/// The version of a stored secret record (format 1 → 2 migration fills the index with it).
pub(crate) fn stored_version(bytes: &[u8]) -> Result<u64, StoreError> {
    decode_secret(bytes).map(|r| r.version)
}

/// Refuses a current record that its index entry does not name at its version.
pub(crate) fn check_indexed(
    id: Uuid,
    record: &SecretRecord,
    entry: Option<&[u8]>,
) -> Result<(), StoreError> {
    match entry.map(parse_index_entry).transpose()? {
        Some(named) if named == (id, record.version) => Ok(()),
        _ => Err(StoreError::unauthentic(Tree::Secrets)),
    }
}

/// The current record of a secret, read inside a transaction and checked against its
/// index entry.
pub(crate) fn tx_current(
    tx: &dyn KvTx,
    env_id: Uuid,
    id: Uuid,
) -> Result<Option<SecretRecord>, TxAbort<StoreError>> {
    Ok(tx_current_stored(tx, env_id, id)?.map(|(record, _)| record))
}

/// [`tx_current`], and the record as stored (what an update sealed ahead was worked out
/// from, if it is still current).
fn tx_current_stored(
    tx: &dyn KvTx,
    env_id: Uuid,
    id: Uuid,
) -> Result<Option<(SecretRecord, Vec<u8>)>, TxAbort<StoreError>> {
    let Some(stored) = tx.get(Tree::Secrets, &keys::secret(env_id, id))? else {
        return Ok(None);
    };
    let record = decode_secret(&stored).map_err(TxAbort::Abort)?;
    let slot = keys::secret_index(env_id, &record.path, &record.key_digest);
    let entry = tx.get(Tree::SecretIndex, &slot)?;
    check_indexed(id, &record, entry.as_deref()).map_err(TxAbort::Abort)?;
    Ok(Some((record, stored)))
}

/// Claims the index slot of (env, path, key) for version `version` of `id`; another live
/// secret there is a duplicate, whether committed earlier or written earlier in this batch.
pub(crate) fn claim_index(
    tx: &dyn KvTx,
    env_id: Uuid,
    path: &str,
    digest: &[u8; 32],
    id: Uuid,
    version: u64,
) -> Result<(), TxAbort<StoreError>> {
    let slot = keys::secret_index(env_id, path, digest);
    if let Some(entry) = tx.get(Tree::SecretIndex, &slot)? {
        let (holder, _) = parse_index_entry(&entry).map_err(TxAbort::Abort)?;
        if holder != id {
            return abort(StoreError::DuplicateSecret);
        }
    }
    Ok(tx.insert(Tree::SecretIndex, &slot, &index_entry(id, version))?)
}

/// Refuses an update that the current record does not allow: a version other than the
/// one expected, or a sealed secret made readable.
fn check_update(record: &SecretRecord, p: &PreparedUpdate) -> Result<(), StoreError> {
    if let Some(expected) = p.update.expected_version {
        if expected != record.version {
            return Err(StoreError::VersionConflict {
                expected,
                current: record.version,
            });
        }
    }
    let new_type = p.update.secret_type.unwrap_or(record.secret_type);
    if record.secret_type == SecretType::Sealed && new_type != SecretType::Sealed {
        return Err(StoreError::SealedCannotBeUnsealed);
    }
    Ok(())
}

/// A UUID stored in a key.
fn stored_uuid(tree: Tree, bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|e| {
        StoreError::Internal(InternalError::Codec {
            tree: tree.name(),
            reason: e.to_string(),
        })
    })
}

/// The environment, read inside the transaction: a batch never lands in an
/// environment deleted meanwhile. Returns its app id.
pub(crate) fn require_env(tx: &dyn KvTx, env_id: Uuid) -> Result<Uuid, TxAbort<StoreError>> {
    match tx_get::<Environment>(tx, Tree::Envs, &keys::env(env_id))? {
        Some(env) => Ok(env.app_id),
        None => abort(StoreError::EnvironmentIdNotFound(env_id)),
    }
}

impl<B: KvBackend> Store<B> {
    pub(crate) fn seal_fields(
        &self,
        env_id: Uuid,
        id: Uuid,
        version: u64,
        fields: &SealedFields,
    ) -> Vec<u8> {
        let location = keys::sealed_location(env_id, id, version);
        self.keys.seal(&location, &codec::encode(fields))
    }

    pub(crate) fn open_fields(
        &self,
        env_id: Uuid,
        id: Uuid,
        record: &SecretRecord,
    ) -> Result<SealedFields, StoreError> {
        let location = keys::sealed_location(env_id, id, record.version);
        let plain = self
            .keys
            .open(&location, &record.sealed)
            .map_err(|_| StoreError::Internal(InternalError::Crypto))?;
        codec::decode(Tree::Secrets.name(), &plain)
    }

    pub(crate) fn to_secret(
        &self,
        env_id: Uuid,
        id: Uuid,
        record: &SecretRecord,
    ) -> Result<Secret, StoreError> {
        let fields = self.open_fields(env_id, id, record)?;
        Ok(Secret {
            id,
            env_id,
            path: record.path.clone(),
            key: fields.key,
            value: fields.value,
            comment: fields.comment,
            tags: record.tags.clone(),
            secret_type: record.secret_type,
            key_digest: record.key_digest,
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
            personal_override: None,
        })
    }

    /// [`Store::to_secret`] with `owner`'s override of it attached.
    pub(crate) fn to_secret_with(
        &self,
        env_id: Uuid,
        id: Uuid,
        record: &SecretRecord,
        personal: Option<&(Uuid, OverrideRecord)>,
    ) -> Result<Secret, StoreError> {
        let mut secret = self.to_secret(env_id, id, record)?;
        if let Some((owner, stored)) = personal {
            secret.personal_override = Some(self.open_override(env_id, id, *owner, stored)?);
        }
        Ok(secret)
    }

    /// The keyed digest of a key as the index stores it (hex of it is `keyDigest`).
    pub fn key_digest(&self, key: &str) -> [u8; 32] {
        self.keys.key_digest(&upper_case_key(key.trim()))
    }

    /// Secrets of an environment matching `filter`, ordered by path then key. Only the
    /// secrets returned are decrypted; a key filter reads only that key's index entries.
    pub fn list_secrets(
        &self,
        env_id: Uuid,
        filter: &SecretFilter,
    ) -> Result<Vec<Secret>, StoreError> {
        let page = self.list_page(env_id, filter, &ListPage::default(), None)?;
        page.entries
            .into_iter()
            .map(|entry| self.open_listed(entry))
            .collect()
    }

    /// One page of [`Store::list_secrets`], read whole-batch consistent (no write to
    /// the environment lands while it is read), in order. Its entries are opened one at
    /// a time with [`Store::open_listed`], so that a caller writing them out holds
    /// little more than the answer: past 1 MiB of decrypted values, an entry stays
    /// sealed after its key is read for sorting, and is opened again in its turn.
    ///
    /// `viewer` is the User token whose personal overrides are attached (see
    /// [`crate::Actor::override_owner`]); they are read with one prefix scan of that
    /// token's overrides in the environment, which finds nothing at once for a token
    /// that has none there. Other tokens' overrides are never read.
    pub fn list_page(
        &self,
        env_id: Uuid,
        filter: &SecretFilter,
        page: &ListPage,
        viewer: Option<Uuid>,
    ) -> Result<ListedPage, StoreError> {
        let path = filter
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(normalize_path)
            .transpose()?;
        let digest = filter.key.as_deref().map(|k| self.key_digest(k));
        let _visible = self.read_env(env_id);
        let mut personal = match viewer {
            Some(owner) => self.overrides_of(env_id, owner)?,
            None => Default::default(),
        };
        let mut found: Vec<(ListPosition, ListedSecret)> = Vec::new();
        let mut kept_open = 0usize;
        let mut consider = |id: Uuid, record: SecretRecord| -> Result<(), StoreError> {
            let wanted = path.as_ref().is_none_or(|p| *p == record.path)
                && digest.is_none_or(|d| d == record.key_digest)
                && (filter.tags.is_empty() || record.tags.iter().any(|t| filter.tags.contains(t)));
            if !wanted {
                return Ok(());
            }
            let mine = viewer.zip(personal.remove(&id));
            let secret = self.to_secret_with(env_id, id, &record, mine.as_ref())?;
            let position = ListPosition {
                path: secret.path.clone(),
                key: secret.key.clone(),
            };
            if page.after.as_ref().is_some_and(|after| position <= *after) {
                return Ok(());
            }
            kept_open += secret.value.len() + secret.comment.len();
            kept_open += secret
                .personal_override
                .as_ref()
                .map_or(0, |o| o.value.len());
            let listed = if kept_open <= LIST_KEPT_OPEN_BYTES {
                Listed::Open(secret)
            } else {
                Listed::Sealed(env_id, record, mine)
            };
            found.push((position, ListedSecret { id, listed }));
            Ok(())
        };
        // Read in one view: on a backend other nodes write, the index and the records
        // come from one state, so a batch is seen whole or not at all.
        let trees = [Tree::SecretIndex, Tree::Secrets];
        let records = self
            .kv
            .read_view(&trees, |view| {
                let mut records = Vec::new();
                match &digest {
                    Some(digest) => {
                        let prefix = keys::secret_index_prefix(env_id, digest);
                        for (_, entry) in view.scan_prefix(Tree::SecretIndex, &prefix)? {
                            let (id, _) = parse_index_entry(&entry).map_err(TxAbort::Abort)?;
                            let stored = view.get(Tree::Secrets, &keys::secret(env_id, id))?;
                            let Some(bytes) = stored else { continue };
                            let record = decode_secret(&bytes).map_err(TxAbort::Abort)?;
                            check_indexed(id, &record, Some(&entry)).map_err(TxAbort::Abort)?;
                            records.push((id, record));
                        }
                    }
                    None => {
                        // Every current record must be the version its index entry
                        // names. The index is read with one scan of the environment's
                        // entries (small: 24-byte values), not a point read per secret.
                        let mut indexed = std::collections::HashMap::new();
                        for (_, entry) in view.scan_prefix(Tree::SecretIndex, env_id.as_bytes())? {
                            let (id, version) =
                                parse_index_entry(&entry).map_err(TxAbort::Abort)?;
                            indexed.insert(id, version);
                        }
                        for (key, bytes) in view.scan_prefix(Tree::Secrets, env_id.as_bytes())? {
                            let id =
                                stored_uuid(Tree::Secrets, &key[16..]).map_err(TxAbort::Abort)?;
                            let record = decode_secret(&bytes).map_err(TxAbort::Abort)?;
                            if indexed.get(&id) != Some(&record.version) {
                                return abort(StoreError::unauthentic(Tree::Secrets));
                            }
                            records.push((id, record));
                        }
                    }
                }
                Ok(records)
            })
            .map_err(tx_error)?;
        for (id, record) in records {
            consider(id, record)?;
        }
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let limit = page.limit.unwrap_or(usize::MAX);
        let next = (found.len() > limit).then(|| found[limit - 1].0.clone());
        found.truncate(limit);
        Ok(ListedPage {
            entries: found.into_iter().map(|(_, entry)| entry).collect(),
            next,
        })
    }

    /// A listed secret, decrypted.
    pub fn open_listed(&self, entry: ListedSecret) -> Result<Secret, StoreError> {
        match entry.listed {
            Listed::Open(secret) => Ok(secret),
            Listed::Sealed(env_id, record, mine) => {
                self.to_secret_with(env_id, entry.id, &record, mine.as_ref())
            }
        }
    }

    /// One secret of an environment.
    pub fn get_secret(&self, env_id: Uuid, id: Uuid) -> Result<Secret, StoreError> {
        let _visible = self.read_env(env_id);
        let record = self
            .current_record(env_id, id)?
            .ok_or(StoreError::SecretNotFound(id))?;
        self.to_secret(env_id, id, &record)
    }

    /// The current record of a secret, checked against its index entry.
    pub(crate) fn current_record(
        &self,
        env_id: Uuid,
        id: Uuid,
    ) -> Result<Option<SecretRecord>, StoreError> {
        // In one view: on a shared backend, the record and its index entry come from
        // one state (an update between the two reads would look like a rollback).
        self.kv
            .read_view(&[Tree::Secrets, Tree::SecretIndex], |view| {
                let stored = view.get(Tree::Secrets, &keys::secret(env_id, id))?;
                let Some(record) = stored
                    .as_deref()
                    .map(decode_secret)
                    .transpose()
                    .map_err(TxAbort::Abort)?
                else {
                    return Ok(None);
                };
                let slot = keys::secret_index(env_id, &record.path, &record.key_digest);
                let entry = view.get(Tree::SecretIndex, &slot)?;
                check_indexed(id, &record, entry.as_deref()).map_err(TxAbort::Abort)?;
                Ok(Some(record))
            })
            .map_err(tx_error)
    }

    /// Creates a batch of secrets: all of them, or none.
    pub fn create_secrets(
        &self,
        actor: &Actor,
        env_id: Uuid,
        batch: Vec<NewSecret>,
    ) -> Result<Vec<Secret>, StoreError> {
        self.create_secrets_keeping(actor, env_id, batch, None)
    }

    /// [`Store::create_secrets`], keeping the answer to it in its transaction.
    pub fn create_secrets_keeping(
        &self,
        actor: &Actor,
        env_id: Uuid,
        batch: Vec<NewSecret>,
        keep: Option<&AnswerToKeep<'_, Vec<Secret>>>,
    ) -> Result<Vec<Secret>, StoreError> {
        check_batch_len(batch.len())?;
        let now = Timestamp::now();
        let prepared = batch
            .into_iter()
            .map(|new| self.prepare_create(actor, env_id, new, now))
            .collect::<Result<Vec<_>, _>>()?;
        let trees = match prepared.iter().any(|p| p.personal.is_some()) {
            true => CREATE_OVERRIDE_TREES,
            false => CREATE_TREES,
        };
        let trees = trees_keeping(trees, keep.is_some());
        self.write_env(actor, env_id, &trees, |tx| {
            let app_id = require_env(tx, env_id)?;
            for p in &prepared {
                let s = &p.secret;
                claim_index(tx, env_id, &s.path, &s.key_digest, s.id, s.version)?;
                put_version(tx, env_id, s.id, &p.record, None)?;
                if let Some(personal) = &p.personal {
                    tx_put_override(tx, env_id, s.id, personal)?;
                }
            }
            let secrets: Vec<Secret> = prepared.iter().map(|p| p.secret.clone()).collect();
            let event = secret_event(AuditAction::SecretCreate, app_id, env_id, &secrets);
            self.tx_keep(tx, keep, &secrets)?;
            Ok((secrets, event))
        })
    }

    /// Checks and seals a create entry; its override is kept only for a User token
    /// (`owner`).
    pub(crate) fn prepare_create(
        &self,
        actor: &Actor,
        env_id: Uuid,
        new: NewSecret,
        now: Timestamp,
    ) -> Result<PreparedSecret, StoreError> {
        let key = normalize_key(&new.key)?;
        let path = normalize_path(&new.path)?;
        check_sizes(Some(&new.value), Some(&new.comment))?;
        let tags = normalize_tags(&new.tags)?;
        let id = Uuid::new_v4();
        let personal = match (actor.override_owner(), &new.personal_override) {
            (Some(owner), Some(input)) => {
                Some(self.prepare_override(env_id, id, owner, input, now)?)
            }
            _ => None,
        };
        let key_digest = self.keys.key_digest(&key);
        let secret = Secret {
            id,
            env_id,
            path,
            key,
            value: new.value,
            comment: new.comment,
            tags,
            secret_type: new.secret_type,
            key_digest,
            version: 1,
            created_at: now,
            updated_at: now,
            personal_override: personal.as_ref().map(PreparedOverride::as_new),
        };
        let record = self.record_of(&secret, VersionAction::Create, actor);
        Ok(PreparedSecret {
            secret,
            record,
            personal,
        })
    }

    /// The record of `secret` as version `secret.version`, written by `actor`.
    pub(crate) fn record_of(
        &self,
        secret: &Secret,
        action: VersionAction,
        actor: &Actor,
    ) -> SecretRecord {
        let fields = SealedFields {
            key: secret.key.clone(),
            value: secret.value.clone(),
            comment: secret.comment.clone(),
        };
        SecretRecord {
            path: secret.path.clone(),
            key_digest: secret.key_digest,
            tags: secret.tags.clone(),
            secret_type: secret.secret_type,
            version: secret.version,
            created_at: secret.created_at,
            updated_at: secret.updated_at,
            sealed: self.seal_fields(secret.env_id, secret.id, secret.version, &fields),
            action,
            actor: Some(VersionActor::from(actor)),
        }
    }

    /// Updates a batch of secrets: all of them, or none. A changed key or path moves
    /// the secret in the uniqueness index; landing on a live secret is a duplicate.
    pub fn update_secrets(
        &self,
        actor: &Actor,
        env_id: Uuid,
        batch: Vec<SecretUpdate>,
    ) -> Result<Vec<Secret>, StoreError> {
        self.update_secrets_keeping(actor, env_id, batch, None)
    }

    /// [`Store::update_secrets`], keeping the answer to it in its transaction.
    pub fn update_secrets_keeping(
        &self,
        actor: &Actor,
        env_id: Uuid,
        batch: Vec<SecretUpdate>,
        keep: Option<&AnswerToKeep<'_, Vec<Secret>>>,
    ) -> Result<Vec<Secret>, StoreError> {
        check_batch_len(batch.len())?;
        let now = Timestamp::now();
        let owner = actor.override_owner();
        let prepared = batch
            .into_iter()
            .map(|update| {
                check_sizes(update.value.as_deref(), update.comment.as_deref())?;
                let personal = match (owner, &update.personal_override) {
                    (None, _) | (_, OverrideChange::Keep) => PreparedChange::Keep,
                    (Some(_), OverrideChange::Remove) => PreparedChange::Remove,
                    (Some(owner), OverrideChange::Set(input)) => PreparedChange::Set(
                        self.prepare_override(env_id, update.id, owner, input, now)?,
                    ),
                };
                Ok(PreparedUpdate {
                    key: update.key.as_deref().map(normalize_key).transpose()?,
                    path: update.path.as_deref().map(normalize_path).transpose()?,
                    tags: update.tags.as_deref().map(normalize_tags).transpose()?,
                    update,
                    personal,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // A User token's answer shows its override, kept or changed: its writes read
        // the overrides tree; nobody else's touch it.
        let trees = match owner {
            Some(_) => CHANGE_OVERRIDE_TREES,
            None => CHANGE_TREES,
        };
        let trees = trees_keeping(trees, keep.is_some());
        let seal_ahead = || {
            let sealed = prepared
                .iter()
                .map(|p| self.seal_update_ahead(actor, env_id, p, now))
                .collect::<Vec<_>>();
            Ok((sealed, trees.as_slice()))
        };
        self.write_env_after_scan(actor, env_id, seal_ahead, |tx, sealed| {
            let app_id = require_env(tx, env_id)?;
            let mut updated = Vec::with_capacity(prepared.len());
            for (p, ahead) in prepared.iter().zip(sealed) {
                let mut secret = self.apply_update(tx, actor, env_id, p, ahead.as_ref(), now)?;
                if let Some(owner) = owner {
                    secret.personal_override =
                        self.apply_override_change(tx, env_id, secret.id, owner, &p.personal)?;
                }
                updated.push(secret);
            }
            let event = secret_event(AuditAction::SecretUpdate, app_id, env_id, &updated);
            self.tx_keep(tx, keep, &updated)?;
            Ok((updated, event))
        })
    }

    /// Applies an update's change to `owner`'s override of a secret; returns the
    /// override as it is afterwards.
    pub(crate) fn apply_override_change(
        &self,
        tx: &dyn KvTx,
        env_id: Uuid,
        id: Uuid,
        owner: Uuid,
        change: &PreparedChange,
    ) -> Result<Option<crate::PersonalOverride>, TxAbort<StoreError>> {
        match change {
            PreparedChange::Keep => tx_override(tx, env_id, id, owner)?
                .map(|stored| self.open_override(env_id, id, owner, &stored))
                .transpose()
                .map_err(TxAbort::Abort),
            PreparedChange::Remove => {
                tx_remove_override(tx, env_id, id, owner)?;
                Ok(None)
            }
            PreparedChange::Set(prepared) => {
                debug_assert_eq!(prepared.owner(), owner);
                Ok(Some(tx_put_override(tx, env_id, id, prepared)?))
            }
        }
    }

    /// Works out an update ahead of its transaction ([`SealedUpdate`]), from the record
    /// stored now. `None` when the update will fail (the transaction says why) or the
    /// record is not there: then the transaction works it out itself. Also `None` on a
    /// shared backend, where the read ahead would be one more network round trip per
    /// entry, which costs more than the sealing it moves.
    pub(crate) fn seal_update_ahead(
        &self,
        actor: &Actor,
        env_id: Uuid,
        p: &PreparedUpdate,
        now: Timestamp,
    ) -> Option<SealedUpdate> {
        if self.kv.is_shared() {
            return None;
        }
        let id = p.update.id;
        let base = self
            .kv
            .get(Tree::Secrets, &keys::secret(env_id, id))
            .ok()??;
        let record = decode_secret(&base).ok()?;
        check_update(&record, p).ok()?;
        let (secret, written) = self.updated_version(actor, env_id, &record, p, now).ok()?;
        Some(SealedUpdate {
            base,
            secret,
            written,
        })
    }

    /// The secret as an update leaves it and its new record, sealed.
    fn updated_version(
        &self,
        actor: &Actor,
        env_id: Uuid,
        record: &SecretRecord,
        p: &PreparedUpdate,
        now: Timestamp,
    ) -> Result<(Secret, SecretRecord), StoreError> {
        let mut secret = self.to_secret(env_id, p.update.id, record)?;
        if let Some(key) = &p.key {
            secret.key = key.clone();
            secret.key_digest = self.keys.key_digest(key);
        }
        if let Some(path) = &p.path {
            secret.path = path.clone();
        }
        if let Some(value) = &p.update.value {
            secret.value = value.clone();
        }
        if let Some(comment) = &p.update.comment {
            secret.comment = comment.clone();
        }
        if let Some(tags) = &p.tags {
            secret.tags = tags.clone();
        }
        secret.secret_type = p.update.secret_type.unwrap_or(record.secret_type);
        secret.version = record.version + 1;
        secret.updated_at = now;
        let written = self.record_of(&secret, VersionAction::Update, actor);
        Ok((secret, written))
    }

    /// Applies an update in its transaction, with what was sealed `ahead` of it if that
    /// was worked out from the record current now.
    pub(crate) fn apply_update(
        &self,
        tx: &dyn KvTx,
        actor: &Actor,
        env_id: Uuid,
        p: &PreparedUpdate,
        ahead: Option<&SealedUpdate>,
        now: Timestamp,
    ) -> Result<Secret, TxAbort<StoreError>> {
        let id = p.update.id;
        let Some((record, stored)) = tx_current_stored(tx, env_id, id)? else {
            return abort(StoreError::SecretNotFound(id));
        };
        check_update(&record, p).map_err(TxAbort::Abort)?;
        let (secret, written) = match ahead.filter(|ahead| ahead.base == stored) {
            Some(ahead) => (ahead.secret.clone(), ahead.written.clone()),
            None => self
                .updated_version(actor, env_id, &record, p, now)
                .map_err(TxAbort::Abort)?,
        };
        // The index entry names the new version, whether it moves or not.
        claim_index(
            tx,
            env_id,
            &secret.path,
            &secret.key_digest,
            id,
            record.version + 1,
        )?;
        if (secret.key_digest, &secret.path) != (record.key_digest, &record.path) {
            tx.remove(
                Tree::SecretIndex,
                &keys::secret_index(env_id, &record.path, &record.key_digest),
            )?;
        }
        put_version(tx, env_id, id, &written, Some(&record))?;
        Ok(secret)
    }

    /// Deletes a batch of secrets. If any id is not in the environment nothing is
    /// deleted and the error lists every missing id. Returns how many were deleted.
    pub fn delete_secrets(
        &self,
        actor: &Actor,
        env_id: Uuid,
        ids: &[Uuid],
    ) -> Result<usize, StoreError> {
        self.delete_secrets_keeping(actor, env_id, ids, None)
    }

    /// [`Store::delete_secrets`], keeping the answer to it in its transaction.
    pub fn delete_secrets_keeping(
        &self,
        actor: &Actor,
        env_id: Uuid,
        ids: &[Uuid],
        keep: Option<&AnswerToKeep<'_, usize>>,
    ) -> Result<usize, StoreError> {
        check_batch_len(ids.len())?;
        let mut seen = HashSet::new();
        let ids: Vec<Uuid> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        let now = Timestamp::now();
        // Every token's overrides of these secrets go with them.
        let (plain, with_overrides) = (
            trees_keeping(CHANGE_TREES, keep.is_some()),
            trees_keeping(CHANGE_OVERRIDE_TREES, keep.is_some()),
        );
        let scan = || {
            let doomed = self.override_keys_of_secrets(env_id, &seen)?;
            let trees = match doomed.is_empty() {
                true => plain.as_slice(),
                false => with_overrides.as_slice(),
            };
            Ok((doomed, trees))
        };
        self.write_env_after_scan(actor, env_id, scan, |tx, doomed_overrides| {
            let app_id = require_env(tx, env_id)?;
            let mut found = Vec::with_capacity(ids.len());
            let mut missing = Vec::new();
            for id in &ids {
                match tx_current(tx, env_id, *id)? {
                    Some(record) => found.push((*id, record)),
                    None => missing.push(*id),
                }
            }
            if !missing.is_empty() {
                return abort(StoreError::SecretsNotFound(missing));
            }
            for (id, record) in &found {
                tx.remove(Tree::Secrets, &keys::secret(env_id, *id))?;
                tx.remove(
                    Tree::SecretIndex,
                    &keys::secret_index(env_id, &record.path, &record.key_digest),
                )?;
                retire_version(tx, env_id, *id, record)?;
                let deleted_by = Some(VersionActor::from(actor));
                put_history(tx, env_id, *id, record.version + 1, None, now, deleted_by)?;
            }
            for key in doomed_overrides {
                tx.remove(Tree::Overrides, key)?;
            }
            let event = AuditEvent {
                app_id: Some(app_id),
                env_id: Some(env_id),
                secret_ids: ids.clone(),
                version: None,
                ..AuditEvent::new(AuditAction::SecretDelete)
            };
            self.tx_keep(tx, keep, &found.len())?;
            Ok((found.len(), event))
        })
    }
}

/// Decrypted values and comments a listing keeps while it sorts; past this, secrets
/// wait sealed (about their stored size) and are opened again in turn.
const LIST_KEPT_OPEN_BYTES: usize = 1 << 20;

/// A page of a listing, in order: see [`Store::list_page`].
#[derive(Debug)]
pub struct ListedPage {
    /// The secrets of the page, to open with [`Store::open_listed`].
    pub entries: Vec<ListedSecret>,
    /// Where the next page starts, when more secrets remain.
    pub next: Option<ListPosition>,
}

/// A secret found by a listing, waiting for its turn to be written out.
pub struct ListedSecret {
    /// The secret's id.
    pub id: Uuid,
    listed: Listed,
}

impl std::fmt::Debug for ListedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListedSecret")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

enum Listed {
    Open(Secret),
    /// Environment id, the record, and the viewer's override of it with the viewer's id.
    Sealed(Uuid, SecretRecord, Option<(Uuid, OverrideRecord)>),
}
