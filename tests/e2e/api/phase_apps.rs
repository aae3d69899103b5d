//! Phase's own cases of `PublicAppsView` and `PublicAppDetailView`
//! (`backend/tests/api/views/test_apps_api.py`), as black-box tests of the real server.
//! Phase's roles map onto Coffer's one distinction: User tokens manage apps, Service
//! tokens do not.

use serde_json::{json, Value};

use crate::common::*;

fn app_path(id: &str) -> String {
    format!("/v1/apps/{id}/")
}

/// Every app as listed; asserts 200.
fn apps(api: &Api) -> Value {
    let (status, body) = api.get("/v1/apps/");
    assert_eq!(status, 200, "{body}");
    body
}

// Ports `test_create_missing_name_returns_400`.
#[test]
fn an_app_body_without_a_name_is_400() {
    let server = Server::start();
    let admin = server.admin();
    for body in [
        json!({}),
        json!({"name": null}),
        json!({"description": "no name"}),
    ] {
        let answer = admin.post("/v1/apps/", body);
        assert_error(
            &answer,
            400,
            "Missing required field: name",
            "missing_field",
        );
    }
    assert_eq!(apps(&admin), json!({"data": []}), "nothing created");
}

// Ports `test_update_description_too_long_returns_400`, and the same limit on create
// (Phase's `validate_text_field(..., max_length=10000)` in both).
#[test]
fn a_description_over_10000_characters_is_400() {
    let server = Server::start();
    let admin = server.admin();
    let (id, _) = create_app(&admin, "shop");
    let before = apps(&admin);
    let message = "'description' cannot exceed 10000 characters.";
    // Characters, not bytes: 10,001 two-byte characters are one too many.
    for long in ["x".repeat(10_001), "é".repeat(10_001)] {
        let answer = admin.post("/v1/apps/", json!({"name": "new", "description": long}));
        assert_error(&answer, 400, message, "description_too_long");
        let answer = admin.put(&app_path(&id), json!({"description": long}));
        assert_error(&answer, 400, message, "description_too_long");
        let answer = admin.put(
            &app_path(&id),
            json!({"name": "renamed", "description": long}),
        );
        assert_error(&answer, 400, message, "description_too_long");
    }
    assert_eq!(apps(&admin), before, "nothing changed");
    let at_limit = "é".repeat(10_000);
    let (status, app) = admin.put(&app_path(&id), json!({"description": at_limit}));
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["description"], at_limit);
    let (status, app) = admin.post("/v1/apps/", json!({"name": "new", "description": at_limit}));
    assert_eq!(status, 201, "{app}");
}

// Ports `test_create_app_with_custom_envs`: the environments named are made in their
// order, each of type `custom`.
#[test]
fn environments_named_at_creation_are_custom_in_their_order() {
    let server = Server::start();
    let admin = server.admin();
    let (status, app) = admin.post(
        "/v1/apps/",
        json!({"name": "test-app", "environments": ["test", "live", "Production"]}),
    );
    assert_eq!(status, 201, "{app}");
    let made: Vec<(&str, &str, u64)> = app["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["envType"].as_str().unwrap(),
                e["index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        made,
        [
            ("test", "custom", 0),
            ("live", "custom", 1),
            ("Production", "custom", 2)
        ]
    );
    let (status, listed) = admin.get(&format!(
        "/v1/environments/?app_id={}",
        app["id"].as_str().unwrap()
    ));
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"], app["environments"]);
}

// Ports `test_list_no_permission_returns_403`, `test_create_no_permission_returns_403`,
// `test_get_no_permission_returns_403`, `test_delete_no_permission_returns_403` and
// `TestAppsAPIRBAC`: a Service token, even one with every permission on the app,
// manages no app.
#[test]
fn a_service_token_cannot_manage_apps() {
    let server = Server::start();
    let admin = server.admin();
    let (id, _) = create_app(&admin, "shop");
    let (_, token) = create_token(
        &admin,
        json!({"name": "ci", "type": "service", "appId": id,
               "environments": ["Development", "Staging", "Production"],
               "permissions": ["read", "create", "update", "delete"]}),
    );
    let service = server.client(Some(format!("Bearer Service {token}")));
    let before = apps(&admin);
    for answer in [
        service.get("/v1/apps/"),
        service.post("/v1/apps/", json!({"name": "new-app"})),
        service.get(&app_path(&id)),
        service.put(&app_path(&id), json!({"name": "new"})),
        service.delete(&app_path(&id)),
    ] {
        assert_error(
            &answer,
            403,
            "This action requires a User token.",
            "user_token_required",
        );
    }
    assert_eq!(apps(&admin), before, "nothing changed");
}
