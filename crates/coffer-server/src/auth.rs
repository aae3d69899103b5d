//! The auth extractor: the first argument of every protected handler, so a request
//! without access is refused before its body is read. Order: authenticate → network
//! policy → rate limit; scope and permission checks follow in the handler.

use std::future::{ready, Ready};
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use coffer_store::{Actor, Environment, SecretAction, Token, TokenKind};
use uuid::Uuid;

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

fn authenticate(req: &HttpRequest) -> Result<Auth, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered by create_app");
    let client_ip = state.network.client_ip(req);
    state
        .limits
        .check_not_blocked(client_ip)
        .inspect_err(|err| {
            refused(state, client_ip, err);
        })?;
    let token = parse_authorization(req).and_then(|token| {
        state
            .store
            .authenticate(token)?
            .ok_or_else(|| ApiError::from(Code::TokenInvalid))
    });
    let token = match token {
        Ok(token) => token,
        Err(err) if err.status.is_server_error() => return Err(err),
        Err(err) => {
            // Past the client's budget the answer is the 429, counted as such.
            let err = state
                .limits
                .check_auth_failure(client_ip)
                .err()
                .unwrap_or(err);
            refused(state, client_ip, &err);
            return Err(err);
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
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
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
    pub fn environment_for(
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
        let environment = state.store.find_environment(app_id, env)?;
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
