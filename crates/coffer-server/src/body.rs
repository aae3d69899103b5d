//! Request bodies: read within a size, a time and a concurrency bound, then decoded
//! straight into the request's own type (`crate::requests`), with the place of the
//! first error kept (`serde_path_to_error`) so that each way a body can be wrong gets
//! the exact message API.md names. Messages never echo a value.

use std::time::Duration;

use actix_web::web;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::codes::{quote, Code};
use crate::error::ApiError;

/// How request bodies are read. A body is read only after its request is
/// authenticated; these bounds stop a token holder from holding connections with
/// bodies sent slowly.
#[derive(Debug)]
pub struct BodyLimits {
    max_bytes: usize,
    deadline: Duration,
    readers: Semaphore,
}

impl BodyLimits {
    /// At most `max_bytes` per body, all of it within `deadline`, `readers` at once.
    pub fn new(max_bytes: usize, deadline: Duration, readers: usize) -> Self {
        BodyLimits {
            max_bytes,
            deadline,
            readers: Semaphore::new(readers),
        }
    }
}

/// Reads the whole body: 413 past the size limit, 408 past the deadline, 503 when
/// every reader is busy.
pub async fn read_body(payload: web::Payload, limits: &BodyLimits) -> Result<web::Bytes, ApiError> {
    let Ok(_reader) = limits.readers.try_acquire() else {
        return Err(ApiError::unavailable());
    };
    let read = payload.to_bytes_limited(limits.max_bytes);
    match actix_web::rt::time::timeout(limits.deadline, read).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(_))) => Err(ApiError::from(Code::BodyUnreadable)),
        Ok(Err(_)) => Err(ApiError::payload_too_large(limits.max_bytes)),
        Err(_) => Err(ApiError::body_timeout()),
    }
}

/// Where and how a typed decode failed: the path (`secrets[2].value`, `""` for the
/// whole body) and serde's reason. Request types turn it into their exact message.
#[derive(Debug)]
pub struct DecodeError {
    /// Path of the failing field, as `serde_path_to_error` writes it.
    pub path: String,
    /// serde's words (may quote input: never sent as is).
    pub reason: String,
    /// Whether the field was absent rather than wrong.
    pub missing: bool,
}

impl DecodeError {
    /// The last step of the path, without indices: `value` for `secrets[2].value`.
    pub fn field(&self) -> &str {
        let last = self.path.rsplit('.').next().unwrap_or_default();
        last.split('[').next().unwrap_or_default()
    }

    /// Whether the path is an entry of `secrets` itself (`secrets[3]`).
    pub fn is_entry(&self) -> bool {
        self.path.starts_with("secrets[") && !self.path.contains('.')
    }
}

/// Decodes a JSON object body into `T`. Bodies that are empty, not JSON or not an
/// object get their own messages; any other failure is handed to `refuse`, which
/// words it for the request type.
pub fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    refuse: impl FnOnce(DecodeError) -> ApiError,
) -> Result<T, ApiError> {
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(Code::BodyRequired.into());
    };
    // A syntax pass first (it allocates nothing): "not JSON" is told apart from "JSON of
    // the wrong shape" wherever the first error lies.
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(Code::InvalidJson.into());
    }
    if *first != b'{' {
        return Err(Code::BodyNotObject.into());
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|err| {
        let path = err.path().to_string();
        let reason = err.inner().to_string();
        let missing = reason.starts_with("missing field");
        refuse(DecodeError {
            path: if path == "." { String::new() } else { path },
            reason,
            missing,
        })
    })
}

/// Decodes a body whose every field error has one message (apps, environments, tokens):
/// `Invalid request body: <field>: <reason>.`, except that a required field left out or
/// `null` has Phase's words: `Missing required field: <field>`.
pub fn typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    decode(bytes, |err| {
        // serde names a field left out between backticks: "missing field `name` at …".
        let absent = match err.missing {
            true => err.reason.split('`').nth(1),
            // A top-level field sent as `null`.
            false => Some(err.path.as_str()).filter(|path| {
                !path.is_empty()
                    && !path.contains(['.', '['])
                    && err.reason.starts_with("invalid type: null")
            }),
        };
        if let Some(field) = absent {
            return Code::MissingField.with(&[&quote(field)]);
        }
        let shown = if err.path.is_empty() {
            err.reason
        } else {
            format!("{}: {}", err.path, err.reason)
        };
        Code::InvalidBody.with(&[&quote(&shown)])
    })
}
