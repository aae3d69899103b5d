//! Versions of a secret and rollback. Each version is stored once: the current one in
//! [`Tree::Secrets`], older ones and deletion markers in [`Tree::History`], each naming
//! its writer, so neither the history nor a rollback reads the audit chain.

use uuid::Uuid;

use crate::audit::{Actor, AuditAction};
use crate::error::{InternalError, StoreError};
use crate::idempotency::{trees_keeping, AnswerToKeep};
use crate::keys;
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::{
    Rollback, RolledBack, Secret, SecretType, SecretVersion, Timestamp, VersionAction,
};
use crate::overrides::tx_override;
use crate::secrets::{
    claim_index, decode_history, put_version, require_env, secret_event, tx_current, SecretRecord,
    CHANGE_OVERRIDE_TREES, CHANGE_TREES,
};
use crate::store::{abort, Store};

/// The version number of a history key (`env id ‖ secret id ‖ version`).
fn version_of_key(key: &[u8]) -> Result<u64, StoreError> {
    key.get(32..40)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| {
            StoreError::Internal(InternalError::Codec {
                tree: Tree::History.name(),
                reason: format!("history key of {} bytes", key.len()),
            })
        })
}

/// A history that does not hold together (a deletion with nothing before it, a
/// deleted secret whose last entry is no deletion): edited or lost records.
fn broken_history() -> StoreError {
    StoreError::unauthentic(Tree::History)
}

/// The content of version `version` from the history tree, read inside a transaction:
/// a deletion marker's content is the version before it. `None` if there is no such
/// version in the history tree.
fn tx_history_content(
    tx: &dyn KvTx,
    env_id: Uuid,
    id: Uuid,
    version: u64,
) -> Result<Option<SecretRecord>, TxAbort<StoreError>> {
    let Some(bytes) = tx.get(Tree::History, &keys::history(env_id, id, version))? else {
        return Ok(None);
    };
    match decode_history(&bytes).map_err(TxAbort::Abort)?.record {
        Some(record) => Ok(Some(record)),
        // Two deletions never follow each other: a rollback writes a version between.
        None => match version.checked_sub(1) {
            Some(before) if before > 0 => {
                match tx.get(Tree::History, &keys::history(env_id, id, before))? {
                    Some(bytes) => match decode_history(&bytes).map_err(TxAbort::Abort)?.record {
                        Some(record) => Ok(Some(record)),
                        None => abort(broken_history()),
                    },
                    None => abort(broken_history()),
                }
            }
            _ => abort(broken_history()),
        },
    }
}

impl<B: KvBackend> Store<B> {
    /// Every version of a secret, oldest first, the versions of a deleted secret
    /// included; a deletion is a version of its own (the one after the content it
    /// deleted, which it carries).
    pub fn secret_history(&self, env_id: Uuid, id: Uuid) -> Result<Vec<SecretVersion>, StoreError> {
        // An update moves the current version to the history tree: hold the writers
        // off so that the two reads below see the same state.
        let _visible = self.read_env(env_id);
        let mut versions: Vec<SecretVersion> = Vec::new();
        for pair in self
            .kv
            .scan_prefix(Tree::History, &keys::secret(env_id, id))
        {
            let (key, bytes) = pair?;
            let version = version_of_key(&key)?;
            let entry = decode_history(&bytes)?;
            let listed = match entry.record {
                Some(record) => SecretVersion {
                    version,
                    action: record.action,
                    secret: self.to_secret(env_id, id, &record)?,
                    actor: record.actor,
                    at: entry.at,
                },
                None => {
                    let deleted = versions.last().ok_or_else(broken_history)?;
                    SecretVersion {
                        version,
                        action: VersionAction::Delete,
                        secret: deleted.secret.clone(),
                        actor: entry.deleted_by,
                        at: entry.at,
                    }
                }
            };
            versions.push(listed);
        }
        let current = self.current_record(env_id, id)?;
        // Stores written before versions were kept once also hold the current one in
        // the history tree.
        if let Some(record) =
            current.filter(|r| versions.last().is_none_or(|v| v.version < r.version))
        {
            versions.push(SecretVersion {
                version: record.version,
                action: record.action,
                secret: self.to_secret(env_id, id, &record)?,
                actor: record.actor,
                at: record.updated_at,
            });
        }
        if versions.is_empty() {
            return Err(StoreError::SecretNotFound(id));
        }
        Ok(versions)
    }

    /// Writes a new version of a secret (current + 1) whose key, path, value, comment,
    /// tags and type are those of an earlier version, in one transaction with its
    /// uniqueness check. A deleted secret comes back live under its id (a create, audited
    /// as `secret.create`; any other rollback is a `secret.update`). A sealed secret
    /// stays sealed whatever the type of the version rolled back to.
    ///
    /// Personal overrides are left as they are: they belong to their tokens, not to a
    /// version (and a deleted secret's went with it).
    pub fn rollback_secret(
        &self,
        actor: &Actor,
        env_id: Uuid,
        rollback: Rollback,
    ) -> Result<RolledBack, StoreError> {
        self.rollback_secret_keeping(actor, env_id, rollback, None)
    }

    /// [`Store::rollback_secret`], keeping the answer to it in its transaction.
    pub fn rollback_secret_keeping(
        &self,
        actor: &Actor,
        env_id: Uuid,
        rollback: Rollback,
        keep: Option<&AnswerToKeep<'_, RolledBack>>,
    ) -> Result<RolledBack, StoreError> {
        let Rollback {
            id,
            version: wanted,
            expected_version,
            may_restore,
        } = rollback;
        let now = Timestamp::now();
        let owner = actor.override_owner();
        let trees = trees_keeping(
            match owner {
                Some(_) => CHANGE_OVERRIDE_TREES,
                None => CHANGE_TREES,
            },
            keep.is_some(),
        );
        // The last version in the history tree: a deleted secret's deletion marker. Read
        // under the environment's lock, and checked inside the transaction (that it is a
        // deletion, and that nothing follows it).
        let scan = || {
            let last = match self
                .kv
                .scan_prefix(Tree::History, &keys::secret(env_id, id))
                .last()
            {
                Some(pair) => Some(version_of_key(&pair?.0)?),
                None => None,
            };
            Ok((last, trees.as_slice()))
        };
        self.write_env_after_scan(actor, env_id, scan, |tx, last_in_history| {
            let app_id = require_env(tx, env_id)?;
            // (the latest content, the current version number, whether it is deleted)
            let (latest, current, deleted) = match tx_current(tx, env_id, id)? {
                Some(record) => {
                    let version = record.version;
                    (record, version, false)
                }
                None => {
                    let Some(marker) = *last_in_history else {
                        return abort(StoreError::SecretNotFound(id));
                    };
                    let at_marker = tx.get(Tree::History, &keys::history(env_id, id, marker))?;
                    let after = tx.get(Tree::History, &keys::history(env_id, id, marker + 1))?;
                    let is_deletion = match &at_marker {
                        Some(bytes) => decode_history(bytes)
                            .map_err(TxAbort::Abort)?
                            .record
                            .is_none(),
                        None => false,
                    };
                    if !is_deletion || after.is_some() {
                        return abort(broken_history());
                    }
                    let Some(content) = tx_history_content(tx, env_id, id, marker)? else {
                        return abort(broken_history());
                    };
                    (content, marker, true)
                }
            };
            if deleted && !may_restore {
                return abort(StoreError::RestoreNotAllowed(id));
            }
            if let Some(expected) = expected_version {
                if expected != current {
                    return abort(StoreError::VersionConflict { expected, current });
                }
            }
            let target = match wanted {
                0 => None,
                n if n == current && !deleted => Some(latest.clone()),
                n if n > current => None,
                n => tx_history_content(tx, env_id, id, n)?,
            };
            let Some(target) = target else {
                return abort(StoreError::VersionNotFound {
                    id,
                    version: wanted,
                });
            };
            let content = self
                .to_secret(env_id, id, &target)
                .map_err(TxAbort::Abort)?;
            let secret_type = match latest.secret_type {
                SecretType::Sealed => SecretType::Sealed,
                _ => target.secret_type,
            };
            let mut secret = Secret {
                id,
                env_id,
                path: content.path,
                key: content.key,
                value: content.value,
                comment: content.comment,
                tags: content.tags,
                secret_type,
                key_digest: target.key_digest,
                version: current + 1,
                created_at: latest.created_at,
                updated_at: now,
                personal_override: None,
            };
            claim_index(
                tx,
                env_id,
                &secret.path,
                &secret.key_digest,
                id,
                secret.version,
            )?;
            let moved = (secret.key_digest, &secret.path) != (latest.key_digest, &latest.path);
            if !deleted && moved {
                tx.remove(
                    Tree::SecretIndex,
                    &keys::secret_index(env_id, &latest.path, &latest.key_digest),
                )?;
            }
            let (action, audited) = match deleted {
                true => (VersionAction::Create, AuditAction::SecretCreate),
                false => (VersionAction::Update, AuditAction::SecretUpdate),
            };
            let record = self.record_of(&secret, action, actor);
            // A deleted secret's last content is already in the history tree.
            let replaced = (!deleted).then_some(&latest);
            put_version(tx, env_id, id, &record, replaced)?;
            if let Some(owner) = owner {
                secret.personal_override = tx_override(tx, env_id, id, owner)?
                    .map(|stored| self.open_override(env_id, id, owner, &stored))
                    .transpose()
                    .map_err(TxAbort::Abort)?;
            }
            let event = secret_event(audited, app_id, env_id, std::slice::from_ref(&secret));
            let rolled_back = RolledBack {
                secret,
                restored: deleted,
            };
            self.tx_keep(tx, keep, &rolled_back)?;
            Ok((rolled_back, event))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;
    use crate::model::{NewSecret, SecretUpdate, TokenKind, VersionActor};
    use crate::secrets::{decode_secret, HistoryRecordV1, SecretRecordV1};
    use crate::store::{StoreConfig, FORMAT_KEY};

    /// A store as the release before format 3 left it: secret and history records of
    /// the first layout, format byte 2.
    #[test]
    fn a_format_2_store_reads_its_versions_with_no_writer_and_moves_to_format_3() {
        let dir = tempfile::tempdir().unwrap();
        let token = Actor {
            token_id: Some(Uuid::new_v4()),
            kind: Some(TokenKind::Service),
            ..Actor::default()
        };
        let (env_id, id) = {
            let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
            let (_, envs) = store
                .create_app(
                    &token,
                    crate::NewApp {
                        name: "old".into(),
                        ..Default::default()
                    },
                )
                .unwrap();
            let env_id = envs[0].id;
            let new = NewSecret {
                key: "K".into(),
                value: "one".into(),
                ..Default::default()
            };
            let id = store.create_secrets(&token, env_id, vec![new]).unwrap()[0].id;
            let change = SecretUpdate {
                id,
                value: Some("two".into()),
                ..Default::default()
            };
            store.update_secrets(&token, env_id, vec![change]).unwrap();
            // Back to the first layout, and to format 2.
            let key = keys::secret(env_id, id);
            let current = decode_secret(&store.kv.get(Tree::Secrets, &key).unwrap().unwrap());
            let current = SecretRecordV1::from(current.unwrap());
            store
                .kv
                .insert(Tree::Secrets, &key, &codec::encode(&current))
                .unwrap();
            let first_key = keys::history(env_id, id, 1);
            let first = decode_history(&store.kv.get(Tree::History, &first_key).unwrap().unwrap());
            let first = first.unwrap();
            let old = HistoryRecordV1 {
                record: first.record.map(SecretRecordV1::from),
                at: first.at,
            };
            store
                .kv
                .insert(Tree::History, &first_key, &codec::encode(&old))
                .unwrap();
            store.kv.insert(Tree::Meta, FORMAT_KEY, &[2]).unwrap();
            store.flush().unwrap();
            (env_id, id)
        };
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        assert_eq!(
            store.kv.get(Tree::Meta, FORMAT_KEY).unwrap().as_deref(),
            Some(&[codec::FORMAT_VERSION][..])
        );
        let seen: Vec<_> = store
            .secret_history(env_id, id)
            .unwrap()
            .into_iter()
            .map(|v| (v.version, v.action, v.actor, v.secret.value))
            .collect();
        assert_eq!(
            seen,
            [
                (1, VersionAction::Create, None, "one".to_string()),
                (2, VersionAction::Update, None, "two".to_string()),
            ]
        );
        // A rollback of such a secret writes a version of the current layout, with its
        // writer.
        let rollback = Rollback {
            id,
            version: 1,
            expected_version: Some(2),
            may_restore: false,
        };
        let rolled = store.rollback_secret(&token, env_id, rollback).unwrap();
        assert_eq!(
            (rolled.secret.version, rolled.secret.value.as_str()),
            (3, "one")
        );
        let last = store.secret_history(env_id, id).unwrap().pop().unwrap();
        assert_eq!(last.actor, Some(VersionActor::from(&token)));
    }
}
