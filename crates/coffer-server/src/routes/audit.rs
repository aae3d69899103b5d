//! `/audit`: the audit log, User tokens only.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use coffer_store::{AuditAction, AuditQuery, ChainPositions};
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
    /// Where to start: a `next` cursor, or a sequence number (every node's chain from it).
    #[param(value_type = Option<String>, pattern = "^([0-9]{1,19}|[0-9]{1,10}:[0-9]{1,19}(,[0-9]{1,10}:[0-9]{1,19})*)$")]
    since: Option<ChainPositions>,
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
            since: query
                .get("since")
                .map(|raw| {
                    raw.parse()
                        .map_err(|()| Code::InvalidParameter.with(&[&"since"]))
                })
                .transpose()?,
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
    let given_since = params.since.is_some();
    let query = AuditQuery {
        app_id,
        env_id,
        secret_id: params.secret_id,
        action: params.action,
        since: params.since.unwrap_or_default(),
        limit,
    };
    let store = Arc::clone(&state.store);
    let page = blocking(move || {
        // Without `since`, the listing starts at the oldest entry kept; a cursor before
        // it points at entries retention removed.
        if given_since && store.audit_trimmed_past(&query.since)? {
            return Err(Code::CursorExpired.into());
        }
        Ok(store.list_audit(&query)?)
    })
    .await?;
    Ok(ok_json(&AuditPageView {
        data: page.entries.iter().map(AuditEntryView::from).collect(),
        next: page.next.map(|next| next.to_string()),
    }))
}
