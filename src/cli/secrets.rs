//! `coffer secrets list|get|set|delete`.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use super::http::ApiFailure;
use super::output::{self, MASK};
use super::target::{self, Secret, TargetArgs};
use super::{CliError, CommandResult};

/// `coffer secrets ...`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// List secrets (values hidden unless --show).
    List(ListArgs),
    /// Print one secret's value.
    Get(GetArgs),
    /// Create or update secrets, all or none: KEY=VALUE..., or KEY alone to read the value
    /// from stdin (a prompt without echo on a terminal).
    Set(SetArgs),
    /// Delete secrets by key, all or none.
    Delete(DeleteArgs),
}

/// Table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array with stable field names.
    Json,
}

/// `coffer secrets list`
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Show values.
    #[arg(long)]
    show: bool,
    /// Only secrets with any of these tags (comma-separated).
    #[arg(long)]
    tags: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

/// How `get` prints.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GetFormat {
    /// The value alone, then a newline.
    Value,
    /// The secret as a JSON object.
    Json,
}

/// `coffer secrets get`
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key (case-insensitive).
    key: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "value")]
    format: GetFormat,
}

/// `coffer secrets set`
#[derive(Debug, Args)]
pub struct SetArgs {
    /// KEY=VALUE pairs, or one KEY whose value is read from stdin.
    #[arg(required = true, value_name = "KEY=VALUE|KEY")]
    entries: Vec<String>,
    #[command(flatten)]
    target: TargetArgs,
    /// Type of new secrets: secret, sealed or config (existing ones keep theirs).
    #[arg(long = "type", value_parser = ["secret", "sealed", "config"])]
    kind: Option<String>,
    /// Comment for every secret set.
    #[arg(long)]
    comment: Option<String>,
}

/// `coffer secrets delete`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Keys to delete.
    #[arg(required = true)]
    keys: Vec<String>,
    #[command(flatten)]
    target: TargetArgs,
}

/// Runs a `coffer secrets` command.
pub fn run(command: SecretsCommand) -> CommandResult {
    match command {
        SecretsCommand::List(args) => list(args),
        SecretsCommand::Get(args) => get(args),
        SecretsCommand::Set(args) => set(args),
        SecretsCommand::Delete(args) => delete(args),
    }
}

/// The JSON shape of a listed secret: stable names, the value `null` when hidden.
pub fn secret_json(secret: &Secret, show: bool) -> Value {
    let raw = &secret.raw;
    json!({
        "id": secret.id,
        "key": secret.key,
        "path": secret.path,
        "value": if show { json!(secret.value) } else { Value::Null },
        "type": raw["type"],
        "tags": raw["tags"],
        "comment": raw["comment"],
        "version": raw["version"],
        "updatedAt": raw["updatedAt"],
    })
}

fn list(args: ListArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let mut extra = Vec::new();
    if let Some(tags) = &args.tags {
        extra.push(("tags", tags.as_str()));
    }
    let secrets = target::list_secrets(&client.api, &target, &extra)?;
    match args.format {
        ListFormat::Json => output::print_json(&Value::Array(
            secrets.iter().map(|s| secret_json(s, args.show)).collect(),
        )),
        ListFormat::Table => {
            let rows = secrets
                .iter()
                .map(|s| {
                    let tags: Vec<&str> = s.raw["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    vec![
                        s.key.clone(),
                        if args.show {
                            output::one_line(&s.value)
                        } else {
                            MASK.to_string()
                        },
                        s.path.clone(),
                        s.raw["type"].as_str().unwrap_or_default().to_string(),
                        tags.join(","),
                        s.raw["version"].to_string(),
                    ]
                })
                .collect();
            output::print_table(&["KEY", "VALUE", "PATH", "TYPE", "TAGS", "VERSION"], rows);
        }
    }
    Ok(None)
}

fn get(args: GetArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let mut found = target::list_secrets(&client.api, &target, &[("key", args.key.as_str())])?;
    let secret = match found.len() {
        1 => found.remove(0),
        // Not found, or at several paths: the same words as everywhere else.
        _ => target::find_secret(&client.api, &target, &args.key)?,
    };
    match args.format {
        GetFormat::Value => output::write_stdout(format!("{}\n", secret.value).as_bytes()),
        GetFormat::Json => output::print_json(&secret_json(&secret, true)),
    }
    Ok(None)
}

/// Reads one value from stdin: a prompt without echo on a terminal, else everything
/// piped in, less one final newline (what `echo` and here-strings add).
fn value_from_stdin(key: &str) -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Value for {key}: "))
            .map_err(|e| CliError::failed(format!("reading the value: {e}")));
    }
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| CliError::failed(format!("reading the value from stdin: {e}")))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

fn set(args: SetArgs) -> CommandResult {
    let mut pairs = Vec::new();
    let mut from_stdin = 0;
    for entry in &args.entries {
        match entry.split_once('=') {
            Some((key, value)) => pairs.push((key.to_string(), Some(value.to_string()))),
            None => {
                from_stdin += 1;
                pairs.push((entry.clone(), None));
            }
        }
    }
    if from_stdin > 0 && args.entries.len() > 1 {
        return Err(CliError::usage(
            "a KEY without =VALUE reads its value from stdin, so it must be the only argument",
        ));
    }
    if let Some((key, _)) = pairs.iter().find(|(k, _)| k.trim().is_empty()) {
        return Err(CliError::usage(format!("empty key in '{key}=…'")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some((key, _)) = pairs
        .iter()
        .find(|(k, _)| !seen.insert(k.trim().to_uppercase()))
    {
        return Err(CliError::usage(format!("'{}' is given twice", key.trim())));
    }
    let (client, target) = args.target.resolve()?;
    let mut entries = Vec::new();
    for (key, value) in pairs {
        let value = match value {
            Some(value) => value,
            None => value_from_stdin(&key)?,
        };
        let mut entry = json!({"key": key, "value": value, "path": target.write_path()});
        if let Some(kind) = &args.kind {
            entry["type"] = json!(kind);
        }
        if let Some(comment) = &args.comment {
            entry["comment"] = json!(comment);
        }
        entries.push(entry);
    }
    let mut query: Vec<(&str, String)> = target.query();
    query.retain(|(name, _)| *name != "path");
    query.push(("upsert", "true".to_string()));
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = json!({ "secrets": entries });
    let answer = client
        .api
        .call(Method::POST, "/v1/secrets/", &query, Some(&body))
        .map_err(|failure| match &failure {
            // With `upsert=true` a live key is updated, never a conflict: a 409 here is a
            // server that ignored the parameter.
            ApiFailure::Status { status: 409, message, .. } if message == "Duplicate secret found" => {
                CliError::failed(format!(
                    "the server at {} did not update the existing key(s): it does not support POST /v1/secrets/?upsert=true (older than this client)",
                    client.api.base()
                ))
            }
            _ => CliError::from(failure),
        })?;
    for secret in answer.body.as_array().into_iter().flatten() {
        let version = secret["version"].as_u64().unwrap_or(0);
        eprintln!(
            "{} {} (version {version})",
            if version == 1 { "created" } else { "updated" },
            secret["key"].as_str().unwrap_or_default(),
        );
    }
    Ok(None)
}

fn delete(args: DeleteArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let listed = target::list_secrets(&client.api, &target, &[("resolve", "false")])?;
    let mut ids = Vec::new();
    let mut missing = Vec::new();
    for key in &args.keys {
        let wanted = key.trim().to_uppercase();
        let matches: Vec<&Secret> = listed.iter().filter(|s| s.key == wanted).collect();
        match matches.as_slice() {
            [] => missing.push(wanted),
            [one] => ids.push(one.id.clone()),
            several => {
                return Err(CliError::usage(format!(
                    "'{wanted}' is at several paths ({}): pass --path",
                    several
                        .iter()
                        .map(|s| s.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
    if !missing.is_empty() {
        return Err(CliError::failed(format!(
            "not found, nothing deleted: {}",
            missing.join(", ")
        )));
    }
    ids.dedup();
    let query = target.query();
    let query: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| *k != "path")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let answer = client.api.call(
        Method::DELETE,
        "/v1/secrets/",
        &query,
        Some(&json!({ "secrets": ids })),
    )?;
    eprintln!("{}", answer.body["message"].as_str().unwrap_or("Deleted"));
    Ok(None)
}
