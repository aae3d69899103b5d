//! The auth extractor: the first argument of every protected handler, so a request
//! without access is refused before its body is read. Order: authenticate → network
//! policy → rate limit; scope and permission checks follow in the handler.

use std::future::{ready, Future};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use coffer_store::{Actor, Environment, SecretAction, Token, TokenKind};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::codes::Code;
use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The token used.
    pub token: Arc<Token>,
    /// Who and from where, for the audit log.
    pub actor: Actor,
}

/// The id of the token a request used, for the request log.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedTokenId(pub Uuid);

const TOKEN_HEX_LEN: usize = 64;

fn invalid_token() -> ApiError {
    ApiError::from(Code::InvalidToken)
}

/// The token of `Bearer <Type> <token>`. The type word must be one of the three, but
/// the token alone decides what it may do: the clients choose the word from the token
/// string, and not all the same way.
fn parse_authorization(req: &HttpRequest) -> Result<&str, ApiError> {
    let header = req
        .headers()
        .get("authorization")
        .ok_or_else(|| ApiError::from(Code::NotAuthenticated))?;
    let text = header.to_str().map_err(|_| invalid_token())?;
    let mut parts = text.split_ascii_whitespace();
    let (Some(scheme), Some(kind), Some(token), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_token());
    };
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(invalid_token());
    }
    if !["user", "service", "serviceaccount"].contains(&kind.to_ascii_lowercase().as_str()) {
        return Err(invalid_token());
    }
    let well_formed = token.len() == TOKEN_HEX_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(invalid_token());
    }
    Ok(token)
}

/// The state of the app serving `req`.
fn app_state(req: &HttpRequest) -> &web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered by create_app")
}

/// What comes before the token is looked up: the client's address, refused at once
/// while it is blocked, and the token of the `Authorization` header.
fn presented(req: &HttpRequest) -> Result<(Option<IpAddr>, &str), ApiError> {
    let state = app_state(req);
    let client_ip = state.network.client_ip(req);
    state
        .limits
        .check_not_blocked(client_ip)
        .inspect_err(|err| {
            refused(state, client_ip, err);
        })?;
    let token = parse_authorization(req).map_err(|err| failed(state, client_ip, &err))?;
    Ok((client_ip, token))
}

/// What comes after the token is looked up: the failure budget, the network policy
/// and the token's rate limit.
fn admit(
    req: &HttpRequest,
    client_ip: Option<IpAddr>,
    looked_up: Result<Option<Arc<Token>>, coffer_store::StoreError>,
) -> Result<Auth, ApiError> {
    let state = app_state(req);
    let token = match looked_up {
        Ok(Some(token)) => token,
        Ok(None) => return Err(failed(state, client_ip, &Code::TokenInvalid.into())),
        Err(err) => {
            let err = ApiError::from(err);
            if err.status.is_server_error() {
                return Err(err);
            }
            return Err(failed(state, client_ip, &err));
        }
    };
    if !state.network.allows(client_ip, &token.allowed_ips) {
        let err = ApiError::from(Code::IpNotAllowed);
        refused(state, client_ip, &err);
        return Err(err);
    }
    state.limits.check_token(token.id)?;
    req.extensions_mut().insert(AuthenticatedTokenId(token.id));
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect());
    Ok(Auth {
        actor: Actor {
            token_id: Some(token.id),
            kind: Some(token.kind),
            ip: client_ip.map(|ip| ip.to_string()),
            user_agent,
        },
        token,
    })
}

/// A failed authentication, counted against the client's budget: past it, the answer
/// is the 429, counted as such.
fn failed(state: &AppState, client_ip: Option<IpAddr>, err: &ApiError) -> ApiError {
    let err = state
        .limits
        .check_auth_failure(client_ip)
        .err()
        .unwrap_or_else(|| err.clone());
    refused(state, client_ip, &err);
    err
}

/// Counts and logs a refused authentication: its reason and the client's address, never
/// the token.
fn refused(state: &AppState, client_ip: Option<IpAddr>, err: &ApiError) {
    state.metrics.auth_refused(err.code);
    tracing::warn!(
        target: "coffer::auth",
        reason = err.code,
        client_ip = %client_ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        "authentication refused"
    );
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    /// Answered on the worker when the token cache can answer; otherwise the lookup
    /// runs on the blocking pool (it reads the backend, which may be a network away).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (client_ip, token) = match presented(req) {
            Ok(presented) => presented,
            Err(err) => return Box::pin(ready(Err(err))),
        };
        let store = Arc::clone(&app_state(req).store);
        if let Some(found) = store.authenticate_cached(token) {
            return Box::pin(ready(admit(req, client_ip, Ok(found))));
        }
        let token = Zeroizing::new(token.to_owned());
        let req = req.clone();
        Box::pin(async move {
            let looked_up = web::block(move || store.authenticate(&token)).await?;
            admit(&req, client_ip, looked_up)
        })
    }
}

impl Auth {
    /// Admin routes: apps, environments, tokens, audit.
    pub fn require_user(&self) -> Result<(), ApiError> {
        match self.token.kind {
            TokenKind::User => Ok(()),
            TokenKind::Service => Err(ApiError::from(Code::UserTokenRequired)),
        }
    }

    /// Resolves the environment of a secrets request and checks that this token may
    /// perform `action` in it. A service token learns nothing about other apps: the app
    /// check comes before any lookup.
    pub async fn environment_for(
        &self,
        state: &AppState,
        app_id: Uuid,
        env: &str,
        action: SecretAction,
    ) -> Result<Environment, ApiError> {
        let token = &self.token;
        if token.kind == TokenKind::Service && token.app_id != Some(app_id) {
            return Err(ApiError::from(Code::AppOutOfScope));
        }
        let environment = find_environment(state, app_id, env).await?;
        if token.kind == TokenKind::Service {
            if !token.env_ids.contains(&environment.id) {
                return Err(ApiError::from(Code::EnvironmentOutOfScope));
            }
            if !token.permissions.allows(action) {
                return Err(Code::PermissionDenied.with(&[&action.as_str()]));
            }
        }
        Ok(environment)
    }
}

/// An environment of an app by name or id: from the cache on the worker when it can
/// answer, otherwise looked up on the blocking pool (the backend may be a network away).
pub async fn find_environment(
    state: &AppState,
    app_id: Uuid,
    env: &str,
) -> Result<Environment, ApiError> {
    if let Some(environment) = state.store.find_environment_cached(app_id, env) {
        return Ok(environment);
    }
    let (store, env) = (Arc::clone(&state.store), env.to_owned());
    Ok(web::block(move || store.find_environment(app_id, &env)).await??)
}
