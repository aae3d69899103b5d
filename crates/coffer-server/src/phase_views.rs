//! The answers of the Phase clients' route (`PHASE-CLIENTS.md` §2): snake_case, with the
//! fields the official CLI and SDKs read.

use coffer_store::phase_crypto::{self, InvalidCiphertext, KxKeyPair};
use coffer_store::{App, Environment, EnvironmentKeys, Secret, Token, TokenKeys, TokenKind};
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

/// A secret as `GET /service/secrets/` answers it: key, value, comment and override
/// sealed to the environment's public key, the key digest under its salt. Field names
/// are snake_case ([`camel_case_keys`] makes the camelCase answer).
#[derive(Serialize)]
pub struct SealedSecret {
    id: Uuid,
    environment: Uuid,
    folder: Option<()>,
    path: String,
    key: String,
    key_digest: String,
    value: String,
    version: u64,
    tags: Vec<String>,
    comment: String,
    #[serde(rename = "type")]
    secret_type: &'static str,
    #[serde(rename = "override")]
    personal_override: Option<SealedOverride>,
    lifecycle: &'static str,
    created_at: String,
    updated_at: String,
}

/// The calling User token's personal override, sealed like the value.
#[derive(Serialize)]
pub struct SealedOverride {
    id: Uuid,
    value: String,
    is_active: bool,
    created_at: String,
    updated_at: String,
}

impl SealedSecret {
    /// Seals `secret` to its environment's public key. The comment stays `""` when
    /// empty: the clients decrypt it only when it is not.
    pub fn new(
        secret: &Secret,
        env: &KxKeyPair,
        salt_hex: &str,
    ) -> Result<Self, InvalidCiphertext> {
        let seal = |text: &str| phase_crypto::seal_to(text, &env.public);
        let personal_override = match &secret.personal_override {
            Some(o) => Some(SealedOverride {
                id: o.id,
                value: seal(&o.value)?,
                is_active: o.is_active,
                created_at: format_timestamp(o.created_at),
                updated_at: format_timestamp(o.updated_at),
            }),
            None => None,
        };
        Ok(SealedSecret {
            id: secret.id,
            environment: secret.env_id,
            folder: None,
            path: secret.path.clone(),
            key: seal(&secret.key)?,
            key_digest: phase_crypto::key_digest(&secret.key, salt_hex),
            value: seal(&secret.value)?,
            version: secret.version,
            tags: secret.tags.clone(),
            comment: match secret.comment.is_empty() {
                true => String::new(),
                false => seal(&secret.comment)?,
            },
            secret_type: secret.secret_type.as_str(),
            personal_override,
            lifecycle: "static",
            created_at: format_timestamp(secret.created_at),
            updated_at: format_timestamp(secret.updated_at),
        })
    }
}

/// Renames every object key of `value` from snake_case to camelCase, as Phase's content
/// negotiation does for a request with `X-Use-Camel-Case: true`.
pub fn camel_case_keys(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, field)| (camel_case(&name), camel_case_keys(field)))
                .collect(),
        ),
        other => other,
    }
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match (c, upper) {
            ('_', _) => upper = true,
            (c, true) => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::camel_case_keys;
    use serde_json::json;

    #[test]
    fn camel_case_renames_nested_keys_and_leaves_values() {
        let snake = json!([{"key_digest": "a_b", "override": {"is_active": true}, "id": 1}]);
        assert_eq!(
            camel_case_keys(snake),
            json!([{"keyDigest": "a_b", "override": {"isActive": true}, "id": 1}])
        );
    }
}
