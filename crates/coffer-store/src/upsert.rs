//! Upsert: one atomic batch of creates and updates, each entry matched by its
//! (path, key) to the live secret there, if any.

use std::collections::HashSet;

use uuid::Uuid;

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::error::StoreError;
use crate::idempotency::{trees_keeping, AnswerToKeep};
use crate::keys;
use crate::kv::{KvBackend, Tree, TxAbort};
use crate::model::{NewSecret, OverrideChange, Secret, SecretUpdate, Timestamp, UpsertSecret};
use crate::overrides::tx_put_override;
use crate::secrets::{
    check_batch_len, claim_index, parse_index_entry, put_version, require_env, secret_event,
    PreparedChange, PreparedSecret, PreparedUpdate, SealedUpdate, CHANGE_OVERRIDE_TREES,
    CHANGE_TREES,
};
use crate::store::Store;
use crate::validate::{check_sizes, normalize_tags};

/// A checked upsert entry: the create it is if its place is free, and the update it is
/// if a live secret holds it.
struct PreparedUpsert {
    create: PreparedSecret,
    entry: UpsertSecret,
    tags: Option<Vec<String>>,
}

/// The update an upsert entry is for the secret that held its place before the
/// transaction, worked out then (see [`SealedUpdate`]); the transaction uses it if the
/// same secret holds the place still.
struct UpsertAhead {
    update: PreparedUpdate,
    sealed: Option<SealedUpdate>,
}

impl<B: KvBackend> Store<B> {
    /// Creates or updates a batch of secrets, all of them or none: an entry whose
    /// (path, key) holds a live secret updates it (version + 1), keeping the comment,
    /// tags and type the entry leaves out; any other entry creates a secret. The same
    /// (path, key) twice in a batch is a duplicate. Creates are audited as
    /// `secret.create`, updates as `secret.update`, in the batch's transaction.
    /// Returns the secrets in batch order.
    pub fn upsert_secrets(
        &self,
        actor: &Actor,
        env_id: Uuid,
        batch: Vec<UpsertSecret>,
    ) -> Result<Vec<Secret>, StoreError> {
        self.upsert_secrets_keeping(actor, env_id, batch, None)
    }

    /// [`Store::upsert_secrets`], keeping the answer to it in its transaction.
    pub fn upsert_secrets_keeping(
        &self,
        actor: &Actor,
        env_id: Uuid,
        batch: Vec<UpsertSecret>,
        keep: Option<&AnswerToKeep<'_, Vec<Secret>>>,
    ) -> Result<Vec<Secret>, StoreError> {
        check_batch_len(batch.len())?;
        let now = Timestamp::now();
        let owner = actor.override_owner();
        let mut places = HashSet::new();
        let mut prepared = Vec::with_capacity(batch.len());
        for entry in batch {
            check_sizes(Some(&entry.value), entry.comment.as_deref())?;
            let tags = entry.tags.as_deref().map(normalize_tags).transpose()?;
            let new = NewSecret {
                key: entry.key.clone(),
                value: entry.value.clone(),
                comment: entry.comment.clone().unwrap_or_default(),
                tags: entry.tags.clone().unwrap_or_default(),
                path: entry.path.clone(),
                secret_type: entry.secret_type.unwrap_or_default(),
                personal_override: match &entry.personal_override {
                    OverrideChange::Set(input) => Some(input.clone()),
                    OverrideChange::Keep | OverrideChange::Remove => None,
                },
            };
            let create = self.prepare_create(actor, env_id, new, now)?;
            if !places.insert((create.secret.path.clone(), create.secret.key_digest)) {
                return Err(StoreError::DuplicateSecret);
            }
            prepared.push(PreparedUpsert {
                create,
                entry,
                tags,
            });
        }
        let trees = match owner {
            Some(_) => CHANGE_OVERRIDE_TREES,
            None => CHANGE_TREES,
        };
        let trees = trees_keeping(trees, keep.is_some());
        let seal_ahead = || {
            let ahead = prepared
                .iter()
                .map(|p| self.upsert_ahead(actor, env_id, p, now))
                .collect::<Vec<_>>();
            Ok((ahead, trees.as_slice()))
        };
        self.write_env_after_scan(actor, env_id, seal_ahead, |tx, ahead| {
            let app_id = require_env(tx, env_id)?;
            let mut written = Vec::with_capacity(prepared.len());
            let (mut created, mut updated) = (Vec::new(), Vec::new());
            for (p, ahead) in prepared.iter().zip(ahead) {
                let new = &p.create.secret;
                let slot = keys::secret_index(env_id, &new.path, &new.key_digest);
                let holder = match tx.get(Tree::SecretIndex, &slot)? {
                    Some(entry) => Some(parse_index_entry(&entry).map_err(TxAbort::Abort)?.0),
                    None => None,
                };
                let Some(id) = holder else {
                    claim_index(tx, env_id, &new.path, &new.key_digest, new.id, 1)?;
                    put_version(tx, env_id, new.id, &p.create.record, None)?;
                    if let Some(personal) = &p.create.personal {
                        tx_put_override(tx, env_id, new.id, personal)?;
                    }
                    created.push(new.clone());
                    written.push(new.clone());
                    continue;
                };
                let worked_out;
                let (update, sealed) = match ahead.as_ref().filter(|a| a.update.update.id == id) {
                    Some(ahead) => (&ahead.update, ahead.sealed.as_ref()),
                    None => {
                        worked_out = self
                            .upsert_update(actor, env_id, id, p, now)
                            .map_err(TxAbort::Abort)?;
                        (&worked_out, None)
                    }
                };
                let mut secret = self.apply_update(tx, actor, env_id, update, sealed, now)?;
                if let Some(owner) = owner {
                    secret.personal_override =
                        self.apply_override_change(tx, env_id, id, owner, &update.personal)?;
                }
                updated.push(secret.clone());
                written.push(secret);
            }
            let mut events: Vec<AuditEvent> = Vec::with_capacity(2);
            if !created.is_empty() {
                events.push(secret_event(
                    AuditAction::SecretCreate,
                    app_id,
                    env_id,
                    &created,
                ));
            }
            if !updated.is_empty() {
                events.push(secret_event(
                    AuditAction::SecretUpdate,
                    app_id,
                    env_id,
                    &updated,
                ));
            }
            self.tx_keep(tx, keep, &written)?;
            Ok((written, events))
        })
    }

    /// The update an upsert entry is for the secret `id` that holds its place.
    fn upsert_update(
        &self,
        actor: &Actor,
        env_id: Uuid,
        id: Uuid,
        p: &PreparedUpsert,
        now: Timestamp,
    ) -> Result<PreparedUpdate, StoreError> {
        // The override was sealed for the id a create would have had: seal it again for
        // the secret found (its size is checked already).
        let personal = match (actor.override_owner(), &p.entry.personal_override) {
            (None, _) | (_, OverrideChange::Keep) => PreparedChange::Keep,
            (Some(_), OverrideChange::Remove) => PreparedChange::Remove,
            (Some(owner), OverrideChange::Set(input)) => {
                PreparedChange::Set(self.prepare_override(env_id, id, owner, input, now)?)
            }
        };
        Ok(PreparedUpdate {
            update: SecretUpdate {
                id,
                value: Some(p.entry.value.clone()),
                comment: p.entry.comment.clone(),
                secret_type: p.entry.secret_type,
                ..SecretUpdate::default()
            },
            key: None,
            path: None,
            tags: p.tags.clone(),
            personal,
        })
    }

    /// Works out, before the transaction, the update an entry is if a live secret holds
    /// its place now; `None` if none does (or reading it failed: the transaction will
    /// say why), and on a shared backend (see [`Store::seal_update_ahead`]).
    fn upsert_ahead(
        &self,
        actor: &Actor,
        env_id: Uuid,
        p: &PreparedUpsert,
        now: Timestamp,
    ) -> Option<UpsertAhead> {
        if self.kv.is_shared() {
            return None;
        }
        let new = &p.create.secret;
        let slot = keys::secret_index(env_id, &new.path, &new.key_digest);
        let entry = self.kv.get(Tree::SecretIndex, &slot).ok()??;
        let (id, _) = parse_index_entry(&entry).ok()?;
        let update = self.upsert_update(actor, env_id, id, p, now).ok()?;
        let sealed = self.seal_update_ahead(actor, env_id, &update, now);
        Some(UpsertAhead { update, sealed })
    }
}
