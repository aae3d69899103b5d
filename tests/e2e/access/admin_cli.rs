//! The admin commands (`coffer app|env|token ...`) against a running server, with
//! `COFFER_ADDR` and `COFFER_TOKEN`.

use std::process::{Command, Output};

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// Runs `coffer <args>` against `server` with `token` in `COFFER_TOKEN`.
fn coffer(server: &Server, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
    command
        .args(args)
        .env_remove("COFFER_TOKEN")
        .env("COFFER_ADDR", &server.base);
    if let Some(token) = token {
        command.env("COFFER_TOKEN", token);
    }
    command.output().expect("run coffer")
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "exit {}: {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn admin_commands_manage_apps_environments_and_tokens() {
    let server = Server::start();
    let admin_token = server.admin_token.clone();
    let token = Some(admin_token.as_str());

    let out = coffer(
        &server,
        token,
        &["app", "create", "billing", "--description", "money"],
    );
    let app: Value = serde_json::from_str(&succeeded(&out)).expect("app as JSON");
    let app_id = app["id"].as_str().unwrap().to_string();
    assert_eq!(app["name"], "billing");
    let names: Vec<&str> = app["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Development", "Staging", "Production"]);

    let out = coffer(
        &server,
        token,
        &["env", "create", "--app-id", &app_id, "Qa"],
    );
    let env: Value = serde_json::from_str(&succeeded(&out)).expect("env as JSON");
    assert_eq!(env["name"], "Qa");
    let admin = server.admin();
    let (_, envs) = admin.get(&format!("/v1/environments/?app_id={app_id}"));
    assert_eq!(envs["data"].as_array().unwrap().len(), 4, "{envs}");

    let out = coffer(
        &server,
        token,
        &[
            "token",
            "create",
            "--name",
            "ci",
            "--app-id",
            &app_id,
            "--env",
            "Development,Qa",
            "--permissions",
            "read",
        ],
    );
    let printed = succeeded(&out);
    let secret = printed.trim();
    assert!(
        secret.len() == 64
            && secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "the token alone on stdout: {printed:?}"
    );
    let (_, tokens) = admin.get("/v1/tokens/");
    let listed = tokens["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .expect("token listed")
        .clone();
    let token_id = listed["id"].as_str().unwrap().to_string();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&token_id));
    assert_eq!(listed["permissions"], json!(["read"]));
    assert_eq!(
        listed["environments"],
        json!([app["environments"][0]["id"], env["id"]])
    );

    // The printed token works, within its scope.
    let ci = server.client(service_header(secret));
    assert_eq!(ci.get(&secrets_path(&app_id, "Qa")).0, 200);
    let create = json!({"secrets": [{"key": "K", "value": "v"}]});
    assert_denied(&ci.post(&secrets_path(&app_id, "Qa"), create), NO_CREATE);
    assert_denied(&ci.get(&secrets_path(&app_id, "Staging")), OTHER_ENV);

    succeeded(&coffer(&server, token, &["token", "revoke", &token_id]));
    assert_denied(&ci.get(&secrets_path(&app_id, "Qa")), GONE);

    // Refusals from the server become a non-zero exit with its message.
    let out = coffer(&server, Some(secret), &["app", "create", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403 Token expired or deleted"));
    let out = coffer(&server, token, &["app", "create", "billing"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("409"));
    let out = coffer(
        &server,
        token,
        &[
            "token",
            "create",
            "--name",
            "x",
            "--app-id",
            &app_id,
            "--allowed-ips",
            "10.0.0.0/33",
            "--env",
            "Qa",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid IP or CIDR: '10.0.0.0/33'"));
    // Without a token the command does not start.
    let out = coffer(&server, None, &["app", "create", "nope"]);
    assert!(!out.status.success());
    let (_, apps) = admin.get("/v1/apps/");
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "{apps}");
}
