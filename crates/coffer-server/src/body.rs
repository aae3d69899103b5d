//! Request bodies: read within the size limit, then parsed by hand where API.md names
//! an exact message for each way an entry can be wrong. Messages never echo a value.

use std::time::Duration;

use actix_web::web;
use coffer_store::{limits, NewSecret, OverrideChange, OverrideInput, SecretType, SecretUpdate};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

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

/// The body as a JSON object.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::from(Code::BodyRequired));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::from(Code::BodyNotObject)),
        Err(_) => Err(ApiError::from(Code::InvalidJson)),
    }
}

/// The body as a typed request (apps, environments, tokens).
pub fn typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let object = json_object(bytes)?;
    serde_json::from_value(Value::Object(object))
        .map_err(|e| Code::InvalidBody.with(&[&quote(&e.to_string())]))
}

/// The `secrets` list of a body: present, non-empty (else `missing`), at most
/// [`limits::MAX_BATCH`] entries.
fn secrets_list(
    body: &Map<String, Value>,
    missing: impl FnOnce() -> ApiError,
) -> Result<&Vec<Value>, ApiError> {
    match body.get("secrets") {
        Some(Value::Array(list)) if !list.is_empty() => {
            if list.len() > limits::MAX_BATCH {
                return Err(Code::BatchTooLarge.with(&[&limits::MAX_BATCH]));
            }
            Ok(list)
        }
        _ => Err(missing()),
    }
}

fn entries(body: &Map<String, Value>) -> Result<Vec<&Map<String, Value>>, ApiError> {
    let missing = || ApiError::from(Code::SecretsRequired);
    secrets_list(body, missing)?
        .iter()
        .map(|entry| {
            entry
                .as_object()
                .ok_or_else(|| ApiError::from(Code::EntryNotObject))
        })
        .collect()
}

fn optional_string(
    entry: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    match entry.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Code::InvalidField.with(&[&field])),
    }
}

fn key_field(entry: &Map<String, Value>, required: bool) -> Result<Option<String>, ApiError> {
    let missing = || ApiError::from(Code::KeyRequired);
    match entry.get("key") {
        Some(Value::String(key)) if !key.trim().is_empty() => Ok(Some(key.clone())),
        None | Some(Value::Null) if !required => Ok(None),
        _ => Err(missing()),
    }
}

fn path_field(entry: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match entry.get("path") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(path)) => Ok(Some(path.clone())),
        Some(other) => Err(Code::InvalidPath.with(&[&quote(&other.to_string())])),
    }
}

fn type_field(entry: &Map<String, Value>) -> Result<Option<SecretType>, ApiError> {
    let invalid = |shown: &str| Code::InvalidType.with(&[&quote(shown)]);
    match entry.get("type") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => SecretType::parse(s).map(Some).ok_or_else(|| invalid(s)),
        Some(other) => Err(invalid(&other.to_string())),
    }
}

fn tags_field(entry: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    let invalid = || ApiError::from(Code::InvalidTags);
    match entry.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

/// An entry's personal override: `None` when absent, `Some(None)` for `null` (on an
/// update: remove it), else `{"value": string, "isActive"?: bool}` (`isActive` defaults
/// to `true`, as Phase's). Whether it is kept (User tokens only) is the store's call.
fn override_field(entry: &Map<String, Value>) -> Result<Option<Option<OverrideInput>>, ApiError> {
    let given = match entry.get("override") {
        None => return Ok(None),
        Some(Value::Null) => return Ok(Some(None)),
        Some(Value::Object(given)) => given,
        Some(_) => return Err(Code::InvalidOverride.into()),
    };
    let Some(Value::String(value)) = given.get("value") else {
        return Err(Code::InvalidOverrideValue.into());
    };
    let is_active = match given.get("isActive") {
        None => true,
        Some(Value::Bool(active)) => *active,
        Some(_) => return Err(Code::InvalidOverrideActive.into()),
    };
    Ok(Some(Some(OverrideInput {
        value: value.clone(),
        is_active,
    })))
}

/// `POST /v1/secrets/` body.
pub fn parse_create_batch(bytes: &[u8]) -> Result<Vec<NewSecret>, ApiError> {
    let body = json_object(bytes)?;
    entries(&body)?
        .into_iter()
        .map(|entry| {
            let key = key_field(entry, true)?.unwrap_or_default();
            let Some(Value::String(value)) = entry.get("value") else {
                return Err(ApiError::from(Code::ValueRequired));
            };
            Ok(NewSecret {
                key,
                value: value.clone(),
                comment: optional_string(entry, "comment")?.unwrap_or_default(),
                tags: tags_field(entry)?.unwrap_or_default(),
                path: path_field(entry)?.unwrap_or_default(),
                secret_type: type_field(entry)?.unwrap_or_default(),
                personal_override: override_field(entry)?.flatten(),
            })
        })
        .collect()
}

/// `PUT /v1/secrets/` body.
pub fn parse_update_batch(bytes: &[u8]) -> Result<Vec<SecretUpdate>, ApiError> {
    let body = json_object(bytes)?;
    entries(&body)?
        .into_iter()
        .map(|entry| {
            let id = match entry.get("id") {
                None | Some(Value::Null) => return Err(ApiError::from(Code::IdRequired)),
                Some(Value::String(s)) => {
                    Uuid::parse_str(s).map_err(|_| Code::SecretNotFound.with(&[&quote(s)]))?
                }
                Some(other) => return Err(Code::SecretNotFound.with(&[&quote(&other.to_string())])),
            };
            let expected_version = match entry.get("version") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| ApiError::from(Code::InvalidVersion))?,
                ),
            };
            Ok(SecretUpdate {
                id,
                key: key_field(entry, false)?,
                value: optional_string(entry, "value")?,
                comment: optional_string(entry, "comment")?,
                tags: tags_field(entry)?,
                path: path_field(entry)?,
                secret_type: type_field(entry)?,
                expected_version,
                personal_override: match override_field(entry)? {
                    None => OverrideChange::Keep,
                    Some(None) => OverrideChange::Remove,
                    Some(Some(input)) => OverrideChange::Set(input),
                },
            })
        })
        .collect()
}

/// `DELETE /v1/secrets/` body: a non-empty list of ids. An id that is not a UUID
/// cannot name a secret; it is reported as missing.
pub fn parse_delete_ids(bytes: &[u8]) -> Result<DeleteIds, ApiError> {
    let body = json_object(bytes)?;
    let not_list = || ApiError::from(Code::SecretIdsRequired);
    let list = secrets_list(&body, not_list)?;
    let mut ids = DeleteIds::default();
    for item in list {
        let text = item.as_str().ok_or_else(not_list)?;
        match Uuid::parse_str(text) {
            Ok(id) => ids.valid.push(id),
            Err(_) => ids.malformed.push(text.chars().take(64).collect()),
        }
    }
    Ok(ids)
}

/// The ids of a delete request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeleteIds {
    /// Well-formed ids.
    pub valid: Vec<Uuid>,
    /// Strings that are not UUIDs (and so name no secret).
    pub malformed: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        result.unwrap_err().message
    }

    #[test]
    fn body_shape_errors() {
        assert_eq!(
            message(parse_create_batch(b"")),
            "Request body is required."
        );
        assert_eq!(
            message(parse_create_batch(b"{")),
            "Request body must be valid JSON."
        );
        assert_eq!(
            message(parse_create_batch(b"[]")),
            "Request body must be a JSON object."
        );
        assert_eq!(
            message(parse_create_batch(b"{}")),
            "'secrets' must be a non-empty list."
        );
        assert_eq!(
            message(parse_create_batch(br#"{"secrets":[1]}"#)),
            "Each entry in 'secrets' must be an object."
        );
        assert_eq!(
            message(parse_create_batch(br#"{"secrets":[{"value":"v"}]}"#)),
            "Each secret requires a non-empty 'key'."
        );
        assert_eq!(
            message(parse_create_batch(
                br#"{"secrets":[{"key":"K","value":5}]}"#
            )),
            "Each secret requires a 'value' string."
        );
        assert_eq!(
            message(parse_create_batch(
                br#"{"secrets":[{"key":"K","value":"v","type":"x"}]}"#
            )),
            "Invalid 'type': 'x'. Must be one of ['config', 'sealed', 'secret']."
        );
    }

    #[test]
    fn deep_nesting_is_a_json_error_not_a_crash() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(
            message(parse_create_batch(deep.as_bytes())),
            "Request body must be valid JSON."
        );
    }

    #[test]
    fn override_shapes() {
        let create = |entry: &str| {
            parse_create_batch(
                format!(r#"{{"secrets":[{{"key":"K","value":"v",{entry}}}]}}"#).as_bytes(),
            )
        };
        assert_eq!(
            message(create(r#""override":"x""#)),
            "'override' must be an object or null."
        );
        assert_eq!(
            message(create(r#""override":{"isActive":true}"#)),
            "'override.value' must be a string."
        );
        assert_eq!(
            message(create(r#""override":{"value":"o","isActive":"yes"}"#)),
            "'override.isActive' must be a boolean."
        );
        let given = create(r#""override":{"value":"o"}"#).unwrap();
        assert_eq!(
            given[0].personal_override,
            Some(OverrideInput {
                value: "o".into(),
                is_active: true
            })
        );
        assert_eq!(
            create(r#""override":null"#).unwrap()[0].personal_override,
            None
        );
        let update = |entry: &str| {
            let id = Uuid::nil();
            parse_update_batch(format!(r#"{{"secrets":[{{"id":"{id}"{entry}}}]}}"#).as_bytes())
                .unwrap()
                .remove(0)
                .personal_override
        };
        assert_eq!(update(""), OverrideChange::Keep);
        assert_eq!(update(r#","override":null"#), OverrideChange::Remove);
        assert_eq!(
            update(r#","override":{"value":"o","isActive":false}"#),
            OverrideChange::Set(OverrideInput {
                value: "o".into(),
                is_active: false
            })
        );
    }

    #[test]
    fn update_needs_ids() {
        assert_eq!(
            message(parse_update_batch(br#"{"secrets":[{"value":"v"}]}"#)),
            "Secret ID not provided"
        );
    }
}
