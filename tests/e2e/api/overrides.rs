//! Personal overrides (API.md, "Secrets", Personal overrides): a User token's own value
//! for a secret, shown to that token alone; `value` stays the shared value; a Service
//! token's override input is ignored; references resolve to shared values; bad shapes
//! are refused; the override value never reaches the log.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// A client with a new User token.
fn other_user(shop: &Shop) -> Api {
    let (_, token) = create_token(&shop.admin, json!({"name": "second", "type": "user"}));
    shop.server.client(Some(format!("Bearer User {token}")))
}

/// A client with a new Service token on Development that may read, create and update.
fn service(shop: &Shop) -> Api {
    let (_, token) = create_token(
        &shop.admin,
        json!({
            "name": "ci",
            "type": "service",
            "appId": shop.app_id,
            "environments": ["Development"],
            "permissions": ["read", "create", "update"]
        }),
    );
    shop.server.client(Some(format!("Bearer Service {token}")))
}

/// The secret with this id in `client`'s listing of Development.
fn listed_as(shop: &Shop, client: &Api, id: &str) -> Value {
    let (status, body) = client.get(&shop.dev());
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("{id} listed in {body}"))
        .clone()
}

#[track_caller]
fn assert_override(shown: &Value, value: &str, is_active: bool) {
    let personal = &shown["override"];
    assert_keys(
        personal,
        &["id", "value", "isActive", "createdAt", "updatedAt"],
    );
    assert_uuid(&personal["id"]);
    assert_eq!(personal["value"], value, "{shown}");
    assert_eq!(personal["isActive"], is_active, "{shown}");
    assert_timestamp(&personal["createdAt"]);
    assert_timestamp(&personal["updatedAt"]);
}

#[test]
fn a_user_token_sets_its_override_and_only_it_sees_it() {
    let shop = Shop::start();
    let on_create = format!("mine-{}", random_id());
    let on_update = format!("mine-again-{}", random_id());
    let created = shop.create(json!([
        {"key": "DB_URL", "value": "shared", "override": {"value": on_create, "isActive": true}}
    ]));
    assert_eq!(created[0]["value"], "shared");
    assert_override(&created[0], &on_create, true);
    let id = id(&created[0]);
    let first_id = created[0]["override"]["id"].clone();

    let mine = listed_as(&shop, &shop.admin, &id);
    assert_eq!(mine["value"], "shared");
    assert_eq!(mine["override"], created[0]["override"]);
    let (second, ci) = (other_user(&shop), service(&shop));
    for other in [&second, &ci] {
        let theirs = listed_as(&shop, other, &id);
        assert_eq!(theirs["value"], "shared");
        assert!(theirs["override"].is_null(), "{theirs}");
    }

    // Updated: the same override, with its new value and flag.
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id, "override": {"value": on_update, "isActive": false}}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_override(&updated[0], &on_update, false);
    assert_eq!(updated[0]["override"]["id"], first_id);
    assert_eq!(updated[0]["value"], "shared");
    assert_override(&listed_as(&shop, &shop.admin, &id), &on_update, false);

    // Another token's update shows it nothing and changes nothing of it.
    let (status, by_second) = second.put(
        &shop.dev(),
        batch(json!([{"id": id, "comment": "by the second token"}])),
    );
    assert_eq!(status, 200, "{by_second}");
    assert!(by_second[0]["override"].is_null(), "{by_second}");
    // An update without `override` keeps it; `override: null` removes it.
    let (status, kept) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "value": "rotated"}])));
    assert_eq!(status, 200, "{kept}");
    assert_override(&kept[0], &on_update, false);
    let (status, removed) = shop
        .admin
        .put(&shop.dev(), batch(json!([{"id": id, "override": null}])));
    assert_eq!(status, 200, "{removed}");
    assert!(removed[0]["override"].is_null(), "{removed}");
    assert!(listed_as(&shop, &shop.admin, &id)["override"].is_null());

    let logs = shop.server.logs();
    assert!(logs.contains("/v1/secrets"), "control: requests are logged");
    for value in [&on_create, &on_update] {
        assert!(
            !logs.contains(value.as_str()),
            "an override value in the log"
        );
    }
}

#[test]
fn a_service_token_s_override_is_ignored() {
    let shop = Shop::start();
    let ci = service(&shop);
    let (status, created) = ci.post(
        &shop.dev(),
        batch(json!([{"key": "K", "value": "shared", "override": {"value": "ignored", "isActive": true}}])),
    );
    assert_eq!(status, 200, "{created}");
    assert!(created[0]["override"].is_null(), "{created}");
    let id = id(&created[0]);
    let (status, updated) = ci.put(
        &shop.dev(),
        batch(json!([{"id": id, "override": {"value": "ignored too", "isActive": true}}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert!(updated[0]["override"].is_null(), "{updated}");
    // Nothing was stored for anyone: not for the admin token, not for the Service token.
    for client in [&shop.admin, &ci] {
        let shown = listed_as(&shop, client, &id);
        assert!(shown["override"].is_null(), "{shown}");
        assert_eq!(shown["value"], "shared");
    }
}

#[test]
fn a_reference_resolves_to_the_shared_value() {
    let shop = Shop::start();
    shop.create(json!([
        {"key": "HOST", "value": "shared-db", "override": {"value": "my-laptop", "isActive": true}},
        {"key": "URL", "value": "postgres://${HOST}/app"}
    ]));
    let listed = shop.list("");
    let by_key = |key: &str| listed.iter().find(|s| s["key"] == key).unwrap();
    assert_eq!(by_key("URL")["value"], "postgres://shared-db/app");
    assert!(by_key("URL")["override"].is_null());
    assert_eq!(by_key("HOST")["value"], "shared-db");
    assert_override(by_key("HOST"), "my-laptop", true);
}

#[test]
fn bad_override_shapes_are_refused_and_change_nothing() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "K", "value": "shared"}]));
    let id = id(&created[0]);
    let before = shop.list("");
    let secret_marker = format!("refused-{}", random_id());
    let too_large = "x".repeat(64 * 1024 + 1);
    let cases = [
        (
            json!("x"),
            "'override' must be an object or null.",
            "invalid_override",
        ),
        (
            json!(["v"]),
            "'override' must be an object or null.",
            "invalid_override",
        ),
        (
            json!({"isActive": true}),
            "'override.value' must be a string.",
            "invalid_override_value",
        ),
        (
            json!({"value": 5}),
            "'override.value' must be a string.",
            "invalid_override_value",
        ),
        (
            json!({"value": secret_marker, "isActive": "yes"}),
            "'override.isActive' must be a boolean.",
            "invalid_override_active",
        ),
        (
            json!({"value": too_large, "isActive": true}),
            "'override.value' exceeds 65536 bytes.",
            "field_too_large",
        ),
    ];
    for (given, message, code) in cases {
        let answer = shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "NEW", "value": "v", "override": given}])),
        );
        shop.assert_refused(&before, &answer, 400, message, code);
        let answer = shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": id, "value": "changed", "override": given}])),
        );
        shop.assert_refused(&before, &answer, 400, message, code);
    }
    assert!(!shop.server.logs().contains(&secret_marker));
}
