//! Phase's own cases of `PublicSecretsView` (`backend/tests/api/views/test_secrets_api.py`)
//! and the rules its code rests on (`normalize_path_string`, the key digest of the
//! upper-cased key, `_resolve_secret_tags`, the `/service` prefix), as black-box tests of
//! the real server. Where API.md makes Coffer stricter, the comment says how Phase differs.
//!
//! `test_delete_empty_secrets_list_returns_400` is `secrets_errors::
//! delete_body_not_a_non_empty_list_of_ids_is_400` (with `[]` among its bodies).

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// Percent-encodes every byte but ASCII letters and digits, for a query value.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b.is_ascii_alphanumeric() {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}

// --- DELETE: env scoping and atomicity (TestPublicSecretsDeleteEnvScoping) -------------

// Ports `test_delete_cross_env_id_returns_404`.
#[test]
fn deleting_an_id_of_another_environment_is_404_naming_it() {
    let shop = Shop::start();
    shop.create(json!([{"key": "DEV_ONLY", "value": "d"}]));
    let staging_id = id(&shop.create_in("Staging", json!([{"key": "S", "value": "s"}]))[0]);
    let (other_app, _) = create_app(&shop.admin, "other");
    let (status, other) = shop.admin.post(
        &secrets_path(&other_app, "Development"),
        batch(json!([{"key": "O", "value": "o"}])),
    );
    assert_eq!(status, 200, "{other}");
    let other_id = id(&other[0]);
    let before = shop.list("");
    for foreign in [&staging_id, &other_id] {
        let answer = shop.admin.delete_with(&shop.dev(), batch(json!([foreign])));
        shop.assert_refused(
            &before,
            &answer,
            404,
            &format!("Secret(s) not found in this environment: {foreign}"),
            "secrets_not_found",
        );
    }
    assert_eq!(keys(&shop.list_in("Staging", "")), ["S"]);
    let (_, still) = shop.admin.get(&secrets_path(&other_app, "Development"));
    assert_eq!(still, other, "the other app keeps its secret");
}

// Ports `test_delete_mixed_batch_rejected_atomically`.
#[test]
fn a_delete_batch_with_one_foreign_id_deletes_nothing() {
    let shop = Shop::start();
    let dev = shop.create(json!([{"key": "A", "value": "1"}, {"key": "B", "value": "2"}]));
    let staging_id = id(&shop.create_in("Staging", json!([{"key": "S", "value": "s"}]))[0]);
    let before = shop.list("");
    let staging_before = shop.list_in("Staging", "");
    let answer = shop.admin.delete_with(
        &shop.dev(),
        batch(json!([id(&dev[0]), staging_id, id(&dev[1])])),
    );
    // Only the foreign id is named; the in-env ones stay.
    shop.assert_refused(
        &before,
        &answer,
        404,
        &format!("Secret(s) not found in this environment: {staging_id}"),
        "secrets_not_found",
    );
    assert_eq!(shop.list_in("Staging", ""), staging_before);
}

// Ports `test_delete_in_env_secret_succeeds`.
#[test]
fn deleting_a_secret_of_this_environment_answers_phase_words() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "A", "value": "1"},
        {"key": "B", "value": "2"},
        {"key": "C", "value": "3"}
    ]));
    let answer = shop
        .admin
        .delete_with(&shop.dev(), batch(json!([id(&created[0])])));
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1, json!({"message": "Deleted 1 secret"}));
    assert_eq!(keys(&shop.list("")), ["B", "C"]);
    // Phase counts the secrets found, so an id given twice is one secret.
    let answer = shop.admin.delete_with(
        &shop.dev(),
        batch(json!([id(&created[1]), id(&created[1])])),
    );
    assert_eq!(answer.1, json!({"message": "Deleted 1 secret"}));
    assert_eq!(keys(&shop.list("")), ["C"]);
}

// Ports `test_delete_filter_scoped_by_environment` (environment=env, deleted_at__isnull).
#[test]
fn a_deleted_secret_cannot_be_deleted_again() {
    let shop = Shop::start();
    let first = id(&shop.create(json!([{"key": "K", "value": "1"}]))[0]);
    let answer = shop.admin.delete_with(&shop.dev(), batch(json!([first])));
    assert_eq!(answer.1, json!({"message": "Deleted 1 secret"}));
    // The same key made again is another secret; the old id still names nothing.
    let again = shop.create(json!([{"key": "K", "value": "2"}]));
    assert_ne!(id(&again[0]), first);
    let answer = shop.admin.delete_with(&shop.dev(), batch(json!([first])));
    shop.assert_refused(
        &again,
        &answer,
        404,
        &format!("Secret(s) not found in this environment: {first}"),
        "secrets_not_found",
    );
}

// --- PUT (TestPublicSecretsPutRecordsOverridelessUpdates) ------------------------------

// Ports `test_put_overrideless_secret_is_recorded_logged_and_triggers_sync`.
#[test]
fn an_update_without_an_override_is_stored_answered_and_audited() {
    let shop = Shop::start();
    let secret = id(&shop.create(json!([{"key": "K", "value": "v1"}]))[0]);
    let (status, updated) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": secret, "value": "v2"}])));
    assert_eq!(status, 200, "{updated}");
    let updated = updated.as_array().unwrap();
    assert_eq!(updated.len(), 1, "the update is in the answer");
    assert_eq!(
        (&updated[0]["value"], &updated[0]["version"]),
        (&json!("v2"), &json!(2))
    );
    assert_eq!(shop.list(""), *updated, "and stored");
    let (status, audit) = shop
        .admin
        .get(&format!("/v1/audit/?app_id={}", shop.app_id));
    assert_eq!(status, 200, "{audit}");
    let entries: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "secret.update")
        .collect();
    assert_eq!(entries.len(), 1, "one audited update: {audit}");
    assert_eq!(entries[0]["version"], 2);
    assert_eq!(entries[0]["secretIds"], json!([secret]));
    assert_eq!(entries[0]["envId"], shop.env_id("Development"));
}

// --- paths (normalize_path_string) -----------------------------------------------------

/// A path as given → the path stored, or `None` for a 400 `Invalid path`.
#[rustfmt::skip]
const PATHS: &[(&str, Option<&str>)] = &[
    ("",              Some("/")),
    ("/",             Some("/")),
    ("//",            Some("/")),
    ("a",             Some("/a")),
    ("a/",            Some("/a")),
    ("/a/",           Some("/a")),
    ("a//b",          Some("/a/b")),
    ("///a///b///",   Some("/a/b")),
    ("/Db/Main",      Some("/Db/Main")),
    ("/my folder/x",  Some("/my folder/x")),
    ("/a.b/..c",      Some("/a.b/..c")),
    // Stricter (API.md): Phase stores these segments as they are.
    ("/a/../b",       None),
    ("/./a",          None),
    ("..",            None),
    ("/a/ /b",        None),
    ("/a\tb",         None),
];

// Ports the rules of `normalize_path_string`, applied by Phase's POST, PUT and GET `path`.
#[test]
fn paths_are_normalised_as_phase_does_or_refused() {
    let shop = Shop::start();
    let mover = id(&shop.create(json!([{"key": "MOVER", "value": "v", "path": "/start"}]))[0]);
    for (i, (given, stored)) in PATHS.iter().enumerate() {
        let key = format!("K{i}");
        let created = shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": key, "value": "v", "path": given}])),
        );
        let moved = shop
            .admin
            .put(&shop.dev(), batch(json!([{"id": mover, "path": given}])));
        let Some(stored) = stored else {
            let message = format!("Invalid path: '{given}'");
            assert_error(&created, 400, &message, "invalid_path");
            assert_error(&moved, 400, &message, "invalid_path");
            continue;
        };
        assert_eq!(created.0, 200, "{given:?}: {}", created.1);
        assert_eq!(created.1[0]["path"], *stored, "created at {given:?}");
        assert_eq!(moved.0, 200, "{given:?}: {}", moved.1);
        assert_eq!(moved.1[0]["path"], *stored, "moved to {given:?}");
        // The filter is normalised the same way (an empty one is no filter): it finds
        // what was just created and moved there, and what earlier rows put there.
        if !given.is_empty() {
            let found = shop.list(&format!("&path={}", encoded(given)));
            let mut found = keys(&found);
            found.sort_unstable();
            let mut there: Vec<String> = PATHS[..=i]
                .iter()
                .enumerate()
                .filter(|(_, (_, at))| *at == Some(stored))
                .map(|(j, _)| format!("K{j}"))
                .chain(["MOVER".to_owned()])
                .collect();
            there.sort_unstable();
            assert_eq!(found, there, "path={given:?}");
        }
    }
    let valid = PATHS.iter().filter(|(_, stored)| stored.is_some()).count();
    assert_eq!(
        shop.list("").len(),
        valid + 1,
        "the refused ones made nothing"
    );
}

// Ports Phase's PUT, which keeps the place when `path` is left out or is not a path.
#[test]
fn an_update_without_a_path_keeps_the_secret_where_it_is() {
    let shop = Shop::start();
    let secret = id(&shop.create(json!([{"key": "K", "value": "v", "path": "/deep/er"}]))[0]);
    for change in [
        json!({"id": secret, "value": "w"}),
        json!({"id": secret, "path": null}),
    ] {
        let (status, updated) = shop.admin.put(&shop.dev(), batch(json!([change])));
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated[0]["path"], "/deep/er", "{change}");
    }
    // POST without a path, or with `null`, creates at the root.
    let created =
        shop.create(json!([{"key": "A", "value": "v"}, {"key": "B", "value": "v", "path": null}]));
    assert_eq!(
        (&created[0]["path"], &created[1]["path"]),
        (&json!("/"), &json!("/"))
    );
}

// --- keys (compute_key_digest over key.upper()) ----------------------------------------

// Ports Phase's PUT duplicate check, which leaves out the secret being renamed.
#[test]
fn renaming_a_secret_to_its_own_key_in_another_case_is_no_conflict() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "db_url", "value": "v", "path": "/a"}]));
    let (status, renamed) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[0]), "key": "Db_Url", "path": "/a"}])),
    );
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        (&renamed[0]["key"], &renamed[0]["version"]),
        (&json!("DB_URL"), &json!(2))
    );
    assert_eq!(renamed[0]["keyDigest"], created[0]["keyDigest"]);
}

// Ports Phase's GET, which applies `key`, `path` and `tags` only when they are non-empty.
#[test]
fn empty_filters_are_no_filters() {
    let shop = Shop::start();
    let all = shop.create(json!([
        {"key": "A", "value": "v", "tags": ["t"]},
        {"key": "B", "value": "v", "path": "/p"}
    ]));
    for query in ["&key=", "&path=", "&tags=", "&key=&path=&tags="] {
        assert_eq!(shop.list(query), all, "{query}");
    }
}

// Ports Phase's POST, which drops an `id` from each entry (`secret.pop("id")`).
#[test]
fn an_id_in_a_created_entry_is_ignored() {
    let shop = Shop::start();
    let given = random_id();
    let first = shop.create(json!([{"id": given, "key": "A", "value": "v"}]));
    let second = shop.create(json!([{"id": given, "key": "B", "value": "v"}]));
    assert_ne!(first[0]["id"], given);
    assert_ne!(second[0]["id"], first[0]["id"]);
    assert_eq!(keys(&shop.list("")), ["A", "B"]);
}

// --- tags (_resolve_secret_tags) -------------------------------------------------------

// Ports `_resolve_secret_tags`: names are trimmed, blank ones skipped, one name is one tag.
#[test]
fn tag_names_are_trimmed_and_kept_once() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "K", "value": "v", "tags": [" db ", "db", "  ", "cache", "\tdb"]}
    ]));
    assert_eq!(created[0]["tags"], json!(["db", "cache"]));
    assert_eq!(shop.list("&tags=db"), created);
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[0]), "tags": ["  x  ", "x"]}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["tags"], json!(["x"]));
}

// Ports Phase's PUT: `tags` replaces the tags when present (`null` or `[]` clears them).
#[test]
fn an_update_replaces_tags_only_when_it_names_them() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "A", "value": "v", "tags": ["a", "b"]},
        {"key": "B", "value": "v", "tags": ["a"]}
    ]));
    let (a, b) = (id(&created[0]), id(&created[1]));
    let put = |change: Value| -> Value {
        let (status, updated) = shop.admin.put(&shop.dev(), batch(json!([change])));
        assert_eq!(status, 200, "{updated}");
        updated[0]["tags"].clone()
    };
    assert_eq!(put(json!({"id": a, "value": "w"})), json!(["a", "b"]));
    assert_eq!(put(json!({"id": a, "tags": ["c"]})), json!(["c"]));
    assert_eq!(put(json!({"id": a, "tags": []})), json!([]));
    assert_eq!(put(json!({"id": b, "tags": null})), json!([]));
    assert_eq!(shop.list("&tags=a,b,c"), Vec::<Value>::new());
}

// Ports `_resolve_secret_tags`' 64-character limit. Stricter (atomic batches): Phase
// checks it after saving the entries before, so they stay created.
#[test]
fn a_tag_too_long_in_a_later_entry_creates_nothing() {
    let shop = Shop::start();
    let before = shop.create(json!([{"key": "KEPT", "value": "v"}]));
    let long = "t".repeat(65);
    let answer = shop.admin.post(
        &shop.dev(),
        batch(json!([
            {"key": "FIRST", "value": "v", "tags": ["fine"]},
            {"key": "SECOND", "value": "v", "tags": [long]}
        ])),
    );
    let message = format!("Tag name exceeds 64 characters: '{}'…", "t".repeat(64));
    shop.assert_refused(&before, &answer, 400, &message, "tag_too_long");
}

// --- routing (tests/test_url_routing.py) -----------------------------------------------

// Ports `ServicePrefixMiddlewareTest`'s lookalikes and `URLRoutingTest`'s non-routes:
// `/service` is a prefix only as a whole segment.
#[test]
fn service_prefix_lookalikes_are_unknown_routes() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let query = format!("?app_id={}&env=Development", shop.app_id);
    for path in [
        format!("/services/v1/secrets/{query}"),
        format!("/serviceabc/v1/secrets/{query}"),
        format!("/service/services/v1/secrets/{query}"),
        format!("/public/service/v1/secrets/{query}"),
        "/service".to_owned(),
        "/service/".to_owned(),
        "/v1/logs/audit/".to_owned(),
        "/no/such/endpoint/".to_owned(),
    ] {
        assert_error(&shop.admin.get(&path), 404, "Not found.", "not_found");
    }
    // The real prefixes answer the same list.
    for prefix in ["/service/v1", "/public/v1", "/service/public/v1"] {
        let (status, listed) = shop.admin.get(&format!("{prefix}/secrets/{query}"));
        assert_eq!(
            (status.as_u16(), listed),
            (200, json!(shop.list(""))),
            "{prefix}"
        );
    }
}
