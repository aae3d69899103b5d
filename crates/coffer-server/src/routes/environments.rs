//! `/environments`: User tokens only.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use uuid::Uuid;

use super::{blocking, created_json, ok_json, QueryMap};
use crate::auth::Auth;
use crate::body::{read_body, typed};
use crate::codes::{quote, Code};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::requests::{AppQuery, EnvName};
use crate::state::AppState;
use crate::views::{EnvironmentList, EnvironmentView};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/environments")
            .route(web::get().to(list_environments))
            .route(web::post().to(create_environment))
            .default_service(super::ops::only("GET, POST")),
    )
    .service(
        web::resource("/environments/{id}")
            .route(web::get().to(get_environment))
            .route(web::put().to(rename_environment))
            .route(web::delete().to(delete_environment))
            .default_service(super::ops::only("GET, PUT, DELETE")),
    );
}

/// As Phase: unknown fields are ignored.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct EnvironmentBody {
    #[schema(value_type = EnvName)]
    name: String,
}

/// A path id that is not a UUID names no environment.
fn env_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| Code::EnvironmentIdNotFound.with(&[&quote(raw)]))
}

#[utoipa::path(get, path = "/v1/environments", tag = "environments", params(AppQuery),
    responses((status = 200, description = "The app's environments by index", body = EnvironmentList),
        (status = 404, description = "App not found", body = ErrorBody)))]
pub(crate) async fn list_environments(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let AppQuery { app_id } = AppQuery::from_query(&query)?;
    let store = Arc::clone(&state.store);
    let envs = blocking(move || {
        store.get_app(app_id)?;
        Ok(store.list_environments(app_id)?)
    })
    .await?;
    Ok(ok_json(&EnvironmentList {
        data: envs.iter().map(EnvironmentView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/environments", tag = "environments", params(AppQuery),
    request_body = EnvironmentBody,
    responses((status = 201, description = "The environment", body = EnvironmentView),
        (status = 404, description = "App not found", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn create_environment(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let AppQuery { app_id } = AppQuery::from_query(&query)?;
    let body: EnvironmentBody = typed(&read_body(payload, &state.body).await?)?;
    let store = Arc::clone(&state.store);
    let env =
        blocking(move || Ok(store.create_environment(&auth.actor, app_id, &body.name)?)).await?;
    Ok(created_json(&EnvironmentView::from(&env)))
}

#[utoipa::path(get, path = "/v1/environments/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 200, description = "The environment", body = EnvironmentView),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_environment(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let (store, id) = (Arc::clone(&state.store), env_id(&id)?);
    let env = blocking(move || Ok(store.get_environment(id)?)).await?;
    Ok(ok_json(&EnvironmentView::from(&env)))
}

#[utoipa::path(put, path = "/v1/environments/{id}", tag = "environments", params(("id" = String, Path)),
    request_body = EnvironmentBody,
    responses((status = 200, description = "The environment", body = EnvironmentView),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn rename_environment(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let id = env_id(&id)?;
    let body: EnvironmentBody = typed(&read_body(payload, &state.body).await?)?;
    let store = Arc::clone(&state.store);
    let env = blocking(move || Ok(store.rename_environment(&auth.actor, id, &body.name)?)).await?;
    Ok(ok_json(&EnvironmentView::from(&env)))
}

#[utoipa::path(delete, path = "/v1/environments/{id}", tag = "environments", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its secrets"),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn delete_environment(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let id = env_id(&id)?;
    let store = Arc::clone(&state.store);
    blocking(move || Ok(store.delete_environment(&auth.actor, id)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}
