//! `coffer diff` and `coffer completions`.

use serde_json::{json, Value};

use super::support::*;

#[test]
fn diff_names_keys_only_in_one_and_keys_that_differ_without_values() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("SAME", "x"), ("CHANGED", "dev"), ("DEV_ONLY", "1")],
    );
    workspace.seed(
        "Production",
        &[("SAME", "x"), ("CHANGED", "prod"), ("PROD_ONLY", "2")],
    );

    let table =
        succeeded(&workspace.coffer(&["diff", "--env", "Development", "--env", "Production"]));
    assert!(
        table.contains("only in Development") && table.contains("only in Production"),
        "{table}"
    );
    assert!(
        table.contains("values differ") && !table.contains("SAME"),
        "{table}"
    );
    assert!(
        !table.contains("dev ") && !table.contains("prod"),
        "values hidden: {table}"
    );

    let out = workspace.coffer(&[
        "diff",
        "--env",
        "Development",
        "--env",
        "Production",
        "--format",
        "json",
        "--show",
    ]);
    let report: Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(
        report,
        json!({"left": "Development", "right": "Production", "differences": [
            {"key": "CHANGED", "difference": "differs", "left": "dev", "right": "prod"},
            {"key": "DEV_ONLY", "difference": "only_left", "left": "1", "right": null},
            {"key": "PROD_ONLY", "difference": "only_right", "left": null, "right": "2"},
        ]})
    );
    failed_with(&workspace.coffer(&["diff", "--env", "Development"]), 2);
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let workspace = Workspace::unlinked();
    for (shell, marker) in [
        ("bash", "_coffer()"),
        ("zsh", "#compdef coffer"),
        ("fish", "complete -c coffer"),
    ] {
        let script = succeeded(&workspace.coffer(&["completions", shell]));
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..200.min(script.len())]
        );
        assert!(
            script.contains("secrets") && script.contains("rollback"),
            "{shell}"
        );
    }
}
