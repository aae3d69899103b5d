//! `/secrets`: list, create, update, delete. Thin: parse, check access, call the store.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use coffer_store::{
    Environment, IdempotentRequest, Resolver, Secret, SecretAction, SecretRead, StoreError,
    TokenKind,
};
use serde::Serialize;
use uuid::Uuid;

use super::{blocking, QueryMap};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::idempotency::{self, answer_to_keep, rendered, Route, Start};
use crate::listing::{secrets_response, SecretsJson};
use crate::requests::{
    parse_create_batch, parse_delete_ids, parse_update_batch, parse_upsert_batch,
    CreateSecretsRequest, DeleteSecretsRequest, IdempotencyHeader, ListFilter, SecretsQuery,
    UpdateSecretsRequest, UpsertQuery,
};
use crate::state::AppState;
use crate::views::{self, SecretView};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/secrets")
            .route(web::get().to(list_secrets))
            .route(web::post().to(create_secrets))
            .route(web::put().to(update_secrets))
            .route(web::delete().to(delete_secrets))
            .default_service(super::ops::only("GET, POST, PUT, DELETE")),
    );
}

#[utoipa::path(get, path = "/v1/secrets", tag = "secrets",
    params(SecretsQuery, ListFilter),
    responses((status = 200, description = "Secrets ordered by path then key", body = [SecretView]),
        (status = 404, description = "App or environment not found", body = ErrorBody)))]
pub(crate) async fn list_secrets(
    auth: Auth,
    state: web::Data<AppState>,
    query: QueryMap,
) -> Result<HttpResponse, ApiError> {
    let Target { app_id, env, .. } =
        Target::resolve(&auth, &state, &query, SecretAction::Read).await?;
    let listing = ListFilter::from_query(&query)?;
    let (filter, page) = (listing.secret_filter(), listing.page(env.id)?);
    let scope = listing.scope(env.id);
    let resolver = listing
        .resolves()
        .then(|| reference_resolver(&auth, &state));
    let store = Arc::clone(&state.store);
    let actor = auth.actor.clone();
    // A read by key touches that key's index entries only (one per path): it is
    // answered on the worker, which is what keeps reads fast (a hop to the blocking pool
    // and back costs more than the read itself, measured at 42k against 19k reads/s).
    // Any other listing may decrypt a whole environment, and a shared backend's read
    // waits on the network: off the worker.
    let by_key = filter.key.is_some() && !state.store.is_shared();
    let read = move || {
        let listed = store.list_page(env.id, &filter, &page, actor.override_owner())?;
        let ids: Vec<Uuid> = listed.entries.iter().map(|entry| entry.id).collect();
        let mut rest = SecretsJson::new(store, listed.entries, resolver, actor);
        let first = rest.next_chunk()?.expect("an array has a first chunk");
        let through_references = rest.take_reads();
        Ok(((ids, listed.next, through_references), first, rest))
    };
    let (listed, first, rest) = if by_key {
        read()?
    } else {
        blocking(read).await?
    };
    let (mut secret_ids, next, through_references) = listed;
    // One entry per environment read: the listed one also names the secrets of its
    // own read through references, every other environment gets its own.
    let mut reads = Vec::new();
    for referenced in through_references {
        if referenced.env_id == env.id {
            let extra: Vec<Uuid> = referenced
                .secret_ids
                .into_iter()
                .filter(|id| !secret_ids.contains(id))
                .collect();
            secret_ids.extend(extra);
        } else {
            reads.push(SecretRead {
                actor: auth.actor.clone(),
                app_id: referenced.app_id,
                env_id: referenced.env_id,
                secret_ids: referenced.secret_ids,
            });
        }
    }
    reads.insert(
        0,
        SecretRead {
            actor: auth.actor,
            app_id,
            env_id: env.id,
            secret_ids,
        },
    );
    for read in reads {
        state.read_audit.record(read).await?;
    }
    let mut response = HttpResponse::Ok();
    if let Some(next) = next {
        response.insert_header(("Next-Cursor", scope.cursor(&next)));
    }
    Ok(secrets_response(response, first, rest))
}

/// A resolver that reads only what this token may read: a Service token its own app's
/// environments in its scope, with `read` permission; a User token every app.
fn reference_resolver(auth: &Auth, state: &AppState) -> Resolver {
    let token = Arc::clone(&auth.token);
    Resolver::new(
        Arc::clone(&state.store),
        Box::new(move |app_id, env_id| match token.kind {
            TokenKind::User => true,
            TokenKind::Service => {
                token.app_id == Some(app_id)
                    && token.env_ids.contains(&env_id)
                    && token.permissions.allows(SecretAction::Read)
            }
        }),
    )
}

#[utoipa::path(post, path = "/v1/secrets", tag = "secrets",
    params(SecretsQuery, UpsertQuery, IdempotencyHeader),
    request_body = CreateSecretsRequest,
    responses((status = 200, description = "The created secrets (all or none); with `upsert=true`, \
        the created and updated secrets in batch order", body = [SecretView]),
        (status = 404, description = "App or environment not found", body = ErrorBody),
        (status = 409, description = "Duplicate secret, or a request with this Idempotency-Key in progress", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with a different request", body = ErrorBody)))]
pub(crate) async fn create_secrets(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryMap,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let route = Route {
        resource: "secrets",
        id: None,
    };
    let begun = match idempotency::begin(&req, &auth, &state, &query, route, payload).await? {
        Start::Replay(kept) => return Ok(kept),
        Start::Run(begun) => begun,
    };
    let request = begun.keeping.request();
    let answer = create(auth, &state, &query, &begun.body, request).await;
    begun.keeping.finish(answer).await
}

/// The answer of a batch write: the secrets written.
#[allow(clippy::ptr_arg)] // The write's own result type: what a kept answer renders.
fn render_secrets(secrets: &Vec<Secret>) -> (u16, Vec<u8>) {
    let body = serde_json::to_vec(&views::secrets(secrets)).expect("secrets encode");
    (200, body)
}

async fn create(
    auth: Auth,
    state: &web::Data<AppState>,
    query: &QueryMap,
    body: &[u8],
    request: Option<IdempotentRequest>,
) -> Result<HttpResponse, ApiError> {
    let upsert = UpsertQuery::from_query(query)?.is_upsert();
    let target = Target::resolve(&auth, state, query, SecretAction::Create).await?;
    if upsert {
        auth.environment_for(state, target.app_id, &target.env_name, SecretAction::Update)
            .await?;
    }
    let (env, gone) = (target.env.id, target.gone());
    let store = Arc::clone(&state.store);
    let written = if upsert {
        let batch = parse_upsert_batch(body)?;
        blocking(move || {
            let keep = answer_to_keep(request.as_ref(), &render_secrets);
            store
                .upsert_secrets_keeping(&auth.actor, env, batch, keep.as_ref())
                .map_err(gone)
        })
        .await?
    } else {
        let batch = parse_create_batch(body)?;
        blocking(move || {
            let keep = answer_to_keep(request.as_ref(), &render_secrets);
            store
                .create_secrets_keeping(&auth.actor, env, batch, keep.as_ref())
                .map_err(gone)
        })
        .await?
    };
    Ok(rendered(render_secrets(&written)))
}

#[utoipa::path(put, path = "/v1/secrets", tag = "secrets", params(SecretsQuery, IdempotencyHeader),
    request_body = UpdateSecretsRequest,
    responses((status = 200, description = "The updated secrets (all or none)", body = [SecretView]),
        (status = 404, description = "App, environment or secret not found", body = ErrorBody),
        (status = 409, description = "Duplicate secret, version conflict, or a request with this Idempotency-Key in progress", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with a different request", body = ErrorBody)))]
pub(crate) async fn update_secrets(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryMap,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let route = Route {
        resource: "secrets",
        id: None,
    };
    let begun = match idempotency::begin(&req, &auth, &state, &query, route, payload).await? {
        Start::Replay(kept) => return Ok(kept),
        Start::Run(begun) => begun,
    };
    let request = begun.keeping.request();
    let answer = update(auth, &state, &query, &begun.body, request).await;
    begun.keeping.finish(answer).await
}

async fn update(
    auth: Auth,
    state: &web::Data<AppState>,
    query: &QueryMap,
    body: &[u8],
    request: Option<IdempotentRequest>,
) -> Result<HttpResponse, ApiError> {
    let target = Target::resolve(&auth, state, query, SecretAction::Update).await?;
    let (env, gone) = (target.env.id, target.gone());
    let batch = parse_update_batch(body)?;
    let store = Arc::clone(&state.store);
    let updated = blocking(move || {
        let keep = answer_to_keep(request.as_ref(), &render_secrets);
        store
            .update_secrets_keeping(&auth.actor, env, batch, keep.as_ref())
            .map_err(gone)
    })
    .await?;
    Ok(rendered(render_secrets(&updated)))
}

/// The environment a secrets request works on, checked for its action.
pub(crate) struct Target {
    pub(crate) app_id: Uuid,
    pub(crate) env_name: String,
    pub(crate) env: Environment,
}

impl Target {
    pub(crate) async fn resolve(
        auth: &Auth,
        state: &AppState,
        query: &QueryMap,
        action: SecretAction,
    ) -> Result<Self, ApiError> {
        let SecretsQuery { app_id, env } = SecretsQuery::from_query(query)?;
        let environment = auth.environment_for(state, app_id, &env, action).await?;
        Ok(Target {
            app_id,
            env_name: env,
            env: environment,
        })
    }

    /// Maps a store error of a write. An environment deleted after this request found
    /// it is reported the way API.md words a missing one, with the name as given.
    pub(crate) fn gone(self) -> impl FnOnce(StoreError) -> ApiError + Send + 'static {
        move |err| match err {
            StoreError::EnvironmentIdNotFound(_) => StoreError::EnvironmentNotFound {
                app_id: self.app_id,
                name: self.env_name,
            }
            .into(),
            other => other.into(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DeletedView {
    message: String,
}

#[utoipa::path(delete, path = "/v1/secrets", tag = "secrets", params(SecretsQuery, IdempotencyHeader),
    request_body = DeleteSecretsRequest,
    responses((status = 200, description = "Deleted (all or none)", body = DeletedView),
        (status = 404, description = "App, environment or secrets not found", body = ErrorBody),
        (status = 409, description = "A request with this Idempotency-Key in progress", body = ErrorBody),
        (status = 422, description = "Idempotency-Key reused with a different request", body = ErrorBody)))]
pub(crate) async fn delete_secrets(
    auth: Auth,
    req: HttpRequest,
    state: web::Data<AppState>,
    query: QueryMap,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let route = Route {
        resource: "secrets",
        id: None,
    };
    let begun = match idempotency::begin(&req, &auth, &state, &query, route, payload).await? {
        Start::Replay(kept) => return Ok(kept),
        Start::Run(begun) => begun,
    };
    let request = begun.keeping.request();
    let answer = delete(auth, &state, &query, &begun.body, request).await;
    begun.keeping.finish(answer).await
}

/// The answer of a delete: Phase's words.
fn render_deleted(deleted: &usize) -> (u16, Vec<u8>) {
    let message = match deleted {
        1 => "Deleted 1 secret".to_owned(),
        n => format!("Deleted {n} secrets"),
    };
    let body = serde_json::to_vec(&DeletedView { message }).expect("a message encodes");
    (200, body)
}

async fn delete(
    auth: Auth,
    state: &web::Data<AppState>,
    query: &QueryMap,
    body: &[u8],
    request: Option<IdempotentRequest>,
) -> Result<HttpResponse, ApiError> {
    let target = Target::resolve(&auth, state, query, SecretAction::Delete).await?;
    let (env, gone) = (target.env.id, target.gone());
    let ids = parse_delete_ids(body)?;
    let store = Arc::clone(&state.store);
    let deleted = blocking(move || {
        if ids.malformed.is_empty() {
            let keep = answer_to_keep(request.as_ref(), &render_deleted);
            return store
                .delete_secrets_keeping(&auth.actor, env, &ids.valid, keep.as_ref())
                .map_err(gone);
        }
        // Ids that are not UUIDs name nothing; report them with whichever valid ids are
        // also missing, and delete nothing.
        let mut missing: Vec<String> = ids
            .valid
            .iter()
            .filter(|id| {
                matches!(
                    store.get_secret(env, **id),
                    Err(StoreError::SecretNotFound(_))
                )
            })
            .map(ToString::to_string)
            .collect();
        missing.extend(ids.malformed);
        Err(ApiError::secrets_not_found(&missing))
    })
    .await?;
    Ok(rendered(render_deleted(&deleted)))
}
