//! `coffer diff --env A --env B`: keys only in one environment, and keys whose values differ.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::output::{self, MASK};
use super::target::{self, Client, TargetArgs};
use super::{CliError, CommandResult};

/// Table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    /// Aligned columns.
    Table,
    /// A JSON array of differences.
    Json,
}

/// `coffer diff`
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The two environments, as `--env A --env B`.
    #[arg(long = "env", num_args = 1, required = true)]
    envs: Vec<String>,
    /// App id (default: from .coffer.json).
    #[arg(long, conflicts_with = "app")]
    app_id: Option<String>,
    /// App name (User tokens).
    #[arg(long)]
    app: Option<String>,
    /// Secret path (default: from .coffer.json, else every path).
    #[arg(long)]
    path: Option<String>,
    /// Profile to act with.
    #[arg(long, env = "COFFER_PROFILE")]
    profile: Option<String>,
    /// Show the differing values.
    #[arg(long)]
    show: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: DiffFormat,
}

/// Runs `coffer diff`.
pub fn diff(args: DiffArgs) -> CommandResult {
    let [a, b] = args.envs.as_slice() else {
        return Err(CliError::usage(
            "diff compares two environments: --env A --env B",
        ));
    };
    let targets = TargetArgs {
        app_id: args.app_id.clone(),
        app: args.app.clone(),
        env: None,
        path: args.path.clone(),
        profile: args.profile.clone(),
    };
    let client = Client::open(args.profile.as_deref())?;
    let read = |env: &String| -> Result<BTreeMap<String, String>, CliError> {
        let target = targets.resolve_with(&client, Some(env.clone()))?;
        let secrets = target::list_secrets(&client.api, &target, &[])?;
        Ok(secrets
            .iter()
            .map(|s| {
                (
                    format!("{}{}", path_prefix(&s.path), s.key),
                    s.value.clone(),
                )
            })
            .collect())
    };
    let (left, right) = (read(a)?, read(b)?);
    // (key, difference as a stable word, left value, right value)
    let mut differences = Vec::new();
    let keys: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for key in keys {
        let difference = match (left.get(key), right.get(key)) {
            (Some(_), None) => "only_left",
            (None, Some(_)) => "only_right",
            (Some(x), Some(y)) if x != y => "differs",
            _ => continue,
        };
        differences.push((key.clone(), difference, left.get(key), right.get(key)));
    }
    let shown = |v: Option<&String>| -> Value {
        match (v, args.show) {
            (Some(v), true) => json!(v),
            _ => Value::Null,
        }
    };
    match args.format {
        DiffFormat::Json => output::print_json(&json!({
            "left": a,
            "right": b,
            "differences": differences
                .iter()
                .map(|(key, difference, l, r)| {
                    json!({"key": key, "difference": difference, "left": shown(*l), "right": shown(*r)})
                })
                .collect::<Vec<_>>(),
        })),
        DiffFormat::Table => {
            let cell = |v: Option<&String>| match (v, args.show) {
                (None, _) => String::new(),
                (Some(v), true) => output::one_line(v),
                (Some(_), false) => MASK.to_string(),
            };
            let rows = differences
                .iter()
                .map(|(key, difference, l, r)| {
                    let words = match *difference {
                        "only_left" => format!("only in {a}"),
                        "only_right" => format!("only in {b}"),
                        _ => "values differ".to_string(),
                    };
                    vec![key.clone(), words, cell(*l), cell(*r)]
                })
                .collect();
            output::print_table(&["KEY", "DIFFERENCE", a, b], rows);
        }
    }
    Ok(None)
}

/// Keys at the root are shown bare, others as `/path/KEY`.
fn path_prefix(path: &str) -> String {
    if path == "/" {
        String::new()
    } else {
        format!("{path}/")
    }
}
