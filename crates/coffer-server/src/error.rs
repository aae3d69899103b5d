//! The one place where failures become HTTP statuses and `{"error", "code"}` bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use coffer_store::{limits, InternalError, StoreError};
use serde::Serialize;

/// An error answer: status, stable machine code, exact human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case identifier.
    pub code: &'static str,
    /// Human message (API.md spells these out).
    pub message: String,
    /// A header the answer needs (`Retry-After` on 429, `Allow` on 405).
    pub header: Option<(&'static str, String)>,
}

/// The body of every unsuccessful answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Human message.
    pub error: &'a str,
    /// Stable machine code.
    pub code: &'a str,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            header: None,
        }
    }

    /// 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 403 with a code and message.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404 with a code and message.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 500; details belong in the log, never in the answer.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error.",
        )
    }

    /// 404 for unknown routes.
    pub fn route_not_found() -> Self {
        Self::not_found("not_found", "Not found.")
    }

    /// 405 for methods a route does not serve; `allow` lists those it does.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        ApiError {
            header: Some(("Allow", allow.to_string())),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed.",
            )
        }
    }

    /// 413 for bodies over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request body exceeds {limit} bytes."),
        )
    }

    /// 408 for a body not received within its deadline. The connection is closed:
    /// what is left of the body is not read.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "Request body not received in time.",
        )
    }

    /// 503 while the server cannot take the request now; a retry may succeed.
    pub fn unavailable() -> Self {
        ApiError {
            header: Some(("Retry-After", "1".to_string())),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Service unavailable.",
            )
        }
    }

    /// 404 for a delete naming secrets that are not in the environment.
    pub fn secrets_not_found(ids: &[impl std::fmt::Display]) -> Self {
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        Self::not_found(
            "secrets_not_found",
            format!(
                "Secret(s) not found in this environment: {}",
                list.join(", ")
            ),
        )
    }

    /// 429 with the seconds until the next request is allowed.
    pub fn throttled(seconds: u64) -> Self {
        ApiError {
            header: Some(("Retry-After", seconds.to_string())),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("Request was throttled. Expected available in {seconds} seconds."),
            )
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::REQUEST_TIMEOUT {
            // The rest of a late body is never read: the connection cannot go on.
            response.force_close();
        }
        if let Some((name, value)) = &self.header {
            response.insert_header((*name, value.as_str()));
        }
        response.json(ErrorBody {
            error: &self.message,
            code: self.code,
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        use StoreError as E;
        match err {
            E::AppNotFound(id) => {
                ApiError::not_found("app_not_found", format!("App with ID {id} not found"))
            }
            E::EnvironmentNotFound { app_id, name } => ApiError::not_found(
                "environment_not_found",
                format!("Environment '{name}' not found in App {app_id}"),
            ),
            E::EnvironmentIdNotFound(id) => ApiError::not_found(
                "environment_not_found",
                format!("Environment with ID {id} not found"),
            ),
            E::SecretNotFound(id) => {
                ApiError::not_found("secret_not_found", format!("Secret not found: {id}"))
            }
            E::SecretsNotFound(ids) => ApiError::secrets_not_found(&ids),
            E::TokenNotFound(id) => {
                ApiError::not_found("token_not_found", format!("Token with ID {id} not found"))
            }
            E::EmptyBatch => {
                ApiError::bad_request("secrets_required", "'secrets' must be a non-empty list.")
            }
            E::BatchTooLarge { max } => ApiError::bad_request(
                "batch_too_large",
                format!("'secrets' may hold at most {max} entries."),
            ),
            E::MissingKey => {
                ApiError::bad_request("key_required", "Each secret requires a non-empty 'key'.")
            }
            E::InvalidKey(key) => {
                ApiError::bad_request("invalid_key", format!("Invalid secret key: '{key}'"))
            }
            E::InvalidPath(path) => {
                ApiError::bad_request("invalid_path", format!("Invalid path: '{path}'"))
            }
            E::TagTooLong(start) => ApiError::bad_request(
                "tag_too_long",
                format!(
                    "Tag name exceeds {} characters: '{start}'…",
                    limits::MAX_TAG_CHARS
                ),
            ),
            E::EmptyTag => ApiError::bad_request("invalid_tag", "Tag names may not be empty."),
            E::TooManyTags { max } => ApiError::bad_request(
                "too_many_tags",
                format!("'tags' may hold at most {max} names."),
            ),
            E::FieldTooLarge { field, limit } => ApiError::bad_request(
                "field_too_large",
                format!("'{field}' exceeds {limit} bytes."),
            ),
            E::SealedCannotBeUnsealed => ApiError::bad_request(
                "sealed_secret",
                "Sealed secrets cannot be unsealed. Delete and recreate the secret instead.",
            ),
            E::InvalidAppName(name) => {
                ApiError::bad_request("invalid_app_name", format!("Invalid app name: '{name}'"))
            }
            E::InvalidEnvironmentName(name) => ApiError::bad_request(
                "invalid_environment_name",
                format!("Invalid environment name: '{name}'"),
            ),
            E::ServiceTokenScopeMissing => ApiError::bad_request(
                "service_token_scope_required",
                "A service token needs 'appId' and at least one environment.",
            ),
            E::InvalidTokenName => ApiError::bad_request(
                "invalid_token_name",
                "A token needs a 'name' of 1 to 64 characters.",
            ),
            E::DuplicateSecret => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_secret",
                "Duplicate secret found",
            ),
            E::VersionConflict { expected, current } => ApiError::new(
                StatusCode::CONFLICT,
                "version_conflict",
                format!("Secret version conflict: expected {expected}, current {current}"),
            ),
            E::AppNameTaken(name) => ApiError::new(
                StatusCode::CONFLICT,
                "app_exists",
                format!("An app named '{name}' already exists."),
            ),
            E::EnvironmentNameTaken(name) => ApiError::new(
                StatusCode::CONFLICT,
                "environment_exists",
                format!("An environment named '{name}' already exists in this app."),
            ),
            E::Internal(internal) => {
                log_internal(&internal);
                ApiError::internal()
            }
        }
    }
}

fn log_internal(err: &InternalError) {
    tracing::error!(error = %err, "store failure");
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task failed");
        ApiError::internal()
    }
}
