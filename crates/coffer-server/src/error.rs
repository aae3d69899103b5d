//! The one place where failures become HTTP statuses and `{"error", "code"}` bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use coffer_store::{limits, InternalError, StoreError};

use crate::codes::{quote, quote_list, Code};
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
    /// Stable machine code: one of the table's.
    #[schema(value_type = Code, inline)]
    pub code: &'a str,
}

impl ApiError {
    /// An answer with a code of the table and its message (see [`Code::with`]).
    pub(crate) fn from_code(code: Code, message: String) -> Self {
        ApiError {
            status: code.status(),
            code: code.name(),
            message,
            header: None,
        }
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.header = Some((name, value));
        self
    }

    /// 500; details belong in the log, never in the answer.
    pub fn internal() -> Self {
        Code::Internal.into()
    }

    /// 404 for unknown routes.
    pub fn route_not_found() -> Self {
        Code::NotFound.into()
    }

    /// 405 for methods a route does not serve; `allow` lists those it does.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        ApiError::from(Code::MethodNotAllowed).with_header("Allow", allow.to_string())
    }

    /// 413 for bodies over the limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Code::PayloadTooLarge.with(&[&limit])
    }

    /// 408 for a body not received within its deadline. The connection is closed:
    /// what is left of the body is not read.
    pub fn body_timeout() -> Self {
        Code::RequestTimeout.into()
    }

    /// 503 while the server cannot take the request now; a retry may succeed.
    pub fn unavailable() -> Self {
        ApiError::from(Code::ServiceUnavailable).with_header("Retry-After", "1".to_string())
    }

    /// 404 for a delete naming secrets that are not in the environment.
    pub fn secrets_not_found(ids: &[impl std::fmt::Display]) -> Self {
        Code::SecretsNotFound.with(&[&quote_list(ids)])
    }

    /// 429 with the seconds until the next request is allowed.
    pub fn throttled(seconds: u64) -> Self {
        Code::Throttled
            .with(&[&seconds])
            .with_header("Retry-After", seconds.to_string())
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
            E::AppNotFound(id) => Code::AppNotFound.with(&[&id]),
            E::EnvironmentNotFound { app_id, name } => {
                Code::EnvironmentNotFound.with(&[&quote(&name), &app_id])
            }
            E::EnvironmentIdNotFound(id) => Code::EnvironmentIdNotFound.with(&[&id]),
            E::SecretNotFound(id) => Code::SecretNotFound.with(&[&id]),
            E::SecretsNotFound(ids) => ApiError::secrets_not_found(&ids),
            E::TokenNotFound(id) => Code::TokenNotFound.with(&[&id]),
            E::VersionNotFound { id, version } => Code::VersionNotFound.with(&[&version, &id]),
            // Bringing a deleted secret back is a create.
            E::RestoreNotAllowed(_) => {
                Code::PermissionDenied.with(&[&coffer_store::SecretAction::Create.as_str()])
            }
            E::EmptyBatch => Code::SecretsRequired.into(),
            E::BatchTooLarge { max } => Code::BatchTooLarge.with(&[&max]),
            E::MissingKey => Code::KeyRequired.into(),
            E::InvalidKey(key) => Code::InvalidKey.with(&[&quote(&key)]),
            E::InvalidPath(path) => Code::InvalidPath.with(&[&quote(&path)]),
            E::TagTooLong(start) => Code::TagTooLong.with(&[&limits::MAX_TAG_CHARS, &start]),
            E::TooManyTags { max } => Code::TooManyTags.with(&[&max]),
            E::FieldTooLarge { field, limit } => Code::FieldTooLarge.with(&[&field, &limit]),
            E::SealedCannotBeUnsealed => Code::SealedSecret.into(),
            E::InvalidAppName(name) => Code::InvalidAppName.with(&[&quote(&name)]),
            E::DescriptionTooLong => {
                Code::DescriptionTooLong.with(&[&limits::MAX_APP_DESCRIPTION_CHARS])
            }
            E::InvalidEnvironmentName(name) => Code::InvalidEnvironmentName.with(&[&quote(&name)]),
            E::ServiceTokenScopeMissing => Code::ServiceTokenScopeRequired.into(),
            E::InvalidTokenName => Code::InvalidTokenName.into(),
            E::FeedCursorUnknown => Code::InvalidSince.into(),
            E::FeedCursorExpired { .. } => Code::CursorExpired.into(),
            E::DuplicateSecret => Code::DuplicateSecret.into(),
            E::VersionConflict { expected, current } => {
                Code::VersionConflict.with(&[&expected, &current])
            }
            E::AppNameTaken(name) => Code::AppExists.with(&[&quote(&name)]),
            E::EnvironmentNameTaken(name) => Code::EnvironmentExists.with(&[&quote(&name)]),
            // Passing (space is freed) or until a restart: the client may retry later.
            E::DiskFull | E::WritesStopped | E::Unavailable => ApiError::unavailable(),
            E::BackendLimit(limit) => Code::BackendBatchTooLarge.with(&[&limit]),
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
