//! The operator's day two, end to end: `coffer backup` of a running server while writes
//! go on, `coffer restore` into a new data directory (and its refusals), and `coffer
//! rekey` of a stopped server, killed at every step and run again.

mod backup;
mod rekey;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::common::*;

/// Runs `coffer <args>`, with `COFFER_ADDR` and `COFFER_TOKEN` set when given.
pub fn coffer(server: Option<&Server>, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
    command
        .args(args)
        .env_remove("COFFER_TOKEN")
        .env_remove("COFFER_MASTER_KEY_FILE")
        .env_remove("COFFER_DATA_DIR");
    if let Some(server) = server {
        command.env("COFFER_ADDR", &server.base);
    }
    if let Some(token) = token {
        command.env("COFFER_TOKEN", token);
    }
    command.output().expect("run coffer")
}

/// The path as an argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Asserts the command succeeded; returns its stdout.
#[track_caller]
pub fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {}: {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts the command failed; returns its stderr.
#[track_caller]
pub fn failed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected a failure: {} {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// A fresh key file (64 hex characters, mode 0600) at `path`.
pub fn new_key_file(path: &Path) -> PathBuf {
    let bytes: [u8; 32] = rand::random();
    std::fs::write(path, hex::encode(bytes)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// An app with secrets in Development, one of them at a second version, and a Service
/// token of that environment.
pub struct Shop {
    pub app_id: String,
    pub service_token: String,
}

impl Shop {
    pub fn stock(server: &Server) -> Shop {
        let admin = server.admin();
        let (app_id, _) = create_app(&admin, "shop");
        let path = secrets_path(&app_id, "Development");
        let (status, created) = admin.post(
            &path,
            json!({"secrets": [
                {"key": "DB_URL", "value": "postgres://shop@db/shop"},
                {"key": "API_KEY", "value": "sk_live_42", "path": "/payments"},
            ]}),
        );
        assert_eq!(status, 200, "{created}");
        let id = created[0]["id"].as_str().unwrap();
        let (status, updated) = admin.put(
            &path,
            json!({"secrets": [{"id": id, "value": "postgres://shop@db2/shop"}]}),
        );
        assert_eq!(status, 200, "{updated}");
        let (_, service_token) = create_token(
            &admin,
            json!({"name": "ci", "type": "service", "appId": app_id,
                   "environments": ["Development"], "permissions": ["read"]}),
        );
        Shop {
            app_id,
            service_token,
        }
    }

    /// What the server serves of the shop: its secrets (by the admin and by the Service
    /// token), the history of each, and the tokens.
    pub fn served(&self, server: &Server, admin_token: &str) -> Value {
        let admin = server.client(Some(format!("Bearer User {admin_token}")));
        let path = secrets_path(&self.app_id, "Development");
        let (status, secrets) = admin.get(&path);
        assert_eq!(status, 200, "{secrets}");
        let service = server.client(Some(format!("Bearer Service {}", self.service_token)));
        let (status, seen) = service.get(&path);
        assert_eq!(status, 200, "the Service token works: {seen}");
        assert_eq!(seen, secrets);
        let histories: Vec<Value> = secrets
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let id = s["id"].as_str().unwrap();
                let history = format!(
                    "/v1/secrets/{id}/history/?app_id={}&env=Development",
                    self.app_id
                );
                let (status, versions) = admin.get(&history);
                assert_eq!(status, 200, "{versions}");
                versions
            })
            .collect();
        let (status, tokens) = admin.get("/v1/tokens/");
        assert_eq!(status, 200, "{tokens}");
        let tokens: Vec<Value> = tokens["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| json!([t["id"], t["name"], t["type"]]))
            .collect();
        json!({"secrets": secrets, "histories": histories, "tokens": tokens})
    }
}

/// Every audit entry a server serves, oldest first.
pub fn audit_chain(server: &Server, admin_token: &str) -> Vec<Value> {
    let admin = server.client(Some(format!("Bearer User {admin_token}")));
    let mut entries = Vec::new();
    let mut since = "1".to_string();
    loop {
        let (status, page) = admin.get(&format!("/v1/audit/?limit=1000&since={since}"));
        assert_eq!(status, 200, "{page}");
        entries.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => since = next.to_string(),
            None => return entries,
        }
    }
}
