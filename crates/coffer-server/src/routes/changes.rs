//! `/changes`: the changes feed, long-polled. Thin: parse, check scope, read the feed;
//! while nothing is new, hold the answer until the write that moves the feed wakes it,
//! the wait runs out, or the server stops. A held request holds no thread.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use coffer_store::{ChangeScope, ChangesPage, ChangesQuery, SecretAction, TokenKind};
use tokio::time::{sleep_until, Instant};

use super::{blocking, QueryMap};
use crate::auth::Auth;
use crate::codes::Code;
use crate::error::{ApiError, ErrorBody};
use crate::requests::ChangesParams;
use crate::state::AppState;
use crate::views::ChangesPageView;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/changes")
            .route(web::get().to(list_changes))
            .default_service(super::ops::only("GET")),
    );
}

/// Why a held request stopped waiting.
enum Held {
    FeedMoved,
    WaitOver,
    Stopping,
}

#[utoipa::path(get, path = "/v1/changes", tag = "changes", params(ChangesParams),
    responses((status = 200, description = "Changes after `since`, oldest first", body = ChangesPageView),
        (status = 404, description = "App or environment not found", body = ErrorBody),
        (status = 410, description = "The cursor points before the oldest retained entry", body = ErrorBody)))]
pub(crate) async fn list_changes(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
) -> Result<HttpResponse, ApiError> {
    let params = ChangesParams::from_query(&query)?;
    let scope = feed_scope(&auth, &state, &params).await?;
    let Some(since) = params.since else {
        let position = state.store.feed_position();
        return Ok(answer(&ChangesPage {
            changes: Vec::new(),
            next: position,
            caught_up: true,
        }));
    };
    let wait = Duration::from_secs(params.wait).min(state.changes_max_wait);
    let deadline = Instant::now() + wait;
    let mut query = ChangesQuery {
        scope,
        since: since.clone(),
    };
    loop {
        let page = read_page(&state, &query).await?;
        if !page.changes.is_empty() || !page.caught_up || wait.is_zero() {
            return Ok(answer(&page));
        }
        query.since = page.next;
        let held = {
            let _waiting = state.metrics.feed_waiting();
            tokio::select! {
                () = state.store.fed_beyond(&query.since) => Held::FeedMoved,
                () = sleep_until(deadline) => Held::WaitOver,
                () = state.stopping() => Held::Stopping,
            }
        };
        // Nothing came: the client asks again from where it asked (API.md), which costs
        // nothing more than going on from where this request got to.
        let nothing = ChangesPageView::new(&[], &since);
        match held {
            Held::FeedMoved => continue,
            Held::WaitOver => return Ok(super::ok_json(&nothing)),
            Held::Stopping => {
                // The connection ends with this answer: a stopping server waits for
                // its open connections, and the client must reconnect anyway.
                return Ok(HttpResponse::Ok().force_close().json(nothing));
            }
        }
    }
}

fn answer(page: &ChangesPage) -> HttpResponse {
    super::ok_json(&ChangesPageView::new(&page.changes, &page.next))
}

/// What this token sees of the app: the environment asked for, checked as a read of it;
/// without one, every environment of the app (User token) or of the token's scope
/// (Service token).
async fn feed_scope(
    auth: &Auth,
    state: &AppState,
    params: &ChangesParams,
) -> Result<ChangeScope, ApiError> {
    let app_id = params.app_id;
    if let Some(env) = &params.env {
        let env = auth
            .environment_for(state, app_id, env, SecretAction::Read)
            .await?;
        return Ok(ChangeScope::Environments {
            app_id,
            env_ids: vec![env.id],
        });
    }
    let token = &auth.token;
    match token.kind {
        TokenKind::User => {
            let store = Arc::clone(&state.store);
            blocking(move || Ok(store.get_app(app_id)?)).await?;
            Ok(ChangeScope::App(app_id))
        }
        TokenKind::Service => {
            if token.app_id != Some(app_id) {
                return Err(Code::AppOutOfScope.into());
            }
            if !token.permissions.allows(SecretAction::Read) {
                return Err(Code::PermissionDenied.with(&[&SecretAction::Read.as_str()]));
            }
            Ok(ChangeScope::Environments {
                app_id,
                env_ids: token.env_ids.clone(),
            })
        }
    }
}

/// The page at the query's cursor: from memory when the feed's recent changes cover it
/// (most readers are close behind), else read from the store off the worker.
async fn read_page(state: &AppState, query: &ChangesQuery) -> Result<ChangesPage, ApiError> {
    if let Some(page) = state.store.recent_changes(query) {
        return Ok(page?);
    }
    let store = Arc::clone(&state.store);
    let query = query.clone();
    blocking(move || Ok(store.read_changes(&query)?)).await
}
