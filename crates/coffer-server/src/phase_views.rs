//! The answers of the Phase clients' route (`PHASE-CLIENTS.md` §2): snake_case, with the
//! fields the official CLI and SDKs read.

use coffer_store::phase_crypto::{self, InvalidCiphertext};
use coffer_store::{App, Environment, EnvironmentKeys, Token, TokenKeys, TokenKind};
use serde::Serialize;
use uuid::Uuid;

use crate::views::format_timestamp;

/// `GET /service/secrets/tokens/`: who the token is, and each environment's keys wrapped
/// to it.
#[derive(Serialize)]
pub struct IdentityDocument {
    wrapped_key_share: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<Uuid>,
    offline_enabled: bool,
    /// Coffer has no organisations.
    organisation: Option<()>,
    apps: Vec<AppKeys>,
}

/// An app with the keys of the environments the token may use, in index order.
#[derive(Serialize)]
pub struct AppKeys {
    id: Uuid,
    name: String,
    encryption: &'static str,
    environment_keys: Vec<EnvironmentKey>,
}

/// One environment's keys, wrapped to the token's public key.
#[derive(Serialize)]
pub struct EnvironmentKey {
    /// The environment's id: a token has one key entry per environment.
    id: Uuid,
    environment: EnvironmentSummary,
    identity_key: String,
    wrapped_seed: String,
    wrapped_salt: String,
    paths: Option<()>,
    user: Option<Uuid>,
    service_account: Option<Uuid>,
    created_at: String,
    updated_at: String,
    deleted_at: Option<()>,
}

/// An environment as the Phase clients read it.
#[derive(Serialize)]
pub struct EnvironmentSummary {
    id: Uuid,
    name: String,
    env_type: &'static str,
    index: u32,
    created_at: String,
    updated_at: String,
}

impl IdentityDocument {
    /// The document of `token`, for the apps and environments it may use.
    pub fn new(
        token: &Token,
        keys: &TokenKeys,
        apps: Vec<(App, Vec<(Environment, EnvironmentKeys)>)>,
    ) -> Result<Self, InvalidCiphertext> {
        let principal = match token.kind {
            TokenKind::User => (Some(token.id), None),
            TokenKind::Service => (None, Some(token.id)),
        };
        let apps = apps
            .into_iter()
            .map(|(app, envs)| {
                let environment_keys = envs
                    .iter()
                    .map(|(env, env_keys)| EnvironmentKey::new(token, keys, env, env_keys))
                    .collect::<Result<_, _>>()?;
                Ok(AppKeys {
                    id: app.id,
                    name: app.name,
                    encryption: "E2E",
                    environment_keys,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(IdentityDocument {
            wrapped_key_share: keys.wrapped_share.clone(),
            user_id: principal.0,
            account_id: principal.1,
            offline_enabled: false,
            organisation: None,
            apps,
        })
    }
}

impl EnvironmentKey {
    fn new(
        token: &Token,
        keys: &TokenKeys,
        env: &Environment,
        env_keys: &EnvironmentKeys,
    ) -> Result<Self, InvalidCiphertext> {
        Ok(EnvironmentKey {
            id: env.id,
            environment: EnvironmentSummary {
                id: env.id,
                name: env.name.clone(),
                env_type: env.env_type.as_str(),
                index: env.index,
                created_at: format_timestamp(env.created_at),
                updated_at: format_timestamp(env.updated_at),
            },
            identity_key: hex::encode(env_keys.key_pair().public),
            wrapped_seed: phase_crypto::seal_to(&env_keys.seed_hex(), &keys.public)?,
            wrapped_salt: phase_crypto::seal_to(&env_keys.salt_hex(), &keys.public)?,
            paths: None,
            user: (token.kind == TokenKind::User).then_some(token.id),
            service_account: (token.kind == TokenKind::Service).then_some(token.id),
            created_at: format_timestamp(token.created_at),
            updated_at: format_timestamp(token.created_at),
            deleted_at: None,
        })
    }
}
