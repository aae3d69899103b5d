//! `/tokens`: User tokens only. The token itself appears only in the create response.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use coffer_store::{NewToken, Permissions, TokenKind};
use serde::Deserialize;
use uuid::Uuid;

use super::{blocking, created_json, ok_json};
use crate::auth::Auth;
use crate::body::{read_body, typed};
use crate::codes::{quote, Code};
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::network::parse_ip_or_cidr;
use crate::requests::{DisplayName, EnvRef, PermissionName, TokenTypeName};
use crate::state::AppState;
use crate::views::{parse_timestamp, OwnTokenView, TokenList, TokenView};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tokens")
            .route(web::get().to(list_tokens))
            .route(web::post().to(create_token))
            .default_service(super::ops::only("GET, POST")),
    )
    .service(
        web::resource("/tokens/self")
            .route(web::get().to(get_own_token))
            .default_service(super::ops::only("GET")),
    )
    .service(
        web::resource("/tokens/{id}")
            .route(web::delete().to(revoke_token))
            .default_service(super::ops::only("DELETE")),
    );
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateTokenBody {
    #[schema(value_type = DisplayName)]
    name: String,
    #[serde(rename = "type")]
    #[schema(value_type = TokenTypeName)]
    kind: String,
    app_id: Option<Uuid>,
    #[serde(default)]
    #[schema(value_type = Vec<EnvRef>)]
    environments: Vec<String>,
    #[schema(value_type = Option<Vec<PermissionName>>)]
    permissions: Option<Vec<String>>,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[serde(default)]
    allowed_ips: Vec<String>,
}

impl CreateTokenBody {
    fn into_new_token(self) -> Result<NewToken, ApiError> {
        let kind = match self.kind.as_str() {
            "service" => TokenKind::Service,
            "user" => TokenKind::User,
            other => return Err(Code::InvalidTokenType.with(&[&quote(other)])),
        };
        let scoped = self.app_id.is_some() || !self.environments.is_empty();
        if kind == TokenKind::User && (scoped || self.permissions.is_some()) {
            return Err(ApiError::from(Code::UserTokenUnscoped));
        }
        let permissions = match self.permissions {
            None => Permissions::ALL,
            Some(names) => {
                let mut p = Permissions::default();
                for name in names {
                    match name.as_str() {
                        "read" => p.read = true,
                        "create" => p.create = true,
                        "update" => p.update = true,
                        "delete" => p.delete = true,
                        other => return Err(Code::InvalidPermission.with(&[&quote(other)])),
                    }
                }
                p
            }
        };
        let expires_at = self
            .expires_at
            .map(|text| {
                parse_timestamp(&text).ok_or_else(|| Code::InvalidExpiry.with(&[&quote(&text)]))
            })
            .transpose()?;
        let allowed_ips = self
            .allowed_ips
            .into_iter()
            .map(|entry| match parse_ip_or_cidr(&entry) {
                Some(net) => Ok(net.to_string()),
                None => Err(Code::InvalidCidr.with(&[&quote(&entry)])),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NewToken {
            name: self.name,
            kind,
            app_id: self.app_id,
            environments: self.environments,
            permissions,
            expires_at,
            allowed_ips,
        })
    }
}

#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, description = "Every token (never the token itself)", body = TokenList)))]
pub(crate) async fn list_tokens(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let store = Arc::clone(&state.store);
    let tokens = blocking(move || Ok(store.list_tokens()?)).await?;
    Ok(ok_json(&TokenList {
        data: tokens.iter().map(TokenView::new).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/tokens/self", tag = "tokens",
    responses((status = 200, description = "The calling token and what it may reach (any token)", body = OwnTokenView)))]
pub(crate) async fn get_own_token(
    auth: Auth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = Arc::clone(&state.store);
    let token = Arc::clone(&auth.token);
    let scope = blocking(move || {
        let Some(app_id) = token.app_id else {
            return Ok(None);
        };
        let app = store.get_app(app_id)?;
        let environments = store
            .list_environments(app_id)?
            .into_iter()
            .filter(|env| token.env_ids.contains(&env.id))
            .collect();
        Ok(Some((app, environments)))
    })
    .await?;
    Ok(ok_json(&OwnTokenView::new(&auth.token, scope.as_ref())))
}

#[utoipa::path(post, path = "/v1/tokens", tag = "tokens", request_body = CreateTokenBody,
    responses((status = 201, description = "The token record and, only here, the token", body = TokenView),
        (status = 404, description = "App or environment not found", body = ErrorBody)))]
pub(crate) async fn create_token(
    auth: Auth,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let body: CreateTokenBody = typed(&read_body(payload, &state.body).await?)?;
    let new = body.into_new_token()?;
    let store = Arc::clone(&state.store);
    let (token, secret) = blocking(move || Ok(store.create_token(&auth.actor, new)?)).await?;
    Ok(created_json(&TokenView::created(&token, &secret)))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked; it stops working at once"),
        (status = 404, description = "Not found", body = ErrorBody)))]
pub(crate) async fn revoke_token(
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let id = Uuid::parse_str(&id).map_err(|_| Code::TokenNotFound.with(&[&quote(&id)]))?;
    let store = Arc::clone(&state.store);
    blocking(move || Ok(store.revoke_token(&auth.actor, id)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}
