//! `coffer history` and `coffer rollback`.

use serde_json::Value;

use super::support::*;

#[test]
fn history_lists_versions_newest_first_and_rollback_brings_one_back() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("DB_PASSWORD", "first")]);
    workspace.update("Development", "DB_PASSWORD", "second");

    let versions: Value = serde_json::from_str(&succeeded(&workspace.coffer(&[
        "history",
        "DB_PASSWORD",
        "--format",
        "json",
    ])))
    .unwrap();
    let numbers: Vec<u64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    assert_eq!(versions[1]["action"], "create");
    assert_eq!(versions[0]["action"], "update");
    assert_eq!(
        versions[0]["value"],
        Value::Null,
        "values hidden unless --show"
    );
    assert_eq!(versions[0]["actor"]["kind"], "user");

    let table = succeeded(&workspace.coffer(&["history", "DB_PASSWORD"]));
    assert!(
        table.contains("VERSION") && table.contains("ACTOR") && table.contains("update"),
        "{table}"
    );
    assert!(
        !table.contains("first") && !table.contains("second"),
        "{table}"
    );

    succeeded(&workspace.coffer(&["rollback", "DB_PASSWORD", "--version", "1"]));
    assert_eq!(
        workspace.stored("Development")["DB_PASSWORD"],
        ("first".to_string(), 3)
    );

    let line = failed_with(
        &workspace.coffer(&["rollback", "DB_PASSWORD", "--version", "9"]),
        1,
    );
    assert!(line.contains("Version 9 of secret"), "{line}");
}
