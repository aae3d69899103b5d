//! `coffer history` and `coffer rollback`.

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::{json, Value};

use super::output::{self, MASK};
use super::target::{self, TargetArgs};
use super::CommandResult;

/// Table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HistoryFormat {
    /// Aligned columns.
    Table,
    /// The versions as a JSON array.
    Json,
}

/// `coffer history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The key (case-insensitive).
    key: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Show each version's value.
    #[arg(long)]
    show: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: HistoryFormat,
}

/// `coffer rollback`
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The key (case-insensitive).
    key: String,
    /// The version to bring back (as a new version).
    #[arg(long)]
    version: u64,
    #[command(flatten)]
    target: TargetArgs,
}

fn actor(version: &Value) -> String {
    let actor = &version["actor"];
    let kind = actor["kind"].as_str().unwrap_or("?");
    match actor["tokenId"].as_str() {
        Some(id) => format!("{kind} token {id}"),
        None => kind.to_string(),
    }
}

/// Runs `coffer history`.
pub fn history(args: HistoryArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let secret = target::find_secret(&client.api, &target, &args.key)?;
    let query = [
        ("app_id", target.app_id.as_str()),
        ("env", target.env.as_str()),
    ];
    let body = client
        .api
        .call(
            Method::GET,
            &format!("/v1/secrets/{}/history/", secret.id),
            &query,
            None,
        )
        .map_err(|f| f.or_missing_route(&client.api, "GET /v1/secrets/{id}/history/"))?
        .body;
    let versions: Vec<Value> = body["data"].as_array().cloned().unwrap_or_default();
    match args.format {
        HistoryFormat::Json => output::print_json(&Value::Array(
            versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v["version"],
                        "action": v["action"],
                        "key": v["key"],
                        "path": v["path"],
                        "value": if args.show { v["value"].clone() } else { Value::Null },
                        "type": v["type"],
                        "actor": v["actor"],
                        "createdAt": v["createdAt"],
                    })
                })
                .collect(),
        )),
        HistoryFormat::Table => {
            let mut header = vec!["VERSION", "ACTION", "ACTOR", "TIME"];
            if args.show {
                header.push("VALUE");
            }
            let rows = versions
                .iter()
                .map(|v| {
                    let mut row = vec![
                        v["version"].to_string(),
                        v["action"].as_str().unwrap_or_default().to_string(),
                        actor(v),
                        v["createdAt"].as_str().unwrap_or_default().to_string(),
                    ];
                    if args.show {
                        row.push(output::one_line(v["value"].as_str().unwrap_or(MASK)));
                    }
                    row
                })
                .collect();
            output::print_table(&header, rows);
        }
    }
    Ok(None)
}

/// Runs `coffer rollback`.
pub fn rollback(args: RollbackArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let secret = target::find_secret(&client.api, &target, &args.key)?;
    let query = [
        ("app_id", target.app_id.as_str()),
        ("env", target.env.as_str()),
    ];
    let body = client
        .api
        .call(
            Method::POST,
            &format!("/v1/secrets/{}/rollback/", secret.id),
            &query,
            Some(&json!({"version": args.version, "expectedVersion": secret.raw["version"]})),
        )
        .map_err(|f| f.or_missing_route(&client.api, "POST /v1/secrets/{id}/rollback/"))?
        .body;
    eprintln!(
        "{} is back to version {}'s content, as version {}.",
        secret.key, args.version, body["version"]
    );
    Ok(None)
}
