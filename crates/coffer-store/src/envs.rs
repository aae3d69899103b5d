//! Environments: create, get by id or name, list by index, rename, delete with cascade.

use uuid::Uuid;

use crate::apps::{put_env, remove_env};
use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::changes::env_secrets_deleted;
use crate::codec;
use crate::error::StoreError;
use crate::keys;
use crate::kv::{KvBackend, Tree};
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
    /// Adds an environment at the end of the app's list.
    pub fn create_environment(
        &self,
        actor: &Actor,
        app_id: Uuid,
        name: &str,
    ) -> Result<Environment, StoreError> {
        check_env_name(name)?;
        let _structure = self.structure.lock();
        let existing = self.list_environments(app_id)?;
        let now = Timestamp::now();
        let env = Environment {
            id: Uuid::new_v4(),
            app_id,
            name: name.to_owned(),
            // As Phase: an environment added to an app is a custom one, whatever its name.
            env_type: EnvType::Custom,
            index: existing.last().map_or(0, |e| e.index + 1),
            created_at: now,
            updated_at: now,
        };
        let env_keys = self.new_environment_keys(env.id);
        let trees = [Tree::Apps, Tree::EnvNames, Tree::Envs, Tree::ClientKeys];
        self.write(actor, &trees, |tx| {
            if tx.get(Tree::Apps, &keys::app(app_id))?.is_none() {
                return abort(StoreError::AppNotFound(app_id));
            }
            put_env(tx, &env, &env_keys)?;
            Ok(((), env_event(AuditAction::EnvCreate, &env)))
        })?;
        Ok(env)
    }

    /// One environment by id.
    pub fn get_environment(&self, id: Uuid) -> Result<Environment, StoreError> {
        self.get_record(Tree::Envs, &keys::env(id))?
            .ok_or(StoreError::EnvironmentIdNotFound(id))
    }

    /// An environment of an app by name (case-insensitive) or by id.
    pub fn find_environment(
        &self,
        app_id: Uuid,
        name_or_id: &str,
    ) -> Result<Environment, StoreError> {
        let cache_key = (app_id, name_or_id.to_lowercase());
        if let Some(env) = self.env_cache.read().get(&cache_key) {
            return Ok(env.clone());
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

    /// Deletes an environment with its secrets, their history and overrides.
    pub fn delete_environment(&self, actor: &Actor, id: Uuid) -> Result<(), StoreError> {
        let _structure = self.structure.lock();
        let env = self.get_environment(id)?;
        let _env = self.write_envs(&[id]);
        let doomed = self.env_contents(id)?;
        let secrets_deleted = env_secrets_deleted(env.app_id, id, live_secret_ids(&doomed));
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
                remove_env(tx, &env)?;
                for (tree, key) in &doomed {
                    tx.remove(*tree, key)?;
                }
                let events = vec![secrets_deleted.clone()];
                Ok(((), (env_event(AuditAction::EnvDelete, &env), events)))
            },
        )
    }

    /// Every key stored for an environment's secrets: records, index, history, personal
    /// overrides.
    /// Callers hold the environment's write lock, so the list cannot go stale.
    pub(crate) fn env_contents(&self, env_id: Uuid) -> Result<Vec<(Tree, Vec<u8>)>, StoreError> {
        let mut keys = Vec::new();
        for tree in [
            Tree::Secrets,
            Tree::SecretIndex,
            Tree::History,
            Tree::Overrides,
        ] {
            for pair in self.kv.scan_prefix(tree, env_id.as_bytes()) {
                keys.push((tree, pair?.0));
            }
        }
        Ok(keys)
    }
}

/// The ids of the live secrets among an environment's keys (from [`Store::env_contents`]).
pub(crate) fn live_secret_ids(contents: &[(Tree, Vec<u8>)]) -> Vec<Uuid> {
    contents
        .iter()
        .filter(|(tree, _)| *tree == Tree::Secrets)
        .filter_map(|(_, key)| Uuid::from_slice(key.get(16..32)?).ok())
        .collect()
}
