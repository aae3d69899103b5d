//! The successful answers of `/v1/secrets/`: shapes, normalisation, filters, order,
//! versions, deletes.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

#[test]
fn create_answers_200_with_the_created_secrets() {
    let shop = Shop::start();
    let (status, created) = shop.admin.post(
        &shop.dev(),
        batch(json!([
            {"key": "db_url", "value": "postgres://u:p@db/shop"},
            {"key": "FLAG", "value": "", "comment": "why", "tags": ["ops", "db"],
             "path": "/svc", "type": "config"}
        ])),
    );
    assert_eq!(status, 200, "{created}");
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 2);
    for secret in created {
        assert_secret_shape(secret);
        assert_eq!(secret["environment"], shop.env_id("Development"));
        assert_eq!(secret["version"], 1);
        assert_eq!(secret["createdAt"], secret["updatedAt"]);
    }
    assert_ne!(created[0]["id"], created[1]["id"]);
    let first = &created[0];
    assert_eq!(first["key"], "DB_URL");
    assert_eq!(first["value"], "postgres://u:p@db/shop");
    assert_eq!(first["path"], "/");
    assert_eq!(first["comment"], "");
    assert_eq!(first["tags"], json!([]));
    assert_eq!(first["type"], "secret");
    let second = &created[1];
    assert_eq!(second["key"], "FLAG");
    assert_eq!(second["value"], "");
    assert_eq!(second["comment"], "why");
    assert_eq!(second["tags"], json!(["ops", "db"]));
    assert_eq!(second["path"], "/svc");
    assert_eq!(second["type"], "config");
    // What was answered is what is stored.
    assert_eq!(shop.list(""), created.clone());
}

#[test]
fn list_answers_an_array_ordered_by_path_then_key() {
    let shop = Shop::start();
    assert_eq!(shop.list(""), Vec::<Value>::new());
    shop.create(json!([
        {"key": "ZETA", "value": "1", "path": "/b"},
        {"key": "alpha", "value": "2", "path": "/b"},
        {"key": "MID", "value": "3"},
        {"key": "beta", "value": "4", "path": "/a/z"},
        {"key": "ALPHA", "value": "5"},
        {"key": "GAMMA", "value": "6", "path": "/a"}
    ]));
    shop.create(json!([{"key": "AARDVARK", "value": "7", "path": "/b"}]));
    let listed = shop.list("");
    for secret in &listed {
        assert_secret_shape(secret);
    }
    let order: Vec<(&str, &str)> = listed
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["key"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            ("/", "ALPHA"),
            ("/", "MID"),
            ("/a", "GAMMA"),
            ("/a/z", "BETA"),
            ("/b", "AARDVARK"),
            ("/b", "ALPHA"),
            ("/b", "ZETA"),
        ]
    );
}

#[test]
fn keys_are_stored_upper_cased_and_looked_up_case_insensitively() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "db_Url.main-1", "value": "v"}]));
    assert_eq!(created[0]["key"], "DB_URL.MAIN-1");
    for query in ["db_url.main-1", "DB_URL.MAIN-1", "Db_uRl.Main-1"] {
        let found = shop.list(&format!("&key={query}"));
        assert_eq!(found, created, "key={query}");
    }
    assert_eq!(shop.list("&key=DB_URL"), Vec::<Value>::new());
    // The digest is of the upper-cased key: the same key at another path has the same one.
    let elsewhere = shop.create(json!([{"key": "DB_URL.main-1", "value": "w", "path": "/x"}]));
    assert_eq!(elsewhere[0]["keyDigest"], created[0]["keyDigest"]);
    let other = shop.create(json!([{"key": "OTHER", "value": "w"}]));
    assert_ne!(other[0]["keyDigest"], created[0]["keyDigest"]);
    // A rename is upper-cased too.
    let (status, renamed) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&other[0]), "key": "renamed_key"}])),
    );
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed[0]["key"], "RENAMED_KEY");
    assert_eq!(
        shop.list("&key=Renamed_Key"),
        renamed.as_array().unwrap().clone()
    );
}

#[test]
fn paths_are_normalised() {
    let shop = Shop::start();
    let cases = [
        ("", "/"),
        ("/", "/"),
        ("///", "/"),
        ("a", "/a"),
        ("/a/", "/a"),
        ("//a//b///", "/a/b"),
        ("a.b/c..d/", "/a.b/c..d"),
    ];
    for (i, (given, normalised)) in cases.iter().enumerate() {
        let created = shop.create(json!([{"key": format!("K{i}"), "value": "v", "path": given}]));
        assert_eq!(created[0]["path"], *normalised, "path {given:?}");
    }
    // The filter is normalised the same way.
    for query in ["/a/b", "a/b", "//a//b/"] {
        assert_eq!(
            keys(&shop.list(&format!("&path={query}"))),
            ["K5"],
            "path={query}"
        );
    }
    assert_eq!(keys(&shop.list("&path=/")), ["K0", "K1", "K2"]);
}

#[test]
fn path_filter_is_exact() {
    let shop = Shop::start();
    shop.create(json!([
        {"key": "ROOT", "value": "v"},
        {"key": "A", "value": "v", "path": "/a"},
        {"key": "AB", "value": "v", "path": "/a/b"},
        {"key": "AX", "value": "v", "path": "/ab"}
    ]));
    assert_eq!(keys(&shop.list("&path=/a")), ["A"]);
    assert_eq!(keys(&shop.list("&path=/a/b")), ["AB"]);
    assert_eq!(keys(&shop.list("&path=/")), ["ROOT"]);
    assert_eq!(keys(&shop.list("&path=/none")), Vec::<&str>::new());
    assert_eq!(keys(&shop.list("")), ["ROOT", "A", "AB", "AX"]);
}

#[test]
fn key_filter_combines_with_path() {
    let shop = Shop::start();
    shop.create(json!([
        {"key": "TOKEN", "value": "root"},
        {"key": "TOKEN", "value": "a", "path": "/a"},
        {"key": "OTHER", "value": "a", "path": "/a"}
    ]));
    let all_tokens = shop.list("&key=token");
    assert_eq!(
        all_tokens.iter().map(|s| &s["value"]).collect::<Vec<_>>(),
        ["root", "a"]
    );
    let one = shop.list("&key=token&path=/a");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["value"], "a");
}

#[test]
fn tags_filter_is_any_match_without_duplicates() {
    let shop = Shop::start();
    shop.create(json!([
        {"key": "BOTH", "value": "v", "tags": ["x", "y"]},
        {"key": "ONLY_Y", "value": "v", "tags": ["y"]},
        {"key": "ONLY_Z", "value": "v", "tags": ["z"], "path": "/deep"},
        {"key": "NONE", "value": "v"}
    ]));
    assert_eq!(keys(&shop.list("&tags=x,y")), ["BOTH", "ONLY_Y"]);
    assert_eq!(keys(&shop.list("&tags=y,x,y")), ["BOTH", "ONLY_Y"]);
    assert_eq!(keys(&shop.list("&tags=x")), ["BOTH"]);
    assert_eq!(keys(&shop.list("&tags=z,q")), ["ONLY_Z"]);
    assert_eq!(keys(&shop.list("&tags=q")), Vec::<&str>::new());
    assert_eq!(keys(&shop.list("&tags=x,z&path=/deep")), ["ONLY_Z"]);
    assert_eq!(keys(&shop.list("&tags=y&key=both")), ["BOTH"]);
}

#[test]
fn update_changes_given_fields_and_adds_one_to_the_version() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "K", "value": "v1", "comment": "c", "tags": ["t"], "path": "/p"}
    ]));
    let original = &created[0];
    let (status, first) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(original), "value": "v2"}])),
    );
    assert_eq!(status, 200, "{first}");
    let first = &first[0];
    assert_secret_shape(first);
    assert_eq!(first["version"], 2);
    assert_eq!(first["value"], "v2");
    for unchanged in [
        "id",
        "environment",
        "key",
        "path",
        "comment",
        "tags",
        "type",
        "keyDigest",
        "createdAt",
    ] {
        assert_eq!(first[unchanged], original[unchanged], "{unchanged} kept");
    }
    assert!(first["updatedAt"].as_str() > original["updatedAt"].as_str());

    let (status, second) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(original), "comment": "", "tags": [], "type": "config"}])),
    );
    assert_eq!(status, 200, "{second}");
    let second = &second[0];
    assert_eq!(second["version"], 3);
    assert_eq!(second["value"], "v2");
    assert_eq!(second["comment"], "");
    assert_eq!(second["tags"], json!([]));
    assert_eq!(second["type"], "config");
    assert_eq!(second["createdAt"], original["createdAt"]);
    assert!(second["updatedAt"].as_str() > first["updatedAt"].as_str());
    assert_eq!(shop.list(""), vec![second.clone()]);
}

#[test]
fn update_with_the_current_version_succeeds() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "K", "value": "v"}]));
    for version in 1..=3 {
        let (status, updated) = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": id(&created[0]), "value": format!("v{version}"), "version": version}])),
        );
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated[0]["version"], version + 1);
    }
}

#[test]
fn update_renames_and_moves_freeing_the_old_place() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "OLD", "value": "v", "path": "/from"}]));
    let (status, moved) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[0]), "key": "new", "path": "to//here/"}])),
    );
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved[0]["key"], "NEW");
    assert_eq!(moved[0]["path"], "/to/here");
    assert_eq!(moved[0]["id"], created[0]["id"]);
    assert_ne!(moved[0]["keyDigest"], created[0]["keyDigest"]);
    assert_eq!(keys(&shop.list("&path=/from")), Vec::<&str>::new());
    // A change of case only lands on itself: no conflict.
    let (status, recased) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[0]), "key": "New"}])),
    );
    assert_eq!(status, 200, "{recased}");
    assert_eq!(recased[0]["key"], "NEW");
    assert_eq!(recased[0]["keyDigest"], moved[0]["keyDigest"]);
    // The old (path, key) is free again.
    shop.create(json!([{"key": "OLD", "value": "again", "path": "/from"}]));
    assert_eq!(keys(&shop.list("")), ["OLD", "NEW"]);
}

#[test]
fn update_answers_the_batch_in_order() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "A", "value": "1"},
        {"key": "B", "value": "2"},
        {"key": "C", "value": "3"}
    ]));
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([
            {"id": id(&created[2]), "value": "33"},
            {"id": id(&created[0]), "value": "11"}
        ])),
    );
    assert_eq!(status, 200, "{updated}");
    let updated = updated.as_array().unwrap();
    assert_eq!(keys(updated), ["C", "A"]);
    let values: Vec<Value> = shop.list("").iter().map(|s| s["value"].clone()).collect();
    assert_eq!(values, [json!("11"), json!("2"), json!("33")]);
}

#[test]
fn sealed_and_config_types_are_kept() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "S", "value": "v", "type": "sealed"},
        {"key": "C", "value": "v", "type": "config"},
        {"key": "P", "value": "v", "type": "secret"}
    ]));
    let types: Vec<&Value> = created.iter().map(|s| &s["type"]).collect();
    assert_eq!(types, ["sealed", "config", "secret"]);
    // Updating a sealed secret without naming a type keeps it sealed.
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[0]), "value": "w"}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["type"], "sealed");
    // Other types may change freely, also to sealed.
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[1]), "type": "sealed"}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["type"], "sealed");
}

#[test]
fn delete_answers_the_count_and_removes_the_secrets() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "A", "value": "1"},
        {"key": "B", "value": "2"},
        {"key": "C", "value": "3"}
    ]));
    let (status, answer) = shop.admin.delete_with(
        &shop.dev(),
        batch(json!([id(&created[0]), id(&created[2])])),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"message": "Deleted 2 secrets"}));
    assert_eq!(keys(&shop.list("")), ["B"]);
    let (status, answer) = shop
        .admin
        .delete_with(&shop.dev(), batch(json!([id(&created[1])])));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"message": "Deleted 1 secret"}));
    assert_eq!(shop.list(""), Vec::<Value>::new());
    // A deleted secret is gone for updates and deletes too, and its key is free.
    let gone = id(&created[1]);
    let answer = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": gone, "value": "x"}])));
    assert_error(
        &answer,
        404,
        &format!("Secret not found: {gone}"),
        "secret_not_found",
    );
    let answer = shop.admin.delete_with(&shop.dev(), batch(json!([gone])));
    assert_error(
        &answer,
        404,
        &format!("Secret(s) not found in this environment: {gone}"),
        "secrets_not_found",
    );
    let again = shop.create(json!([{"key": "B", "value": "new"}]));
    assert_eq!(again[0]["version"], 1);
    assert_ne!(again[0]["id"], created[1]["id"]);
}

#[test]
fn environments_are_named_case_insensitively_or_by_id_and_kept_apart() {
    let shop = Shop::start();
    let dev = shop.create(json!([{"key": "K", "value": "dev"}]));
    let staging = shop.create_in("Staging", json!([{"key": "K", "value": "staging"}]));
    assert_eq!(staging[0]["environment"], shop.env_id("Staging"));
    for name in [
        "development",
        "DEVELOPMENT",
        shop.env_id("Development").as_str(),
    ] {
        assert_eq!(shop.list_in(name, ""), dev, "env={name}");
    }
    assert_eq!(shop.list_in("staging", ""), staging);
    assert_eq!(shop.list_in("Production", ""), Vec::<Value>::new());
}
