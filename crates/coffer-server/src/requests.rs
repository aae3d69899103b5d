//! The request types of the secrets routes, written once: the same structs decode the
//! body and query, and describe them in the OpenAPI document, with the limits the store
//! validates against. Each turns a decoding failure into the exact message API.md gives.

use coffer_store::{
    limits, ChainPositions, ListPage, NewSecret, OverrideChange, OverrideInput, SecretFilter,
    SecretType, SecretUpdate, UpsertSecret,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::body::{decode, DecodeError};
use crate::codes::{quote, Code};
use crate::cursor::ListScope;
use crate::error::ApiError;
use crate::routes::QueryMap;

/// `app_id` and `env`: the environment a secrets request works on.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SecretsQuery {
    /// App id.
    pub app_id: Uuid,
    /// Environment name (case-insensitive) or id.
    #[param(min_length = 1)]
    pub env: String,
}

impl SecretsQuery {
    /// From the query string: both present, `app_id` a UUID.
    pub fn from_query(query: &QueryMap) -> Result<Self, ApiError> {
        Ok(SecretsQuery {
            app_id: app_id(query)?,
            env: required(query, "env")?.to_owned(),
        })
    }
}

/// A required, non-empty query parameter.
pub fn required<'q>(query: &'q QueryMap, name: &str) -> Result<&'q str, ApiError> {
    query
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Code::MissingParameter.with(&[&name]))
}

/// The `app_id` query parameter as a UUID.
pub fn app_id(query: &QueryMap) -> Result<Uuid, ApiError> {
    Uuid::parse_str(required(query, "app_id")?).map_err(|_| Code::InvalidAppId.into())
}

/// `app_id` alone.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppQuery {
    /// App id.
    pub app_id: Uuid,
}

impl AppQuery {
    /// From the query string.
    pub fn from_query(query: &QueryMap) -> Result<Self, ApiError> {
        Ok(AppQuery {
            app_id: app_id(query)?,
        })
    }
}

/// Most secrets one page may ask for.
pub const MAX_PAGE: usize = 1000;

/// Longest `wait` of the changes feed, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// The changes feed's query: whose changes, from which cursor, how long to wait.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// App id.
    pub app_id: Uuid,
    /// Environment name (case-insensitive) or id; left out, every environment of the app
    /// the token may read.
    pub env: Option<String>,
    /// The `next` of an earlier answer; left out, the answer is empty and its `next` is
    /// the current position.
    #[param(value_type = Option<String>, pattern = "^([0-9]{1,19}|[0-9]{1,10}:[0-9]{1,19}(,[0-9]{1,10}:[0-9]{1,19})*)$")]
    pub since: Option<ChainPositions>,
    /// Seconds to hold the answer while nothing is newer than `since` (default 0).
    #[param(minimum = 0, maximum = 60)]
    pub wait: u64,
}

impl ChangesParams {
    /// From the query string: `app_id` a UUID, `since` a cursor (`chain:seq` pairs, or a
    /// positive decimal number), `wait` whole seconds within 0–[`MAX_WAIT_SECONDS`]. An empty `env` is
    /// the same as none.
    pub fn from_query(query: &QueryMap) -> Result<Self, ApiError> {
        let app_id = app_id(query)?;
        let since = query
            .get("since")
            .map(|text| match text.parse::<ChainPositions>() {
                Ok(since) if since != ChainPositions::every_chain_from(0) => Ok(since),
                _ => Err(Code::InvalidSince),
            })
            .transpose()?;
        let wait = query
            .get("wait")
            .map(|text| {
                decimal(text)
                    .filter(|n| *n <= MAX_WAIT_SECONDS)
                    .ok_or(Code::InvalidWait)
            })
            .transpose()?;
        Ok(ChangesParams {
            app_id,
            env: query.get("env").filter(|env| !env.is_empty()).cloned(),
            since,
            wait: wait.unwrap_or(0),
        })
    }
}

/// A number written in decimal digits only (no sign, no space), within `i64`.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok())
}

/// Filters, paging and resolution of a secrets listing.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFilter {
    /// Exact path (normalised); absent or empty means every path.
    pub path: Option<String>,
    /// Key, case-insensitive.
    pub key: Option<String>,
    /// Comma-separated tags; a secret matches if it has any.
    pub tags: Option<String>,
    /// `false`: values as stored; `true` (the default): references resolved.
    pub resolve: Option<bool>,
    /// Most secrets in the answer (absent: all); header `Next-Cursor` when more remain.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `Next-Cursor` of the previous page, with the same filters.
    pub cursor: Option<String>,
}

impl ListFilter {
    /// From the query string: `resolve` a boolean, `limit` within 1–[`MAX_PAGE`].
    pub fn from_query(query: &QueryMap) -> Result<Self, ApiError> {
        let param = |name: &str| query.get(name).cloned();
        let resolve = match query.get("resolve").map(String::as_str) {
            None | Some("true") => None,
            Some("false") => Some(false),
            Some(_) => return Err(Code::InvalidResolve.into()),
        };
        let limit = param("limit")
            .map(|text| {
                text.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE as u32).contains(n))
                    .ok_or_else(|| ApiError::from(Code::InvalidLimit))
            })
            .transpose()?;
        Ok(ListFilter {
            path: param("path"),
            key: param("key"),
            tags: param("tags"),
            resolve,
            limit,
            cursor: param("cursor"),
        })
    }

    /// Whether values are shown with references resolved.
    pub fn resolves(&self) -> bool {
        self.resolve.unwrap_or(true)
    }

    /// What a cursor of this listing is bound to.
    pub fn scope(&self, env_id: Uuid) -> ListScope<'_> {
        ListScope {
            env_id,
            filters: [
                self.path.as_deref(),
                self.key.as_deref(),
                self.tags.as_deref(),
            ],
        }
    }

    /// The store's filter.
    pub fn secret_filter(&self) -> SecretFilter {
        SecretFilter {
            path: self.path.clone(),
            key: self.key.clone().filter(|k| !k.is_empty()),
            tags: self
                .tags
                .as_deref()
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The store's page: after the cursor's position, at most `limit`.
    pub fn page(&self, env_id: Uuid) -> Result<ListPage, ApiError> {
        let scope = self.scope(env_id);
        Ok(ListPage {
            after: self
                .cursor
                .as_deref()
                .map(|c| {
                    scope
                        .position(c)
                        .ok_or_else(|| ApiError::from(Code::InvalidCursor))
                })
                .transpose()?,
            limit: self.limit.map(|n| n as usize),
        })
    }
}

/// A string schema with a pattern and length bounds (for names the derive cannot
/// describe as a newtype).
macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $min:expr, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let mut schema = ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some($min))
                    .max_length(Some($max));
                if let Some(pattern) = $pattern {
                    schema = schema.pattern(Some(pattern));
                }
                schema.into()
            }
        }

        impl ToSchema for $name {}
    };
}

string_schema!(
    /// A tag name, trimmed (one empty after trimming is skipped, as Phase does).
    Tag, None::<&str>, 0, limits::MAX_TAG_CHARS
);
string_schema!(
    /// An environment name.
    EnvName, Some(r"^[a-zA-Z0-9\-_]{1,64}$"), 1, limits::MAX_ENV_NAME_CHARS
);
string_schema!(
    /// An app or token name: no control characters, not starting with whitespace.
    DisplayName, Some(r"^[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"), 1, limits::MAX_APP_NAME_CHARS
);
string_schema!(
    /// An environment given by name or id.
    EnvRef, None::<&str>, 1, 64
);
string_schema!(
    /// A secret key as Phase takes it: no control characters, at most 256 bytes.
    SecretKey, Some(r"^[^\x00-\x1f\x7f-\x9f]*\S[^\x00-\x1f\x7f-\x9f]*$"), 1, limits::MAX_KEY_BYTES
);
string_schema!(
    /// A secret value.
    SecretValue, None::<&str>, 0, limits::MAX_VALUE_BYTES
);
string_schema!(
    /// A secret comment.
    SecretComment, None::<&str>, 0, limits::MAX_COMMENT_BYTES
);
string_schema!(
    /// A secret path.
    SecretPath, None::<&str>, 0, limits::MAX_PATH_BYTES
);

/// Token kinds.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TokenTypeName {
    /// Scoped to one app.
    Service,
    /// An administrator.
    User,
}

/// Secret permissions of a service token.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PermissionName {
    /// List and read.
    Read,
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

/// The type of a secret.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SecretTypeName {
    /// The default.
    Secret,
    /// Write-only; never changed back.
    Sealed,
    /// Not secret.
    Config,
}

/// A secret to create. Unknown fields are ignored, as Phase does.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewSecretInput {
    #[schema(value_type = SecretKey)]
    key: Option<String>,
    #[schema(value_type = SecretValue)]
    value: Option<String>,
    #[schema(value_type = Option<SecretComment>)]
    comment: Option<String>,
    #[schema(value_type = Option<Vec<Tag>>, max_items = 32)]
    tags: Option<Vec<String>>,
    /// Kept as JSON so that a wrong one is quoted as sent.
    #[schema(value_type = Option<SecretPath>)]
    path: Option<Value>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<SecretTypeName>, inline)]
    secret_type: Option<Value>,
    /// The calling User token's personal override (ignored for a Service token).
    #[serde(rename = "override", default, deserialize_with = "present")]
    #[schema(value_type = Option<OverrideEntry>, nullable)]
    personal_override: Option<Option<OverrideEntry>>,
    /// Ignored on a create (as Phase ignores unknown fields), refused with `upsert=true`.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    id: Option<Value>,
    /// As `id`.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    version: Option<Value>,
}

/// A personal override of a secret's value, kept for the calling User token alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideEntry {
    /// Counts against the 64 KiB value limit.
    #[schema(value_type = SecretValue)]
    value: String,
    /// Whether clients apply it (default `true`, as Phase's); an inactive one is kept.
    is_active: Option<bool>,
}

impl From<OverrideEntry> for OverrideInput {
    fn from(entry: OverrideEntry) -> Self {
        OverrideInput {
            value: entry.value,
            is_active: entry.is_active.unwrap_or(true),
        }
    }
}

/// A field given, even as `null` (`Some(None)`), apart from one left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A change to a secret; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SecretChangeInput {
    /// Kept as JSON: a missing id and one that names nothing have their own messages.
    #[schema(value_type = Uuid)]
    id: Option<Value>,
    #[schema(value_type = Option<SecretKey>)]
    key: Option<String>,
    #[schema(value_type = Option<SecretValue>)]
    value: Option<String>,
    #[schema(value_type = Option<SecretComment>)]
    comment: Option<String>,
    /// Absent keeps the tags; `null` or `[]` removes them all, as Phase does.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Tag>>, max_items = 32, nullable)]
    tags: Option<Option<Vec<String>>>,
    #[schema(value_type = Option<SecretPath>)]
    path: Option<Value>,
    #[serde(rename = "type")]
    #[schema(value_type = Option<SecretTypeName>, inline)]
    secret_type: Option<Value>,
    /// Check-and-set: apply only if this is the current version.
    #[schema(minimum = 1)]
    version: Option<u64>,
    /// The calling User token's personal override: absent keeps it, `null` removes it
    /// (ignored for a Service token).
    #[serde(rename = "override", default, deserialize_with = "present")]
    #[schema(value_type = Option<OverrideEntry>, nullable)]
    personal_override: Option<Option<OverrideEntry>>,
}

/// `POST /v1/secrets` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSecretsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    secrets: Vec<NewSecretInput>,
}

/// `PUT /v1/secrets` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateSecretsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    secrets: Vec<SecretChangeInput>,
}

/// `DELETE /v1/secrets` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteSecretsRequest {
    #[schema(value_type = Vec<Uuid>, min_items = 1, max_items = 1000)]
    secrets: Vec<String>,
}

/// The message of a failure inside an entry of `secrets`, for the field it names.
fn entry_error(err: &DecodeError, key_required: bool) -> ApiError {
    if err.path.is_empty() || err.path == "secrets" {
        return Code::SecretsRequired.into();
    }
    if err.is_entry() {
        return Code::EntryNotObject.into();
    }
    if let Some((_, within)) = err.path.split_once(".override") {
        return match within {
            ".isActive" => Code::InvalidOverrideActive.into(),
            ".value" => Code::InvalidOverrideValue.into(),
            "" if err.reason.contains("`value`") => Code::InvalidOverrideValue.into(),
            _ => Code::InvalidOverride.into(),
        };
    }
    match err.field() {
        "key" if key_required || !err.missing => Code::KeyRequired.into(),
        "value" => Code::ValueRequired.into(),
        "tags" => Code::InvalidTags.into(),
        "version" => Code::InvalidVersion.into(),
        field @ ("comment" | "key") => Code::InvalidField.with(&[&field]),
        _ => Code::InvalidBody.with(&[&quote(&err.path)]),
    }
}

/// `'secrets'` present, non-empty, at most [`limits::MAX_BATCH`].
fn batch_len(len: usize, empty: Code) -> Result<(), ApiError> {
    match len {
        0 => Err(empty.into()),
        n if n > limits::MAX_BATCH => Err(Code::BatchTooLarge.with(&[&limits::MAX_BATCH])),
        _ => Ok(()),
    }
}

fn path_of(path: Option<Value>) -> Result<Option<String>, ApiError> {
    match path {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(path)) => Ok(Some(path)),
        Some(other) => Err(Code::InvalidPath.with(&[&quote(&other.to_string())])),
    }
}

fn type_of(secret_type: Option<Value>) -> Result<Option<SecretType>, ApiError> {
    let invalid = |shown: &str| Code::InvalidType.with(&[&quote(shown)]);
    match secret_type {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => SecretType::parse(&s).map(Some).ok_or_else(|| invalid(&s)),
        Some(other) => Err(invalid(&other.to_string())),
    }
}

/// `POST /v1/secrets/` body.
pub fn parse_create_batch(bytes: &[u8]) -> Result<Vec<NewSecret>, ApiError> {
    let body: CreateSecretsRequest = decode(bytes, |err| entry_error(&err, true))?;
    batch_len(body.secrets.len(), Code::SecretsRequired)?;
    body.secrets
        .into_iter()
        .map(|entry| {
            let key = entry
                .key
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| ApiError::from(Code::KeyRequired))?;
            let value = entry
                .value
                .ok_or_else(|| ApiError::from(Code::ValueRequired))?;
            Ok(NewSecret {
                key,
                value,
                comment: entry.comment.unwrap_or_default(),
                tags: entry.tags.unwrap_or_default(),
                path: path_of(entry.path)?.unwrap_or_default(),
                secret_type: type_of(entry.secret_type)?.unwrap_or_default(),
                personal_override: entry.personal_override.flatten().map(Into::into),
            })
        })
        .collect()
}

/// `POST /v1/secrets/?upsert=true` body: entries as a create's, matched by (path, key);
/// what an entry leaves out keeps its stored value when the entry updates a secret.
pub fn parse_upsert_batch(bytes: &[u8]) -> Result<Vec<UpsertSecret>, ApiError> {
    let body: CreateSecretsRequest = decode(bytes, |err| entry_error(&err, true))?;
    batch_len(body.secrets.len(), Code::SecretsRequired)?;
    body.secrets
        .into_iter()
        .map(|entry| {
            for (field, given) in [("id", &entry.id), ("version", &entry.version)] {
                if given.is_some() {
                    return Err(Code::UpsertFieldNotAllowed.with(&[&field]));
                }
            }
            let key = entry
                .key
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| ApiError::from(Code::KeyRequired))?;
            let value = entry
                .value
                .ok_or_else(|| ApiError::from(Code::ValueRequired))?;
            Ok(UpsertSecret {
                key,
                value,
                comment: entry.comment,
                tags: entry.tags,
                path: path_of(entry.path)?.unwrap_or_default(),
                secret_type: type_of(entry.secret_type)?,
                personal_override: override_change(entry.personal_override),
            })
        })
        .collect()
}

/// Absent keeps the override, `null` removes it, an object sets it.
fn override_change(given: Option<Option<OverrideEntry>>) -> OverrideChange {
    match given {
        None => OverrideChange::Keep,
        Some(None) => OverrideChange::Remove,
        Some(Some(given)) => OverrideChange::Set(given.into()),
    }
}

/// The `Idempotency-Key` header of the secret writes (its rules are
/// `crate::idempotency`'s).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// A repeat with this key and the same request gets the first answer again (kept 24
    /// hours, per token) with `Idempotent-Replayed: true`, and writes nothing.
    #[param(
        rename = "Idempotency-Key",
        pattern = "^[!-~]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    pub idempotency_key: Option<String>,
}

/// `upsert` of `POST /v1/secrets/`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UpsertQuery {
    /// `true`: an entry whose (path, key) holds a live secret updates it instead of
    /// conflicting (needs both `create` and `update`).
    pub upsert: Option<bool>,
}

impl UpsertQuery {
    /// From the query string: absent, `true` or `false`.
    pub fn from_query(query: &QueryMap) -> Result<Self, ApiError> {
        let upsert = match query.get("upsert").map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(Code::InvalidUpsert.into()),
        };
        Ok(UpsertQuery { upsert })
    }

    /// Whether the batch is an upsert.
    pub fn is_upsert(&self) -> bool {
        self.upsert == Some(true)
    }
}

/// `POST /v1/secrets/{id}/rollback` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRequest {
    /// The version whose content the new version takes.
    #[schema(value_type = u64, minimum = 1)]
    version: Option<Value>,
    /// Check-and-set: the secret's current version (its deletion's, if deleted).
    #[schema(value_type = Option<u64>, minimum = 1)]
    expected_version: Option<Value>,
}

/// A rollback's versions, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackTo {
    /// The version rolled back to.
    pub version: u64,
    /// The version expected to be current.
    pub expected_version: Option<u64>,
}

/// A positive integer given as JSON.
fn positive(value: &Value) -> Option<u64> {
    value.as_u64().filter(|n| *n > 0)
}

/// `POST /v1/secrets/{id}/rollback` body: `version` a positive integer, and
/// `expectedVersion`, if given, too. Unknown fields are ignored.
pub fn parse_rollback(bytes: &[u8]) -> Result<RollbackTo, ApiError> {
    let body: RollbackRequest = decode(bytes, |_| Code::InvalidRollbackVersion.into())?;
    let version = body
        .version
        .as_ref()
        .and_then(positive)
        .ok_or_else(|| ApiError::from(Code::InvalidRollbackVersion))?;
    let expected_version = match &body.expected_version {
        None => None,
        Some(given) => {
            Some(positive(given).ok_or_else(|| ApiError::from(Code::InvalidExpectedVersion))?)
        }
    };
    Ok(RollbackTo {
        version,
        expected_version,
    })
}

/// `PUT /v1/secrets/` body.
pub fn parse_update_batch(bytes: &[u8]) -> Result<Vec<SecretUpdate>, ApiError> {
    let body: UpdateSecretsRequest = decode(bytes, |err| entry_error(&err, false))?;
    batch_len(body.secrets.len(), Code::SecretsRequired)?;
    body.secrets
        .into_iter()
        .map(|entry| {
            let id = match entry.id {
                None | Some(Value::Null) => return Err(Code::IdRequired.into()),
                Some(Value::String(s)) => {
                    Uuid::parse_str(&s).map_err(|_| Code::SecretNotFound.with(&[&quote(&s)]))?
                }
                Some(other) => return Err(Code::SecretNotFound.with(&[&quote(&other.to_string())])),
            };
            if entry.key.as_ref().is_some_and(|k| k.trim().is_empty()) {
                return Err(Code::KeyRequired.into());
            }
            Ok(SecretUpdate {
                id,
                key: entry.key,
                value: entry.value,
                comment: entry.comment,
                tags: entry.tags.map(Option::unwrap_or_default),
                path: path_of(entry.path)?,
                secret_type: type_of(entry.secret_type)?,
                expected_version: entry.version,
                personal_override: override_change(entry.personal_override),
            })
        })
        .collect()
}

/// The ids of a delete request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DeleteIds {
    /// Well-formed ids.
    pub valid: Vec<Uuid>,
    /// Strings that are not UUIDs (and so name no secret), as a message quotes them.
    pub malformed: Vec<String>,
}

/// `DELETE /v1/secrets/` body: a non-empty list of ids. An id that is not a UUID
/// cannot name a secret; it is reported as missing.
pub fn parse_delete_ids(bytes: &[u8]) -> Result<DeleteIds, ApiError> {
    let body: DeleteSecretsRequest = decode(bytes, |_| Code::SecretIdsRequired.into())?;
    batch_len(body.secrets.len(), Code::SecretIdsRequired)?;
    let mut ids = DeleteIds::default();
    for text in body.secrets {
        match Uuid::parse_str(&text) {
            Ok(id) => ids.valid.push(id),
            Err(_) => ids.malformed.push(quote(&text)),
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        result.unwrap_err().message
    }

    #[test]
    fn body_shape_errors() {
        for (body, expected) in [
            (&b""[..], "Request body is required."),
            (b"  ", "Request body is required."),
            (b"{", "Request body must be valid JSON."),
            (b"[]", "Request body must be a JSON object."),
            (b"5", "Request body must be a JSON object."),
            (b"{}", "'secrets' must be a non-empty list."),
            (br#"{"secrets":[]}"#, "'secrets' must be a non-empty list."),
            (br#"{"secrets":"x"}"#, "'secrets' must be a non-empty list."),
            (
                br#"{"secrets":[1]}"#,
                "Each entry in 'secrets' must be an object.",
            ),
            (
                br#"{"secrets":[{"value":"v"}]}"#,
                "Each secret requires a non-empty 'key'.",
            ),
            (
                br#"{"secrets":[{"key":" ","value":"v"}]}"#,
                "Each secret requires a non-empty 'key'.",
            ),
            (
                br#"{"secrets":[{"key":5,"value":"v"}]}"#,
                "Each secret requires a non-empty 'key'.",
            ),
            (
                br#"{"secrets":[{"key":"K"}]}"#,
                "Each secret requires a 'value' string.",
            ),
            (
                br#"{"secrets":[{"key":"K","value":5}]}"#,
                "Each secret requires a 'value' string.",
            ),
            (
                br#"{"secrets":[{"key":"K","value":"v","comment":5}]}"#,
                "'comment' must be a string.",
            ),
            (
                br#"{"secrets":[{"key":"K","value":"v","tags":[5]}]}"#,
                "'tags' must be a list of strings.",
            ),
            (
                br#"{"secrets":[{"key":"K","value":"v","path":5}]}"#,
                "Invalid path: '5'",
            ),
            (
                br#"{"secrets":[{"key":"K","value":"v","type":"x"}]}"#,
                "Invalid 'type': 'x'. Must be one of ['config', 'sealed', 'secret'].",
            ),
        ] {
            assert_eq!(
                message(parse_create_batch(body)),
                expected,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Unknown fields are ignored, as Phase does.
        let parsed = parse_create_batch(br#"{"secrets":[{"key":"K","value":"v","x":1}],"y":2}"#);
        assert_eq!(parsed.unwrap()[0].key, "K");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        // Deep but well-formed: JSON, not an object (and no stack is exhausted).
        let deep = "[".repeat(500_000) + &"]".repeat(500_000);
        assert_eq!(
            message(parse_create_batch(deep.as_bytes())),
            "Request body must be a JSON object."
        );
        let deep = format!(
            r#"{{"secrets":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(
            message(parse_create_batch(deep.as_bytes())),
            "Each entry in 'secrets' must be an object."
        );
        let truncated = "[".repeat(10_000);
        assert_eq!(
            message(parse_create_batch(truncated.as_bytes())),
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
        for (entry, expected) in [
            (r#""override":"x""#, "'override' must be an object or null."),
            (
                r#""override":{"isActive":true}"#,
                "'override.value' must be a string.",
            ),
            (
                r#""override":{"value":5}"#,
                "'override.value' must be a string.",
            ),
            (
                r#""override":{"value":"o","isActive":"yes"}"#,
                "'override.isActive' must be a boolean.",
            ),
        ] {
            assert_eq!(message(create(entry)), expected, "{entry}");
        }
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
    fn update_and_delete_errors() {
        for (body, expected) in [
            (
                &br#"{"secrets":[{"value":"v"}]}"#[..],
                "Secret ID not provided",
            ),
            (br#"{"secrets":[{"id":"nope"}]}"#, "Secret not found: nope"),
            (br#"{"secrets":[{"id":5}]}"#, "Secret not found: 5"),
            (
                br#"{"secrets":[{"id":"4b0e4b9e-3a43-4b6a-9b7e-1f1f1f1f1f1f","version":-1}]}"#,
                "'version' must be a non-negative integer.",
            ),
        ] {
            assert_eq!(message(parse_update_batch(body)), expected);
        }
        for body in [
            &br#"{"secrets":[5]}"#[..],
            br#"{"secrets":[]}"#,
            br#"{"secrets":"x"}"#,
        ] {
            assert_eq!(
                message(parse_delete_ids(body)),
                "'secrets' must be a non-empty list of secret IDs."
            );
        }
        let ids = parse_delete_ids(br#"{"secrets":["x"]}"#).unwrap();
        assert_eq!(ids.malformed, ["x"]);
    }
}
