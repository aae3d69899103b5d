//! `coffer export`: the environment's secrets (references resolved) on stdout.

use std::collections::BTreeMap;

use base64::Engine as _;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::target::{self, TargetArgs};
use super::CommandResult;
use super::{dotenv, output};

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// `KEY="value"` lines that dotenv parsers read back exactly.
    Dotenv,
    /// One JSON object, key to value.
    Json,
    /// One YAML mapping, key to value.
    Yaml,
    /// A Kubernetes `v1 Secret` manifest with base64 `data`.
    K8s,
}

/// `coffer export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "dotenv")]
    format: ExportFormat,
    /// `metadata.name` of the Kubernetes Secret (default: coffer-<env>).
    #[arg(long)]
    name: Option<String>,
    /// `metadata.namespace` of the Kubernetes Secret.
    #[arg(long)]
    namespace: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KubernetesSecret<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    #[serde(rename = "type")]
    secret_type: &'static str,
    data: BTreeMap<&'a str, String>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

/// A Kubernetes object name from an environment name: lower case, `-` for anything else.
fn kubernetes_name(env: &str) -> String {
    let name: String = env
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("coffer-{}", name.trim_matches('-'))
}

fn warn_skipped(skipped: &[&str], why: &str) {
    if !skipped.is_empty() {
        eprintln!(
            "warning: left out {} key(s) {why}: {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
}

/// Runs `coffer export`.
pub fn export(args: ExportArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let secrets = target::list_secrets(&client.api, &target, &[])?;
    let pairs = target::flatten(&secrets);
    let text = match args.format {
        ExportFormat::Dotenv => {
            let (good, bad): (Vec<_>, Vec<_>) =
                pairs.iter().partition(|(k, _)| dotenv::is_variable_name(k));
            warn_skipped(
                &bad.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "that are not variable names",
            );
            good.iter()
                .map(|(k, v)| dotenv::line(k, v) + "\n")
                .collect::<String>()
        }
        ExportFormat::Json => {
            let map: BTreeMap<&str, &str> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            serde_json::to_string_pretty(&map).expect("strings serialise") + "\n"
        }
        ExportFormat::Yaml => {
            let map: BTreeMap<&str, &str> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            serde_yaml::to_string(&map).expect("strings serialise")
        }
        ExportFormat::K8s => {
            // Kubernetes data keys: `[-._a-zA-Z0-9]+`.
            let valid = |k: &str| {
                k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            };
            let (good, bad): (Vec<_>, Vec<_>) = pairs.iter().partition(|(k, _)| valid(k));
            warn_skipped(
                &bad.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                "that Kubernetes does not allow",
            );
            let manifest = KubernetesSecret {
                api_version: "v1",
                kind: "Secret",
                metadata: Metadata {
                    name: args
                        .name
                        .clone()
                        .unwrap_or_else(|| kubernetes_name(&target.env)),
                    namespace: args.namespace.as_deref(),
                },
                secret_type: "Opaque",
                data: good
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str(),
                            base64::engine::general_purpose::STANDARD.encode(v),
                        )
                    })
                    .collect(),
            };
            serde_yaml::to_string(&manifest).expect("the manifest serialises")
        }
    };
    output::write_stdout(text.as_bytes());
    Ok(None)
}
