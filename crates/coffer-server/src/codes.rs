//! The one table of error codes: each code written once, with its status and its
//! message. Every error answer of the server is built from it (`Code::X.into()`, or
//! `Code::X.with(&[..])` for a message with arguments), and a test walks it.

use std::fmt::Display;

use actix_web::http::StatusCode;

use crate::error::ApiError;

macro_rules! error_codes {
    ($($variant:ident = ($status:ident, $code:literal, $message:literal);)*) => {
        /// An error code of the API (the `code` of an error body).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $(
                #[doc = $message]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The HTTP status of answers with this code.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)*
                }
            }

            /// The stable snake_case name sent as `code`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// The message, with `{}` where [`Code::with`] puts its arguments.
            pub fn template(self) -> &'static str {
                match self {
                    $(Code::$variant => $message,)*
                }
            }
        }
    };
}

error_codes! {
    // Authentication and access (all 403, API.md "Authentication").
    NotAuthenticated = (FORBIDDEN, "not_authenticated", "Authentication credentials were not provided.");
    InvalidToken = (FORBIDDEN, "invalid_token", "Invalid token");
    TokenInvalid = (FORBIDDEN, "token_invalid", "Token expired or deleted");
    AppOutOfScope = (FORBIDDEN, "app_out_of_scope", "Service token cannot access this app");
    EnvironmentOutOfScope = (FORBIDDEN, "environment_out_of_scope", "Service token cannot access this environment");
    PermissionDenied = (FORBIDDEN, "permission_denied", "You don't have permission to {} secrets in this environment.");
    UserTokenRequired = (FORBIDDEN, "user_token_required", "This action requires a User token.");
    EnvironmentContextRequired = (FORBIDDEN, "environment_context_required", "Environment context required.");
    TokenPredatesPhaseClients = (FORBIDDEN, "token_predates_phase_clients", "This token was created before Phase clients were supported; create a new one.");
    IpNotAllowed = (FORBIDDEN, "ip_not_allowed", "Access denied: a network access policy restricts access from your IP address.");
    Throttled = (TOO_MANY_REQUESTS, "throttled", "Request was throttled. Expected available in {} seconds.");
    // Routes.
    NotFound = (NOT_FOUND, "not_found", "Not found.");
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed.");
    // Query parameters.
    MissingParameter = (BAD_REQUEST, "missing_parameter", "Missing required query parameter: {}");
    InvalidAppId = (BAD_REQUEST, "invalid_app_id", "Invalid app_id");
    InvalidQuery = (BAD_REQUEST, "invalid_query", "Query string is malformed.");
    InvalidParameter = (BAD_REQUEST, "invalid_parameter", "Invalid {}");
    LimitOutOfRange = (BAD_REQUEST, "limit_out_of_range", "'limit' must be between 1 and {}.");
    InvalidLimit = (BAD_REQUEST, "invalid_limit", "Invalid 'limit'");
    InvalidCursor = (BAD_REQUEST, "invalid_cursor", "Invalid 'cursor'");
    InvalidResolve = (BAD_REQUEST, "invalid_resolve", "Invalid 'resolve'");
    InvalidSince = (BAD_REQUEST, "invalid_since", "Invalid 'since'");
    InvalidWait = (BAD_REQUEST, "invalid_wait", "Invalid 'wait'");
    CursorExpired = (GONE, "cursor_expired", "The cursor points before the oldest retained entry.");
    // Request bodies.
    BodyRequired = (BAD_REQUEST, "body_required", "Request body is required.");
    InvalidJson = (BAD_REQUEST, "invalid_json", "Request body must be valid JSON.");
    BodyNotObject = (BAD_REQUEST, "body_not_object", "Request body must be a JSON object.");
    InvalidBody = (BAD_REQUEST, "invalid_body", "Invalid request body: {}.");
    BodyUnreadable = (BAD_REQUEST, "body_unreadable", "Request body could not be read.");
    PayloadTooLarge = (PAYLOAD_TOO_LARGE, "payload_too_large", "Request body exceeds {} bytes.");
    RequestTimeout = (REQUEST_TIMEOUT, "request_timeout", "Request body not received in time.");
    // Secrets bodies.
    SecretsRequired = (BAD_REQUEST, "secrets_required", "'secrets' must be a non-empty list.");
    EntryNotObject = (BAD_REQUEST, "entry_not_object", "Each entry in 'secrets' must be an object.");
    BatchTooLarge = (BAD_REQUEST, "batch_too_large", "'secrets' may hold at most {} entries.");
    BackendBatchTooLarge = (PAYLOAD_TOO_LARGE, "backend_batch_too_large", "Batch too large for the storage backend: {}.");
    KeyRequired = (BAD_REQUEST, "key_required", "Each secret requires a non-empty 'key'.");
    InvalidKey = (BAD_REQUEST, "invalid_key", "Invalid secret key: '{}'");
    ValueRequired = (BAD_REQUEST, "value_required", "Each secret requires a 'value' string.");
    InvalidField = (BAD_REQUEST, "invalid_field", "'{}' must be a string.");
    InvalidType = (BAD_REQUEST, "invalid_type", "Invalid 'type': '{}'. Must be one of ['config', 'sealed', 'secret'].");
    InvalidPath = (BAD_REQUEST, "invalid_path", "Invalid path: '{}'");
    InvalidCiphertext = (BAD_REQUEST, "invalid_ciphertext", "Invalid ciphertext format");
    InvalidTags = (BAD_REQUEST, "invalid_tags", "'tags' must be a list of strings.");
    TagTooLong = (BAD_REQUEST, "tag_too_long", "Tag name exceeds {} characters: '{}'…");
    TooManyTags = (BAD_REQUEST, "too_many_tags", "'tags' may hold at most {} names.");
    FieldTooLarge = (BAD_REQUEST, "field_too_large", "'{}' exceeds {} bytes.");
    IdRequired = (BAD_REQUEST, "id_required", "Secret ID not provided");
    InvalidVersion = (BAD_REQUEST, "invalid_version", "'version' must be a non-negative integer.");
    SecretIdsRequired = (BAD_REQUEST, "secret_ids_required", "'secrets' must be a non-empty list of secret IDs.");
    InvalidOverride = (BAD_REQUEST, "invalid_override", "'override' must be an object or null.");
    InvalidOverrideValue = (BAD_REQUEST, "invalid_override_value", "'override.value' must be a string.");
    InvalidOverrideActive = (BAD_REQUEST, "invalid_override_active", "'override.isActive' must be a boolean.");
    SealedSecret = (BAD_REQUEST, "sealed_secret", "Sealed secrets cannot be unsealed. Delete and recreate the secret instead.");
    UpsertFieldNotAllowed = (BAD_REQUEST, "upsert_field_not_allowed", "'{}' cannot be given with upsert=true: an entry is matched by its path and key.");
    InvalidUpsert = (BAD_REQUEST, "invalid_upsert", "Invalid 'upsert'");
    // Rollback bodies.
    InvalidRollbackVersion = (BAD_REQUEST, "invalid_rollback_version", "'version' must be a positive integer.");
    InvalidExpectedVersion = (BAD_REQUEST, "invalid_expected_version", "'expectedVersion' must be a positive integer.");
    // Apps, environments, tokens bodies.
    InvalidAppName = (BAD_REQUEST, "invalid_app_name", "Invalid app name: '{}'");
    EnvironmentsNotList = (BAD_REQUEST, "environments_not_list", "'environments' must be a list of environment names.");
    EnvironmentsEmpty = (BAD_REQUEST, "environments_empty", "'environments' must not be empty.");
    EnvironmentNameBlank = (BAD_REQUEST, "environment_name_blank", "Each environment name must be a non-empty string.");
    DuplicateEnvironmentName = (BAD_REQUEST, "duplicate_environment_name", "Duplicate environment name: '{}'.");
    NothingToUpdate = (BAD_REQUEST, "nothing_to_update", "At least one of 'name' or 'description' must be provided.");
    InvalidEnvironmentName = (BAD_REQUEST, "invalid_environment_name", "Invalid environment name: '{}'");
    DescriptionTooLong = (BAD_REQUEST, "description_too_long", "'description' cannot exceed {} characters.");
    MissingField = (BAD_REQUEST, "missing_field", "Missing required field: {}");
    ServiceTokenScopeRequired = (BAD_REQUEST, "service_token_scope_required", "A service token needs 'appId' and at least one environment.");
    InvalidTokenName = (BAD_REQUEST, "invalid_token_name", "A token needs a 'name' of 1 to 64 characters.");
    InvalidTokenType = (BAD_REQUEST, "invalid_token_type", "Invalid token type: '{}'. Must be one of ['service', 'user'].");
    UserTokenUnscoped = (BAD_REQUEST, "user_token_unscoped", "A user token takes no 'appId', 'environments' or 'permissions'.");
    InvalidPermission = (BAD_REQUEST, "invalid_permission", "Invalid permission: '{}'. Must be one of ['create', 'delete', 'read', 'update'].");
    InvalidExpiry = (BAD_REQUEST, "invalid_expiry", "Invalid 'expiresAt': '{}'. Use an RFC 3339 time.");
    InvalidCidr = (BAD_REQUEST, "invalid_cidr", "Invalid IP or CIDR: '{}'");
    // Idempotent retries.
    InvalidIdempotencyKey = (BAD_REQUEST, "invalid_idempotency_key", "Invalid Idempotency-Key");
    IdempotencyKeyReused = (UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Idempotency-Key reused with a different request.");
    IdempotencyInProgress = (CONFLICT, "idempotency_in_progress", "A request with this Idempotency-Key is in progress.");
    // Things that do not exist (or are out of reach).
    AppNotFound = (NOT_FOUND, "app_not_found", "App with ID {} not found");
    EnvironmentNotFound = (NOT_FOUND, "environment_not_found", "Environment '{}' not found in App {}");
    EnvironmentIdNotFound = (NOT_FOUND, "environment_id_not_found", "Environment with ID {} not found");
    SecretNotFound = (NOT_FOUND, "secret_not_found", "Secret not found: {}");
    SecretsNotFound = (NOT_FOUND, "secrets_not_found", "Secret(s) not found in this environment: {}");
    TokenNotFound = (NOT_FOUND, "token_not_found", "Token with ID {} not found");
    VersionNotFound = (NOT_FOUND, "version_not_found", "Version {} of secret {} not found");
    // Conflicts.
    DuplicateSecret = (CONFLICT, "duplicate_secret", "Duplicate secret found");
    VersionConflict = (CONFLICT, "version_conflict", "Secret version conflict: expected {}, current {}");
    AppExists = (CONFLICT, "app_exists", "An app named '{}' already exists.");
    EnvironmentExists = (CONFLICT, "environment_exists", "An environment named '{}' already exists in this app.");
    // Answers the HTTP layer makes on its own (vendor/actix-http, `json_error_body`).
    MalformedRequest = (BAD_REQUEST, "malformed_request", "Malformed request.");
    HeadTimeout = (REQUEST_TIMEOUT, "request_head_timeout", "Request headers not received in time.");
    HeadersTooLarge = (REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "Request headers are too large.");
    // The server's own failures: details go to the log, never into the answer.
    Internal = (INTERNAL_SERVER_ERROR, "internal_error", "Internal server error.");
    ServiceUnavailable = (SERVICE_UNAVAILABLE, "service_unavailable", "Service unavailable.");
}

impl Code {
    /// The answer with this code, its `{}` filled with `args` in order.
    pub fn with(self, args: &[&dyn Display]) -> ApiError {
        let mut message = String::with_capacity(self.template().len() + 32);
        let mut parts = self.template().split("{}");
        message.push_str(parts.next().unwrap_or_default());
        let mut args = args.iter();
        for part in parts {
            if let Some(arg) = args.next() {
                message.push_str(&arg.to_string());
            }
            message.push_str(part);
        }
        ApiError::from_code(self, message)
    }
}

/// In the OpenAPI document, `code` is one of the table's names.
impl utoipa::PartialSchema for Code {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Code::ALL.iter().map(|code| code.name())))
            .into()
    }
}

impl utoipa::ToSchema for Code {}

impl From<Code> for ApiError {
    fn from(code: Code) -> Self {
        debug_assert!(
            !code.template().contains("{}"),
            "{code:?} takes arguments: use Code::with"
        );
        ApiError::from_code(code, code.template().to_owned())
    }
}

/// How many characters of client input a message quotes (API.md, "Order of checks").
pub const QUOTED_CHARS: usize = 64;

/// Client input as a message quotes it: at most [`QUOTED_CHARS`] characters, then `…`.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A list of ids as a message quotes it: at most ten, then `…`, each quoted.
pub fn quote_list(items: &[impl Display]) -> String {
    let mut shown: Vec<String> = items
        .iter()
        .take(10)
        .map(|i| quote(&i.to_string()))
        .collect();
    if items.len() > 10 {
        shown.push("…".to_owned());
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_code_has_one_status_one_name_and_a_message() {
        let mut names = HashSet::new();
        for code in Code::ALL {
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code:?}"
            );
            assert!(names.insert(code.name()), "{} twice", code.name());
            assert!(
                code.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code:?}"
            );
            assert!(!code.template().is_empty(), "{code:?}");
            let answer = code.with(&[]);
            assert_eq!((answer.status, answer.code), (code.status(), code.name()));
        }
    }

    #[test]
    fn the_http_layer_answers_with_the_table_s_words() {
        let dispatcher = include_str!("../../../vendor/actix-http/src/h1/dispatcher.rs");
        for code in [
            Code::MalformedRequest,
            Code::HeadTimeout,
            Code::HeadersTooLarge,
            Code::Internal,
        ] {
            let pair = format!("(\"{}\", \"{}\")", code.template(), code.name());
            assert!(
                dispatcher.contains(&pair),
                "{pair} in the vendored dispatcher"
            );
        }
    }

    #[test]
    fn the_openapi_document_names_every_code() {
        let doc =
            serde_json::to_value(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
        let code = &doc["components"]["schemas"]["ErrorBody"]["properties"]["code"];
        // utoipa wraps a described inline schema in a one-element `oneOf`.
        let listed = code.get("enum").unwrap_or(&code["oneOf"][0]["enum"]);
        let listed: Vec<&str> = listed
            .as_array()
            .expect("code is an enum")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(listed, names);
    }

    #[test]
    fn arguments_fill_the_template_in_order() {
        let answer = Code::VersionConflict.with(&[&3, &4]);
        assert_eq!(
            answer.message,
            "Secret version conflict: expected 3, current 4"
        );
        assert_eq!(answer.code, "version_conflict");
        assert_eq!(answer.status, StatusCode::CONFLICT);
    }

    #[test]
    fn quotes_are_cut_at_64_characters() {
        assert_eq!(quote("short"), "short");
        assert_eq!(quote(&"é".repeat(64)), "é".repeat(64));
        assert_eq!(quote(&"é".repeat(65)), format!("{}…", "é".repeat(64)));
        let ids: Vec<u32> = (0..12).collect();
        assert_eq!(quote_list(&ids), "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, …");
        assert_eq!(quote_list(&[1, 2]), "1, 2");
    }
}
