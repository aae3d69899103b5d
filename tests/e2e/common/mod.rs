//! The shared test harness: the real `coffer` binary on an ephemeral loopback port with
//! a temporary data directory, and a real HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A running `coffer serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
    /// The data directory (kept alive by `_dir`).
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    /// The first admin (User) token of the data directory.
    pub admin_token: String,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    logs: Arc<Mutex<Vec<String>>>,
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

impl Server {
    /// A server on a new temporary data directory.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// A server on a new temporary data directory, with extra `serve` arguments.
    pub fn start_with(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// A server on a new temporary data directory, with extra `serve` arguments and
    /// environment variables (kept for every start on this directory).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let mut server = Server {
            child: None,
            base: String::new(),
            data_dir,
            _dir: Some(dir),
            admin_token: String::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            logs: Arc::new(Mutex::new(Vec::new())),
        };
        server.launch();
        assert_eq!(
            server.admin_token.len(),
            64,
            "admin token printed on first start"
        );
        server
    }

    /// A server on the data directory `data_dir`, which the caller keeps: created on first
    /// start, or an existing one (a restored copy, say). `admin_token` is empty when the
    /// directory already existed: it was printed when the directory was made.
    pub fn start_on(data_dir: &Path, args: &[&str]) -> Server {
        let mut server = Server {
            child: None,
            base: String::new(),
            data_dir: data_dir.to_path_buf(),
            _dir: None,
            admin_token: String::new(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            extra_env: Vec::new(),
            logs: Arc::new(Mutex::new(Vec::new())),
        };
        server.launch();
        server
    }

    /// Starts the process on `self.data_dir` and waits until it listens.
    fn launch(&mut self) {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--bind", "127.0.0.1:0", "--log-level", "info"])
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coffer");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel::<String>();
        let logs = Arc::clone(&self.logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                logs.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(token) = line.strip_prefix("Admin token: ") {
                        self.admin_token = token.trim().to_string();
                    }
                    if let Some(addr) = line.strip_prefix("Coffer listening on ") {
                        self.base = addr.trim().to_string();
                        break;
                    }
                }
                Err(_) => panic!(
                    "coffer did not start; stderr:\n{}",
                    self.logs.lock().unwrap().join("\n")
                ),
            }
        }
        self.child = Some(child);
    }

    /// Stops the server with SIGTERM and waits for it; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.wait()
    }

    /// Sends SIGTERM and returns at once (the server shuts down gracefully).
    pub fn send_sigterm(&self) {
        let child = self.child.as_ref().expect("server running");
        // The `kill` command sends SIGTERM without unsafe code in the tests.
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
    }

    /// Waits for the server to exit; returns its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        child.wait().expect("wait for coffer")
    }

    /// Kills the server with SIGKILL (no chance to flush).
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("server running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait for coffer");
    }

    /// Starts the server again on the same data directory (after `stop` or `kill`).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "stop or kill the server first");
        self.launch();
    }

    /// Stop then start again on the same data directory.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "graceful stop exits 0, got {status}");
        self.start_again();
    }

    /// Everything the server wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// A client acting with the admin User token.
    pub fn admin(&self) -> Api {
        self.client(Some(format!("Bearer User {}", self.admin_token)))
    }

    /// A client with the given Authorization header (or none).
    pub fn client(&self, authorization: Option<String>) -> Api {
        Api {
            http: Client::builder()
                .timeout(Duration::from_secs(30))
                .danger_accept_invalid_certs(true)
                .build()
                .expect("client"),
            base: self.base.clone(),
            authorization,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// A line of the server's `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client bound to one server and one Authorization header.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client.
    pub http: Client,
    /// Base URL.
    pub base: String,
    /// Authorization header value.
    pub authorization: Option<String>,
}

impl Api {
    /// Sends a request; returns status and body (JSON, or `Value::String` of the text
    /// when the body is not JSON, `Value::Null` when empty).
    pub fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        self.send_raw(method, path, bytes, &[])
    }

    /// Sends raw bytes with extra headers.
    pub fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().expect("request sent");
        let status = response.status();
        let text = response.text().expect("body read");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// GET.
    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None)
    }

    /// POST with a JSON body.
    pub fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Some(&body))
    }

    /// PUT with a JSON body.
    pub fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Some(&body))
    }

    /// DELETE with a JSON body.
    pub fn delete_with(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, Some(&body))
    }

    /// DELETE without a body.
    pub fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, None)
    }
}

/// Asserts an error answer: status, exact message, code.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: u16, message: &str, code: &str) {
    assert_eq!(answer.0.as_u16(), status, "status of {}", answer.1);
    assert_eq!(answer.1["error"], message, "message of {}", answer.1);
    assert_eq!(answer.1["code"], code, "code of {}", answer.1);
    assert_eq!(
        answer.1.as_object().map(|o| o.len()),
        Some(2),
        "only error and code: {}",
        answer.1
    );
}

/// Creates an app with the default environments; returns (app id, body).
pub fn create_app(api: &Api, name: &str) -> (String, Value) {
    let (status, body) = api.post("/v1/apps/", serde_json::json!({ "name": name }));
    assert_eq!(status.as_u16(), 201, "{body}");
    (body["id"].as_str().unwrap().to_string(), body)
}

/// Creates a token with the admin client; returns (token id, token secret).
pub fn create_token(api: &Api, body: Value) -> (String, String) {
    let (status, created) = api.post("/v1/tokens/", body);
    assert_eq!(status.as_u16(), 201, "{created}");
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

/// The secrets route of an app and environment.
pub fn secrets_path(app_id: &str, env: &str) -> String {
    format!("/v1/secrets/?app_id={app_id}&env={env}")
}

/// Client input as error messages quote it: at most 64 characters, then `…`.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The changes feed of an app, with extra query (e.g. `&env=Development&since=3`).
pub fn changes_path(app_id: &str, extra_query: &str) -> String {
    format!("/v1/changes/?app_id={app_id}{extra_query}")
}

/// How many changes feed requests the server holds open, from `/metrics`.
pub fn feed_waiting(server: &Server) -> u64 {
    let (status, text) = server.client(None).get("/metrics");
    assert_eq!(status, 200);
    let text = text.as_str().expect("metrics are text").to_owned();
    text.lines()
        .find_map(|line| line.strip_prefix("coffer_changes_waiting "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("coffer_changes_waiting in {text}"))
}

/// Returns once the server holds `n` changes feed requests open (read from `/metrics`,
/// the server's own count), or panics after `within`.
pub fn until_feed_waiting(server: &Server, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let waiting = feed_waiting(server);
        if waiting == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} feed requests waiting, not {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The raw meta key of the checkpoint of a data directory's one audit chain (chain 0).
pub const CHECKPOINT: &[u8] = b"audit_checkpoint/\0\0\0\0";

/// The raw key of the audit record at `seq` of a data directory's one chain (chain 0).
pub fn audit_key(seq: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number in a cursor of the audit log or the changes feed of a server with
/// one audit chain (`0:<seq>`).
pub fn chain_seq(cursor: &str) -> u64 {
    cursor
        .strip_prefix("0:")
        .and_then(|seq| seq.parse().ok())
        .unwrap_or_else(|| panic!("a cursor of the one chain 0: {cursor:?}"))
}
