//! Phase's own cases of `PublicEnvironmentsView` and `PublicEnvironmentDetailView`
//! (`backend/tests/api/views/test_environments_api.py`), as black-box tests of the real
//! server. Phase's roles map onto Coffer's one distinction: User tokens manage
//! environments, Service tokens do not.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn env_path(id: &str) -> String {
    format!("/v1/environments/{id}/")
}

fn list_path(app_id: &str) -> String {
    format!("/v1/environments/?app_id={app_id}")
}

/// The app's environments as listed; asserts 200.
fn environments(api: &Api, app_id: &str) -> Value {
    let (status, body) = api.get(&list_path(app_id));
    assert_eq!(status, 200, "{body}");
    body
}

// Ports `test_list_environments_empty`.
#[test]
fn an_app_without_environments_lists_none() {
    let shop = Shop::start();
    for name in ["Development", "Staging", "Production"] {
        let (status, body) = shop.admin.delete(&env_path(&shop.env_id(name)));
        assert_eq!(status, 204, "{body}");
    }
    assert_eq!(environments(&shop.admin, &shop.app_id), json!({"data": []}));
}

// Ports `test_create_environment_success`: Phase creates it as `custom`, after the others.
#[test]
fn an_environment_added_to_an_app_is_custom_at_the_end() {
    let shop = Shop::start();
    // As Phase, a field it does not know is ignored.
    let (status, qa) = shop.admin.post(
        &list_path(&shop.app_id),
        json!({"name": "test-env", "envType": "prod"}),
    );
    assert_eq!(status, 201, "{qa}");
    assert_env_shape(&qa);
    assert_eq!(
        (&qa["envType"], &qa["index"]),
        (&json!("custom"), &json!(3))
    );
    // Whatever its name: only the three an app starts with have their own types.
    shop.admin.delete(&env_path(&shop.env_id("Production")));
    let (status, production) = shop
        .admin
        .post(&list_path(&shop.app_id), json!({"name": "Production"}));
    assert_eq!(status, 201, "{production}");
    assert_eq!(
        (&production["envType"], &production["index"]),
        (&json!("custom"), &json!(4))
    );
    let listed = environments(&shop.admin, &shop.app_id);
    let named: Vec<(&str, &str)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["envType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            ("Development", "dev"),
            ("Staging", "staging"),
            ("test-env", "custom"),
            ("Production", "custom")
        ]
    );
}

// Ports `test_create_missing_name_returns_400` and `test_update_missing_name_returns_400`.
#[test]
fn an_environment_body_without_a_name_is_400() {
    let shop = Shop::start();
    let before = environments(&shop.admin, &shop.app_id);
    let staging = env_path(&shop.env_id("Staging"));
    for body in [json!({}), json!({"name": null}), json!({"other": "x"})] {
        let answer = shop.admin.post(&list_path(&shop.app_id), body.clone());
        assert_error(
            &answer,
            400,
            "Missing required field: name",
            "missing_field",
        );
        let answer = shop.admin.put(&staging, body);
        assert_error(
            &answer,
            400,
            "Missing required field: name",
            "missing_field",
        );
    }
    assert_eq!(
        environments(&shop.admin, &shop.app_id),
        before,
        "nothing changed"
    );
}

// Ports `test_delete_environment_not_found` (and `test_get_environment_not_found` after
// a delete).
#[test]
fn deleting_an_unknown_environment_is_404() {
    let shop = Shop::start();
    let unknown = random_id();
    assert_error(
        &shop.admin.delete(&env_path(&unknown)),
        404,
        &format!("Environment with ID {unknown} not found"),
        "environment_id_not_found",
    );
    let staging = shop.env_id("Staging");
    assert_eq!(shop.admin.delete(&env_path(&staging)).0, 204);
    let gone = format!("Environment with ID {staging} not found");
    assert_error(
        &shop.admin.delete(&env_path(&staging)),
        404,
        &gone,
        "environment_id_not_found",
    );
    assert_error(
        &shop.admin.get(&env_path(&staging)),
        404,
        &gone,
        "environment_id_not_found",
    );
    let names: Vec<Value> = environments(&shop.admin, &shop.app_id)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names, [json!("Development"), json!("Production")]);
}

// Ports `test_no_permission_returns_403`, `test_developer_cannot_create` and
// `test_developer_cannot_delete`: a Service token, even one with every secret permission
// on every environment of the app, manages no environment.
#[test]
fn a_service_token_cannot_manage_environments() {
    let shop = Shop::start();
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "ci", "type": "service", "appId": shop.app_id,
               "environments": ["Development", "Staging", "Production"],
               "permissions": ["read", "create", "update", "delete"]}),
    );
    let service = shop.server.client(Some(format!("Bearer Service {token}")));
    let before = environments(&shop.admin, &shop.app_id);
    let staging = env_path(&shop.env_id("Staging"));
    for answer in [
        service.get(&list_path(&shop.app_id)),
        service.post(&list_path(&shop.app_id), json!({"name": "new-env"})),
        service.get(&staging),
        service.put(&staging, json!({"name": "renamed"})),
        service.delete(&staging),
    ] {
        assert_error(
            &answer,
            403,
            "This action requires a User token.",
            "user_token_required",
        );
    }
    assert_eq!(
        environments(&shop.admin, &shop.app_id),
        before,
        "nothing changed"
    );
}
