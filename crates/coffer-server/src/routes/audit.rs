//! `/audit`: the audit log, User tokens only.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use coffer_store::{AuditAction, AuditQuery};
use serde::Serialize;
use uuid::Uuid;

use super::{blocking, ok_json, QueryMap};
use crate::auth::{find_environment, Auth};
use crate::codes::Code;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::AppState;
use crate::views::AuditEntryView;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/audit")
            .route(web::get().to(list_audit))
            .default_service(super::ops::only("GET")),
    );
}

/// Filters and paging of the audit log.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Only entries of this app.
    app_id: Option<Uuid>,
    /// Only entries of this environment (id, or name with `app_id`).
    env: Option<String>,
    /// Only entries naming this secret.
    secret_id: Option<Uuid>,
    /// Only entries of this action (`secret.read`, `token.create`, ...).
    #[param(value_type = Option<String>, example = "secret.update")]
    action: Option<AuditAction>,
    /// First sequence number (a `next` cursor).
    #[param(minimum = 0)]
    since: Option<u64>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

impl AuditParams {
    fn from_query(query: &QueryMap) -> Result<Self, ApiError> {
        Ok(AuditParams {
            app_id: uuid_param(query, "app_id")?,
            env: query.get("env").cloned(),
            secret_id: uuid_param(query, "secret_id")?,
            action: action_param(query)?,
            since: number_param(query, "since")?,
            limit: number_param(query, "limit")?,
        })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPageView<'a> {
    data: Vec<AuditEntryView<'a>>,
    next: Option<String>,
}

fn uuid_param(query: &QueryMap, name: &str) -> Result<Option<Uuid>, ApiError> {
    query
        .get(name)
        .map(|raw| Uuid::parse_str(raw).map_err(|_| Code::InvalidParameter.with(&[&name])))
        .transpose()
}

fn action_param(query: &QueryMap) -> Result<Option<AuditAction>, ApiError> {
    query
        .get("action")
        .map(|raw| {
            AuditAction::from_name(raw).ok_or_else(|| Code::InvalidParameter.with(&[&"action"]))
        })
        .transpose()
}

/// A non-negative integer parameter (at most `i64::MAX`, as the schema says int64).
fn number_param(query: &QueryMap, name: &str) -> Result<Option<u64>, ApiError> {
    query
        .get(name)
        .map(|raw| {
            raw.parse::<i64>()
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| Code::InvalidParameter.with(&[&name]))
        })
        .transpose()
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "Audit entries, oldest first", body = AuditPageView),
        (status = 404, description = "Environment not found", body = ErrorBody),
        (status = 410, description = "The cursor points before the oldest retained entry", body = ErrorBody)))]
pub(crate) async fn list_audit(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
) -> Result<HttpResponse, ApiError> {
    auth.require_user()?;
    let params = AuditParams::from_query(&query)?;
    let app_id = params.app_id;
    let env_id = match &params.env {
        None => None,
        Some(env) => match (Uuid::parse_str(env), app_id) {
            (Ok(id), _) => Some(id),
            (Err(_), Some(app_id)) => Some(find_environment(&state, app_id, env).await?.id),
            (Err(_), None) => return Err(Code::MissingParameter.with(&[&"app_id"])),
        },
    };
    let limit = params.limit.map_or(DEFAULT_LIMIT, |n| n as usize);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Code::LimitOutOfRange.with(&[&MAX_LIMIT]));
    }
    let since = params.since;
    let query = AuditQuery {
        app_id,
        env_id,
        secret_id: params.secret_id,
        action: params.action,
        since: since.unwrap_or(1),
        limit,
    };
    let store = Arc::clone(&state.store);
    let page = blocking(move || {
        // Without `since`, the listing starts at the oldest entry kept; a cursor before
        // it points at entries retention removed.
        let trimmed_to = store.audit_checkpoint()?.map_or(0, |cp| cp.seq);
        if since.is_some_and(|since| since <= trimmed_to && trimmed_to > 0) {
            return Err(Code::CursorExpired.into());
        }
        Ok(store.list_audit(&query)?)
    })
    .await?;
    Ok(ok_json(&AuditPageView {
        data: page.entries.iter().map(AuditEntryView::from).collect(),
        next: page.next.map(|seq| seq.to_string()),
    }))
}
