//! `coffer secrets list|get|set|delete`.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

#[test]
fn list_hides_values_unless_show_and_json_has_stable_fields() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("DB_URL", "postgres://db"), ("API_KEY", "k-123")],
    );

    let table = succeeded(&workspace.coffer(&["secrets", "list"]));
    assert!(
        table.contains("DB_URL") && table.contains("API_KEY"),
        "{table}"
    );
    assert!(
        !table.contains("postgres://db") && !table.contains("k-123"),
        "{table}"
    );
    assert!(table.contains("********"), "{table}");
    // Not a terminal: plain columns, no box drawing.
    assert!(!table.contains('│') && !table.contains('─'), "{table}");

    let shown = succeeded(&workspace.coffer(&["secrets", "list", "--show"]));
    assert!(
        shown.contains("postgres://db") && shown.contains("k-123"),
        "{shown}"
    );

    let listed: Value = serde_json::from_str(&succeeded(
        &workspace.coffer(&["secrets", "list", "--format", "json"]),
    ))
    .unwrap();
    let first = &listed[0];
    assert_eq!(first["key"], "API_KEY");
    assert_eq!(first["value"], Value::Null, "hidden in JSON too: {first}");
    for field in [
        "id",
        "key",
        "path",
        "value",
        "type",
        "tags",
        "comment",
        "version",
        "updatedAt",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    let listed: Value = serde_json::from_str(&succeeded(
        &workspace.coffer(&["secrets", "list", "--format", "json", "--show"]),
    ))
    .unwrap();
    assert_eq!(listed[1]["value"], "postgres://db");
}

#[test]
fn list_filters_by_tags() {
    let workspace = Workspace::new();
    let (status, body) = workspace.server.admin().post(
        &secrets_path(&workspace.app_id, "Development"),
        json!({"secrets": [
            {"key": "TAGGED", "value": "1", "tags": ["db"]},
            {"key": "UNTAGGED", "value": "2"},
        ]}),
    );
    assert_eq!(status.as_u16(), 200, "{body}");
    let listed: Value = serde_json::from_str(&succeeded(
        &workspace.coffer(&["secrets", "list", "--tags", "db", "--format", "json"]),
    ))
    .unwrap();
    let keys: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["TAGGED"]);
}

#[test]
fn get_prints_the_value_or_json_and_resolves_references() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("HOST", "db.internal"), ("URL", "postgres://${HOST}/app")],
    );
    assert_eq!(
        succeeded(&workspace.coffer(&["secrets", "get", "url"])),
        "postgres://db.internal/app\n"
    );
    let secret: Value = serde_json::from_str(&succeeded(
        &workspace.coffer(&["secrets", "get", "HOST", "--format", "json"]),
    ))
    .unwrap();
    assert_eq!(secret["value"], "db.internal");
    assert_eq!(secret["version"], 1);

    let line = failed_with(&workspace.coffer(&["secrets", "get", "MISSING"]), 1);
    assert!(
        line.contains("no secret 'MISSING' in environment Development"),
        "{line}"
    );
}

#[test]
fn set_creates_and_updates_all_given_keys_at_once() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("EXISTING", "old")]);
    succeeded(&workspace.coffer(&["secrets", "set", "EXISTING=new", "FRESH=a=b"]));
    let stored = workspace.stored("Development");
    assert_eq!(stored["EXISTING"], ("new".to_string(), 2));
    assert_eq!(
        stored["FRESH"],
        ("a=b".to_string(), 1),
        "only the first = splits"
    );
}

#[test]
fn set_reads_a_lone_key_from_stdin_keeping_inner_newlines() {
    let workspace = Workspace::new();
    let pem = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----";
    succeeded(&workspace.coffer_stdin(
        &["secrets", "set", "TLS_KEY"],
        format!("{pem}\n").as_bytes(),
    ));
    assert_eq!(workspace.stored("Development")["TLS_KEY"].0, pem);
}

#[test]
fn set_writes_nothing_when_one_entry_is_refused() {
    let workspace = Workspace::new();
    let out = workspace.coffer(&["secrets", "set", "GOOD=1", "BAD\u{7}KEY=2"]);
    let line = failed_with(&out, 1);
    assert!(line.contains("Invalid secret key"), "{line}");
    assert!(workspace.stored("Development").is_empty(), "all or nothing");
}

#[test]
fn delete_removes_the_given_keys_or_nothing() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("A", "1"), ("B", "2"), ("C", "3")]);
    let line = failed_with(&workspace.coffer(&["secrets", "delete", "A", "NOPE"]), 1);
    assert!(line.contains("not found, nothing deleted: NOPE"), "{line}");
    assert_eq!(workspace.stored("Development").len(), 3);

    let out = workspace.coffer(&["secrets", "delete", "a", "B"]);
    succeeded(&out);
    assert!(
        stderr(&out).contains("Deleted 2 secrets"),
        "{}",
        stderr(&out)
    );
    let left: Vec<String> = workspace.stored("Development").into_keys().collect();
    assert_eq!(left, ["C"]);
}

#[test]
fn flags_choose_another_environment_and_path_than_the_link() {
    let workspace = Workspace::new();
    let (status, body) = workspace.server.admin().post(
        &secrets_path(&workspace.app_id, "Staging"),
        json!({"secrets": [{"key": "NESTED", "value": "deep", "path": "/api"}]}),
    );
    assert_eq!(status.as_u16(), 200, "{body}");
    let out = workspace.coffer(&[
        "secrets", "get", "NESTED", "--env", "staging", "--path", "api/",
    ]);
    assert_eq!(succeeded(&out), "deep\n");
    succeeded(&workspace.coffer(&[
        "secrets", "set", "X=1", "--env", "Staging", "--path", "/api",
    ]));
    let (_, listed) = workspace.server.admin().get(&format!(
        "{}&key=X",
        secrets_path(&workspace.app_id, "Staging")
    ));
    assert_eq!(listed[0]["path"], "/api");
}
