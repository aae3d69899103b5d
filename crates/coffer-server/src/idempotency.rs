//! `Idempotency-Key` on the secret writes (API.md, "Idempotent retries"). The first
//! request with a key runs; its answer is kept by the store per (token, key) for 24
//! hours — in the write's own transaction when it writes, on its own when it is a
//! refusal — and a repeat of the same request gets it back with `Idempotent-Replayed:
//! true`, writing nothing. Which requests are running lives here, in memory: a repeat
//! while the first runs is a 409, a different request under a used key a 422.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use coffer_store::{AnswerToKeep, IdempotentRequest, KeptAnswer, Store, Timestamp};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Auth;
use crate::body::read_body;
use crate::codes::Code;
use crate::error::{ApiError, ErrorBody};
use crate::routes::{blocking, QueryMap};
use crate::state::AppState;

/// The request header.
pub const KEY_HEADER: &str = "Idempotency-Key";
/// The header of a replayed answer.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// The longest key.
pub const MAX_KEY_LEN: usize = 255;
/// How often kept answers past their 24 hours are deleted.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The environment variable naming an `Idempotency-Key` after whose committed write the
/// process aborts before answering: the crash that kept answers are for, on demand.
/// Read only by builds with the `fault-injection` feature, which only the test suite
/// turns on (`cargo build` and `cargo install` never do).
#[cfg(feature = "fault-injection")]
pub const ABORT_AFTER_COMMIT_VAR: &str = "COFFER_FAULT_ABORT_AFTER_COMMIT";
/// As [`ABORT_AFTER_COMMIT_VAR`], for a key whose request waits two seconds after its
/// commit before answering: a request that is surely still running.
#[cfg(feature = "fault-injection")]
pub const PAUSE_AFTER_COMMIT_VAR: &str = "COFFER_FAULT_PAUSE_AFTER_COMMIT";

/// Faults armed by the environment (builds with the `fault-injection` feature only).
#[derive(Debug, Default)]
struct Faults {
    abort_after_commit: Option<String>,
    pause_after_commit: Option<String>,
}

impl Faults {
    #[cfg(feature = "fault-injection")]
    fn from_env() -> Self {
        let armed = |var: &str| {
            std::env::var(var).ok().inspect(|_| {
                let warning = format!(
                    "FAULT INJECTION ARMED ({var}): this build stops or stalls a request \
                     after its commit, before answering. Never run it in production."
                );
                eprintln!("WARNING: {warning}");
                tracing::warn!("{warning}");
            })
        };
        Faults {
            abort_after_commit: armed(ABORT_AFTER_COMMIT_VAR),
            pause_after_commit: armed(PAUSE_AFTER_COMMIT_VAR),
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn from_env() -> Self {
        Faults::default()
    }
}

/// The requests with a key that are running, by (token, key), with their fingerprints.
#[derive(Debug, Default)]
pub struct Idempotency {
    running: Mutex<HashMap<(Uuid, String), [u8; 32]>>,
    faults: Faults,
}

impl Idempotency {
    /// Nothing running. With the `fault-injection` feature, the faults the environment
    /// arms, announced loudly.
    pub fn new() -> Self {
        Idempotency {
            running: Mutex::new(HashMap::new()),
            faults: Faults::from_env(),
        }
    }
}

/// The route a request names, for its fingerprint: the resource (whatever prefix it was
/// reached under) and its path parameter.
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    /// `secrets`, `secrets/{id}/rollback`.
    pub resource: &'static str,
    /// The `{id}` of the path, as given.
    pub id: Option<&'a str>,
}

/// What a handler runs with: its body, and the request whose answer it keeps (when the
/// request has a key).
#[derive(Debug)]
pub struct Begun {
    /// The request body.
    pub body: web::Bytes,
    /// Where the answer is kept; `None` without a key.
    pub keeping: Keeping,
}

/// A request with a key while it runs; dropping it (answered, or the client gone) lets
/// a repeat run or be replayed.
#[derive(Debug)]
pub struct Keeping {
    request: Option<IdempotentRequest>,
    state: web::Data<AppState>,
}

impl Drop for Keeping {
    fn drop(&mut self) {
        if let Some(request) = &self.request {
            let slot = (request.token_id, request.key.clone());
            self.state.idempotency.running.lock().remove(&slot);
        }
    }
}

/// Either the handler runs, or the kept answer is sent again.
#[derive(Debug)]
pub enum Start {
    /// Run the handler.
    Run(Begun),
    /// The kept answer of the same request.
    Replay(HttpResponse),
}

/// The key of a request: none, or 1–255 visible ASCII characters in one header.
fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(KEY_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || ApiError::from(Code::InvalidIdempotencyKey);
    if values.next().is_some() {
        return Err(invalid());
    }
    let bytes = value.as_bytes();
    let visible = bytes.iter().all(|b| (0x21..=0x7e).contains(b));
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !visible {
        return Err(invalid());
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// JSON with every object's keys in order, so that two spellings of one object are one.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            let sorted: BTreeMap<String, Value> = object.into_iter().collect();
            let mut out = Map::new();
            for (key, value) in sorted {
                out.insert(key, canonical(value));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// A digest of what a request asks: method, route with its parameter, query as parsed
/// (order aside, the environment by id), body as parsed JSON (or its bytes, when it is
/// not JSON).
fn fingerprint(
    method: &Method,
    route: Route<'_>,
    query: &QueryMap,
    body: &[u8],
    state: &AppState,
) -> [u8; 32] {
    let env_id = query
        .get("app_id")
        .and_then(|app| Uuid::parse_str(app).ok())
        .zip(query.get("env"))
        .and_then(|(app_id, env)| state.store.find_environment(app_id, env).ok())
        .map(|env| env.id.to_string());
    let mut parsed: BTreeMap<&str, &str> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(env_id) = &env_id {
        parsed.insert("env", env_id);
    }
    let id = route.id.map(|id| match Uuid::parse_str(id) {
        Ok(uuid) => uuid.to_string(),
        Err(_) => id.to_owned(),
    });
    let body = match serde_json::from_slice::<Value>(body) {
        Ok(parsed) => json!({ "json": canonical(parsed) }),
        Err(_) => json!({ "bytes": hex::encode(body) }),
    };
    let described = json!({
        "method": method.as_str(),
        "resource": route.resource,
        "id": id,
        "query": parsed,
        "body": body,
    });
    let encoded = serde_json::to_vec(&canonical(described)).expect("JSON values encode");
    Sha256::digest(encoded).into()
}

/// The kept answer, sent again.
fn replay(kept: KeptAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    HttpResponse::build(status)
        .insert_header((REPLAYED_HEADER, "true"))
        .content_type("application/json")
        .body(kept.body)
}

/// Whether an answer with this status is kept: every one but 408, 429 and 5xx, which a
/// retry should run again.
fn is_kept(status: StatusCode) -> bool {
    !(status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error())
}

/// Reads the body and, for a request with a key, either replays its kept answer, refuses
/// it (409 while the same request runs, 422 for another request under the key), or
/// marks it running.
pub async fn begin(
    req: &HttpRequest,
    auth: &Auth,
    state: &web::Data<AppState>,
    query: &QueryMap,
    route: Route<'_>,
    payload: web::Payload,
) -> Result<Start, ApiError> {
    let key = key_of(req)?;
    let body = read_body(payload, &state.body).await?;
    let Some(key) = key else {
        let keeping = Keeping {
            request: None,
            state: state.clone(),
        };
        return Ok(Start::Run(Begun { body, keeping }));
    };
    let request = IdempotentRequest {
        token_id: auth.token.id,
        fingerprint: fingerprint(req.method(), route, query, &body, state),
        key,
    };
    let slot = (request.token_id, request.key.clone());
    {
        let mut running = state.idempotency.running.lock();
        if let Some(fingerprint) = running.get(&slot) {
            return Err(match *fingerprint == request.fingerprint {
                true => Code::IdempotencyInProgress.into(),
                false => Code::IdempotencyKeyReused.into(),
            });
        }
        running.insert(slot, request.fingerprint);
    }
    // From here on, dropping `keeping` marks the request as no longer running.
    let keeping = Keeping {
        request: Some(request.clone()),
        state: state.clone(),
    };
    let store = Arc::clone(&state.store);
    let (token_id, key) = (request.token_id, request.key.clone());
    let kept = blocking(move || Ok(store.kept_answer(token_id, &key)?)).await?;
    match kept {
        Some(kept) if kept.fingerprint == request.fingerprint => Ok(Start::Replay(replay(kept))),
        Some(_) => Err(Code::IdempotencyKeyReused.into()),
        None => Ok(Start::Run(Begun { body, keeping })),
    }
}

impl Keeping {
    /// The request whose answer a write keeps in its transaction, if it has a key.
    pub fn request(&self) -> Option<IdempotentRequest> {
        self.request.clone()
    }

    /// Finishes a request: a refusal's answer is kept now (a write's was kept with it).
    pub async fn finish(
        self,
        answer: Result<HttpResponse, ApiError>,
    ) -> Result<HttpResponse, ApiError> {
        let Some(request) = self.request.clone() else {
            return answer;
        };
        match &answer {
            Ok(_) => self.after_commit(&request).await,
            Err(refused) if is_kept(refused.status) => {
                let body = serde_json::to_vec(&ErrorBody {
                    error: &refused.message,
                    code: refused.code,
                })
                .expect("error bodies encode");
                let status = refused.status.as_u16();
                let store = Arc::clone(&self.state.store);
                let kept = blocking(move || Ok(store.keep_answer(&request, status, body)?)).await;
                if kept.is_err() {
                    // The refusal still answers; a retry runs again.
                    tracing::error!("a refusal's answer could not be kept");
                }
            }
            Err(_) => {}
        }
        answer
    }

    /// The faults of the crash tests, after a write committed (never armed in a build
    /// without the `fault-injection` feature).
    async fn after_commit(&self, request: &IdempotentRequest) {
        let faults = &self.state.idempotency.faults;
        let armed = |fault: &Option<String>| fault.as_deref() == Some(request.key.as_str());
        if armed(&faults.abort_after_commit) {
            eprintln!("fault injection: aborting after the commit, before the answer");
            std::process::abort();
        }
        if armed(&faults.pause_after_commit) {
            actix_web::rt::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// A write's answer to keep: `request`'s, rendered by `render`.
pub fn answer_to_keep<'a, T>(
    request: Option<&'a IdempotentRequest>,
    render: &'a (dyn Fn(&T) -> (u16, Vec<u8>) + Sync),
) -> Option<AnswerToKeep<'a, T>> {
    request.map(|request| AnswerToKeep { request, render })
}

/// The answer of a rendered write: the same bytes a replay sends.
pub fn rendered((status, body): (u16, Vec<u8>)) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .body(body)
}

/// Deletes kept answers past their 24 hours, every [`SWEEP_INTERVAL`], on a thread of
/// its own, for as long as the process runs.
pub fn spawn_sweeper(store: Arc<Store>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("kept-answer-sweeper".into())
        .spawn(move || loop {
            match store.sweep_kept_answers(Timestamp::now()) {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "expired idempotent answers deleted"),
                Err(err) => tracing::error!(error = %err, "sweeping kept answers failed"),
            }
            std::thread::sleep(SWEEP_INTERVAL);
        })
        .map(|_| ())
}
