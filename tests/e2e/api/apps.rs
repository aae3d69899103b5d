//! `/v1/apps/`: create, list, get, update, delete with cascade, and name conflicts.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn app_path(id: &str) -> String {
    format!("/v1/apps/{id}/")
}

#[test]
fn create_app_is_201_with_the_default_environments() {
    let server = Server::start();
    let admin = server.admin();
    let (status, app) = admin.post(
        "/v1/apps/",
        json!({"name": "shop", "description": "the web shop"}),
    );
    assert_eq!(status, 201, "{app}");
    let mut expected: Vec<&str> = APP_KEYS.to_vec();
    expected.push("environments");
    assert_keys(&app, &expected);
    assert_uuid(&app["id"]);
    assert_eq!(app["name"], "shop");
    assert_eq!(app["description"], "the web shop");
    assert_eq!(app["sseEnabled"], true);
    assert_timestamp(&app["createdAt"]);
    assert_eq!(app["createdAt"], app["updatedAt"]);
    let envs = app["environments"].as_array().unwrap();
    for env in envs {
        assert_env_shape(env);
    }
    let named: Vec<(&str, &str)> = envs
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["envType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            ("Development", "dev"),
            ("Staging", "staging"),
            ("Production", "prod")
        ]
    );
    let indexes: Vec<u64> = envs.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "ascending: {indexes:?}"
    );
}

#[test]
fn create_app_with_named_environments() {
    let server = Server::start();
    let admin = server.admin();
    let (status, app) = admin.post(
        "/v1/apps/",
        json!({"name": "tools", "environments": ["local", "production", "qa-1"]}),
    );
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["description"], "");
    let named: Vec<(&str, &str)> = app["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["envType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            ("local", "custom"),
            ("production", "custom"),
            ("qa-1", "custom")
        ]
    );
}

#[test]
fn list_apps_is_200_with_data() {
    let server = Server::start();
    let admin = server.admin();
    let (status, empty) = admin.get("/v1/apps/");
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty, json!({"data": []}));
    let (shop_id, _) = create_app(&admin, "shop");
    let (blog_id, _) = create_app(&admin, "Blog");
    let (status, listed) = admin.get("/v1/apps/");
    assert_eq!(status, 200, "{listed}");
    assert_keys(&listed, &["data"]);
    let data = listed["data"].as_array().unwrap();
    for app in data {
        assert_app_shape(app);
    }
    let mut ids: Vec<&str> = data.iter().map(|a| a["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = [shop_id.as_str(), blog_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
}

#[test]
fn get_app_is_200_with_the_app() {
    let server = Server::start();
    let admin = server.admin();
    let (id, created) = create_app(&admin, "shop");
    let (status, app) = admin.get(&app_path(&id));
    assert_eq!(status, 200, "{app}");
    assert_app_shape(&app);
    let mut without_envs = created.clone();
    without_envs.as_object_mut().unwrap().remove("environments");
    assert_eq!(app, without_envs);
}

#[test]
fn put_app_changes_name_and_description() {
    let server = Server::start();
    let admin = server.admin();
    let (id, created) = create_app(&admin, "shop");
    let (status, renamed) = admin.put(&app_path(&id), json!({"name": "store"}));
    assert_eq!(status, 200, "{renamed}");
    assert_app_shape(&renamed);
    assert_eq!(renamed["name"], "store");
    assert_eq!(renamed["description"], "");
    assert_eq!(renamed["createdAt"], created["createdAt"]);
    assert!(renamed["updatedAt"].as_str() > created["updatedAt"].as_str());
    let (status, described) = admin.put(&app_path(&id), json!({"description": "d"}));
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["name"], "store");
    assert_eq!(described["description"], "d");
    assert_eq!(admin.get(&app_path(&id)).1, described);
    // The old name is free again.
    create_app(&admin, "shop");
}

#[test]
fn delete_app_is_204_and_takes_its_environments_secrets_and_tokens() {
    let server = Server::start();
    let admin = server.admin();
    let (id, app) = create_app(&admin, "shop");
    let (keep_id, _) = create_app(&admin, "keep");
    let path = secrets_path(&id, "Development");
    let (status, created) = admin.post(&path, batch(json!([{"key": "K", "value": "v"}])));
    assert_eq!(status, 200, "{created}");
    let kept = admin.post(
        &secrets_path(&keep_id, "Development"),
        batch(json!([{"key": "K", "value": "kept"}])),
    );
    assert_eq!(kept.0, 200, "{}", kept.1);
    let (_, token) = create_token(
        &admin,
        json!({"name": "ci", "type": "service", "appId": id,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    let service = server.client(Some(format!("Bearer Service {token}")));
    assert_eq!(service.get(&path).0, 200);

    let (status, body) = admin.delete(&app_path(&id));
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);

    let not_found = format!("App with ID {id} not found");
    assert_error(&admin.get(&app_path(&id)), 404, &not_found, "app_not_found");
    assert_error(&admin.get(&path), 404, &not_found, "app_not_found");
    assert_error(
        &admin.get(&format!("/v1/environments/?app_id={id}")),
        404,
        &not_found,
        "app_not_found",
    );
    let env_id = app["environments"][0]["id"].as_str().unwrap();
    assert_eq!(admin.get(&format!("/v1/environments/{env_id}/")).0, 404);
    assert_error(
        &service.get(&path),
        403,
        "Token expired or deleted",
        "token_invalid",
    );
    assert_error(
        &admin.delete(&app_path(&id)),
        404,
        &not_found,
        "app_not_found",
    );
    let (_, listed) = admin.get("/v1/apps/");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    // The other app keeps its secrets; the name is free, and a new app under it is empty.
    assert_eq!(
        admin.get(&secrets_path(&keep_id, "Development")).1[0]["value"],
        "kept"
    );
    let (new_id, _) = create_app(&admin, "shop");
    assert_eq!(
        admin.get(&secrets_path(&new_id, "Development")).1,
        json!([])
    );
}

#[test]
fn app_name_taken_case_insensitively_is_409() {
    let server = Server::start();
    let admin = server.admin();
    let (id, _) = create_app(&admin, "Shop");
    let (other, _) = create_app(&admin, "other");
    let before = admin.get("/v1/apps/");
    for name in ["Shop", "shop", "SHOP", "sHoP"] {
        let answer = admin.post("/v1/apps/", json!({ "name": name }));
        assert_error(
            &answer,
            409,
            &format!("An app named '{name}' already exists."),
            "app_exists",
        );
        let answer = admin.put(&app_path(&other), json!({ "name": name }));
        assert_error(
            &answer,
            409,
            &format!("An app named '{name}' already exists."),
            "app_exists",
        );
    }
    assert_eq!(admin.get("/v1/apps/"), before, "nothing changed");
    // Renaming an app to its own name in another case is no conflict.
    let (status, renamed) = admin.put(&app_path(&id), json!({"name": "SHOP"}));
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "SHOP");
}

#[test]
fn bad_app_name_is_400() {
    let server = Server::start();
    let admin = server.admin();
    let (id, _) = create_app(&admin, "shop");
    let before = admin.get("/v1/apps/");
    let long = "x".repeat(65);
    for name in ["", "   ", long.as_str(), "a\nb"] {
        // A message quotes at most 64 characters of what the client sent.
        let message = format!("Invalid app name: '{}'", quote(name));
        let answer = admin.post("/v1/apps/", json!({ "name": name }));
        assert_error(&answer, 400, &message, "invalid_app_name");
        let answer = admin.put(&app_path(&id), json!({ "name": name }));
        assert_error(&answer, 400, &message, "invalid_app_name");
    }
    assert_eq!(admin.get("/v1/apps/"), before, "nothing changed");
    create_app(&admin, &"x".repeat(64));
}

#[test]
fn unknown_app_is_404_on_every_app_route() {
    let server = Server::start();
    let admin = server.admin();
    let unknown = random_id();
    let message = format!("App with ID {unknown} not found");
    assert_error(
        &admin.get(&app_path(&unknown)),
        404,
        &message,
        "app_not_found",
    );
    assert_error(
        &admin.put(&app_path(&unknown), json!({"name": "x"})),
        404,
        &message,
        "app_not_found",
    );
    assert_error(
        &admin.delete(&app_path(&unknown)),
        404,
        &message,
        "app_not_found",
    );
    assert_error(
        &admin.get("/v1/apps/not-a-uuid/"),
        404,
        "App with ID not-a-uuid not found",
        "app_not_found",
    );
    assert_eq!(admin.get("/v1/apps/").1, json!({"data": []}));
}
