//! One log line and one metrics observation per request: method, route, status,
//! latency and token id, never a token, a value or a body.

use std::time::Instant;

use actix_web::dev::ServiceResponse;
use actix_web::{web, HttpMessage};

use crate::auth::AuthenticatedTokenId;
use crate::state::AppState;

/// Records a finished request.
pub(crate) fn record<B>(res: &ServiceResponse<B>, started: Instant) {
    let elapsed = started.elapsed();
    let request = res.request();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let method = crate::metrics::method_label(request.method());
    let status = res.status().as_u16();
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        state.metrics.observe(method, &route, status, elapsed);
    }
    let token_id = request
        .extensions()
        .get::<AuthenticatedTokenId>()
        .map(|t| t.0.to_string());
    tracing::info!(
        target: "coffer::request",
        method,
        route = %route,
        status,
        latency_us = elapsed.as_micros() as u64,
        token_id = token_id.as_deref().unwrap_or("-"),
    );
}
