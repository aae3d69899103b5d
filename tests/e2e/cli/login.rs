//! `coffer login`, `coffer link`, and how the client finds its server, token and target.

use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn hex64(byte: char) -> String {
    std::iter::repeat_n(byte, 64).collect()
}

#[test]
fn login_keeps_the_token_in_a_0600_file_and_never_prints_it() {
    let workspace = Workspace::unlinked();
    let token = workspace.server.admin_token.clone();
    let out = workspace.coffer_stdin(
        &["login", "--addr", &workspace.server.base, "--token-stdin"],
        format!("{token}\n").as_bytes(),
    );
    let stdout = succeeded(&out);
    assert!(!stdout.contains(&token) && !stderr(&out).contains(&token));
    assert!(stderr(&out).contains("User token"), "{}", stderr(&out));

    let file = workspace.config_home.join("coffer/config.toml");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "config file mode {mode:o}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&workspace.server.base) && text.contains("kind = \"user\""),
        "{text}"
    );
}

#[test]
fn link_writes_coffer_json_and_commands_find_it_from_a_subdirectory() {
    let workspace = Workspace::new();
    let link: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace.dir.join(".coffer.json")).unwrap())
            .unwrap();
    assert_eq!(link["appId"], workspace.app_id.as_str());
    assert_eq!(link["env"], "Development");
    workspace.seed("Development", &[("FOUND", "yes")]);

    let nested = workspace.dir.join("src/deep");
    std::fs::create_dir_all(&nested).unwrap();
    let out = workspace
        .command(&["secrets", "get", "FOUND"])
        .current_dir(&nested)
        .output()
        .unwrap();
    assert_eq!(succeeded(&out), "yes\n");
}

#[test]
fn a_phase_service_token_logs_in_with_its_bearer_part_as_a_service_token() {
    let workspace = Workspace::unlinked();
    workspace.seed("Development", &[("SCOPED", "visible")]);
    let (status, created) = workspace.server.admin().post(
        "/v1/tokens/",
        json!({"name": "ci", "type": "service", "appId": workspace.app_id,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    assert_eq!(status.as_u16(), 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let phase_token = created["phaseToken"].as_str().unwrap().to_string();
    assert!(phase_token.starts_with(&format!("pss_service:v2:{token}:")));
    let share0 = phase_token.split(':').nth(4).unwrap().to_string();
    let out = workspace.coffer_stdin(
        &[
            "login",
            "--addr",
            &workspace.server.base,
            "--token-stdin",
            "--profile",
            "ci",
        ],
        phase_token.as_bytes(),
    );
    succeeded(&out);
    assert!(stderr(&out).contains("Service token"), "{}", stderr(&out));
    let text = std::fs::read_to_string(workspace.config_home.join("coffer/config.toml")).unwrap();
    assert!(
        text.contains("[profiles.ci]") && text.contains("kind = \"service\""),
        "{text}"
    );
    assert!(
        text.contains(&token) && !text.contains(&share0),
        "only the bearer part is kept"
    );

    let out = workspace.coffer(&[
        "secrets",
        "get",
        "SCOPED",
        "--profile",
        "ci",
        "--app-id",
        &workspace.app_id,
        "--env",
        "Development",
    ]);
    assert_eq!(succeeded(&out), "visible\n");
    // Outside its scope the server's own words come through.
    let out = workspace.coffer(&[
        "secrets",
        "list",
        "--profile",
        "ci",
        "--app-id",
        &workspace.app_id,
        "--env",
        "Production",
    ]);
    let line = failed_with(&out, 1);
    assert!(
        line.contains("Service token cannot access this environment"),
        "{line}"
    );
}

#[test]
fn a_user_token_is_found_out_from_a_pss_user_token_too() {
    let workspace = Workspace::unlinked();
    let token = workspace.server.admin_token.clone();
    let user_token = format!(
        "pss_user:v1:{token}:{}:{}:{}",
        hex64('1'),
        hex64('2'),
        hex64('3')
    );
    let out = workspace.coffer(&[
        "login",
        "--addr",
        &workspace.server.base,
        "--token",
        &user_token,
    ]);
    succeeded(&out);
    assert!(stderr(&out).contains("User token"), "{}", stderr(&out));
}

#[test]
fn coffer_addr_and_coffer_token_override_the_profile() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("K", "v")]);
    let (_, reader) = create_token(
        &workspace.server.admin(),
        json!({"name": "reader", "type": "service", "appId": workspace.app_id,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    // A plain token in COFFER_TOKEN: its kind is asked of the server.
    let out = workspace
        .command(&["secrets", "get", "K"])
        .env("COFFER_TOKEN", &reader)
        .output()
        .unwrap();
    assert_eq!(succeeded(&out), "v\n");
    // A server that is not there: one clear line, exit 1.
    let out = workspace
        .command(&["secrets", "get", "K"])
        .env("COFFER_ADDR", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let line = failed_with(&out, 1);
    assert!(
        line.contains("cannot reach the server at http://127.0.0.1:9"),
        "{line}"
    );
}

#[test]
fn a_wrong_or_revoked_token_gets_one_line_and_exit_1() {
    let workspace = Workspace::unlinked();
    let wrong = hex64('0');
    let out = workspace.coffer(&["login", "--addr", &workspace.server.base, "--token", &wrong]);
    let line = failed_with(&out, 1);
    assert!(
        line.contains("the server refused the token (Token expired or deleted)"),
        "{line}"
    );
    assert!(!line.contains(&wrong));
    assert!(
        !workspace.config_home.join("coffer/config.toml").exists(),
        "nothing stored"
    );

    let out = workspace.coffer(&[
        "login",
        "--addr",
        &workspace.server.base,
        "--token",
        "not-a-token",
    ]);
    let line = failed_with(&out, 2);
    assert!(
        line.contains("not a Coffer token") && !line.contains("not-a-token"),
        "{line}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let workspace = Workspace::unlinked();
    let token = workspace.server.admin_token.clone();
    succeeded(&workspace.coffer(&["login", "--addr", &workspace.server.base, "--token", &token]));
    // Nothing linked and no --env.
    let out = workspace.coffer(&["secrets", "list"]);
    let line = failed_with(&out, 2);
    assert!(line.contains("coffer link"), "{line}");
    // What clap refuses.
    failed_with(
        &workspace.coffer(&["secrets", "list", "--format", "xml"]),
        2,
    );
    failed_with(&workspace.coffer(&["run"]), 2);
    // Not logged in at all.
    let fresh = Workspace::unlinked();
    let line = failed_with(
        &fresh.coffer(&["secrets", "list", "--env", "Development"]),
        2,
    );
    assert!(line.contains("coffer login"), "{line}");
}

#[test]
fn a_server_the_client_cannot_verify_is_one_tls_line_and_ca_cert_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let mut workspace = Workspace::unlinked();
    workspace.server = Server::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let token = workspace.server.admin_token.clone();
    let base = workspace.server.base.clone();
    assert!(base.starts_with("https://"));

    let out = workspace.coffer(&["login", "--addr", &base, "--token", &token]);
    let line = failed_with(&out, 1);
    assert!(
        line.contains(&format!("TLS failure talking to {base}")),
        "{line}"
    );

    let out = workspace.coffer(&[
        "login",
        "--addr",
        &base,
        "--token",
        &token,
        "--ca-cert",
        cert.to_str().unwrap(),
    ]);
    succeeded(&out);
    let (app_id, _) = create_app(&workspace.server.admin(), "tls-app");
    let out = workspace.coffer(&["secrets", "list", "--app-id", &app_id, "--env", "Staging"]);
    succeeded(&out);
}

#[test]
fn logout_forgets_the_profile_and_its_token() {
    let workspace = Workspace::new();
    let token = workspace.server.admin_token.clone();
    succeeded(&workspace.coffer(&["logout"]));
    let text = std::fs::read_to_string(workspace.config_home.join("coffer/config.toml")).unwrap();
    assert!(!text.contains(&token), "{text}");
    let line = failed_with(&workspace.coffer(&["secrets", "list"]), 2);
    assert!(line.contains("not logged in"), "{line}");
}
