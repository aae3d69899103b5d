//! `POST /v1/secrets/?upsert=true` in API.md: one atomic batch of creates and updates,
//! each entry matched by (path, key).

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn upsert_path(shop: &Shop) -> String {
    format!("{}&upsert=true", shop.dev())
}

fn upsert(shop: &Shop, client: &Api, secrets: Value) -> (reqwest::StatusCode, Value) {
    client.post(&upsert_path(shop), batch(secrets))
}

#[test]
fn an_upsert_updates_what_is_there_and_creates_the_rest() {
    let shop = Shop::start();
    let existing = shop.create(json!([
        {"key": "DB_URL", "value": "old", "comment": "kept", "tags": ["db"], "type": "config", "path": "/app"}
    ]))[0]
    .clone();
    let (status, written) = upsert(
        &shop,
        &shop.admin,
        json!([
            {"key": "NEW_KEY", "value": "fresh"},
            {"key": "db_url", "value": "new", "path": "app/"},
        ]),
    );
    assert_eq!(status, 200, "{written}");
    let written = written.as_array().unwrap().clone();
    for secret in &written {
        assert_secret_shape(secret);
    }
    // In batch order: the create, then the update.
    assert_eq!(keys(&written), ["NEW_KEY", "DB_URL"]);
    let (created, updated) = (&written[0], &written[1]);
    assert_eq!(
        (created["version"].as_u64(), created["path"].as_str()),
        (Some(1), Some("/"))
    );
    assert_eq!(
        (created["comment"].as_str(), created["type"].as_str()),
        (Some(""), Some("secret"))
    );
    assert_eq!(updated["id"], existing["id"]);
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["value"], "new");
    // Fields the entry leaves out keep their stored values.
    for field in ["comment", "tags", "type", "path", "key", "createdAt"] {
        assert_eq!(updated[field], existing[field], "{field}");
    }
    assert_eq!(shop.list(""), [created.clone(), updated.clone()]);
}

#[test]
fn given_fields_replace_the_stored_ones() {
    let shop = Shop::start();
    let existing =
        &shop.create(json!([{"key": "K", "value": "v", "comment": "c", "tags": ["a"]}]))[0];
    let (status, written) = upsert(
        &shop,
        &shop.admin,
        json!([{"key": "K", "value": "w", "comment": "", "tags": [], "type": "sealed"}]),
    );
    assert_eq!(status, 200, "{written}");
    let updated = &written[0];
    assert_eq!(updated["id"], existing["id"]);
    assert_eq!(
        (updated["comment"].as_str(), updated["type"].as_str()),
        (Some(""), Some("sealed"))
    );
    assert_eq!(updated["tags"], json!([]));
}

#[test]
fn an_entry_is_matched_by_path_and_key() {
    let shop = Shop::start();
    let root = &shop.create(json!([{"key": "K", "value": "root"}]))[0];
    let (status, written) = upsert(
        &shop,
        &shop.admin,
        json!([{"key": "K", "value": "deep", "path": "/deep"}]),
    );
    assert_eq!(status, 200, "{written}");
    assert_ne!(written[0]["id"], root["id"]);
    assert_eq!(written[0]["version"], 1);
    assert_eq!(shop.list("").len(), 2);
}

#[test]
fn an_id_or_a_version_in_an_entry_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for (entry, field) in [
        (json!({"key": "K", "value": "w", "id": existing}), "id"),
        (json!({"key": "K", "value": "w", "id": null}), "id"),
        (json!({"key": "K", "value": "w", "version": 1}), "version"),
    ] {
        let answer = upsert(
            &shop,
            &shop.admin,
            json!([{"key": "NEW", "value": "v"}, entry]),
        );
        shop.assert_refused(
            &before,
            &answer,
            400,
            &format!("'{field}' cannot be given with upsert=true: an entry is matched by its path and key."),
            "upsert_field_not_allowed",
        );
    }
    // Without upsert, unknown fields of a create are ignored, as Phase does.
    let (status, body) = shop.admin.post(
        &shop.dev(),
        batch(json!([{"key": "OTHER", "value": "v", "version": 3}])),
    );
    assert_eq!(
        (status.as_u16(), &body[0]["version"]),
        (200, &json!(1)),
        "{body}"
    );
}

#[test]
fn the_same_place_twice_in_one_upsert_is_409() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    for pair in [
        json!([{"key": "NEW", "value": "1"}, {"key": "new", "value": "2", "path": "/"}]),
        json!([{"key": "K", "value": "1"}, {"key": " k ", "value": "2"}]),
    ] {
        let answer = upsert(&shop, &shop.admin, pair);
        shop.assert_refused(
            &before,
            &answer,
            409,
            "Duplicate secret found",
            "duplicate_secret",
        );
    }
}

#[test]
fn an_upsert_is_atomic() {
    let shop = Shop::start();
    shop.create(json!([{"key": "SEALED", "value": "v", "type": "sealed"}]));
    let before = shop.list("");
    let answer = upsert(
        &shop,
        &shop.admin,
        json!([{"key": "NEW", "value": "v"}, {"key": "SEALED", "value": "w", "type": "secret"}]),
    );
    shop.assert_refused(
        &before,
        &answer,
        400,
        "Sealed secrets cannot be unsealed. Delete and recreate the secret instead.",
        "sealed_secret",
    );
    let answer = upsert(
        &shop,
        &shop.admin,
        json!([{"key": "NEW", "value": "v"}, {"key": "BAD\nKEY", "value": "v"}]),
    );
    shop.assert_refused(
        &before,
        &answer,
        400,
        "Invalid secret key: 'BAD\nKEY'",
        "invalid_key",
    );
    let answer = upsert(&shop, &shop.admin, json!([{"key": "NEW"}]));
    shop.assert_refused(
        &before,
        &answer,
        400,
        "Each secret requires a 'value' string.",
        "value_required",
    );
}

#[test]
fn an_upsert_needs_create_and_update() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    let client = |permissions: &[&str]| {
        let (_, token) = create_token(
            &shop.admin,
            json!({"name": "ci", "type": "service", "appId": shop.app_id,
                   "environments": ["Development"], "permissions": permissions}),
        );
        shop.server.client(Some(format!("Bearer Service {token}")))
    };
    for (permissions, missing) in [
        (&["read", "create"][..], "update"),
        (&["read", "update"][..], "create"),
    ] {
        let answer = upsert(
            &shop,
            &client(permissions),
            json!([{"key": "K", "value": "w"}]),
        );
        shop.assert_refused(
            &before,
            &answer,
            403,
            &format!("You don't have permission to {missing} secrets in this environment."),
            "permission_denied",
        );
    }
    let (status, body) = upsert(
        &shop,
        &client(&["create", "update"]),
        json!([{"key": "K", "value": "w"}]),
    );
    assert_eq!(
        (status.as_u16(), &body[0]["version"]),
        (200, &json!(2)),
        "{body}"
    );
}

#[test]
fn a_bad_upsert_flag_is_400_and_false_is_a_plain_create() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    let answer = shop.admin.post(
        &format!("{}&upsert=yes", shop.dev()),
        batch(json!([{"key": "K", "value": "w"}])),
    );
    shop.assert_refused(&before, &answer, 400, "Invalid 'upsert'", "invalid_upsert");
    let answer = shop.admin.post(
        &format!("{}&upsert=false", shop.dev()),
        batch(json!([{"key": "K", "value": "w"}])),
    );
    shop.assert_refused(
        &before,
        &answer,
        409,
        "Duplicate secret found",
        "duplicate_secret",
    );
}

#[test]
fn creates_and_updates_are_audited_apart_in_one_transaction() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let (status, written) = upsert(
        &shop,
        &shop.admin,
        json!([{"key": "A", "value": "1"}, {"key": "K", "value": "w"}, {"key": "B", "value": "2"}]),
    );
    assert_eq!(status, 200, "{written}");
    let (a, b) = (id(&written[0]), id(&written[2]));
    let (status, body) = shop.admin.get(&format!(
        "/v1/audit/?app_id={}&env=Development",
        shop.app_id
    ));
    assert_eq!(status, 200, "{body}");
    let entries: Vec<&Value> = body["data"].as_array().unwrap().iter().collect();
    let last_two: Vec<(Value, Value, Value)> = entries[entries.len() - 2..]
        .iter()
        .map(|e| {
            (
                e["action"].clone(),
                e["secretIds"].clone(),
                e["version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        last_two,
        [
            (json!("secret.create"), json!([a, b]), Value::Null),
            (json!("secret.update"), json!([existing]), json!(2)),
        ]
    );
    let seqs: Vec<u64> = entries[entries.len() - 2..]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs[1], seqs[0] + 1, "one after the other, in one record");
    let times: Vec<&Value> = entries[entries.len() - 2..]
        .iter()
        .map(|e| &e["time"])
        .collect();
    assert_eq!(times[0], times[1], "written at once");
}
