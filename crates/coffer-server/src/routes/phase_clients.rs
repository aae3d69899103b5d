//! The route of the official Phase CLI and SDKs (`PHASE-CLIENTS.md`), under
//! `/service/secrets/`: a second wire format over the same store.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use coffer_store::phase_crypto;
use coffer_store::{
    normalize_path, Actor, Environment, ListPage, SecretAction, SecretFilter, SecretRead, Store,
    StoreError, Token, TokenKind,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{blocking, ok_json};
use crate::auth::Auth;
use crate::body::{read_body, typed};
use crate::codes::{quote, Code};
use crate::error::ApiError;
use crate::phase_requests::{SealedBatch, SealedCreate, SealedDelete, SealedEntry, SealedUpdate};
use crate::phase_views::{camel_case_keys, IdentityDocument, SealedSecret};
use crate::state::AppState;

/// Registers the routes (at the root: the clients hard-code the `/service/` prefix).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/service/secrets/tokens")
            .route(web::get().to(get_identity))
            .default_service(super::ops::only("GET")),
    );
    cfg.service(
        web::resource("/service/secrets")
            .route(web::get().to(list_secrets))
            .route(web::post().to(create_secrets))
            .route(web::put().to(update_secrets))
            .route(web::delete().to(delete_secrets))
            .default_service(super::ops::only("GET, POST, PUT, DELETE")),
    );
}

/// `GET /service/secrets/tokens/`: the token's identity, and the keys of every
/// environment it may use wrapped to it (in index order: the clients take the first
/// environment whose name matches).
async fn get_identity(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = Arc::clone(&state.store);
    let document = blocking(move || identity(&store, &auth.token)).await?;
    Ok(ok_json(&document))
}

fn identity(store: &Store, token: &Token) -> Result<IdentityDocument, ApiError> {
    let keys = store
        .token_keys(token.id)?
        .ok_or(ApiError::from(Code::TokenPredatesPhaseClients))?;
    let apps = match (token.kind, token.app_id) {
        (TokenKind::Service, Some(app_id)) => vec![store.get_app(app_id)?],
        _ => store.list_apps()?,
    };
    let mut scoped = Vec::with_capacity(apps.len());
    for app in apps {
        let mut envs = Vec::new();
        for env in store.list_environments(app.id)? {
            if token.kind == TokenKind::Service && !token.env_ids.contains(&env.id) {
                continue;
            }
            let env_keys = store.environment_keys(env.id)?;
            envs.push((env, env_keys));
        }
        envs.sort_by_key(|(env, _)| env.index);
        scoped.push((app, envs));
    }
    // Sealing fails only for a public key of small order, which no issued token has.
    IdentityDocument::new(token, &keys, scoped).map_err(|_| ApiError::internal())
}

/// `GET /service/secrets/`: the secrets of the `Environment` header's environment (at the
/// `Path` header's path when given, the key of `KeyDigest` when given), sealed to the
/// environment's key. Values are as stored: the clients resolve references themselves.
async fn list_secrets(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let env = environment_of(&auth, &state, &req, SecretAction::Read)?;
    let path = match header(&req, "path") {
        Some("") | None => None,
        Some(path) => {
            Some(normalize_path(path).map_err(|_| Code::InvalidPath.with(&[&quote(path)]))?)
        }
    };
    let digest = header(&req, "keydigest")
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase);
    let camel_case = header(&req, "x-use-camel-case") == Some("true");
    let store = Arc::clone(&state.store);
    let owner = auth.actor.override_owner();
    let env_id = env.id;
    let sealed = blocking(move || {
        let keys = store.environment_keys(env_id)?;
        let (pair, salt) = (keys.key_pair(), keys.salt_hex());
        let filter = SecretFilter {
            path,
            ..Default::default()
        };
        let listed = store.list_page(env_id, &filter, &ListPage::default(), owner)?;
        let mut sealed = Vec::new();
        for entry in listed.entries {
            let secret = store.open_listed(entry)?;
            if let Some(digest) = &digest {
                // Clients digest the key upper-cased (the CLI, the Node SDK) or as typed
                // (the Python SDK). Keys are stored upper-cased, so the forms this server
                // can recognise are that one and the key typed in lower case.
                let is_digest_of = |key: &str| phase_crypto::key_digest(key, &salt) == *digest;
                if !is_digest_of(&secret.key) && !is_digest_of(&secret.key.to_lowercase()) {
                    continue;
                }
            }
            // Sealing fails only for a public key of small order, which no seed gives.
            let view =
                SealedSecret::new(&secret, &pair, &salt).map_err(|_| ApiError::internal())?;
            sealed.push((secret.id, view));
        }
        Ok(sealed)
    })
    .await?;
    let (secret_ids, views): (Vec<Uuid>, Vec<SealedSecret>) = sealed.into_iter().unzip();
    state
        .read_audit
        .record(SecretRead {
            actor: auth.actor,
            app_id: env.app_id,
            env_id: env.id,
            secret_ids,
        })
        .await?;
    let body = serde_json::to_value(&views).map_err(|_| ApiError::internal())?;
    Ok(ok_json(&match camel_case {
        true => camel_case_keys(body),
        false => body,
    }))
}

/// `POST /service/secrets/`: creates a batch sealed to the environment's key, all of it
/// or none, with the uniqueness rule of every write. Answers 200 with no body, as Phase.
async fn create_secrets(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    write_sealed::<SealedCreate>(
        auth,
        state,
        req,
        payload,
        SecretAction::Create,
        |s, a, e, b| s.create_secrets(a, e, b).map(drop),
    )
    .await
}

/// `PUT /service/secrets/`: updates a batch, all of it or none.
async fn update_secrets(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    write_sealed::<SealedUpdate>(
        auth,
        state,
        req,
        payload,
        SecretAction::Update,
        |s, a, e, b| s.update_secrets(a, e, b).map(drop),
    )
    .await
}

/// The store call of a sealed batch write.
type SealedWrite<Opened> = fn(&Store, &Actor, Uuid, Vec<Opened>) -> Result<(), StoreError>;

/// A sealed batch write: access checked, the body read and opened under the
/// environment's key, then `write` with the store's rules. 200 with no body.
async fn write_sealed<T>(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    action: SecretAction,
    write: SealedWrite<T::Opened>,
) -> Result<HttpResponse, ApiError>
where
    T: SealedEntry + DeserializeOwned + Send + 'static,
{
    let env = environment_of(&auth, &state, &req, action)?;
    let body: SealedBatch<T> = typed(&read_body(payload, &state.body).await?)?;
    let store = Arc::clone(&state.store);
    blocking(move || {
        let batch = body.open(&store.environment_keys(env.id)?.key_pair())?;
        Ok(write(&store, &auth.actor, env.id, batch)?)
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}

/// `DELETE /service/secrets/`: deletes the listed secrets of the environment at once;
/// as Phase, ids that name none of its secrets are ignored and the answer is 200.
async fn delete_secrets(
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let env = environment_of(&auth, &state, &req, SecretAction::Delete)?;
    let body: SealedDelete = typed(&read_body(payload, &state.body).await?)?;
    let ids: Vec<Uuid> = body
        .secrets
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect();
    let store = Arc::clone(&state.store);
    blocking(move || {
        // Only the environment's own: a delete of the others would refuse the batch.
        let present: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| store.get_secret(env.id, *id).is_ok())
            .collect();
        if !present.is_empty() {
            store.delete_secrets(&auth.actor, env.id, &present)?;
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().finish())
}

/// The environment the `Environment` header names, if this token may `action` in it.
/// Malformed, unknown and out of scope all get the same answer: nothing tells which.
fn environment_of(
    auth: &Auth,
    state: &AppState,
    req: &HttpRequest,
    action: SecretAction,
) -> Result<Environment, ApiError> {
    let named = header(req, "environment").ok_or(Code::EnvironmentContextRequired)?;
    let out_of_scope = || ApiError::from(Code::EnvironmentOutOfScope);
    let id = Uuid::parse_str(named).map_err(|_| out_of_scope())?;
    let token = &auth.token;
    if token.kind == TokenKind::Service && !token.env_ids.contains(&id) {
        return Err(out_of_scope());
    }
    let env = state
        .store
        .get_environment(id)
        .map_err(|_| out_of_scope())?;
    if token.kind == TokenKind::Service {
        if token.app_id != Some(env.app_id) {
            return Err(out_of_scope());
        }
        if !token.permissions.allows(action) {
            return Err(Code::PermissionDenied.with(&[&action.as_str()]));
        }
    }
    Ok(env)
}

/// A request header as text (names are case-insensitive); `None` when absent or not
/// visible ASCII.
fn header<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name)?.to_str().ok()
}
