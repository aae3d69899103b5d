//! `/secrets/{id}/history` and `/secrets/{id}/rollback`: a secret's versions, and a new
//! version with the content of an earlier one. Thin: parse, check access, call the store.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use coffer_store::{Rollback, SecretAction, SecretRead, TokenKind};
use uuid::Uuid;

use super::secrets::Target;
use super::{blocking, ok_json, QueryMap};
use crate::auth::Auth;
use crate::body::read_body;
use crate::codes::{quote, Code};
use crate::error::{ApiError, ErrorBody};
use crate::requests::{parse_rollback, RollbackRequest, SecretsQuery};
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
    let target = Target::resolve(&auth, &state, &query, SecretAction::Read)?;
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
    params(("id" = String, Path, description = "Secret id"), SecretsQuery),
    request_body = RollbackRequest,
    responses((status = 200, description = "The secret at its new version", body = SecretView),
        (status = 404, description = "App, environment, secret or version not found", body = ErrorBody),
        (status = 409, description = "Version conflict, or the key is taken at that path", body = ErrorBody)))]
pub(crate) async fn rollback_secret(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let target = Target::resolve(&auth, &state, &query, SecretAction::Read)?;
    auth.environment_for(
        &state,
        target.app_id,
        &target.env_name,
        SecretAction::Update,
    )?;
    let id = secret_id(&path)?;
    let to = parse_rollback(&read_body(payload, &state.body).await?)?;
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
        store
            .rollback_secret(&auth.actor, env, rollback)
            .map_err(gone)
    })
    .await?;
    Ok(ok_json(&SecretView::from(&rolled_back.secret)))
}
