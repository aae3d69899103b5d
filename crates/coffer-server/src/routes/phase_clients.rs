//! The route of the official Phase CLI and SDKs (`PHASE-CLIENTS.md`), under
//! `/service/secrets/`: a second wire format over the same store.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use coffer_store::{Store, Token, TokenKind};

use super::{blocking, ok_json};
use crate::auth::Auth;
use crate::codes::Code;
use crate::error::ApiError;
use crate::phase_views::IdentityDocument;
use crate::state::AppState;

/// Registers the routes (at the root: the clients hard-code the `/service/` prefix).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/service/secrets/tokens")
            .route(web::get().to(get_identity))
            .default_service(super::ops::only("GET")),
    );
}

/// `GET /service/secrets/tokens/`: the token's identity, and the keys of every
/// environment it may use wrapped to it (in index order: the clients take the first
/// environment whose name matches).
async fn get_identity(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = Arc::clone(&state.store);
    let document = blocking(move || identity(&store, &auth.token)).await?;
    Ok(ok_json(&document))
}

fn identity(store: &Store, token: &Token) -> Result<IdentityDocument, ApiError> {
    let keys = store
        .token_keys(token.id)?
        .ok_or(ApiError::from(Code::TokenPredatesPhaseClients))?;
    let apps = match (token.kind, token.app_id) {
        (TokenKind::Service, Some(app_id)) => vec![store.get_app(app_id)?],
        _ => store.list_apps()?,
    };
    let mut scoped = Vec::with_capacity(apps.len());
    for app in apps {
        let mut envs = Vec::new();
        for env in store.list_environments(app.id)? {
            if token.kind == TokenKind::Service && !token.env_ids.contains(&env.id) {
                continue;
            }
            let env_keys = store.environment_keys(env.id)?;
            envs.push((env, env_keys));
        }
        envs.sort_by_key(|(env, _)| env.index);
        scoped.push((app, envs));
    }
    // Sealing fails only for a public key of small order, which no issued token has.
    IdentityDocument::new(token, &keys, scoped).map_err(|_| ApiError::internal())
}
