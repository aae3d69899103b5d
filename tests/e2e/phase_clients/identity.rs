//! `POST /v1/tokens/` answers a `phaseToken`, and `GET /service/secrets/tokens/` gives
//! the key material a Phase client rebuilds its keys from (PHASE-CLIENTS.md §1, §2.1, §3).

use reqwest::Method;
use serde_json::json;

use super::client::{identity, issue, open_environment_key, PhaseToken};
use crate::common::{assert_error, create_app, Server};

#[test]
fn a_service_token_sees_the_keys_of_its_environments_only_in_index_order() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    create_app(&admin, "other");
    let (created, phase) = issue(
        &admin,
        json!({"name": "ci", "type": "service", "appId": app_id,
               "environments": ["production", "development"], "permissions": ["read"]}),
    );
    let doc = identity(&phase.client(&server));
    assert_eq!(doc["account_id"], created["id"]);
    assert_eq!(doc["offline_enabled"], false);
    assert!(doc.get("user_id").is_none());
    let keys = phase.key_pair(doc["wrapped_key_share"].as_str().unwrap());
    let apps = doc["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{doc}");
    assert_eq!(
        (apps[0]["id"].as_str(), &apps[0]["name"]),
        (Some(app_id.as_str()), &json!("shop"))
    );
    let names: Vec<&str> = apps[0]["environment_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Development", "Production"]);
    for entry in apps[0]["environment_keys"].as_array().unwrap() {
        open_environment_key(entry, &keys);
        assert_eq!(entry["service_account"], created["id"]);
        assert!(["dev", "prod"].contains(&entry["environment"]["env_type"].as_str().unwrap()));
    }
}

#[test]
fn the_same_token_answers_under_every_type_word_the_clients_use() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let (_, phase) = issue(
        &admin,
        json!({"name": "ci", "type": "service", "appId": app_id, "environments": ["development"]}),
    );
    for word in ["ServiceAccount", "Service", "serviceaccount"] {
        let api = server.client(Some(format!("Bearer {word} {}", phase.bearer)));
        identity(&api);
    }
}

#[test]
fn a_user_token_sees_every_app_and_new_environments_as_they_come() {
    let server = Server::start();
    let admin = server.admin();
    let (shop, _) = create_app(&admin, "shop");
    create_app(&admin, "billing");
    let (created, phase) = issue(&admin, json!({"name": "me", "type": "user"}));
    let api = phase.client(&server);
    let doc = identity(&api);
    assert_eq!(doc["user_id"], created["id"]);
    assert_eq!(doc["apps"].as_array().unwrap().len(), 2);
    let keys = phase.key_pair(doc["wrapped_key_share"].as_str().unwrap());
    let seeds_before: Vec<(String, String)> = doc["apps"][0]["environment_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| open_environment_key(e, &keys))
        .collect();

    let (status, body) = admin.post(
        &format!("/v1/environments/?app_id={shop}"),
        json!({"name": "qa"}),
    );
    assert_eq!(status.as_u16(), 201, "{body}");
    let doc = identity(&api);
    let shop_keys = doc["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == shop.as_str())
        .unwrap()["environment_keys"]
        .clone();
    let names: Vec<&str> = shop_keys
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Development", "Staging", "Production", "qa"]);
    for entry in shop_keys.as_array().unwrap() {
        open_environment_key(entry, &keys);
    }
    // Wrapped afresh on every answer, the keys under the wrapping stay the same.
    let reopened: Vec<(String, String)> = doc["apps"][0]["environment_keys"]
        .as_array()
        .unwrap()
        .iter()
        .take(seeds_before.len())
        .map(|e| open_environment_key(e, &keys))
        .collect();
    assert_eq!(reopened, seeds_before);
}

#[test]
fn the_first_admin_token_is_offered_in_the_phase_form_too() {
    let server = Server::start();
    let logs = server.logs();
    let line = logs
        .lines()
        .find_map(|l| l.strip_prefix("Admin phaseToken: "))
        .expect("the admin phaseToken is printed at first start");
    let phase = PhaseToken::parse(line.trim());
    let doc = identity(&phase.client(&server));
    phase.key_pair(doc["wrapped_key_share"].as_str().unwrap());
    let (_, listed) = server.admin().get("/v1/tokens/");
    assert_eq!(
        doc["user_id"], listed["data"][0]["id"],
        "the admin token is the first"
    );
}

#[test]
fn a_token_is_never_listed_with_its_phase_form() {
    let server = Server::start();
    let admin = server.admin();
    issue(&admin, json!({"name": "me", "type": "user"}));
    let (_, listed) = admin.get("/v1/tokens/");
    for token in listed["data"].as_array().unwrap() {
        assert!(
            token.get("phaseToken").is_none() && token.get("token").is_none(),
            "{token}"
        );
    }
}

#[test]
fn without_a_live_token_the_identity_route_refuses_in_phase_words() {
    let server = Server::start();
    let admin = server.admin();
    let (created, phase) = issue(&admin, json!({"name": "me", "type": "user"}));
    assert_error(
        &server.client(None).get("/service/secrets/tokens/"),
        403,
        "Authentication credentials were not provided.",
        "not_authenticated",
    );
    let id = created["id"].as_str().unwrap();
    let (status, _) = admin.send(Method::DELETE, &format!("/v1/tokens/{id}/"), None);
    assert_eq!(status.as_u16(), 204);
    assert_error(
        &phase.client(&server).get("/service/secrets/tokens/"),
        403,
        "Token expired or deleted",
        "token_invalid",
    );
}
