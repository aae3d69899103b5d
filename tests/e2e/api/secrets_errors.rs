//! The error table of `/v1/secrets/` in API.md, one test per row; every refused write
//! leaves the environment as it was.

use reqwest::Method;
use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// A valid body for each write method (PUT/DELETE name a secret that exists).
fn valid_bodies(shop: &Shop) -> Vec<(Method, Value)> {
    let existing = id(&shop.create(json!([{"key": "EXISTING", "value": "v"}]))[0]);
    vec![
        (Method::GET, Value::Null),
        (Method::POST, batch(json!([{"key": "NEW", "value": "v"}]))),
        (
            Method::PUT,
            batch(json!([{"id": existing, "value": "changed"}])),
        ),
        (Method::DELETE, batch(json!([existing]))),
    ]
}

fn send(api: &Api, method: &Method, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
    let body = (!body.is_null()).then_some(body);
    api.send(method.clone(), path, body)
}

// --- query -----------------------------------------------------------------------

#[test]
fn missing_app_id_is_400() {
    let shop = Shop::start();
    for (method, body) in valid_bodies(&shop) {
        let before = shop.list("");
        for path in [
            "/v1/secrets/?env=Development",
            "/v1/secrets/?app_id=&env=Development",
        ] {
            let answer = send(&shop.admin, &method, path, &body);
            shop.assert_refused(
                &before,
                &answer,
                400,
                "Missing required query parameter: app_id",
                "missing_parameter",
            );
        }
    }
}

#[test]
fn missing_env_is_400() {
    let shop = Shop::start();
    for (method, body) in valid_bodies(&shop) {
        let before = shop.list("");
        for path in [
            format!("/v1/secrets/?app_id={}", shop.app_id),
            format!("/v1/secrets/?app_id={}&env=", shop.app_id),
        ] {
            let answer = send(&shop.admin, &method, &path, &body);
            shop.assert_refused(
                &before,
                &answer,
                400,
                "Missing required query parameter: env",
                "missing_parameter",
            );
        }
    }
}

#[test]
fn app_id_not_a_uuid_is_400() {
    let shop = Shop::start();
    for (method, body) in valid_bodies(&shop) {
        let before = shop.list("");
        for bad in ["shop", "123", &shop.app_id[..35]] {
            let answer = send(
                &shop.admin,
                &method,
                &secrets_path(bad, "Development"),
                &body,
            );
            shop.assert_refused(&before, &answer, 400, "Invalid app_id", "invalid_app_id");
        }
    }
}

#[test]
fn unknown_app_is_404() {
    let shop = Shop::start();
    let unknown = random_id();
    for (method, body) in valid_bodies(&shop) {
        let before = shop.list("");
        let answer = send(
            &shop.admin,
            &method,
            &secrets_path(&unknown, "Development"),
            &body,
        );
        shop.assert_refused(
            &before,
            &answer,
            404,
            &format!("App with ID {unknown} not found"),
            "app_not_found",
        );
    }
}

#[test]
fn unknown_env_is_404() {
    let shop = Shop::start();
    let (_, other) = create_app(&shop.admin, "other");
    let foreign_env = other["environments"][0]["id"].as_str().unwrap().to_string();
    for (method, body) in valid_bodies(&shop) {
        let before = shop.list("");
        for env in ["Nowhere", foreign_env.as_str(), &random_id()] {
            let answer = send(&shop.admin, &method, &shop.env(env), &body);
            shop.assert_refused(
                &before,
                &answer,
                404,
                &format!("Environment '{env}' not found in App {}", shop.app_id),
                "environment_not_found",
            );
        }
    }
}

// --- body shape --------------------------------------------------------------------

#[test]
fn empty_body_is_400() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        for bytes in [None, Some(&b""[..]), Some(&b"  \n"[..])] {
            let answer = shop.raw(method.clone(), bytes);
            shop.assert_refused(
                &before,
                &answer,
                400,
                "Request body is required.",
                "body_required",
            );
        }
    }
}

#[test]
fn body_not_json_is_400() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        for bytes in [&b"{"[..], b"secrets=1", b"{\"secrets\": [}", b"\xff\xfe"] {
            let answer = shop.raw(method.clone(), Some(bytes));
            shop.assert_refused(
                &before,
                &answer,
                400,
                "Request body must be valid JSON.",
                "invalid_json",
            );
        }
    }
}

#[test]
fn body_not_an_object_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    let list_body = format!("[\"{existing}\"]");
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        for bytes in [
            &b"[]"[..],
            b"\"secrets\"",
            b"1",
            b"null",
            list_body.as_bytes(),
        ] {
            let answer = shop.raw(method.clone(), Some(bytes));
            shop.assert_refused(
                &before,
                &answer,
                400,
                "Request body must be a JSON object.",
                "body_not_object",
            );
        }
    }
}

#[test]
fn secrets_missing_or_empty_is_400() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    for method in [Method::POST, Method::PUT] {
        for body in [
            json!({}),
            json!({"secrets": []}),
            json!({"secrets": null}),
            json!({"secrets": {"key": "K", "value": "v"}}),
            json!({"secret": [{"key": "K", "value": "v"}]}),
        ] {
            let answer = shop.admin.send(method.clone(), &shop.dev(), Some(&body));
            shop.assert_refused(
                &before,
                &answer,
                400,
                "'secrets' must be a non-empty list.",
                "secrets_required",
            );
        }
    }
}

#[test]
fn entry_not_an_object_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for bad in [
        json!(1),
        json!("K"),
        json!(null),
        json!([{"key": "A", "value": "v"}]),
    ] {
        let create = batch(json!([{"key": "A", "value": "v"}, bad]));
        let update = batch(json!([{"id": existing, "value": "w"}, bad]));
        for answer in [
            shop.admin.post(&shop.dev(), create),
            shop.admin.put(&shop.dev(), update),
        ] {
            shop.assert_refused(
                &before,
                &answer,
                400,
                "Each entry in 'secrets' must be an object.",
                "entry_not_object",
            );
        }
    }
}

#[test]
fn more_than_1000_entries_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    let creates: Vec<Value> = (0..1001)
        .map(|i| json!({"key": format!("K{i}"), "value": "v"}))
        .collect();
    let updates: Vec<Value> = (0..1001)
        .map(|_| json!({"id": existing, "value": "w"}))
        .collect();
    let deletes: Vec<Value> = (0..1001).map(|_| json!(existing)).collect();
    for (method, list) in [
        (Method::POST, creates.clone()),
        (Method::PUT, updates),
        (Method::DELETE, deletes),
    ] {
        let answer = shop
            .admin
            .send(method, &shop.dev(), Some(&batch(json!(list))));
        shop.assert_refused(
            &before,
            &answer,
            400,
            "'secrets' may hold at most 1000 entries.",
            "batch_too_large",
        );
    }
    // 1000 is the limit, not over it.
    let created = shop.create(json!(creates[..1000]));
    assert_eq!(created.len(), 1000);
    assert_eq!(shop.list("").len(), 1001);
}

// --- entries -----------------------------------------------------------------------

#[test]
fn key_missing_or_blank_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for entry in [
        json!({"value": "v"}),
        json!({"key": "", "value": "v"}),
        json!({"key": "   ", "value": "v"}),
        json!({"key": null, "value": "v"}),
        json!({"key": 7, "value": "v"}),
    ] {
        let answer = shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "OK", "value": "v"}, entry])),
        );
        shop.assert_refused(
            &before,
            &answer,
            400,
            "Each secret requires a non-empty 'key'.",
            "key_required",
        );
    }
    for key in [json!(""), json!(" "), json!(7)] {
        let answer = shop
            .admin
            .put(&shop.dev(), batch(json!([{"id": existing, "key": key}])));
        shop.assert_refused(
            &before,
            &answer,
            400,
            "Each secret requires a non-empty 'key'.",
            "key_required",
        );
    }
}

#[test]
fn malformed_key_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    let long = "K".repeat(257);
    for (key, quoted) in [
        ("A\u{0}B", "A\u{0}B".to_owned()),
        ("LINE\nBREAK", "LINE\nBREAK".to_owned()),
        ("\u{1b}[31mRED", "\u{1b}[31mRED".to_owned()),
        // A message quotes at most 64 characters of what the client sent.
        (long.as_str(), format!("{}…", "K".repeat(64))),
    ] {
        let message = format!("Invalid secret key: '{quoted}'");
        let answer = shop
            .admin
            .post(&shop.dev(), batch(json!([{"key": key, "value": "v"}])));
        shop.assert_refused(&before, &answer, 400, &message, "invalid_key");
        let answer = shop
            .admin
            .put(&shop.dev(), batch(json!([{"id": existing, "key": key}])));
        shop.assert_refused(&before, &answer, 400, &message, "invalid_key");
    }
}

#[test]
fn value_not_a_string_is_400_on_create() {
    let shop = Shop::start();
    let before = shop.list("");
    for entry in [
        json!({"key": "K"}),
        json!({"key": "K", "value": null}),
        json!({"key": "K", "value": 5}),
        json!({"key": "K", "value": true}),
        json!({"key": "K", "value": ["v"]}),
        json!({"key": "K", "value": {"v": 1}}),
    ] {
        let answer = shop.admin.post(&shop.dev(), batch(json!([entry])));
        shop.assert_refused(
            &before,
            &answer,
            400,
            "Each secret requires a 'value' string.",
            "value_required",
        );
    }
}

#[test]
fn bad_type_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for kind in ["public", "Secret", ""] {
        let message =
            format!("Invalid 'type': '{kind}'. Must be one of ['config', 'sealed', 'secret'].");
        let answer = shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "A", "value": "v", "type": kind}])),
        );
        shop.assert_refused(&before, &answer, 400, &message, "invalid_type");
        let answer = shop
            .admin
            .put(&shop.dev(), batch(json!([{"id": existing, "type": kind}])));
        shop.assert_refused(&before, &answer, 400, &message, "invalid_type");
    }
}

#[test]
fn bad_path_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for path in [
        "/a/../b",
        "..",
        "/.",
        "/a/./b",
        "/a/ /b",
        "/a\n",
        "/a\u{7f}b",
        "/a\tb",
    ] {
        let message = format!("Invalid path: '{path}'");
        let answer = shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "A", "value": "v", "path": path}])),
        );
        shop.assert_refused(&before, &answer, 400, &message, "invalid_path");
        let answer = shop
            .admin
            .put(&shop.dev(), batch(json!([{"id": existing, "path": path}])));
        shop.assert_refused(&before, &answer, 400, &message, "invalid_path");
    }
}

#[test]
fn tag_too_long_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    let first_64 = "é".repeat(60) + "abcd";
    let too_long = first_64.clone() + "X";
    let message = format!("Tag name exceeds 64 characters: '{first_64}'…");
    let answer = shop.admin.post(
        &shop.dev(),
        batch(json!([{"key": "A", "value": "v", "tags": ["ok", too_long]}])),
    );
    shop.assert_refused(&before, &answer, 400, &message, "tag_too_long");
    let answer = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": existing, "tags": [too_long]}])),
    );
    shop.assert_refused(&before, &answer, 400, &message, "tag_too_long");
    // 64 characters (more than 64 bytes) is within the limit.
    let created = shop.create(json!([{"key": "A", "value": "v", "tags": [first_64]}]));
    assert_eq!(created[0]["tags"], json!([first_64]));
}

#[test]
fn more_than_32_tags_is_400() {
    let shop = Shop::start();
    let before = shop.list("");
    let tags: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    let answer = shop.admin.post(
        &shop.dev(),
        batch(json!([{"key": "A", "value": "v", "tags": tags}])),
    );
    shop.assert_refused(
        &before,
        &answer,
        400,
        "'tags' may hold at most 32 names.",
        "too_many_tags",
    );
    let created = shop.create(json!([{"key": "A", "value": "v", "tags": tags[..32]}]));
    assert_eq!(created[0]["tags"].as_array().unwrap().len(), 32);
}

#[test]
fn empty_tag_names_are_skipped_as_phase_does() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let created = shop.create(json!([{"key": "A", "value": "v", "tags": ["ok", ""]}]));
    assert_eq!(created[0]["tags"], json!(["ok"]));
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": existing, "tags": ["", "x"]}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["tags"], json!(["x"]));
}

/// A create and an update that each put `field` one byte over its limit are refused;
/// exactly at the limit is accepted.
fn assert_size_limit(field: &str, limit: usize, at_limit: String, over_limit: String) {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v", "path": "/p"}]))[0]);
    let before = shop.list("");
    assert_eq!(over_limit.len(), limit + 1);
    assert_eq!(at_limit.len(), limit);
    let message = format!("'{field}' exceeds {limit} bytes.");
    let mut entry = json!({"key": "NEW", "value": "v"});
    entry[field] = json!(over_limit);
    let answer = shop.admin.post(&shop.dev(), batch(json!([entry])));
    shop.assert_refused(&before, &answer, 400, &message, "field_too_large");
    let mut change = json!({"id": existing});
    change[field] = json!(over_limit);
    let answer = shop.admin.put(&shop.dev(), batch(json!([change])));
    shop.assert_refused(&before, &answer, 400, &message, "field_too_large");

    entry[field] = json!(at_limit);
    let created = shop.create(json!([entry]));
    let shown = created[0][field].as_str().unwrap();
    assert_eq!(shown.len(), limit, "{field} at the limit is kept whole");
    change[field] = json!(at_limit);
    let (status, updated) = shop.admin.put(&shop.dev(), batch(json!([change])));
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0][field].as_str().unwrap().len(), limit);
}

#[test]
fn value_over_64_kib_is_400() {
    assert_size_limit("value", 65536, "v".repeat(65536), "v".repeat(65537));
}

#[test]
fn comment_over_4_kib_is_400() {
    assert_size_limit("comment", 4096, "c".repeat(4096), "c".repeat(4097));
}

#[test]
fn key_over_256_bytes_is_400() {
    let shop = Shop::start();
    let before = shop.list("");
    let answer = shop.admin.post(
        &shop.dev(),
        batch(json!([{"key": "K".repeat(257), "value": "v"}])),
    );
    let message = format!("Invalid secret key: '{}…'", "K".repeat(64));
    shop.assert_refused(&before, &answer, 400, &message, "invalid_key");
    assert_eq!(
        shop.create(json!([{"key": "K".repeat(256), "value": "v"}]))
            .len(),
        1
    );
}

#[test]
fn path_over_1024_bytes_is_400() {
    assert_size_limit(
        "path",
        1024,
        format!("/{}", "a".repeat(1023)),
        format!("/{}", "a".repeat(1024)),
    );
}

// --- conflicts ---------------------------------------------------------------------

#[test]
fn key_already_at_that_path_is_409() {
    let shop = Shop::start();
    shop.create(json!([
        {"key": "DB_URL", "value": "v"},
        {"key": "API_KEY", "value": "v", "path": "/svc/a"}
    ]));
    let before = shop.list("");
    for entry in [
        json!({"key": "DB_URL", "value": "w"}),
        json!({"key": "db_url", "value": "w", "path": "/"}),
        json!({"key": "Api_Key", "value": "w", "path": "svc//a/"}),
    ] {
        let answer = shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "FRESH", "value": "v"}, entry])),
        );
        shop.assert_refused(
            &before,
            &answer,
            409,
            "Duplicate secret found",
            "duplicate_secret",
        );
    }
    // The same key at another path, or in another environment, is no conflict.
    shop.create(json!([{"key": "DB_URL", "value": "v", "path": "/other"}]));
    shop.create_in("Staging", json!([{"key": "DB_URL", "value": "v"}]));
}

#[test]
fn same_key_twice_in_one_batch_is_409() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    for pair in [
        json!([{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]),
        json!([{"key": "a", "value": "1"}, {"key": "A", "value": "2"}]),
        json!([{"key": "A", "value": "1", "path": "/x"}, {"key": "a", "value": "2", "path": "/x/"}]),
    ] {
        let answer = shop.admin.post(&shop.dev(), batch(pair));
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
fn put_rename_onto_existing_key_is_409() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "A", "value": "1"},
        {"key": "B", "value": "2"},
        {"key": "C", "value": "3"}
    ]));
    let before = shop.list("");
    for key in ["A", "a"] {
        let answer = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": id(&created[1]), "key": key}])),
        );
        shop.assert_refused(
            &before,
            &answer,
            409,
            "Duplicate secret found",
            "duplicate_secret",
        );
    }
    // Two entries of one batch renamed onto the same free key.
    let answer = shop.admin.put(
        &shop.dev(),
        batch(json!([
            {"id": id(&created[1]), "key": "D"},
            {"id": id(&created[2]), "key": "d"}
        ])),
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
fn put_move_onto_existing_key_is_409() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "A", "value": "1", "path": "/x"},
        {"key": "A", "value": "2", "path": "/y"},
        {"key": "B", "value": "3", "path": "/z"}
    ]));
    let before = shop.list("");
    for path in ["/x", "x/", "//x"] {
        let answer = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": id(&created[1]), "path": path}])),
        );
        shop.assert_refused(
            &before,
            &answer,
            409,
            "Duplicate secret found",
            "duplicate_secret",
        );
    }
    // Rename and move together onto an existing (path, key).
    let answer = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[2]), "key": "a", "path": "/x"}])),
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
fn put_without_id_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for entry in [
        json!({"value": "w"}),
        json!({"id": null, "key": "K", "value": "w"}),
    ] {
        let answer = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": existing, "value": "x"}, entry])),
        );
        shop.assert_refused(
            &before,
            &answer,
            400,
            "Secret ID not provided",
            "id_required",
        );
    }
}

#[test]
fn put_id_not_in_this_env_is_404() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let in_staging = id(&shop.create_in("Staging", json!([{"key": "S", "value": "v"}]))[0]);
    let before = shop.list("");
    let staging_before = shop.list_in("Staging", "");
    for missing in [random_id(), in_staging.clone(), "not-a-uuid".to_string()] {
        let answer = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": existing, "value": "x"}, {"id": missing, "value": "y"}])),
        );
        shop.assert_refused(
            &before,
            &answer,
            404,
            &format!("Secret not found: {missing}"),
            "secret_not_found",
        );
    }
    assert_eq!(shop.list_in("Staging", ""), staging_before);
}

#[test]
fn put_version_mismatch_is_409() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for stale in [0, 2, 7] {
        let answer = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": existing, "value": "x", "version": stale}])),
        );
        shop.assert_refused(
            &before,
            &answer,
            409,
            &format!("Secret version conflict: expected {stale}, current 1"),
            "version_conflict",
        );
    }
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": existing, "value": "x", "version": 1}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["version"], 2);
    // The version just used is now stale.
    let after = shop.list("");
    let answer = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": existing, "value": "y", "version": 1}])),
    );
    shop.assert_refused(
        &after,
        &answer,
        409,
        "Secret version conflict: expected 1, current 2",
        "version_conflict",
    );
}

#[test]
fn sealed_to_other_type_is_400() {
    let shop = Shop::start();
    let sealed = id(&shop.create(json!([{"key": "K", "value": "v", "type": "sealed"}]))[0]);
    let before = shop.list("");
    for kind in ["secret", "config"] {
        let answer = shop
            .admin
            .put(&shop.dev(), batch(json!([{"id": sealed, "type": kind}])));
        shop.assert_refused(
            &before,
            &answer,
            400,
            "Sealed secrets cannot be unsealed. Delete and recreate the secret instead.",
            "sealed_secret",
        );
    }
    // Staying sealed is fine.
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": sealed, "value": "w", "type": "sealed"}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["type"], "sealed");
}

#[test]
fn delete_body_not_a_non_empty_list_of_ids_is_400() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let before = shop.list("");
    for body in [
        json!({}),
        json!({"secrets": []}),
        json!({"secrets": null}),
        json!({"secrets": existing}),
        json!({"secrets": [existing, 1]}),
        json!({"secrets": [{"id": existing}]}),
    ] {
        let answer = shop.admin.delete_with(&shop.dev(), body);
        shop.assert_refused(
            &before,
            &answer,
            400,
            "'secrets' must be a non-empty list of secret IDs.",
            "secret_ids_required",
        );
    }
}

#[test]
fn delete_ids_missing_is_404_and_deletes_nothing() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]));
    let in_staging = id(&shop.create_in("Staging", json!([{"key": "S", "value": "v"}]))[0]);
    let before = shop.list("");
    let staging_before = shop.list_in("Staging", "");
    let unknown = random_id();
    let answer = shop.admin.delete_with(
        &shop.dev(),
        batch(json!([
            id(&created[0]),
            unknown,
            id(&created[1]),
            in_staging
        ])),
    );
    shop.assert_refused(
        &before,
        &answer,
        404,
        &format!("Secret(s) not found in this environment: {unknown}, {in_staging}"),
        "secrets_not_found",
    );
    assert_eq!(shop.list_in("Staging", ""), staging_before);
    // An id that is not a UUID names no secret either.
    let answer = shop
        .admin
        .delete_with(&shop.dev(), batch(json!([id(&created[0]), "not-an-id"])));
    shop.assert_refused(
        &before,
        &answer,
        404,
        "Secret(s) not found in this environment: not-an-id",
        "secrets_not_found",
    );
}
