//! `coffer import`: a dotenv or JSON file, written in atomic batches of at most 1,000
//! keys, each sent with an `Idempotency-Key` derived from what it writes, so a re-run
//! or a retry after a lost answer never writes a batch twice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::dotenv;
use super::http::{Answer, Api, ApiFailure};
use super::target::{self, Target, TargetArgs};
use super::{CliError, CommandResult};

/// The most entries the server takes in one batch.
pub const BATCH_SIZE: usize = 1000;

/// How many times a batch is sent when no answer (or a passing failure) comes back.
const ATTEMPTS: u32 = 5;

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// JSON when the file is named *.json or starts with `{`, dotenv otherwise.
    Auto,
    /// `KEY=value` lines.
    Dotenv,
    /// One JSON object, key to string value.
    Json,
}

/// `coffer import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import.
    file: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// File format.
    #[arg(long, value_enum, default_value = "auto")]
    format: ImportFormat,
    /// Update keys that already exist (without it, an existing key refuses the import).
    #[arg(long, conflicts_with = "skip_existing")]
    upsert: bool,
    /// Leave keys that already exist as they are and import the rest.
    #[arg(long)]
    skip_existing: bool,
}

/// What to do about keys that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Refuse,
    Upsert,
    SkipExisting,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Refuse => "create",
            Mode::Upsert => "upsert",
            Mode::SkipExisting => "skip-existing",
        }
    }
}

fn parse_json(text: &str) -> Result<Vec<(String, String)>, CliError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        CliError::failed(format!(
            "not a valid JSON file: line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(CliError::failed(
            "a JSON import must be one object of key to value",
        ));
    };
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            _ => Err(CliError::failed(format!(
                "the value of '{key}' is not a string, number or boolean"
            ))),
        })
        .collect()
}

/// Parses the file in the given (or detected) format.
fn read_pairs(args: &ImportArgs, text: &str) -> Result<Vec<(String, String)>, CliError> {
    let format = match args.format {
        ImportFormat::Auto => {
            let named_json = args
                .file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            if named_json || text.trim_start().starts_with('{') {
                ImportFormat::Json
            } else {
                ImportFormat::Dotenv
            }
        }
        other => other,
    };
    match format {
        ImportFormat::Json => parse_json(text),
        _ => dotenv::parse(text),
    }
}

/// The `Idempotency-Key` of one batch: a digest of the file, the options, the target,
/// the batch's index and what it writes. The same run again gives the same keys; a
/// batch that writes something else (after `--skip-existing` left more out) a new one.
fn idempotency_key(file: &[u8], mode: Mode, target: &Target, index: usize, body: &Value) -> String {
    let mut digest = Sha256::new();
    for part in [
        b"coffer import v1".as_slice(),
        &Sha256::digest(file),
        mode.name().as_bytes(),
        target.app_id.as_bytes(),
        target.env.to_lowercase().as_bytes(),
        target.write_path().as_bytes(),
        &(index as u64).to_be_bytes(),
        &serde_json::to_vec(body).expect("JSON serialises"),
    ] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    format!("coffer-import-{}", hex::encode(digest.finalize()))
}

/// Sends one batch, again after a lost answer, a 5xx, a 429 or an in-progress 409;
/// the `Idempotency-Key` makes every repeat safe.
fn send_batch(
    api: &Api,
    query: &[(&str, &str)],
    body: &Value,
    key: &str,
) -> Result<Answer, ApiFailure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let request = api
            .request(Method::POST, "/v1/secrets/")
            .query(query)
            .header("Idempotency-Key", key)
            .json(body);
        let result = api.send(request);
        let passing = match &result {
            Err(ApiFailure::Transport(_)) => true,
            Err(ApiFailure::Status { status, code, .. }) => {
                *status >= 500 || *status == 429 || (*status == 409 && code.contains("progress"))
            }
            Ok(_) => false,
        };
        if !passing || attempt >= ATTEMPTS {
            return result;
        }
        std::thread::sleep(Duration::from_millis(250 << attempt));
    }
}

fn existing_refusal(keys: &[String]) -> CliError {
    CliError::failed(format!(
        "{} key(s) already exist, nothing imported: {} (--upsert updates them, --skip-existing keeps them)",
        keys.len(),
        keys.join(", ")
    ))
}

/// Runs `coffer import`.
pub fn import(args: ImportArgs) -> CommandResult {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError::failed(format!("{}: {e}", args.file.display())))?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| CliError::failed(format!("{}: not UTF-8 text", args.file.display())))?;
    let mode = match (args.upsert, args.skip_existing) {
        (true, _) => Mode::Upsert,
        (_, true) => Mode::SkipExisting,
        _ => Mode::Refuse,
    };
    // One entry per key (keys are case-insensitive); a later line wins, as in a shell.
    let mut by_key: BTreeMap<String, (usize, String, String)> = BTreeMap::new();
    let mut repeated = BTreeSet::new();
    for (index, (key, value)) in read_pairs(&args, &text)?.into_iter().enumerate() {
        let upper = key.trim().to_uppercase();
        if let Some((first, _, _)) = by_key.get(&upper) {
            repeated.insert(upper.clone());
            let first = *first;
            by_key.insert(upper, (first, key, value));
        } else {
            by_key.insert(upper, (index, key, value));
        }
    }
    if !repeated.is_empty() {
        eprintln!(
            "warning: these keys are in the file more than once, the last value is used: {}",
            repeated.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut pairs: Vec<(usize, String, String, String)> = by_key
        .into_iter()
        .map(|(upper, (index, key, value))| (index, upper, key, value))
        .collect();
    pairs.sort_by_key(|p| p.0);

    let (client, target) = args.target.resolve()?;
    let mut scope = target.clone();
    scope.path = Some(target.write_path().to_string());
    let existing: BTreeSet<String> =
        target::list_secrets(&client.api, &scope, &[("resolve", "false")])?
            .into_iter()
            .map(|s| s.key)
            .collect();
    let present: Vec<String> = pairs
        .iter()
        .filter(|p| existing.contains(&p.1))
        .map(|p| p.1.clone())
        .collect();
    let skipped = match mode {
        Mode::Refuse if !present.is_empty() => return Err(existing_refusal(&present)),
        Mode::SkipExisting => {
            pairs.retain(|p| !existing.contains(&p.1));
            present.len()
        }
        _ => 0,
    };
    if pairs.is_empty() {
        eprintln!("Nothing to import ({skipped} key(s) already exist).");
        return Ok(None);
    }

    let mut query: Vec<(&str, &str)> = vec![("app_id", &target.app_id), ("env", &target.env)];
    if mode == Mode::Upsert {
        query.push(("upsert", "true"));
    }
    let batches: Vec<&[(usize, String, String, String)]> = pairs.chunks(BATCH_SIZE).collect();
    let progress = (batches.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(pairs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} keys ({eta} left)")
                .expect("a valid template"),
        );
        bar
    });
    let (mut written, mut replayed) = (0usize, 0usize);
    for (index, batch) in batches.iter().enumerate() {
        let entries: Vec<Value> = batch
            .iter()
            .map(|(_, _, key, value)| json!({"key": key, "value": value, "path": target.write_path()}))
            .collect();
        let body = json!({ "secrets": entries });
        let key = idempotency_key(&bytes, mode, &target, index, &body);
        match send_batch(&client.api, &query, &body, &key) {
            Ok(answer) => {
                let was_replayed = answer
                    .headers
                    .get("Idempotent-Replayed")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                if was_replayed {
                    replayed += batch.len();
                } else {
                    written += batch.len();
                }
            }
            Err(failure) => {
                if let Some(bar) = &progress {
                    bar.abandon();
                }
                let before = if index == 0 {
                    String::new()
                } else {
                    let again = if mode == Mode::Refuse {
                        "run it again with --skip-existing"
                    } else {
                        "run the same command again"
                    };
                    format!(
                        " (batches 1 to {index} of {} were imported; {again} to finish)",
                        batches.len()
                    )
                };
                if failure.status() == Some(409) && mode == Mode::Refuse {
                    // Someone created some of these keys since we looked: name them.
                    let now: BTreeSet<String> =
                        target::list_secrets(&client.api, &scope, &[("resolve", "false")])?
                            .into_iter()
                            .map(|s| s.key)
                            .collect();
                    let taken: Vec<String> = batch
                        .iter()
                        .filter(|p| now.contains(&p.1))
                        .map(|p| p.1.clone())
                        .collect();
                    if !taken.is_empty() {
                        let mut error = existing_refusal(&taken);
                        error.message.push_str(&before);
                        return Err(error);
                    }
                }
                let mut error = CliError::from(failure);
                error.message = format!(
                    "batch {} of {}: {}{before}",
                    index + 1,
                    batches.len(),
                    error.message
                );
                return Err(error);
            }
        }
        if let Some(bar) = &progress {
            bar.inc(batch.len() as u64);
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let mut summary = format!("Imported {written} secret(s)");
    if replayed > 0 {
        summary.push_str(&format!(", {replayed} already imported by an earlier run"));
    }
    if skipped > 0 {
        summary.push_str(&format!(", {skipped} left as they were"));
    }
    eprintln!("{summary}.");
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(env: &str) -> Target {
        Target {
            app_id: "6f1c2a44-0000-4000-8000-000000000000".to_string(),
            env: env.to_string(),
            path: None,
        }
    }

    #[test]
    fn the_idempotency_key_is_the_same_for_the_same_batch_and_differs_otherwise() {
        let body = json!({"secrets": [{"key": "A", "value": "1", "path": "/"}]});
        let other = json!({"secrets": [{"key": "A", "value": "2", "path": "/"}]});
        let key = idempotency_key(b"A=1\n", Mode::Refuse, &target("Development"), 0, &body);
        assert_eq!(
            key,
            idempotency_key(b"A=1\n", Mode::Refuse, &target("development"), 0, &body)
        );
        assert!(key.starts_with("coffer-import-") && key.len() <= 255);
        for different in [
            idempotency_key(b"A=2\n", Mode::Refuse, &target("Development"), 0, &body),
            idempotency_key(b"A=1\n", Mode::Upsert, &target("Development"), 0, &body),
            idempotency_key(b"A=1\n", Mode::Refuse, &target("Staging"), 0, &body),
            idempotency_key(b"A=1\n", Mode::Refuse, &target("Development"), 1, &body),
            idempotency_key(b"A=1\n", Mode::Refuse, &target("Development"), 0, &other),
        ] {
            assert_ne!(key, different);
        }
    }
}
