//! The OpenAPI 3 document, assembled from the handlers' annotations and the request and
//! response types themselves, served at `/openapi.json`. Only `/v1` is described; the
//! other prefixes are aliases.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes;
use crate::views::AuditEntryView;

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
        routes::versions::secret_history,
        routes::versions::rollback_secret,
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
        routes::tokens::get_own_token,
        routes::tokens::create_token,
        routes::tokens::revoke_token,
        routes::audit::list_audit,
        routes::changes::list_changes,
        routes::backup::take_backup,
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

/// Serves the document at `/openapi.json` (the routes describe themselves; this module
/// only assembles and serves).
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::{web, HttpResponse};
    let document = <ApiDoc as OpenApi>::openapi();
    cfg.service(
        web::resource("/openapi.json")
            .route(web::get().to(move || {
                let document = document.clone();
                async move { HttpResponse::Ok().json(document) }
            }))
            .default_service(routes::ops::only("GET")),
    );
}
