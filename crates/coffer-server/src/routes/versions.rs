//! `/secrets/{id}/history` and `/secrets/{id}/rollback`: a secret's versions, and a new
//! version with the content of an earlier one. Thin: parse, check access, call the store.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use coffer_store::{IdempotentRequest, Rollback, RolledBack, SecretAction, SecretRead, TokenKind};
use uuid::Uuid;

use super::secrets::Target;
use super::{blocking, ok_json, QueryMap};
use crate::auth::Auth;
use crate::codes::{quote, Code};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::{self, answer_to_keep, rendered, Route, Start};
use crate::requests::{parse_rollback, IdempotencyHeader, RollbackRequest, SecretsQuery};
use crate::state::AppState;
use crate::views::{SecretView, VersionList};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/secrets/{id}/history")
            .route(web::get().to(secret_history))
            .default_service(super::ops::only("GET")),
    );
    cfg.service(
        web::resource("/secrets/{id}/rollback")
            .route(web::post().to(rollback_secret))
            .default_service(super::ops::only("POST")),
    );
}

/// The secret id of the path: one that is not a UUID names no secret.
fn secret_id(path: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(path).map_err(|_| Code::SecretNotFound.with(&[&quote(path)]))
}

#[utoipa::path(get, path = "/v1/secrets/{id}/history", tag = "secrets",
    params(("id" = String, Path, description = "Secret id"), SecretsQuery),
    responses((status = 200, description = "Every version, newest first, a deleted secret's included",
            body = VersionList),
        (status = 404, description = "App, environment or secret not found", body = ErrorBody)))]
pub(crate) async fn secret_history(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = Target::resolve(&auth, &state, &query, SecretAction::Read).await?;
    let id = secret_id(&path)?;
    let (app_id, env_id) = (target.app_id, target.env.id);
    let store = Arc::clone(&state.store);
    let history = blocking(move || Ok(store.secret_history(env_id, id)?)).await?;
    // The versions hold values: reading them is a read of the secret.
    state
        .read_audit
        .record(SecretRead {
            actor: auth.actor,
            app_id,
            env_id,
            secret_ids: vec![id],
        })
        .await?;
    Ok(ok_json(&VersionList::newest_first(&history)))
}

#[utoipa::path(post, path = "/v1/secrets/{id}/rollback", tag = "secrets",
    params(("id" = String, Path, description = "Secret id"), SecretsQuery, IdempotencyHeader),
    request_body = RollbackRequest,
    responses((status = 200, description = "The secret at its new version", body = SecretView),
        (status = 404, description = "App, environment, secret or version not found", body = ErrorBody),
        (status = 409, description = "Version conflict, the key taken at that path, or a request with this Idempotency-Key in progress", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with a different request", body = ErrorBody)))]
pub(crate) async fn rollback_secret(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryMap,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let route = Route {
        resource: "secrets/{id}/rollback",
        id: Some(path.as_str()),
    };
    let begun = match idempotency::begin(&req, &auth, &state, &query, route, payload).await? {
        Start::Replay(kept) => return Ok(kept),
        Start::Run(begun) => begun,
    };
    let request = begun.keeping.request();
    let answer = rollback(auth, &state, &query, &path, &begun.body, request).await;
    begun.keeping.finish(answer).await
}

/// The answer of a rollback: the secret at its new version.
fn render_rolled_back(rolled_back: &RolledBack) -> (u16, Vec<u8>) {
    let body =
        serde_json::to_vec(&SecretView::from(&rolled_back.secret)).expect("a secret encodes");
    (200, body)
}

async fn rollback(
    auth: Auth,
    state: &web::Data<AppState>,
    query: &QueryMap,
    path: &str,
    body: &[u8],
    request: Option<IdempotentRequest>,
) -> Result<HttpResponse, ApiError> {
    let target = Target::resolve(&auth, state, query, SecretAction::Read).await?;
    auth.environment_for(state, target.app_id, &target.env_name, SecretAction::Update)
        .await?;
    let id = secret_id(path)?;
    let to = parse_rollback(body)?;
    let rollback = Rollback {
        id,
        version: to.version,
        expected_version: to.expected_version,
        // Whether it is a restore is known only inside the store's transaction.
        may_restore: match auth.token.kind {
            TokenKind::User => true,
            TokenKind::Service => auth.token.permissions.allows(SecretAction::Create),
        },
    };
    let (env, gone) = (target.env.id, target.gone());
    let store = Arc::clone(&state.store);
    let rolled_back = blocking(move || {
        let keep = answer_to_keep(request.as_ref(), &render_rolled_back);
        store
            .rollback_secret_keeping(&auth.actor, env, rollback, keep.as_ref())
            .map_err(gone)
    })
    .await?;
    Ok(rendered(render_rolled_back(&rolled_back)))
}
