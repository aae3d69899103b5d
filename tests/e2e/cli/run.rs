//! `coffer run -- CMD`: the child's environment, exit code and signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::support::*;

#[test]
fn the_child_gets_the_secrets_over_the_inherited_environment() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("GREETING", "from coffer"), ("ONLY_SECRET", "s")],
    );
    let out = workspace
        .command(&[
            "run",
            "--",
            "sh",
            "-c",
            "echo \"$GREETING|$ONLY_SECRET|$INHERITED\"",
        ])
        .env("GREETING", "inherited")
        .env("INHERITED", "kept")
        .output()
        .unwrap();
    assert_eq!(succeeded(&out), "from coffer|s|kept\n");
}

#[test]
fn a_multi_line_value_reaches_the_child_intact() {
    let workspace = Workspace::new();
    let pem =
        "-----BEGIN KEY-----\nline one\n  line two \"quoted\" $NOT_EXPANDED\n-----END KEY-----\n";
    workspace.seed("Development", &[("PEM", pem)]);
    let out = workspace.coffer(&["run", "--", "printenv", "PEM"]);
    assert_eq!(succeeded(&out), format!("{pem}\n"));
}

#[test]
fn the_exit_code_is_passed_on_and_a_signal_n_becomes_128_plus_n() {
    let workspace = Workspace::new();
    let out = workspace.coffer(&["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = workspace.coffer(&["run", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    let out = workspace.coffer(&["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    let out = workspace.coffer(&["run", "--", "definitely-not-a-command-xyz"]);
    let line = failed_with(&out, 1);
    assert!(
        line.contains("command not found: definitely-not-a-command-xyz"),
        "{line}"
    );
}

#[test]
fn sigint_sigterm_and_sighup_are_forwarded_to_the_child() {
    let workspace = Workspace::new();
    for (signal, code) in [("INT", 41), ("TERM", 42), ("HUP", 43)] {
        // The child says it is ready once its trap is set; then `coffer` (not the
        // child) gets the signal.
        let script = format!("trap 'echo got {signal}; exit {code}' {signal}; echo ready; while :; do sleep 0.05; done");
        let mut child = workspace
            .command(&["run", "--", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        assert_eq!(lines.next().unwrap().unwrap(), format!("got {signal}"));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "after SIG{signal}");
    }
}

#[test]
fn a_secret_named_path_is_left_out_unless_allow_reserved() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("PATH", "/nowhere"), ("HOME", "/nowhere"), ("APP", "1")],
    );
    let out = workspace.coffer(&["run", "--", "sh", "-c", "echo \"$APP $PATH\""]);
    let stdout = succeeded(&out);
    assert!(
        stdout.starts_with("1 ") && !stdout.contains("/nowhere"),
        "{stdout}"
    );
    let warnings: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = &warnings[0];
    assert!(
        warning.contains("PATH")
            && warning.contains("HOME")
            && warning.contains("--allow-reserved"),
        "{warning}"
    );

    let out = workspace.coffer(&[
        "run",
        "--allow-reserved",
        "--",
        "/bin/sh",
        "-c",
        "echo \"$PATH\"",
    ]);
    assert_eq!(succeeded(&out), "/nowhere\n");
}

#[test]
fn keys_that_are_not_variable_names_are_skipped_with_one_warning() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("MY KEY", "a"), ("1PASSWORD_TOKEN", "b"), ("GOOD", "c")],
    );
    let out = workspace.coffer(&["run", "--", "sh", "-c", "echo $GOOD"]);
    assert_eq!(succeeded(&out), "c\n");
    let warnings: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("1PASSWORD_TOKEN") && warnings[0].contains("MY KEY"),
        "{}",
        warnings[0]
    );
}

#[test]
fn the_token_never_reaches_the_child() {
    let workspace = Workspace::new();
    let token = workspace.server.admin_token.clone();
    workspace.seed("Development", &[("APP", "1")]);
    for out in [
        workspace.coffer(&["run", "--", "env"]),
        workspace
            .command(&["run", "--", "env"])
            .env("COFFER_TOKEN", &token)
            .output()
            .unwrap(),
    ] {
        let env = succeeded(&out);
        assert!(env.contains("APP=1"), "{env}");
        assert!(
            !env.contains(&token),
            "the token is in the child's environment"
        );
    }
}
