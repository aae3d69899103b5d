//! `/health`, `/metrics`, and the answers for unknown routes and methods.

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::read_audit::Serving;
use crate::state::AppState;
use crate::views::HealthView;

/// Registers the routes (at the root, without a prefix).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/health")
            .route(web::get().to(health))
            .default_service(only("GET")),
    )
    .service(
        web::resource("/metrics")
            .route(web::get().to(metrics))
            .default_service(only("GET")),
    );
}

#[utoipa::path(get, path = "/health", tag = "operations", security(()),
    responses((status = 200, description = "The server is up (`ok`), or answers reads only while its disk is full (`degraded`)", body = HealthView),
        (status = 503, description = "The storage cannot be reached (an etcd cluster without quorum), reads can no longer be audited, or writes stopped after a failed flush", body = HealthView)))]
pub(crate) async fn health(state: web::Data<AppState>) -> HttpResponse {
    let serving = match state.store.storage_reachable() {
        true => state.read_audit.serving(),
        false => Serving::Unavailable,
    };
    let (mut response, status) = match serving {
        Serving::Ok => (HttpResponse::Ok(), "ok"),
        Serving::Degraded => (HttpResponse::Ok(), "degraded"),
        Serving::Unavailable => (HttpResponse::ServiceUnavailable(), "unavailable"),
    };
    response.json(HealthView {
        status,
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // The store's counts read the backend: off the worker.
    let rendered = web::block(move || state.metrics.render(&state.store)).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(rendered))
}

/// The fallback of a resource: 405 naming the methods it serves.
pub fn only(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::method_not_allowed(allow)) })
}

/// 404 for an unknown route.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::route_not_found())
}
