//! Apps: create (with default environments), get, list, rename, delete with cascade.

use uuid::Uuid;

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::changes::env_secrets_deleted;
use crate::client_keys::{env_keys_key, token_keys_key};
use crate::codec;
use crate::envs::{envs_in, remove_env_contents};
use crate::error::StoreError;
use crate::keys;
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::{App, EnvType, Environment, Timestamp, Token};
use crate::store::{abort, tx_get, Store};
use crate::validate::{check_app_description, check_app_name, check_env_name};

/// Everything an app owns, which its deletion removes.
const APP_DELETE_TREES: &[Tree] = &[
    Tree::AppNames,
    Tree::Apps,
    Tree::EnvNames,
    Tree::Envs,
    Tree::Secrets,
    Tree::SecretIndex,
    Tree::History,
    Tree::Overrides,
    Tree::Tokens,
    Tree::TokenHashes,
    Tree::ClientKeys,
];

/// Environments an app gets when none are named.
pub const DEFAULT_ENVIRONMENTS: [&str; 3] = ["Development", "Staging", "Production"];

/// An app to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewApp {
    /// Name, 1–64 characters, unique case-insensitively.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Environment names; `None` gives [`DEFAULT_ENVIRONMENTS`].
    pub environments: Option<Vec<String>>,
}

/// A change to an app; `None` fields keep their value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

fn app_event(action: AuditAction, app_id: Uuid) -> AuditEvent {
    AuditEvent {
        app_id: Some(app_id),
        ..AuditEvent::new(action)
    }
}

impl<B: KvBackend> Store<B> {
    /// Creates an app and its environments.
    pub fn create_app(
        &self,
        actor: &Actor,
        new: NewApp,
    ) -> Result<(App, Vec<Environment>), StoreError> {
        let name = check_app_name(&new.name)?;
        check_app_description(&new.description)?;
        // As Phase: the default environments are of types dev, staging and prod; the
        // environments of a list given are custom ones, whatever their names.
        let (env_names, named_types): (Vec<String>, bool) = match new.environments {
            Some(names) => (names, false),
            None => (
                DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect(),
                true,
            ),
        };
        for (i, env_name) in env_names.iter().enumerate() {
            check_env_name(env_name)?;
            if env_names[..i]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(env_name))
            {
                return Err(StoreError::EnvironmentNameTaken(env_name.clone()));
            }
        }
        let now = Timestamp::now();
        let app = App {
            id: Uuid::new_v4(),
            name,
            description: new.description,
            created_at: now,
            updated_at: now,
        };
        let envs: Vec<Environment> = env_names
            .into_iter()
            .enumerate()
            .map(|(index, name)| Environment {
                id: Uuid::new_v4(),
                app_id: app.id,
                env_type: match named_types {
                    true => EnvType::for_name(&name),
                    false => EnvType::Custom,
                },
                name,
                index: index as u32,
                created_at: now,
                updated_at: now,
            })
            .collect();
        let env_keys: Vec<Vec<u8>> = envs
            .iter()
            .map(|env| self.new_environment_keys(env.id))
            .collect();
        let _structure = self.structure.lock();
        self.write(
            actor,
            &[
                Tree::AppNames,
                Tree::Apps,
                Tree::EnvNames,
                Tree::Envs,
                Tree::ClientKeys,
            ],
            |tx| {
                let name_key = keys::app_name(&app.name);
                if tx.get(Tree::AppNames, &name_key)?.is_some() {
                    return abort(StoreError::AppNameTaken(app.name.clone()));
                }
                tx.insert(Tree::AppNames, &name_key, app.id.as_bytes())?;
                tx.insert(Tree::Apps, &keys::app(app.id), &codec::encode(&app))?;
                for (env, keys) in envs.iter().zip(&env_keys) {
                    put_env(tx, env, keys)?;
                }
                Ok(((), app_event(AuditAction::AppCreate, app.id)))
            },
        )?;
        Ok((app, envs))
    }

    /// One app.
    pub fn get_app(&self, id: Uuid) -> Result<App, StoreError> {
        self.get_record(Tree::Apps, &keys::app(id))?
            .ok_or(StoreError::AppNotFound(id))
    }

    /// The app of this name (case-insensitive), if there is one.
    pub fn find_app_by_name(&self, name: &str) -> Result<Option<App>, StoreError> {
        let Some(id) = self.kv.get(Tree::AppNames, &keys::app_name(name))? else {
            return Ok(None);
        };
        let Ok(id) = Uuid::from_slice(&id) else {
            return Ok(None);
        };
        match self.get_app(id) {
            Ok(app) => Ok(Some(app)),
            Err(StoreError::AppNotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Every app, by name.
    pub fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        let mut apps = self
            .kv
            .scan_prefix(Tree::Apps, &[])
            .map(|pair| codec::decode::<App>(Tree::Apps.name(), &pair?.1))
            .collect::<Result<Vec<_>, _>>()?;
        apps.sort_by_cached_key(|a| (a.name.to_lowercase(), a.id));
        Ok(apps)
    }

    /// Renames an app or changes its description.
    pub fn update_app(
        &self,
        actor: &Actor,
        id: Uuid,
        update: AppUpdate,
    ) -> Result<App, StoreError> {
        let new_name = update.name.as_deref().map(check_app_name).transpose()?;
        if let Some(description) = &update.description {
            check_app_description(description)?;
        }
        let _structure = self.structure.lock();
        self.write(actor, &[Tree::Apps, Tree::AppNames], |tx| {
            let Some(mut app) = tx_get::<App>(tx, Tree::Apps, &keys::app(id))? else {
                return abort(StoreError::AppNotFound(id));
            };
            if let Some(name) = &new_name {
                let old_key = keys::app_name(&app.name);
                let new_key = keys::app_name(name);
                if new_key != old_key {
                    if tx.get(Tree::AppNames, &new_key)?.is_some() {
                        return abort(StoreError::AppNameTaken(name.clone()));
                    }
                    tx.remove(Tree::AppNames, &old_key)?;
                    tx.insert(Tree::AppNames, &new_key, id.as_bytes())?;
                }
                app.name = name.clone();
            }
            if let Some(description) = &update.description {
                app.description = description.clone();
            }
            app.updated_at = Timestamp::now();
            tx.insert(Tree::Apps, &keys::app(id), &codec::encode(&app))?;
            Ok((app, app_event(AuditAction::AppUpdate, id)))
        })
    }

    /// Deletes an app with its environments, secrets, their history and its tokens, all
    /// as the transaction reads them.
    pub fn delete_app(&self, actor: &Actor, id: Uuid) -> Result<(), StoreError> {
        // Listings hold their environment's stripe: none sees half of the delete. Held
        // until the commit only, not through the flush.
        let every_env = self.write_all_envs();
        let deleted = self.write_releasing(actor, APP_DELETE_TREES, every_env, |tx| {
            let Some(app) = tx_get::<App>(tx, Tree::Apps, &keys::app(id))? else {
                return abort(StoreError::AppNotFound(id));
            };
            tx.remove(Tree::AppNames, &keys::app_name(&app.name))?;
            tx.remove(Tree::Apps, &keys::app(id))?;
            let mut secrets_deleted = Vec::new();
            for env in envs_in(tx, id)? {
                remove_env(tx, &env)?;
                let live = remove_env_contents(tx, env.id)?;
                secrets_deleted.push(env_secrets_deleted(id, env.id, live));
            }
            let mut tokens = Vec::new();
            for (_, record) in tx.scan_prefix(Tree::Tokens, &[])? {
                let token: Token =
                    codec::decode(Tree::Tokens.name(), &record).map_err(TxAbort::Abort)?;
                if token.app_id == Some(id) {
                    tx.remove(Tree::Tokens, token.id.as_bytes())?;
                    tx.remove(Tree::TokenHashes, &token.hash)?;
                    tx.remove(Tree::ClientKeys, &token_keys_key(token.id))?;
                    tokens.push(token);
                }
            }
            let event = app_event(AuditAction::AppDelete, id);
            Ok((tokens, (event, secrets_deleted)))
        });
        // As for a revocation: the app's tokens leave the cache once committed, and
        // lookups that read one before the commit cannot put it back. A write that failed
        // after its commit may have deleted them: then nothing stays cached.
        let mut cache = self.token_cache.write();
        match &deleted {
            Ok(tokens) => tokens.iter().for_each(|token| cache.remove(&token.hash)),
            Err(StoreError::AppNotFound(_)) => {}
            Err(_) => cache.clear(),
        }
        deleted.map(drop)
    }
}

/// Stores a new environment with its sealed key material.
pub(crate) fn put_env(
    tx: &dyn KvTx,
    env: &Environment,
    sealed_keys: &[u8],
) -> Result<(), TxAbort<StoreError>> {
    let name_key = keys::env_name(env.app_id, &env.name);
    if tx.get(Tree::EnvNames, &name_key)?.is_some() {
        return abort(StoreError::EnvironmentNameTaken(env.name.clone()));
    }
    tx.insert(Tree::EnvNames, &name_key, env.id.as_bytes())?;
    tx.insert(Tree::Envs, &keys::env(env.id), &codec::encode(env))?;
    tx.insert(Tree::ClientKeys, &env_keys_key(env.id), sealed_keys)?;
    Ok(())
}

pub(crate) fn remove_env(tx: &dyn KvTx, env: &Environment) -> Result<(), TxAbort<StoreError>> {
    tx.remove(Tree::EnvNames, &keys::env_name(env.app_id, &env.name))?;
    tx.remove(Tree::Envs, &keys::env(env.id))?;
    tx.remove(Tree::ClientKeys, &env_keys_key(env.id))?;
    Ok(())
}
