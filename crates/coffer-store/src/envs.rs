//! Environments: create, get by id or name, list by index, rename, delete with cascade.

use uuid::Uuid;

use crate::apps::{put_env, remove_env};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::changes::env_secrets_deleted;
use crate::codec;
use crate::error::StoreError;
use crate::keys;
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::{EnvType, Environment, Timestamp};
use crate::store::{abort, tx_get, Store};
use crate::validate::check_env_name;

fn env_event(action: AuditAction, env: &Environment) -> AuditEvent {
    AuditEvent {
        app_id: Some(env.app_id),
        env_id: Some(env.id),
        ..AuditEvent::new(action)
    }
}

impl<B: KvBackend> Store<B> {
    /// Adds an environment at the end of the app's list. Its index is decided from the
    /// app's environments as the transaction reads them.
    pub fn create_environment(
        &self,
        actor: &Actor,
        app_id: Uuid,
        name: &str,
    ) -> Result<Environment, StoreError> {
        check_env_name(name)?;
        let id = Uuid::new_v4();
        let now = Timestamp::now();
        let env_keys = self.new_environment_keys(id);
        let trees = [Tree::Apps, Tree::EnvNames, Tree::Envs, Tree::ClientKeys];
        self.write(actor, &trees, |tx| {
            if tx.get(Tree::Apps, &keys::app(app_id))?.is_none() {
                return abort(StoreError::AppNotFound(app_id));
            }
            let mut next_index = 0;
            for existing in envs_in(tx, app_id)? {
                next_index = next_index.max(existing.index + 1);
            }
            let env = Environment {
                id,
                app_id,
                name: name.to_owned(),
                // As Phase: an environment added to an app is a custom one, whatever its name.
                env_type: EnvType::Custom,
                index: next_index,
                created_at: now,
                updated_at: now,
            };
            put_env(tx, &env, &env_keys)?;
            let event = env_event(AuditAction::EnvCreate, &env);
            Ok((env, event))
        })
    }

    /// One environment by id.
    pub fn get_environment(&self, id: Uuid) -> Result<Environment, StoreError> {
        self.get_record(Tree::Envs, &keys::env(id))?
            .ok_or(StoreError::EnvironmentIdNotFound(id))
    }

    /// [`Store::find_environment`] answered from memory alone, when the cache holds it
    /// and may answer; `None` means the answer needs the backend.
    pub fn find_environment_cached(&self, app_id: Uuid, name_or_id: &str) -> Option<Environment> {
        if !self.cache_epoch.trusted() {
            return None;
        }
        let cache_key = (app_id, name_or_id.to_lowercase());
        self.env_cache.read().get(&cache_key).cloned()
    }

    /// An environment of an app by name (case-insensitive) or by id.
    pub fn find_environment(
        &self,
        app_id: Uuid,
        name_or_id: &str,
    ) -> Result<Environment, StoreError> {
        let cache_key = (app_id, name_or_id.to_lowercase());
        if self.cache_epoch.trusted() {
            if let Some(env) = self.env_cache.read().get(&cache_key) {
                return Ok(env.clone());
            }
        }
        let mut cache = self.env_cache.write();
        let env = self.find_environment_in_store(app_id, name_or_id)?;
        cache.insert(cache_key, env.clone());
        Ok(env)
    }

    fn find_environment_in_store(
        &self,
        app_id: Uuid,
        name_or_id: &str,
    ) -> Result<Environment, StoreError> {
        let not_found = || StoreError::EnvironmentNotFound {
            app_id,
            name: name_or_id.to_owned(),
        };
        self.get_app(app_id)?;
        if let Some(id) = self
            .kv
            .get(Tree::EnvNames, &keys::env_name(app_id, name_or_id))?
        {
            let id = Uuid::from_slice(&id).map_err(|_| not_found())?;
            return self.get_environment(id);
        }
        match Uuid::parse_str(name_or_id) {
            Ok(id) => match self.get_environment(id) {
                Ok(env) if env.app_id == app_id => Ok(env),
                Ok(_) | Err(StoreError::EnvironmentIdNotFound(_)) => Err(not_found()),
                Err(other) => Err(other),
            },
            Err(_) => Err(not_found()),
        }
    }

    /// The app's environments, by index.
    pub fn list_environments(&self, app_id: Uuid) -> Result<Vec<Environment>, StoreError> {
        let mut envs = Vec::new();
        for pair in self.kv.scan_prefix(Tree::EnvNames, app_id.as_bytes()) {
            let (_, id) = pair?;
            if let Some(env) = self.get_record::<Environment>(Tree::Envs, &id)? {
                envs.push(env);
            }
        }
        envs.sort_by_key(|e| e.index);
        Ok(envs)
    }

    /// Renames an environment (its type stays what it was).
    pub fn rename_environment(
        &self,
        actor: &Actor,
        id: Uuid,
        name: &str,
    ) -> Result<Environment, StoreError> {
        check_env_name(name)?;
        let _structure = self.structure.lock();
        self.write(actor, &[Tree::Envs, Tree::EnvNames], |tx| {
            let Some(mut env) = tx_get::<Environment>(tx, Tree::Envs, &keys::env(id))? else {
                return abort(StoreError::EnvironmentIdNotFound(id));
            };
            let old_key = keys::env_name(env.app_id, &env.name);
            let new_key = keys::env_name(env.app_id, name);
            if old_key != new_key {
                if tx.get(Tree::EnvNames, &new_key)?.is_some() {
                    return abort(StoreError::EnvironmentNameTaken(name.to_owned()));
                }
                tx.remove(Tree::EnvNames, &old_key)?;
                tx.insert(Tree::EnvNames, &new_key, id.as_bytes())?;
            }
            env.name = name.to_owned();
            env.updated_at = Timestamp::now();
            tx.insert(Tree::Envs, &keys::env(id), &codec::encode(&env))?;
            let event = env_event(AuditAction::EnvUpdate, &env);
            Ok((env, event))
        })
    }

    /// Deletes an environment with its secrets, their history and overrides, all as the
    /// transaction reads them.
    pub fn delete_environment(&self, actor: &Actor, id: Uuid) -> Result<(), StoreError> {
        // Listings of the environment hold its stripe: none sees half of the delete.
        let _env = self.write_envs(&[id]);
        self.write(
            actor,
            &[
                Tree::EnvNames,
                Tree::Envs,
                Tree::Secrets,
                Tree::SecretIndex,
                Tree::History,
                Tree::Overrides,
                Tree::ClientKeys,
            ],
            |tx| {
                let Some(env) = tx_get::<Environment>(tx, Tree::Envs, &keys::env(id))? else {
                    return abort(StoreError::EnvironmentIdNotFound(id));
                };
                remove_env(tx, &env)?;
                let secrets_deleted =
                    env_secrets_deleted(env.app_id, id, remove_env_contents(tx, id)?);
                Ok((
                    (),
                    (
                        env_event(AuditAction::EnvDelete, &env),
                        vec![secrets_deleted],
                    ),
                ))
            },
        )
    }
}

/// An app's environments as a transaction reads them, in index order.
pub(crate) fn envs_in(
    tx: &dyn KvTx,
    app_id: Uuid,
) -> Result<Vec<Environment>, TxAbort<StoreError>> {
    let mut envs = Vec::new();
    for (_, env_id) in tx.scan_prefix(Tree::EnvNames, app_id.as_bytes())? {
        envs.extend(tx_get::<Environment>(tx, Tree::Envs, &env_id)?);
    }
    envs.sort_by_key(|env| env.index);
    Ok(envs)
}

/// Removes every key stored for an environment's secrets (records, index, history,
/// personal overrides) as the transaction reads them; returns the ids of the secrets
/// that were live.
pub(crate) fn remove_env_contents(
    tx: &dyn KvTx,
    env_id: Uuid,
) -> Result<Vec<Uuid>, TxAbort<StoreError>> {
    let mut live = Vec::new();
    for tree in [
        Tree::Secrets,
        Tree::SecretIndex,
        Tree::History,
        Tree::Overrides,
    ] {
        for (key, _) in tx.scan_prefix(tree, env_id.as_bytes())? {
            if tree == Tree::Secrets {
                live.extend(key.get(16..32).and_then(|id| Uuid::from_slice(id).ok()));
            }
            tx.remove(tree, &key)?;
        }
    }
    Ok(live)
}
