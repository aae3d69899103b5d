//! Phase's own words and shapes, as a script written for Phase sees them.

use reqwest::Method;
use serde_json::json;

use super::support::*;
use crate::common::*;

#[test]
fn keys_phase_accepts_are_accepted_upper_cased() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "1password_token", "value": "a"},
        {"key": "my key", "value": "b"},
        {"key": "  padded  ", "value": "c"},
    ]));
    let keys: Vec<&str> = created.iter().map(|s| s["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["1PASSWORD_TOKEN", "MY KEY", "PADDED"]);
    let found = shop.list("&key=My%20Key");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["value"], "b");
}

#[test]
fn app_bodies_as_phase_takes_them() {
    let server = Server::start();
    let admin = server.admin();
    let (status, app) = admin.post(
        "/v1/apps/",
        json!({"name": "loose", "description": null, "somethingElse": 1}),
    );
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["description"], "");
    let id = app["id"].as_str().unwrap();
    let answer = admin.post("/v1/apps/", json!({"name": "none", "environments": []}));
    assert_error(
        &answer,
        400,
        "'environments' must not be empty.",
        "environments_empty",
    );
    let answer = admin.put(&format!("/v1/apps/{id}/"), json!({}));
    assert_error(
        &answer,
        400,
        "At least one of 'name' or 'description' must be provided.",
        "nothing_to_update",
    );
    let (status, app) = admin.put(
        &format!("/v1/apps/{id}/"),
        json!({"description": "d", "x": 2}),
    );
    assert_eq!((status.as_u16(), &app["description"]), (200, &json!("d")));
    // As Phase: a null field is no change, and a change of nothing is refused.
    let answer = admin.put(&format!("/v1/apps/{id}/"), json!({"description": null}));
    assert_error(
        &answer,
        400,
        "At least one of 'name' or 'description' must be provided.",
        "nothing_to_update",
    );
    for (environments, message, code) in [
        (
            json!("Dev"),
            "'environments' must be a list of environment names.",
            "environments_not_list",
        ),
        (
            json!(["valid", 123]),
            "Each environment name must be a non-empty string.",
            "environment_name_blank",
        ),
        (
            json!(["valid", "  "]),
            "Each environment name must be a non-empty string.",
            "environment_name_blank",
        ),
        (
            json!(["staging", "Staging"]),
            "Duplicate environment name: 'Staging'.",
            "duplicate_environment_name",
        ),
    ] {
        let answer = admin.post(
            "/v1/apps/",
            json!({"name": "envs", "environments": environments}),
        );
        assert_error(&answer, 400, message, code);
    }
    let (status, app) = admin.post(
        "/v1/apps/",
        json!({"name": "custom", "environments": [" dev ", "qa"]}),
    );
    assert_eq!(status, 201, "{app}");
    let names: Vec<&str> = app["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dev", "qa"]);
    admin.delete(&format!("/v1/apps/{}/", app["id"].as_str().unwrap()));
    // Nothing else changed: one app besides the refused ones.
    assert_eq!(
        admin.get("/v1/apps/").1["data"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn bearer_and_the_token_type_are_case_insensitive() {
    let shop = Shop::start();
    for header in [
        format!("bearer user {}", shop.server.admin_token),
        format!("BEARER USER {}", shop.server.admin_token),
        format!("Bearer uSeR {}", shop.server.admin_token),
    ] {
        let client = shop.server.client(Some(header.clone()));
        assert_eq!(client.get(&shop.dev()).0, 200, "{header}");
    }
}

#[test]
fn service_v1_is_a_prefix_too_and_delete_speaks_phase() {
    let shop = Shop::start();
    let ids: Vec<String> = shop
        .create(json!([{"key": "A", "value": "1"}, {"key": "B", "value": "2"}, {"key": "C", "value": "3"}]))
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let service_path = shop.dev().replacen("/v1/", "/service/v1/", 1);
    let (status, listed) = shop.admin.get(&service_path);
    assert_eq!(
        (status.as_u16(), listed.as_array().unwrap().len()),
        (200, 3)
    );
    let answer = shop
        .admin
        .delete_with(&service_path, json!({"secrets": [ids[0]]}));
    assert_eq!(answer.1, json!({"message": "Deleted 1 secret"}));
    let answer = shop
        .admin
        .delete_with(&shop.dev(), json!({"secrets": [ids[1], ids[2]]}));
    assert_eq!(answer.1, json!({"message": "Deleted 2 secrets"}));
}

#[test]
fn a_query_with_bad_percent_encoding_is_a_400() {
    let shop = Shop::start();
    for bad in ["&key=%", "&key=%zz", "&key=%C3", "&key=%FF", "&path=%2"] {
        let answer = shop
            .admin
            .send(Method::GET, &format!("{}{bad}", shop.dev()), None);
        assert_error(&answer, 400, "Query string is malformed.", "invalid_query");
    }
    assert_eq!(shop.admin.get(&format!("{}&key=%C3%A9", shop.dev())).0, 200);
}
