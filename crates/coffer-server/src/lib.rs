//! # coffer-server
//!
//! The HTTP front of Coffer: the public REST API of the Phase secrets manager on
//! actix-web, over [`coffer_store`]. [`create_app`] builds the `App`, so the binary and
//! the tests serve exactly the same thing.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App};

pub mod audit_file;
pub mod audit_retention;
pub mod auth;
pub mod body;
pub mod codes;
mod cursor;
pub mod error;
pub mod idempotency;
mod listing;
pub mod metrics;
pub mod network;
pub mod openapi;
mod phase_requests;
mod phase_views;
pub mod rate_limit;
pub mod read_audit;
mod request_log;
pub mod requests;
pub mod routes;
pub mod state;
pub mod storage_recovery;
pub mod tls;
mod views;

pub use error::ApiError;
pub use state::{AppState, ServerConfig};

/// The prefixes the API is served under (every prefix a Phase deployment answers on).
pub const API_PREFIXES: [&str; 4] = ["/v1", "/public/v1", "/service/v1", "/service/public/v1"];

/// Builds the application: routes under every prefix, one error body for extractor
/// failures, unknown routes and methods, and a log line and metrics per request.
pub fn create_app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut app = App::new()
        .app_data(state)
        .app_data(
            web::PathConfig::default().error_handler(|_, _| ApiError::route_not_found().into()),
        )
        .configure(routes::ops::configure)
        .configure(routes::phase_clients::configure)
        .configure(openapi::configure);
    for prefix in API_PREFIXES {
        app = app.service(web::scope(prefix).configure(routes::configure_api));
    }
    // After the API, so an API request is never matched against the console's routes.
    app.configure(routes::console::configure)
        .default_service(web::to(routes::ops::not_found))
        .wrap_fn(|req, srv| {
            let started = Instant::now();
            let response = srv.call(req);
            async move {
                let response = response.await?;
                request_log::record(&response, started);
                Ok(response)
            }
        })
        .wrap(NormalizePath::new(TrailingSlash::Trim))
}
