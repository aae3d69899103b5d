//! A server, an app with three environments, and a client directory logged in and
//! linked to the app's Development environment.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::*;

/// A logged-in, linked client directory next to a running server.
pub struct Workspace {
    /// The server.
    pub server: Server,
    /// The app `shop` (Development, Staging, Production).
    pub app_id: String,
    /// `XDG_CONFIG_HOME` of the client.
    pub config_home: PathBuf,
    /// The working directory of the client (where `.coffer.json` is).
    pub dir: PathBuf,
    _temp: tempfile::TempDir,
}

impl Workspace {
    /// A server, the app `shop`, a login with the admin token and a link to Development.
    pub fn new() -> Workspace {
        let workspace = Workspace::unlinked();
        let admin = workspace.server.admin_token.clone();
        succeeded(&workspace.coffer_stdin(
            &[
                "login",
                "--addr",
                &workspace.server.base.clone(),
                "--token-stdin",
            ],
            format!("{admin}\n").as_bytes(),
        ));
        succeeded(&workspace.coffer(&["link", "--app", "shop", "--env", "Development"]));
        workspace
    }

    /// A server and the app `shop`, with no login and no link yet.
    pub fn unlinked() -> Workspace {
        let server = Server::start();
        let (app_id, _) = create_app(&server.admin(), "shop");
        let temp = tempfile::tempdir().unwrap();
        let config_home = temp.path().join("config");
        let dir = temp.path().join("project");
        std::fs::create_dir_all(&dir).unwrap();
        Workspace {
            server,
            app_id,
            config_home,
            dir,
            _temp: temp,
        }
    }

    /// `coffer <args>` as this client would run it, not started yet: the test's own
    /// `COFFER_*` variables removed, `PATH` kept so that `run` finds commands.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
        command
            .args(args)
            .current_dir(&self.dir)
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("HOME", self.dir.parent().unwrap())
            .env_remove("COFFER_ADDR")
            .env_remove("COFFER_TOKEN")
            .env_remove("COFFER_PROFILE")
            .stdin(Stdio::null());
        command
    }

    /// Runs `coffer <args>` to the end.
    pub fn coffer(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run coffer")
    }

    /// Runs `coffer <args>` with `input` on its stdin.
    pub fn coffer_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run coffer");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Creates secrets in `env` through the API (not through the client under test).
    pub fn seed(&self, env: &str, pairs: &[(&str, &str)]) -> Value {
        let secrets: Vec<Value> = pairs
            .iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
        let (status, body) = self.server.admin().post(
            &secrets_path(&self.app_id, env),
            json!({ "secrets": secrets }),
        );
        assert_eq!(status.as_u16(), 200, "{body}");
        body
    }

    /// Key → (value as stored, version) in `env`, through the API.
    pub fn stored(&self, env: &str) -> std::collections::BTreeMap<String, (String, u64)> {
        let (status, body) = self.server.admin().get(&format!(
            "{}&resolve=false",
            secrets_path(&self.app_id, env)
        ));
        assert_eq!(status.as_u16(), 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().unwrap().to_string(),
                    (
                        s["value"].as_str().unwrap().to_string(),
                        s["version"].as_u64().unwrap(),
                    ),
                )
            })
            .collect()
    }

    /// Updates one secret's value through the API.
    pub fn update(&self, env: &str, key: &str, value: &str) {
        let (_, listed) = self
            .server
            .admin()
            .get(&format!("{}&key={key}", secrets_path(&self.app_id, env)));
        let id = listed[0]["id"]
            .as_str()
            .expect("the secret exists")
            .to_string();
        let (status, body) = self.server.admin().put(
            &secrets_path(&self.app_id, env),
            json!({"secrets": [{"id": id, "value": value}]}),
        );
        assert_eq!(status.as_u16(), 200, "{body}");
    }
}

/// Asserts success; returns stdout.
#[track_caller]
pub fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {}: stdout {} stderr {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

/// Asserts the exit code and that stderr is one `error:` line (no backtrace); returns it.
#[track_caller]
pub fn failed_with(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    if code == 1 {
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    stderr
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}
