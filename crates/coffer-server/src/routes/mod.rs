//! Routes, one module per resource. Each exposes `configure`.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;

pub mod apps;
pub mod audit;
pub mod environments;
pub mod ops;
pub mod secrets;
pub mod tokens;

/// The query string as a map; malformed encodings are a 400 through `QueryConfig`.
pub type QueryMap = web::Query<HashMap<String, String>>;

/// Registers every `/v1` resource (under whichever prefix the caller chose).
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    secrets::configure(cfg);
    apps::configure(cfg);
    environments::configure(cfg);
    tokens::configure(cfg);
    audit::configure(cfg);
}

/// A required query parameter.
pub fn required<'q>(query: &'q HashMap<String, String>, name: &str) -> Result<&'q str, ApiError> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_parameter",
                format!("Missing required query parameter: {name}"),
            )
        })
}

/// The `app_id` query parameter as a UUID.
pub fn app_id_param(query: &HashMap<String, String>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(required(query, "app_id")?)
        .map_err(|_| ApiError::bad_request("invalid_app_id", "Invalid app_id"))
}

/// 200 with a JSON body.
pub fn ok_json(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// 201 with a JSON body.
pub fn created_json(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Created().json(body)
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize)]
pub struct DataList<T: Serialize> {
    /// The items.
    pub data: Vec<T>,
}

/// Runs blocking store work (writes wait for an fsync) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(work).await?
}
