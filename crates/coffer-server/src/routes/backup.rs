//! `/backup`: a consistent snapshot of the whole store, sealed under the master key,
//! User tokens only. The records are copied at one cut (writes pause for the copy
//! only); the answer is sealed chunk by chunk as the client reads it.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use coffer_store::BackupStream;

use super::blocking;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/backup")
            .route(web::get().to(take_backup))
            .default_service(super::ops::only("GET")),
    );
}

/// The sealed chunks as a body stream.
struct Chunks(BackupStream);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next().map(|chunk| Ok(Bytes::from(chunk))))
    }
}

#[utoipa::path(get, path = "/v1/backup", tag = "operations",
    responses((status = 200, description = "The sealed snapshot (see `coffer restore`)",
        body = String, content_type = "application/octet-stream")))]
pub(crate) async fn take_backup(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let store = state.store.clone();
    let (stream, stats) = blocking(move || Ok(store.backup(&auth.actor)?)).await?;
    tracing::info!(
        records = stats.records,
        writes_paused_us = stats.writes_paused.as_micros() as u64,
        "backup taken"
    );
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .streaming(Chunks(stream)))
}
