//! `/apps`: User tokens only.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use coffer_store::{AppUpdate, NewApp};
use serde::Deserialize;
use uuid::Uuid;

use super::{blocking, created_json, ok_json};
use crate::auth::Auth;
use crate::body::{read_body, typed};
use crate::codes::{quote, Code};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::requests::{DisplayName, EnvName};
use crate::state::AppState;
use crate::views::{AppList, AppView};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/apps")
            .route(web::get().to(list_apps))
            .route(web::post().to(create_app))
            .default_service(super::ops::only("GET, POST")),
    )
    .service(
        web::resource("/apps/{id}")
            .route(web::get().to(get_app))
            .route(web::put().to(update_app))
            .route(web::delete().to(delete_app))
            .default_service(super::ops::only("GET, PUT, DELETE")),
    );
}

/// As Phase: unknown fields are ignored, a `null` description is empty.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateAppBody {
    #[schema(value_type = DisplayName)]
    name: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    description: Option<String>,
    /// Kept as JSON: each way the list can be wrong has Phase's own message.
    #[schema(value_type = Option<Vec<EnvName>>, min_items = 1)]
    environments: Option<serde_json::Value>,
}

/// Phase's checks of `environments`, in Phase's order: a list, not empty, non-blank
/// strings, no name twice (case-insensitive).
fn environment_names(list: Option<serde_json::Value>) -> Result<Option<Vec<String>>, ApiError> {
    use serde_json::Value;
    let items = match list {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Code::EnvironmentsNotList.into()),
    };
    if items.is_empty() {
        return Err(Code::EnvironmentsEmpty.into());
    }
    let names = items
        .into_iter()
        .map(|item| match item {
            Value::String(name) if !name.trim().is_empty() => Ok(name.trim().to_owned()),
            _ => Err(ApiError::from(Code::EnvironmentNameBlank)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    for name in &names {
        if !seen.insert(name.to_lowercase()) {
            return Err(Code::DuplicateEnvironmentName.with(&[&quote(name)]));
        }
    }
    Ok(Some(names))
}

/// As Phase: unknown fields are ignored, a `null` field is left as it is, and at least
/// one of the two is needed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateAppBody {
    #[schema(value_type = Option<DisplayName>)]
    name: Option<String>,
    #[schema(max_length = 10000)]
    description: Option<String>,
}

/// A present `description`, `null` counting as empty.
fn null_is_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_default()))
}

/// A path id that is not a UUID names no app.
fn app_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| Code::AppNotFound.with(&[&quote(raw)]))
}

#[utoipa::path(get, path = "/v1/apps", tag = "apps",
    responses((status = 200, description = "Every app", body = AppList)))]
pub(crate) async fn list_apps(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let store = Arc::clone(&state.store);
    let apps = blocking(move || Ok(store.list_apps()?)).await?;
    Ok(ok_json(&AppList {
        data: apps.iter().map(AppView::new).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/apps", tag = "apps", request_body = CreateAppBody,
    responses((status = 201, description = "The app with its environments", body = AppView),
        (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn create_app(
    auth: Auth,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let body: CreateAppBody = typed(&read_body(payload, &state.body).await?)?;
    let environments = environment_names(body.environments)?;
    let store = Arc::clone(&state.store);
    let new = NewApp {
        name: body.name,
        description: body.description.unwrap_or_default(),
        environments,
    };
    let (app, envs) = blocking(move || Ok(store.create_app(&auth.actor, new)?)).await?;
    Ok(created_json(&AppView::with_environments(&app, &envs)))
}

#[utoipa::path(get, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 200, description = "The app", body = AppView),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn get_app(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let (store, id) = (Arc::clone(&state.store), app_id(&id)?);
    let app = blocking(move || Ok(store.get_app(id)?)).await?;
    Ok(ok_json(&AppView::new(&app)))
}

#[utoipa::path(put, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    request_body = UpdateAppBody,
    responses((status = 200, description = "The app", body = AppView),
        (status = 404, description = "Not found", body = ErrorBody),
        (status = 409, description = "Name taken", body = ErrorBody)))]
pub(crate) async fn update_app(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let id = app_id(&id)?;
    let body: UpdateAppBody = typed(&read_body(payload, &state.body).await?)?;
    if body.name.is_none() && body.description.is_none() {
        return Err(Code::NothingToUpdate.into());
    }
    let store = Arc::clone(&state.store);
    let update = AppUpdate {
        name: body.name,
        description: body.description,
    };
    let app = blocking(move || Ok(store.update_app(&auth.actor, id, update)?)).await?;
    Ok(ok_json(&AppView::new(&app)))
}

#[utoipa::path(delete, path = "/v1/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its environments, secrets and tokens"),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn delete_app(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let id = app_id(&id)?;
    let store = Arc::clone(&state.store);
    blocking(move || Ok(store.delete_app(&auth.actor, id)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}
