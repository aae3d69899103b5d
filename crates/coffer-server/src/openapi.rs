//! The OpenAPI 3 document, generated from the handlers' annotations and served at
//! `/openapi.json`. Only `/v1` is described; the other prefixes are aliases.

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use uuid::Uuid;

use crate::error::ErrorBody;
use crate::routes;
use crate::views::{AppView, AuditEntryView, EnvironmentView, TokenView};

/// `app_id` and `env`: the environment a secrets request works on.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SecretsQuery {
    /// App id.
    app_id: Uuid,
    /// Environment name (case-insensitive) or id.
    #[param(min_length = 1)]
    env: String,
}

/// Filters of a secrets listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListFilter {
    /// Exact path (normalised); absent means every path.
    path: Option<String>,
    /// Key, case-insensitive.
    key: Option<String>,
    /// Comma-separated tags; a secret matches if it has any.
    tags: Option<String>,
    /// `false`: values as stored; `true` (the default): references resolved.
    resolve: Option<bool>,
    /// Most secrets in the answer (absent: all); header `Next-Cursor` when more remain.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `Next-Cursor` of the previous page, with the same filters.
    cursor: Option<String>,
}

/// `app_id` alone.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct AppQuery {
    /// App id.
    app_id: Uuid,
}

/// Filters and paging of the audit log.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct AuditParams {
    /// Only entries of this app.
    app_id: Option<Uuid>,
    /// Only entries of this environment (id, or name with `app_id`).
    env: Option<String>,
    /// Only entries naming this secret.
    secret_id: Option<Uuid>,
    /// First sequence number (a `next` cursor).
    #[param(minimum = 0)]
    since: Option<i64>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A secret to create.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct NewSecretInput {
    #[schema(pattern = r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length = 256)]
    key: String,
    #[schema(max_length = 65536)]
    value: String,
    #[schema(max_length = 4096)]
    comment: Option<String>,
    #[schema(max_items = 32)]
    tags: Option<Vec<Tag>>,
    #[schema(max_length = 1024)]
    path: Option<String>,
    #[schema(inline)]
    r#type: Option<SecretTypeName>,
    /// The calling User token's personal override (ignored for a Service token).
    #[schema(nullable)]
    r#override: Option<OverrideInputSchema>,
}

/// A personal override of a secret's value, kept for the calling User token alone.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct OverrideInputSchema {
    /// Counts against the 64 KiB value limit.
    #[schema(max_length = 65536)]
    value: String,
    /// Whether clients apply it (default `true`); an inactive one is kept.
    is_active: Option<bool>,
}

/// A change to a secret; absent fields keep their value.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct SecretChangeInput {
    id: Uuid,
    #[schema(pattern = r"^[A-Za-z_][A-Za-z0-9_.\-]*$", max_length = 256)]
    key: Option<String>,
    #[schema(max_length = 65536)]
    value: Option<String>,
    #[schema(max_length = 4096)]
    comment: Option<String>,
    #[schema(max_items = 32)]
    tags: Option<Vec<Tag>>,
    #[schema(max_length = 1024)]
    path: Option<String>,
    #[schema(inline)]
    r#type: Option<SecretTypeName>,
    /// Check-and-set: apply only if this is the current version.
    #[schema(minimum = 1)]
    version: Option<u64>,
    /// The calling User token's personal override: absent keeps it, `null` removes it
    /// (ignored for a Service token).
    #[schema(nullable)]
    r#override: Option<OverrideInputSchema>,
}

/// A string schema with a pattern and length bounds (for names the derive cannot
/// describe as a newtype).
macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $min:expr, $max:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;

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
    /// A tag name.
    Tag, None::<&str>, 1, 64
);
string_schema!(
    /// An environment name.
    EnvName, Some(r"^[a-zA-Z0-9\-_]{1,64}$"), 1, 64
);
string_schema!(
    /// An app or token name: no control characters, not starting with whitespace.
    DisplayName, Some(r"^[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"), 1, 64
);
string_schema!(
    /// An environment given by name or id.
    EnvRef, None::<&str>, 1, 64
);

/// Token kinds.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum TokenTypeName {
    Service,
    User,
}

/// Secret permissions of a service token.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum PermissionName {
    Read,
    Create,
    Update,
    Delete,
}

/// The type of a secret.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum SecretTypeName {
    Secret,
    Sealed,
    Config,
}

/// `POST /v1/secrets` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateSecretsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    secrets: Vec<NewSecretInput>,
}

/// `PUT /v1/secrets` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UpdateSecretsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    secrets: Vec<SecretChangeInput>,
}

/// `DELETE /v1/secrets` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct DeleteSecretsRequest {
    #[schema(min_items = 1, max_items = 1000)]
    secrets: Vec<Uuid>,
}

/// `{"data": [App]}`
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct AppList {
    data: Vec<AppView<'static>>,
}

/// `{"data": [Env]}`
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct EnvironmentList {
    data: Vec<EnvironmentView<'static>>,
}

/// `{"data": [Token]}`
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct TokenList {
    data: Vec<TokenView<'static>>,
}

/// `{"status": "ok"}`
#[derive(Serialize, ToSchema)]
pub(crate) struct HealthView {
    pub(crate) status: &'static str,
    /// The server's version.
    pub(crate) version: &'static str,
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Coffer",
        description = "Self-hosted secrets engine speaking the Phase secrets API."
    ),
    paths(
        routes::secrets::list_secrets,
        routes::secrets::create_secrets,
        routes::secrets::update_secrets,
        routes::secrets::delete_secrets,
        routes::apps::list_apps,
        routes::apps::create_app,
        routes::apps::get_app,
        routes::apps::update_app,
        routes::apps::delete_app,
        routes::environments::list_environments,
        routes::environments::create_environment,
        routes::environments::get_environment,
        routes::environments::rename_environment,
        routes::environments::delete_environment,
        routes::tokens::list_tokens,
        routes::tokens::create_token,
        routes::tokens::revoke_token,
        routes::audit::list_audit,
        routes::ops::health,
        routes::ops::metrics,
    ),
    components(schemas(ErrorBody, AuditEntryView)),
    modifiers(&CommonResponses),
    security(("token" = []))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Adds the answers every protected route can give (403, 429, 500, and for bodies
/// 400 and 413), and the token scheme, so each handler lists only its own.
struct CommonResponses;

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build(),
    )
}

impl Modify for CommonResponses {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Bearer User <token>` or `Bearer Service <token>`",
            ))),
        );
        for item in api.paths.paths.values_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.delete, true),
            ];
            for (operation, has_body) in operations {
                let Some(op) = operation.as_mut() else {
                    continue;
                };
                let public = op.security.as_ref().is_some_and(|s| {
                    serde_json::to_value(s).is_ok_and(|v| v == serde_json::json!([{}]))
                });
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                };
                if !public {
                    add("400", "Bad request");
                    add(
                        "403",
                        "Not authenticated, out of scope, or refused by a network policy",
                    );
                    add("429", "Rate limit hit; Retry-After gives seconds");
                }
                if has_body {
                    add("413", "Request body over the limit");
                }
                add("500", "Internal server error");
            }
        }
    }
}
