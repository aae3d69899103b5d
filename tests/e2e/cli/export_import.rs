//! `coffer export` and `coffer import`: formats, round trips, conflicts and re-runs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::support::*;

/// Values that trip quoting up.
const AWKWARD: &[(&str, &str)] = &[
    (
        "MULTI_LINE",
        "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n",
    ),
    ("QUOTES", "she said \"hi\" and 'bye'"),
    ("BACKSLASHES", "C:\\path\\to\\ and a trailing \\"),
    ("DOLLARS", "$HOME ${PATH} $ $$"),
    ("HASH", "# not a comment # really"),
    ("SPACES", "  leading and trailing  "),
    ("CRLF", "one\r\ntwo"),
    ("EMPTY", ""),
    ("UNICODE", "ünïcødé ✓"),
];

fn values(stored: BTreeMap<String, (String, u64)>) -> BTreeMap<String, String> {
    stored.into_iter().map(|(k, (v, _))| (k, v)).collect()
}

#[test]
fn export_then_import_round_trips_every_value_byte_for_byte_in_dotenv_and_json() {
    let workspace = Workspace::new();
    workspace.seed("Development", AWKWARD);
    let expected = values(workspace.stored("Development"));
    assert_eq!(expected.len(), AWKWARD.len());
    for (format, env, file) in [
        ("dotenv", "Staging", "out.env"),
        ("json", "Production", "out.json"),
    ] {
        let exported = succeeded(&workspace.coffer(&["export", "--format", format]));
        std::fs::write(workspace.dir.join(file), &exported).unwrap();
        succeeded(&workspace.coffer(&["import", file, "--env", env]));
        assert_eq!(
            values(workspace.stored(env)),
            expected,
            "round trip through {format}"
        );
    }
}

#[test]
fn export_formats() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("DB_URL", "postgres://db"), ("PEM", "a\nb")],
    );

    let dotenv = succeeded(&workspace.coffer(&["export"]));
    assert_eq!(dotenv, "DB_URL=\"postgres://db\"\nPEM=\"a\\nb\"\n");

    let json: Value = serde_json::from_str(&succeeded(
        &workspace.coffer(&["export", "--format", "json"]),
    ))
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"DB_URL": "postgres://db", "PEM": "a\nb"})
    );

    let yaml: BTreeMap<String, String> = serde_yaml::from_str(&succeeded(
        &workspace.coffer(&["export", "--format", "yaml"]),
    ))
    .unwrap();
    assert_eq!(yaml["PEM"], "a\nb");
    assert_eq!(yaml.len(), 2);

    let manifest: Value = serde_yaml::from_str(&succeeded(&workspace.coffer(&[
        "export",
        "--format",
        "k8s",
        "--namespace",
        "prod",
    ])))
    .unwrap();
    assert_eq!(manifest["apiVersion"], "v1");
    assert_eq!(manifest["kind"], "Secret");
    assert_eq!(manifest["type"], "Opaque");
    assert_eq!(manifest["metadata"]["name"], "coffer-development");
    assert_eq!(manifest["metadata"]["namespace"], "prod");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(manifest["data"]["PEM"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, b"a\nb");
}

#[test]
fn an_import_that_meets_existing_keys_changes_nothing_and_names_them() {
    let workspace = Workspace::new();
    workspace.seed(
        "Development",
        &[("TAKEN", "original"), ("ALSO_TAKEN", "original")],
    );
    std::fs::write(
        workspace.dir.join("new.env"),
        "FRESH=1\nTAKEN=2\nALSO_TAKEN=3\n",
    )
    .unwrap();
    let line = failed_with(&workspace.coffer(&["import", "new.env"]), 1);
    assert!(
        line.contains("2 key(s) already exist, nothing imported: TAKEN, ALSO_TAKEN"),
        "{line}"
    );
    let stored = values(workspace.stored("Development"));
    assert_eq!(stored.len(), 2, "FRESH was not created: {stored:?}");
    assert_eq!(stored["TAKEN"], "original");

    let out = workspace.coffer(&["import", "new.env", "--skip-existing"]);
    succeeded(&out);
    let stored = values(workspace.stored("Development"));
    assert_eq!(stored["FRESH"], "1");
    assert_eq!(
        stored["TAKEN"], "original",
        "--skip-existing keeps what was there"
    );

    // The same import again finds everything there and writes nothing.
    let before = workspace.stored("Development");
    let out = workspace.coffer(&["import", "new.env", "--skip-existing"]);
    succeeded(&out);
    let said = stderr(&out);
    assert!(
        said.contains("Nothing to import (3 key(s) already exist)"),
        "{said}"
    );
    assert_eq!(workspace.stored("Development"), before, "no version moved");
}

#[test]
fn import_upsert_updates_existing_keys_and_a_rerun_writes_nothing_twice() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("TAKEN", "original")]);
    std::fs::write(
        workspace.dir.join("new.json"),
        r#"{"TAKEN": "updated", "FRESH": "1"}"#,
    )
    .unwrap();
    succeeded(&workspace.coffer(&["import", "new.json", "--upsert"]));
    let stored = workspace.stored("Development");
    assert_eq!(stored["TAKEN"], ("updated".to_string(), 2));
    assert_eq!(stored["FRESH"], ("1".to_string(), 1));

    let out = workspace.coffer(&["import", "new.json", "--upsert"]);
    succeeded(&out);
    assert!(
        stderr(&out).contains("2 already imported by an earlier run"),
        "{}",
        stderr(&out)
    );
    assert_eq!(workspace.stored("Development"), stored, "no version moved");
}

#[test]
fn an_import_over_one_batch_goes_in_batches_of_1000() {
    let workspace = Workspace::new();
    let text: String = (0..2500)
        .map(|i| format!("KEY_{i:04}=\"value {i}\"\n"))
        .collect();
    std::fs::write(workspace.dir.join("big.env"), text).unwrap();
    let out = workspace.coffer(&["import", "big.env"]);
    succeeded(&out);
    assert!(
        stderr(&out).contains("Imported 2500 secret(s)"),
        "{}",
        stderr(&out)
    );
    let stored = workspace.stored("Development");
    assert_eq!(stored.len(), 2500);
    assert_eq!(stored["KEY_2499"].0, "value 2499");
}

#[test]
fn a_file_that_does_not_parse_is_refused_without_quoting_it() {
    let workspace = Workspace::new();
    std::fs::write(workspace.dir.join("bad.env"), "OK=1\nBROKEN=\"hunter2\n").unwrap();
    let line = failed_with(&workspace.coffer(&["import", "bad.env"]), 1);
    assert!(
        line.contains("line 2") && !line.contains("hunter2"),
        "{line}"
    );
    std::fs::write(workspace.dir.join("bad.json"), r#"{"A": {"nested": 1}}"#).unwrap();
    let line = failed_with(&workspace.coffer(&["import", "bad.json"]), 1);
    assert!(line.contains("'A' is not a string"), "{line}");
    assert!(workspace.stored("Development").is_empty());
}
