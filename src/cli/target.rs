//! Who we are (the token's identity) and what a command acts on: an app, an
//! environment and optionally a path, from flags or the nearest `.coffer.json`.

use std::path::{Path, PathBuf};

use clap::Args;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::{self, Connection, TokenKind};
use super::http::{Api, ApiFailure};
use super::CliError;

/// The file `coffer link` writes and every command looks for, here or in a parent.
pub const LINK_FILE: &str = ".coffer.json";

/// What the server says about the calling token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// User or Service.
    pub kind: TokenKind,
    /// A Service token's app.
    pub app_id: Option<String>,
}

/// Asks the server who the token is (`GET /v1/tokens/self/`). A server without that
/// route is asked `GET /v1/apps/` instead: a User token may list apps, a Service token
/// is refused with `This action requires a User token.`. When the kind is not known
/// from the token's form, both type words are tried (a server may refuse the wrong one).
pub fn identify(connection: &Connection) -> Result<Identity, CliError> {
    let words = match connection.kind {
        Some(kind) => vec![kind],
        None => vec![TokenKind::User, TokenKind::Service],
    };
    let mut last = None;
    for word in words {
        match identify_as(connection, word)? {
            Ok(identity) => return Ok(identity),
            Err(refused) => last = Some(refused),
        }
    }
    Err(last.expect("at least one word was tried").into())
}

/// `Ok(Err(_))` when the server refused the token under this type word.
fn identify_as(
    connection: &Connection,
    word: TokenKind,
) -> Result<Result<Identity, ApiFailure>, CliError> {
    let refused_token = |failure: &ApiFailure| {
        matches!(failure, ApiFailure::Status { status: 403, message, .. }
            if message == "Invalid token" || message == "Token expired or deleted")
    };
    let api = Api::new(connection, word)?;
    match api.call(Method::GET, "/v1/tokens/self/", &[], None) {
        Ok(answer) => {
            let body = &answer.body;
            let kind = body["type"]
                .as_str()
                .or(body["kind"].as_str())
                .and_then(TokenKind::parse)
                .ok_or_else(|| {
                    CliError::failed("the server's /v1/tokens/self/ answer names no token type")
                })?;
            Ok(Ok(Identity {
                kind,
                app_id: body["appId"].as_str().map(str::to_string),
            }))
        }
        Err(failure) if matches!(failure.status(), Some(404 | 405)) => {
            match api.call(Method::GET, "/v1/apps/", &[], None) {
                Ok(_) => Ok(Ok(Identity {
                    kind: TokenKind::User,
                    app_id: None,
                })),
                Err(ApiFailure::Status {
                    status: 403,
                    message,
                    ..
                }) if message == "This action requires a User token." => Ok(Ok(Identity {
                    kind: TokenKind::Service,
                    app_id: None,
                })),
                Err(failure) if refused_token(&failure) => Ok(Err(failure)),
                Err(failure) => Err(failure.into()),
            }
        }
        Err(failure) if refused_token(&failure) => Ok(Err(failure)),
        Err(failure) => Err(failure.into()),
    }
}

/// A connected API client with a known token kind.
#[derive(Debug)]
pub struct Client {
    /// The API client.
    pub api: Api,
    /// What the token is.
    pub identity: Identity,
    /// Where the client connects, with which token.
    pub connection: Connection,
}

impl Client {
    /// The client for a profile (or `COFFER_ADDR`/`COFFER_TOKEN`).
    pub fn open(profile: Option<&str>) -> Result<Client, CliError> {
        let connection = config::connection(profile)?;
        let identity = match connection.kind {
            Some(kind) => Identity { kind, app_id: None },
            None => identify(&connection)?,
        };
        let api = Api::new(&connection, identity.kind)?;
        Ok(Client {
            api,
            identity,
            connection,
        })
    }

    /// The id of the app named `name` (case-insensitive); needs a User token.
    pub fn app_id_by_name(&self, name: &str) -> Result<String, CliError> {
        if self.identity.kind == TokenKind::Service {
            return Err(CliError::usage(
                "a Service token cannot look apps up by name: pass --app-id",
            ));
        }
        let apps = self.api.call(Method::GET, "/v1/apps/", &[], None)?.body;
        apps["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|app| {
                app["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|app| app["id"].as_str().map(str::to_string))
            .ok_or_else(|| CliError::failed(format!("no app named '{name}'")))
    }
}

/// `.coffer.json`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkFile {
    /// App id.
    pub app_id: String,
    /// App name, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Environment name or id.
    pub env: String,
    /// Path within the environment; absent means every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The nearest `.coffer.json`, in the current directory or a parent.
pub fn find_link() -> Result<Option<(PathBuf, LinkFile)>, CliError> {
    let cwd =
        std::env::current_dir().map_err(|e| CliError::failed(format!("current directory: {e}")))?;
    let mut dir: Option<&Path> = Some(&cwd);
    while let Some(here) = dir {
        let candidate = here.join(LINK_FILE);
        if candidate.is_file() {
            let text = std::fs::read_to_string(&candidate)
                .map_err(|e| CliError::failed(format!("{}: {e}", candidate.display())))?;
            let link = serde_json::from_str(&text).map_err(|e| {
                CliError::failed(format!(
                    "{} is not a valid link file: {e}",
                    candidate.display()
                ))
            })?;
            return Ok(Some((candidate, link)));
        }
        dir = here.parent();
    }
    Ok(None)
}

/// Normalises a path as the server does: one leading `/`, no repeated or trailing `/`.
pub fn normalise_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// `--app-id`/`--app`, `--env`, `--path` and `--profile`, each falling back to
/// `.coffer.json`.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// App id (default: from .coffer.json).
    #[arg(long, conflicts_with = "app")]
    pub app_id: Option<String>,
    /// App name (User tokens).
    #[arg(long)]
    pub app: Option<String>,
    /// Environment name or id (default: from .coffer.json).
    #[arg(long)]
    pub env: Option<String>,
    /// Secret path (default: from .coffer.json; there, absent means every path).
    #[arg(long)]
    pub path: Option<String>,
    /// Profile to act with.
    #[arg(long, env = "COFFER_PROFILE")]
    pub profile: Option<String>,
}

/// An app, an environment and optionally one path.
#[derive(Debug, Clone)]
pub struct Target {
    /// App id.
    pub app_id: String,
    /// Environment name or id.
    pub env: String,
    /// One path, or every path when `None`.
    pub path: Option<String>,
}

impl Target {
    /// `app_id`, `env` and `path` (when set) as query parameters.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("app_id", self.app_id.clone()), ("env", self.env.clone())];
        if let Some(path) = &self.path {
            query.push(("path", path.clone()));
        }
        query
    }

    /// The path new secrets are written to: the target's, or the root.
    pub fn write_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

impl TargetArgs {
    /// Connects and works out the target.
    pub fn resolve(&self) -> Result<(Client, Target), CliError> {
        let client = Client::open(self.profile.as_deref())?;
        let target = self.resolve_with(&client, self.env.clone())?;
        Ok((client, target))
    }

    /// The target with `env` (which may come from elsewhere, as for `diff`).
    pub fn resolve_with(&self, client: &Client, env: Option<String>) -> Result<Target, CliError> {
        let link = if self.app_id.is_some() && env.is_some() {
            None
        } else {
            find_link()?.map(|(_, link)| link)
        };
        let app_id = match (&self.app_id, &self.app) {
            (Some(id), _) => id.clone(),
            (None, Some(name)) => client.app_id_by_name(name)?,
            (None, None) => match &link {
                Some(link) => link.app_id.clone(),
                None => {
                    return Err(CliError::usage(format!(
                        "no app: pass --app-id or --app, or run `coffer link` (no {LINK_FILE} here or in a parent)"
                    )))
                }
            },
        };
        let env = match env.or_else(|| link.as_ref().map(|l| l.env.clone())) {
            Some(env) => env,
            None => {
                return Err(CliError::usage(format!(
                    "no environment: pass --env, or run `coffer link` (no {LINK_FILE} here or in a parent)"
                )))
            }
        };
        let path = self
            .path
            .clone()
            .or_else(|| link.and_then(|l| l.path))
            .map(|p| normalise_path(&p));
        Ok(Target { app_id, env, path })
    }
}

/// A secret as listed.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Its id.
    pub id: String,
    /// Key, upper-case.
    pub key: String,
    /// Path.
    pub path: String,
    /// Value (references resolved when listed that way).
    pub value: String,
    /// The whole object the server answered.
    pub raw: Value,
}

/// `GET /v1/secrets/` for the target, plus extra query parameters.
pub fn list_secrets(
    api: &Api,
    target: &Target,
    extra: &[(&str, &str)],
) -> Result<Vec<Secret>, ApiFailure> {
    let mut query: Vec<(&str, String)> = target.query();
    query.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = api.call(Method::GET, "/v1/secrets/", &query, None)?.body;
    Ok(body
        .as_array()
        .into_iter()
        .flatten()
        .map(|raw| Secret {
            id: raw["id"].as_str().unwrap_or_default().to_string(),
            key: raw["key"].as_str().unwrap_or_default().to_string(),
            path: raw["path"].as_str().unwrap_or("/").to_string(),
            value: raw["value"].as_str().unwrap_or_default().to_string(),
            raw: raw.clone(),
        })
        .collect())
}

/// The one live secret named `key` in the target (at its path, or anywhere when the
/// key is at one path only).
pub fn find_secret(api: &Api, target: &Target, key: &str) -> Result<Secret, CliError> {
    let mut found = list_secrets(api, target, &[("key", key), ("resolve", "false")])?;
    match found.len() {
        0 => Err(CliError::failed(format!(
            "no secret '{}' in environment {}{}",
            key.trim().to_uppercase(),
            target.env,
            target
                .path
                .as_deref()
                .map(|p| format!(" at {p}"))
                .unwrap_or_default()
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(CliError::usage(format!(
            "'{}' is at several paths ({}): pass --path",
            key.trim().to_uppercase(),
            found
                .iter()
                .map(|s| s.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Key → value for injection or export: one entry per key; where a key is at several
/// paths, the first path in the server's order (the root first) wins, with a warning.
pub fn flatten(secrets: &[Secret]) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeMap::new();
    let mut shadowed = Vec::new();
    for secret in secrets {
        if seen.contains_key(&secret.key) {
            shadowed.push(format!(
                "{}/{}",
                secret.path.trim_end_matches('/'),
                secret.key
            ));
        } else {
            seen.insert(secret.key.clone(), secret.value.clone());
        }
    }
    if !shadowed.is_empty() {
        eprintln!(
            "warning: these keys are also at another path, and the first one is used: {} (pass --path to choose)",
            shadowed.join(", ")
        );
    }
    seen.into_iter().collect()
}
