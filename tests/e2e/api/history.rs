//! "Versions and rollback" in API.md: `GET /v1/secrets/{id}/history/` and
//! `POST /v1/secrets/{id}/rollback/`, row by row.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// A client with a new Service token on Development with these permissions; returns
/// the token's id too.
fn service(shop: &Shop, permissions: &[&str]) -> (String, Api) {
    service_on(shop, &["Development"], permissions)
}

fn service_on(shop: &Shop, environments: &[&str], permissions: &[&str]) -> (String, Api) {
    let (id, token) = create_token(
        &shop.admin,
        json!({
            "name": "ci",
            "type": "service",
            "appId": shop.app_id,
            "environments": environments,
            "permissions": permissions,
        }),
    );
    (
        id,
        shop.server.client(Some(format!("Bearer Service {token}"))),
    )
}

fn history_path(shop: &Shop, id: &str) -> String {
    format!(
        "/v1/secrets/{id}/history/?app_id={}&env=Development",
        shop.app_id
    )
}

fn rollback_path(shop: &Shop, id: &str) -> String {
    format!(
        "/v1/secrets/{id}/rollback/?app_id={}&env=Development",
        shop.app_id
    )
}

/// The versions of a secret, newest first (asserts 200).
fn history(shop: &Shop, id: &str) -> Vec<Value> {
    let (status, body) = shop.admin.get(&history_path(shop, id));
    assert_eq!(status, 200, "{body}");
    assert_keys(&body, &["data"]);
    body["data"].as_array().unwrap().clone()
}

/// (version, action, key, path, value) of each version.
fn summary(versions: &[Value]) -> Vec<(u64, String, String, String, String)> {
    versions
        .iter()
        .map(|v| {
            let text = |field: &str| v[field].as_str().unwrap().to_string();
            (
                v["version"].as_u64().unwrap(),
                text("action"),
                text("key"),
                text("path"),
                text("value"),
            )
        })
        .collect()
}

fn row(
    version: u64,
    action: &str,
    key: &str,
    path: &str,
    value: &str,
) -> (u64, String, String, String, String) {
    (
        version,
        action.into(),
        key.into(),
        path.into(),
        value.into(),
    )
}

fn rollback(shop: &Shop, id: &str, body: Value) -> (reqwest::StatusCode, Value) {
    shop.admin.post(&rollback_path(shop, id), body)
}

/// The admin token's id: the one User token of the data directory.
fn admin_token_id(shop: &Shop) -> String {
    let (status, body) = shop.admin.get("/v1/tokens/");
    assert_eq!(status, 200, "{body}");
    let users: Vec<&Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "user")
        .collect();
    assert_eq!(users.len(), 1, "{body}");
    users[0]["id"].as_str().unwrap().to_string()
}

/// The audit entries of the app with this action, oldest first.
fn audited(shop: &Shop, action: &str) -> Vec<Value> {
    let (status, body) = shop
        .admin
        .get(&format!("/v1/audit/?app_id={}", shop.app_id));
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

const VERSION_KEYS: [&str; 10] = [
    "version",
    "action",
    "key",
    "path",
    "value",
    "comment",
    "tags",
    "type",
    "actor",
    "createdAt",
];

#[test]
fn history_lists_every_version_newest_first_with_its_writer_and_the_deletion() {
    let shop = Shop::start();
    let (ci_id, ci) = service(&shop, &["read", "update", "delete"]);
    let secret =
        &shop.create(json!([{"key": "DB_URL", "value": "one", "comment": "c", "tags": ["db"]}]))[0];
    let id = id(secret);
    let (status, body) = ci.put(
        &shop.dev(),
        batch(json!([{"id": id, "value": "two", "path": "/moved"}])),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = ci.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200, "{body}");

    let versions = history(&shop, &id);
    assert_eq!(
        summary(&versions),
        [
            // The deletion is version last + 1 and carries what it deleted.
            row(3, "delete", "DB_URL", "/moved", "two"),
            row(2, "update", "DB_URL", "/moved", "two"),
            row(1, "create", "DB_URL", "/", "one"),
        ]
    );
    for version in &versions {
        assert_keys(version, &VERSION_KEYS);
        assert_eq!(version["comment"], "c");
        assert_eq!(version["tags"], json!(["db"]));
        assert_eq!(version["type"], "secret");
        assert_timestamp(&version["createdAt"]);
    }
    let admin = json!({"tokenId": admin_token_id(&shop), "kind": "user"});
    let ci = json!({"tokenId": ci_id, "kind": "service"});
    let actors: Vec<&Value> = versions.iter().map(|v| &v["actor"]).collect();
    assert_eq!(actors, [&ci, &ci, &admin]);
}

#[test]
fn history_needs_read_and_answers_within_scope_only() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let (_, writer) = service(&shop, &["create", "update"]);
    assert_error(
        &writer.get(&history_path(&shop, &id)),
        403,
        "You don't have permission to read secrets in this environment.",
        "permission_denied",
    );
    let (_, staging) = service_on(&shop, &["Staging"], &["read"]);
    assert_error(
        &staging.get(&history_path(&shop, &id)),
        403,
        "Service token cannot access this environment",
        "environment_out_of_scope",
    );
    let (other_app, _) = create_app(&shop.admin, "other");
    let path = format!("/v1/secrets/{id}/history/?app_id={other_app}&env=Development");
    let (_, reader) = service(&shop, &["read"]);
    assert_error(
        &reader.get(&path),
        403,
        "Service token cannot access this app",
        "app_out_of_scope",
    );
    assert_error(
        &shop.server.client(None).get(&history_path(&shop, &id)),
        403,
        "Authentication credentials were not provided.",
        "not_authenticated",
    );
    let (status, body) = reader.get(&history_path(&shop, &id));
    assert_eq!(
        (status.as_u16(), body["data"].as_array().map(Vec::len)),
        (200, Some(1))
    );
}

#[test]
fn history_of_an_unknown_secret_is_404() {
    let shop = Shop::start();
    let unknown = random_id();
    assert_error(
        &shop.admin.get(&history_path(&shop, &unknown)),
        404,
        &format!("Secret not found: {unknown}"),
        "secret_not_found",
    );
    assert_error(
        &shop.admin.get(&history_path(&shop, "not-a-uuid")),
        404,
        "Secret not found: not-a-uuid",
        "secret_not_found",
    );
    // A secret of another environment is not in this one.
    let staging = id(&shop.create_in("Staging", json!([{"key": "K", "value": "v"}]))[0]);
    assert_error(
        &shop.admin.get(&history_path(&shop, &staging)),
        404,
        &format!("Secret not found: {staging}"),
        "secret_not_found",
    );
    let path = format!("/v1/secrets/{staging}/history/?app_id={}", shop.app_id);
    assert_error(
        &shop.admin.get(&path),
        400,
        "Missing required query parameter: env",
        "missing_parameter",
    );
}

#[test]
fn reading_history_is_audited_as_a_read_of_the_secret() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    history(&shop, &id);
    let reads = audited(&shop, "secret.read");
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0]["secretIds"], json!([id]));
}

#[test]
fn rollback_writes_the_next_version_with_the_old_content() {
    let shop = Shop::start();
    let created =
        &shop.create(json!([{"key": "K", "value": "one", "comment": "first", "tags": ["a"]}]))[0];
    let id = id(created);
    let (status, body) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id, "key": "RENAMED", "path": "/moved", "value": "two", "comment": "", "tags": ["b"], "type": "config"}])),
    );
    assert_eq!(status, 200, "{body}");

    let (status, secret) = rollback(&shop, &id, json!({"version": 1}));
    assert_eq!(status, 200, "{secret}");
    assert_secret_shape(&secret);
    assert_eq!(secret["id"], id.as_str());
    assert_eq!(secret["version"], 3);
    for field in [
        "key",
        "path",
        "value",
        "comment",
        "tags",
        "type",
        "keyDigest",
        "createdAt",
    ] {
        assert_eq!(secret[field], created[field], "{field}");
    }
    assert_eq!(shop.list(""), std::slice::from_ref(&secret));
    assert_eq!(
        summary(&history(&shop, &id)),
        [
            row(3, "update", "K", "/", "one"),
            row(2, "update", "RENAMED", "/moved", "two"),
            row(1, "create", "K", "/", "one"),
        ]
    );
    // The key is free again at its old place and taken at the rolled-back one.
    let (status, _) = shop.admin.post(
        &shop.dev(),
        batch(json!([{"key": "RENAMED", "path": "/moved", "value": "x"}])),
    );
    assert_eq!(status, 200);
    let answer = shop
        .admin
        .post(&shop.dev(), batch(json!([{"key": "K", "value": "x"}])));
    assert_error(&answer, 409, "Duplicate secret found", "duplicate_secret");
}

#[test]
fn rollback_brings_a_deleted_secret_back_under_its_id_audited_as_a_create() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "one"}]))[0]);
    let (status, _) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "value": "two"}])));
    assert_eq!(status, 200);
    let (status, _) = shop.admin.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200);

    // The deletion marker is version 3: the restore is version 4.
    let (status, secret) = rollback(&shop, &id, json!({"version": 1, "expectedVersion": 3}));
    assert_eq!(status, 200, "{secret}");
    assert_eq!(
        (secret["id"].as_str(), secret["version"].as_u64()),
        (Some(id.as_str()), Some(4))
    );
    assert_eq!(secret["value"], "one");
    assert_eq!(shop.list(""), [secret]);
    assert_eq!(history(&shop, &id)[0]["action"], "create");

    let (status, _) = rollback(&shop, &id, json!({"version": 2}));
    assert_eq!(status, 200);
    let audit = |action: &str| {
        audited(&shop, action)
            .iter()
            .map(|e| (e["secretIds"].clone(), e["version"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        audit("secret.create"),
        [(json!([id]), json!(1)), (json!([id]), json!(4))]
    );
    assert_eq!(
        audit("secret.update"),
        [(json!([id]), json!(2)), (json!([id]), json!(5))]
    );
}

#[test]
fn rollback_never_unseals() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "one", "type": "config"}]))[0]);
    let (status, _) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id, "value": "two", "type": "sealed"}])),
    );
    assert_eq!(status, 200);
    let (status, secret) = rollback(&shop, &id, json!({"version": 1}));
    assert_eq!(status, 200, "{secret}");
    assert_eq!(
        (secret["value"].as_str(), secret["type"].as_str()),
        (Some("one"), Some("sealed"))
    );
    // Deleted and brought back, it is still sealed.
    let (status, _) = shop.admin.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200);
    let (status, secret) = rollback(&shop, &id, json!({"version": 1}));
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["type"], "sealed");
}

#[test]
fn rollback_leaves_personal_overrides_as_they_are() {
    let shop = Shop::start();
    let created =
        &shop.create(json!([{"key": "K", "value": "one", "override": {"value": "mine"}}]))[0];
    let id = id(created);
    let (status, _) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "value": "two"}])));
    assert_eq!(status, 200);
    let (status, secret) = rollback(&shop, &id, json!({"version": 1}));
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["override"], created["override"]);
    assert_eq!(shop.list("")[0]["override"], created["override"]);
}

#[test]
fn rollback_body_errors_are_400_and_change_nothing() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for body in [
        json!({}),
        json!({"version": 0}),
        json!({"version": -1}),
        json!({"version": 1.5}),
        json!({"version": "1"}),
        json!({"version": null}),
        json!({"expectedVersion": 1}),
    ] {
        let answer = rollback(&shop, &id, body.clone());
        shop.assert_refused(
            &before,
            &answer,
            400,
            "'version' must be a positive integer.",
            "invalid_rollback_version",
        );
    }
    for body in [
        json!({"version": 1, "expectedVersion": 0}),
        json!({"version": 1, "expectedVersion": "1"}),
    ] {
        let answer = rollback(&shop, &id, body);
        shop.assert_refused(
            &before,
            &answer,
            400,
            "'expectedVersion' must be a positive integer.",
            "invalid_expected_version",
        );
    }
    let path = rollback_path(&shop, &id);
    for (bytes, message, code) in [
        (&b""[..], "Request body is required.", "body_required"),
        (b"{", "Request body must be valid JSON.", "invalid_json"),
        (
            b"[1]",
            "Request body must be a JSON object.",
            "body_not_object",
        ),
    ] {
        let answer = shop
            .admin
            .send_raw(reqwest::Method::POST, &path, Some(bytes.to_vec()), &[]);
        shop.assert_refused(&before, &answer, 400, message, code);
    }
}

#[test]
fn rollback_to_an_unknown_secret_or_version_is_404() {
    let shop = Shop::start();
    let staging = id(&shop.create_in("Staging", json!([{"key": "K", "value": "v"}]))[0]);
    let id = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    let unknown = random_id();
    let answer = rollback(&shop, &unknown, json!({"version": 1}));
    shop.assert_refused(
        &before,
        &answer,
        404,
        &format!("Secret not found: {unknown}"),
        "secret_not_found",
    );
    let answer = rollback(&shop, "nope", json!({"version": 1}));
    shop.assert_refused(
        &before,
        &answer,
        404,
        "Secret not found: nope",
        "secret_not_found",
    );
    let answer = rollback(&shop, &id, json!({"version": 2}));
    shop.assert_refused(
        &before,
        &answer,
        404,
        &format!("Version 2 of secret {id} not found"),
        "version_not_found",
    );
    let answer = rollback(&shop, &staging, json!({"version": 1}));
    shop.assert_refused(
        &before,
        &answer,
        404,
        &format!("Secret not found: {staging}"),
        "secret_not_found",
    );
}

#[test]
fn rollback_with_a_stale_expected_version_is_409() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "one"}]))[0]);
    let (status, _) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "value": "two"}])));
    assert_eq!(status, 200);
    let before = shop.list("");
    let answer = rollback(&shop, &id, json!({"version": 1, "expectedVersion": 1}));
    shop.assert_refused(
        &before,
        &answer,
        409,
        "Secret version conflict: expected 1, current 2",
        "version_conflict",
    );
    // A deleted secret's current version is its deletion's.
    let (status, _) = shop.admin.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200);
    let answer = rollback(&shop, &id, json!({"version": 1, "expectedVersion": 2}));
    shop.assert_refused(
        &[],
        &answer,
        409,
        "Secret version conflict: expected 2, current 3",
        "version_conflict",
    );
}

#[test]
fn rollback_onto_a_key_taken_by_another_secret_is_409() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "one"}]))[0]);
    let (status, _) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "key": "L"}])));
    assert_eq!(status, 200);
    shop.create(json!([{"key": "k", "value": "other"}]));
    let before = shop.list("");
    let answer = rollback(&shop, &id, json!({"version": 1}));
    shop.assert_refused(
        &before,
        &answer,
        409,
        "Duplicate secret found",
        "duplicate_secret",
    );
    // Deleted, it cannot come back onto the taken key either.
    let (status, _) = shop.admin.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200);
    let before = shop.list("");
    let answer = rollback(&shop, &id, json!({"version": 1}));
    shop.assert_refused(
        &before,
        &answer,
        409,
        "Duplicate secret found",
        "duplicate_secret",
    );
}

#[test]
fn rollback_needs_read_and_update_and_create_to_restore() {
    let shop = Shop::start();
    let id = id(&shop.create(json!([{"key": "K", "value": "one"}]))[0]);
    let (status, _) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "value": "two"}])));
    assert_eq!(status, 200);
    let before = shop.list("");
    let denied = |permissions: &[&str], action: &str, list: &[Value]| {
        let (_, client) = service(&shop, permissions);
        let answer = client.post(&rollback_path(&shop, &id), json!({"version": 1}));
        shop.assert_refused(
            list,
            &answer,
            403,
            &format!("You don't have permission to {action} secrets in this environment."),
            "permission_denied",
        );
    };
    denied(&["update", "create"], "read", &before);
    denied(&["read", "create"], "update", &before);
    let (_, staging) = service_on(&shop, &["Staging"], &["read", "update"]);
    let answer = staging.post(&rollback_path(&shop, &id), json!({"version": 1}));
    shop.assert_refused(
        &before,
        &answer,
        403,
        "Service token cannot access this environment",
        "environment_out_of_scope",
    );

    let (_, editor) = service(&shop, &["read", "update"]);
    let (status, body) = editor.post(&rollback_path(&shop, &id), json!({"version": 1}));
    assert_eq!(
        (status.as_u16(), &body["value"]),
        (200, &json!("one")),
        "{body}"
    );
    // Bringing a deleted secret back is a create too.
    let (status, _) = shop.admin.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200);
    denied(&["read", "update"], "create", &[]);
    let (_, restorer) = service(&shop, &["read", "update", "create"]);
    let (status, body) = restorer.post(&rollback_path(&shop, &id), json!({"version": 2}));
    assert_eq!(
        (status.as_u16(), &body["value"]),
        (200, &json!("two")),
        "{body}"
    );
}

#[test]
fn history_and_rollback_answer_405_to_other_methods() {
    let shop = Shop::start();
    let id = random_id();
    let answer = shop.admin.post(&history_path(&shop, &id), json!({}));
    assert_error(&answer, 405, "Method not allowed.", "method_not_allowed");
    let answer = shop.admin.get(&rollback_path(&shop, &id));
    assert_error(&answer, 405, "Method not allowed.", "method_not_allowed");
}
