//! `/v1/environments/`: list by index, create, get, rename, delete with cascade, and
//! name rules.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn env_path(id: &str) -> String {
    format!("/v1/environments/{id}/")
}

impl Shop {
    fn environments_path(&self) -> String {
        format!("/v1/environments/?app_id={}", self.app_id)
    }

    fn environments(&self) -> Vec<Value> {
        let (status, body) = self.admin.get(&self.environments_path());
        assert_eq!(status, 200, "{body}");
        assert_keys(&body, &["data"]);
        body["data"].as_array().unwrap().clone()
    }
}

fn names(envs: &[Value]) -> Vec<&str> {
    envs.iter().map(|e| e["name"].as_str().unwrap()).collect()
}

#[test]
fn list_environments_is_200_ordered_by_index() {
    let shop = Shop::start();
    let envs = shop.environments();
    for env in &envs {
        assert_env_shape(env);
    }
    assert_eq!(envs, shop.app["environments"].as_array().unwrap().clone());
    assert_eq!(names(&envs), ["Development", "Staging", "Production"]);
    // A later environment comes last even if its name sorts first.
    let (status, _) = shop
        .admin
        .post(&shop.environments_path(), json!({"name": "AAA"}));
    assert_eq!(status, 201);
    let envs = shop.environments();
    assert_eq!(
        names(&envs),
        ["Development", "Staging", "Production", "AAA"]
    );
    let indexes: Vec<u64> = envs.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(
        indexes.windows(2).all(|w| w[0] < w[1]),
        "ascending: {indexes:?}"
    );
}

#[test]
fn create_environment_is_201() {
    let shop = Shop::start();
    let (status, env) = shop
        .admin
        .post(&shop.environments_path(), json!({"name": "qa_2-eu"}));
    assert_eq!(status, 201, "{env}");
    assert_env_shape(&env);
    assert_eq!(env["name"], "qa_2-eu");
    assert_eq!(env["envType"], "custom");
    assert_eq!(env["createdAt"], env["updatedAt"]);
    let last = shop.app["environments"][2]["index"].as_u64().unwrap();
    assert!(env["index"].as_u64().unwrap() > last);
    // It holds secrets like any other.
    let created = shop.create_in("QA_2-EU", json!([{"key": "K", "value": "v"}]));
    assert_eq!(created[0]["environment"], env["id"]);
}

#[test]
fn get_environment_is_200() {
    let shop = Shop::start();
    let staging = &shop.app["environments"][1];
    let (status, env) = shop.admin.get(&env_path(&shop.env_id("Staging")));
    assert_eq!(status, 200, "{env}");
    assert_eq!(&env, staging);
}

#[test]
fn rename_environment_is_200_and_keeps_id_type_and_secrets() {
    let shop = Shop::start();
    let created = shop.create_in("Staging", json!([{"key": "K", "value": "v"}]));
    let staging_id = shop.env_id("Staging");
    let original = shop.app["environments"][1].clone();
    let (status, renamed) = shop
        .admin
        .put(&env_path(&staging_id), json!({"name": "Preprod"}));
    assert_eq!(status, 200, "{renamed}");
    assert_env_shape(&renamed);
    assert_eq!(renamed["id"], original["id"]);
    assert_eq!(renamed["name"], "Preprod");
    assert_eq!(renamed["envType"], "staging");
    assert_eq!(renamed["index"], original["index"]);
    assert_eq!(renamed["createdAt"], original["createdAt"]);
    assert!(renamed["updatedAt"].as_str() > original["updatedAt"].as_str());
    assert_eq!(shop.admin.get(&env_path(&staging_id)).1, renamed);
    assert_eq!(shop.list_in("preprod", ""), created);
    assert_error(
        &shop.admin.get(&shop.env("Staging")),
        404,
        &format!("Environment 'Staging' not found in App {}", shop.app_id),
        "environment_not_found",
    );
    // A change of case only is no conflict with itself.
    let (status, recased) = shop
        .admin
        .put(&env_path(&staging_id), json!({"name": "PREPROD"}));
    assert_eq!(status, 200, "{recased}");
    assert_eq!(recased["name"], "PREPROD");
}

#[test]
fn delete_environment_is_204_and_takes_its_secrets() {
    let shop = Shop::start();
    shop.create_in("Staging", json!([{"key": "K", "value": "v"}]));
    let dev = shop.create(json!([{"key": "K", "value": "dev"}]));
    let staging_id = shop.env_id("Staging");
    let (status, body) = shop.admin.delete(&env_path(&staging_id));
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    assert_eq!(names(&shop.environments()), ["Development", "Production"]);
    let message = format!("Environment with ID {staging_id} not found");
    assert_error(
        &shop.admin.get(&env_path(&staging_id)),
        404,
        &message,
        "environment_id_not_found",
    );
    assert_error(
        &shop.admin.delete(&env_path(&staging_id)),
        404,
        &message,
        "environment_id_not_found",
    );
    assert_error(
        &shop.admin.get(&shop.env("Staging")),
        404,
        &format!("Environment 'Staging' not found in App {}", shop.app_id),
        "environment_not_found",
    );
    // Other environments keep theirs; a new Staging starts empty.
    assert_eq!(shop.list(""), dev);
    let (status, _) = shop
        .admin
        .post(&shop.environments_path(), json!({"name": "Staging"}));
    assert_eq!(status, 201);
    assert_eq!(shop.list_in("Staging", ""), Vec::<Value>::new());
}

#[test]
fn environment_name_taken_on_create_is_409() {
    let shop = Shop::start();
    let before = shop.environments();
    for name in ["Development", "development", "PRODUCTION"] {
        let answer = shop
            .admin
            .post(&shop.environments_path(), json!({ "name": name }));
        assert_error(
            &answer,
            409,
            &format!("An environment named '{name}' already exists in this app."),
            "environment_exists",
        );
    }
    assert_eq!(shop.environments(), before, "nothing changed");
    // Twice among the environments of a new app: Phase's 400.
    let answer = shop.admin.post(
        "/v1/apps/",
        json!({"name": "twice", "environments": ["qa", "prod", "QA"]}),
    );
    assert_error(
        &answer,
        400,
        "Duplicate environment name: 'QA'.",
        "duplicate_environment_name",
    );
    assert_eq!(
        shop.admin.get("/v1/apps/").1["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Another app may use the name.
    let (other, _) = create_app(&shop.admin, "other");
    let (status, _) = shop.admin.post(
        &format!("/v1/environments/?app_id={other}"),
        json!({"name": "qa"}),
    );
    assert_eq!(status, 201);
    let (status, _) = shop
        .admin
        .post(&shop.environments_path(), json!({"name": "QA"}));
    assert_eq!(status, 201);
}

#[test]
fn environment_name_taken_on_rename_is_409() {
    let shop = Shop::start();
    let before = shop.environments();
    for name in ["Production", "production", "DEVELOPMENT"] {
        let answer = shop
            .admin
            .put(&env_path(&shop.env_id("Staging")), json!({ "name": name }));
        assert_error(
            &answer,
            409,
            &format!("An environment named '{name}' already exists in this app."),
            "environment_exists",
        );
    }
    assert_eq!(shop.environments(), before, "nothing changed");
}

#[test]
fn bad_environment_name_is_400() {
    let shop = Shop::start();
    let before = shop.environments();
    let long = "e".repeat(65);
    for name in ["", "two words", "prod/eu", "é", "a.b", long.as_str()] {
        let message = format!("Invalid environment name: '{}'", quote(name));
        let answer = shop
            .admin
            .post(&shop.environments_path(), json!({ "name": name }));
        assert_error(&answer, 400, &message, "invalid_environment_name");
        let answer = shop
            .admin
            .put(&env_path(&shop.env_id("Staging")), json!({ "name": name }));
        assert_error(&answer, 400, &message, "invalid_environment_name");
        let answer = shop
            .admin
            .post("/v1/apps/", json!({"name": "new", "environments": [name]}));
        if name.trim().is_empty() {
            let blank = "Each environment name must be a non-empty string.";
            assert_error(&answer, 400, blank, "environment_name_blank");
        } else {
            assert_error(&answer, 400, &message, "invalid_environment_name");
        }
    }
    assert_eq!(shop.environments(), before, "nothing changed");
    assert_eq!(
        shop.admin.get("/v1/apps/").1["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, env) = shop
        .admin
        .post(&shop.environments_path(), json!({"name": "e".repeat(64)}));
    assert_eq!(status, 201, "{env}");
}

#[test]
fn environments_of_an_unknown_app_are_404() {
    let shop = Shop::start();
    let unknown = random_id();
    let message = format!("App with ID {unknown} not found");
    let path = format!("/v1/environments/?app_id={unknown}");
    assert_error(&shop.admin.get(&path), 404, &message, "app_not_found");
    assert_error(
        &shop.admin.post(&path, json!({"name": "qa"})),
        404,
        &message,
        "app_not_found",
    );
    assert_error(
        &shop.admin.get("/v1/environments/"),
        400,
        "Missing required query parameter: app_id",
        "missing_parameter",
    );
    assert_error(
        &shop.admin.get("/v1/environments/?app_id=nope"),
        400,
        "Invalid app_id",
        "invalid_app_id",
    );
    let unknown_env = random_id();
    assert_error(
        &shop.admin.get(&env_path(&unknown_env)),
        404,
        &format!("Environment with ID {unknown_env} not found"),
        "environment_id_not_found",
    );
    assert_error(
        &shop
            .admin
            .put(&env_path(&unknown_env), json!({"name": "x"})),
        404,
        &format!("Environment with ID {unknown_env} not found"),
        "environment_id_not_found",
    );
}
