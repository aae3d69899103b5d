//! Routes, one module per resource. Each exposes `configure`.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::codes::Code;
use crate::error::ApiError;

pub mod apps;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod console;
pub mod environments;
pub mod ops;
pub mod phase_clients;
pub mod secrets;
pub mod tokens;
pub mod versions;

/// The query string as a map. Strict where the usual decoders are lenient: a `%` not
/// followed by two hex digits, or bytes that do not decode to UTF-8, are a 400 instead
/// of being read as something the client did not send.
#[derive(Debug)]
pub struct QueryMap(HashMap<String, String>);

impl std::ops::Deref for QueryMap {
    type Target = HashMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl actix_web::FromRequest for QueryMap {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let raw = req.query_string();
        let parsed = if strictly_encoded(raw) {
            web::Query::<HashMap<String, String>>::from_query(raw)
                .map(|q| QueryMap(q.into_inner()))
                .map_err(|_| Code::InvalidQuery.into())
        } else {
            Err(Code::InvalidQuery.into())
        };
        std::future::ready(parsed)
    }
}

/// Whether every `%` escape is complete and the decoded text is UTF-8.
fn strictly_encoded(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(byte) => decoded.push(byte),
                None => return false,
            }
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// Registers every `/v1` resource (under whichever prefix the caller chose).
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    secrets::configure(cfg);
    versions::configure(cfg);
    apps::configure(cfg);
    environments::configure(cfg);
    tokens::configure(cfg);
    audit::configure(cfg);
    changes::configure(cfg);
    backup::configure(cfg);
}

/// 200 with a JSON body.
pub fn ok_json(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// 201 with a JSON body.
pub fn created_json(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Created().json(body)
}

/// Runs blocking store work (writes wait for an fsync) off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(work).await?
}

#[cfg(test)]
mod tests {
    use super::strictly_encoded;

    #[test]
    fn only_complete_escapes_of_utf8_are_accepted() {
        for good in [
            "",
            "a=b",
            "path=%2Fdb&key=K",
            "k=%C3%A9",
            "k=a+b",
            "k=%e2%82%ac",
        ] {
            assert!(strictly_encoded(good), "{good}");
        }
        for bad in ["k=%", "k=%2", "k=%zz", "k=%C3", "k=%FF", "k=%C3%28", "%%"] {
            assert!(!strictly_encoded(bad), "{bad}");
        }
    }
}
