//! The token API: the secret is shown once, revocation is immediate, bad requests are
//! refused.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn is_token(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn a_token_is_shown_only_in_its_create_response() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, app) = create_app(&admin, "shop");
    let dev_id = app["environments"][0]["id"].as_str().unwrap();
    let staging_id = app["environments"][1]["id"].as_str().unwrap();

    // Environments by name or by id.
    let (status, created) = admin.post(
        "/v1/tokens/",
        json!({"name": "ci", "type": "service", "appId": app_id,
               "environments": ["development", staging_id],
               "permissions": ["read", "create"], "allowedIps": ["127.0.0.1"]}),
    );
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    assert!(is_token(token), "64 lowercase hex: {token}");
    assert_eq!(created["type"], "service");
    assert_eq!(created["name"], "ci");
    assert_eq!(created["appId"], app_id.as_str());
    assert_eq!(created["environments"], json!([dev_id, staging_id]));
    assert_eq!(created["permissions"], json!(["read", "create"]));
    assert_eq!(created["revoked"], false);
    assert!(created.get("hash").is_none(), "{created}");

    let (status, listed) = admin.get("/v1/tokens/");
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(!text.contains(token), "the list shows a token: {text}");
    assert!(
        !text.contains(&server.admin_token),
        "the list shows the admin token"
    );
    let tokens = listed["data"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "admin and ci: {listed}");
    for t in tokens {
        assert!(
            t.get("token").is_none() && t.get("phaseToken").is_none(),
            "{t}"
        );
    }
    let mut shown = created.clone();
    shown.as_object_mut().unwrap().remove("token");
    shown.as_object_mut().unwrap().remove("phaseToken");
    let listed_ci = tokens.iter().find(|t| t["id"] == created["id"]).unwrap();
    // Only lastUsedAt may differ.
    let mut listed_ci = listed_ci.clone();
    listed_ci["lastUsedAt"] = shown["lastUsedAt"].clone();
    assert_eq!(listed_ci, shown);

    // The token works, within its scope.
    let ci = server.client(service_header(token));
    assert_eq!(ci.get(&secrets_path(&app_id, "Development")).0, 200);
    assert_eq!(ci.get(&secrets_path(&app_id, "Staging")).0, 200);
    assert_denied(&ci.get(&secrets_path(&app_id, "Production")), OTHER_ENV);
}

#[test]
fn a_revoked_token_fails_on_the_very_next_request() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let path = secrets_path(&app_id, "Development");
    let (service_id, service) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let (user_id, user) = create_token(&admin, json!({"name": "ops", "type": "user"}));
    let service = server.client(service_header(&service));
    let user = server.client(Some(format!("Bearer User {user}")));
    assert_eq!(service.get(&path).0, 200);
    assert_eq!(user.get("/v1/apps/").0, 200);

    for (id, client, probe) in [
        (&service_id, &service, path.as_str()),
        (&user_id, &user, "/v1/apps/"),
    ] {
        let (status, body) = admin.delete(&format!("/v1/tokens/{id}/"));
        assert_eq!((status.as_u16(), body), (204, Value::Null));
        assert_denied(&client.get(probe), GONE);
        assert_denied(&client.get(probe), GONE);
    }
    let (_, listed) = admin.get("/v1/tokens/");
    for t in listed["data"].as_array().unwrap() {
        let revoked = t["id"] == service_id.as_str() || t["id"] == user_id.as_str();
        assert_eq!(t["revoked"], revoked, "{t}");
    }
    // A revoked User token cannot revoke or mint anything either.
    let (_, admin_listed) = admin.get("/v1/tokens/");
    let admin_id = admin_listed["data"][0]["id"].as_str().unwrap().to_string();
    assert_denied(&user.delete(&format!("/v1/tokens/{admin_id}/")), GONE);
    assert_eq!(admin.get("/v1/apps/").0, 200);

    let missing = uuid::Uuid::new_v4();
    assert_eq!(admin.delete(&format!("/v1/tokens/{missing}/")).0, 404);
}

#[test]
fn token_lifetime_ends_at_expiry_and_with_its_app() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let path = secrets_path(&app_id, "Development");
    let past = rfc3339(SystemTime::now() - Duration::from_secs(3600));
    let (_, expired) = create_token(
        &admin,
        json!({"name": "old", "type": "service", "appId": app_id,
               "environments": ["Development"], "expiresAt": past}),
    );
    assert_denied(&server.client(service_header(&expired)).get(&path), GONE);
    let future = rfc3339(SystemTime::now() + Duration::from_secs(3600));
    let (_, live) = create_token(
        &admin,
        json!({"name": "new", "type": "service", "appId": app_id,
               "environments": ["Development"], "expiresAt": future}),
    );
    let live = server.client(service_header(&live));
    assert_eq!(live.get(&path).0, 200);
    // Deleting the app takes its scoped tokens with it.
    assert_eq!(admin.delete(&format!("/v1/apps/{app_id}/")).0, 204);
    assert_denied(&live.get(&path), GONE);
}

#[test]
fn bad_token_requests_are_refused() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    for bad in [
        "10.0.0.0/33",
        "banana",
        "300.1.2.3",
        "10.0.0.1/",
        "::1/129",
        "",
    ] {
        let answer = admin.post(
            "/v1/tokens/",
            json!({"name": "t", "type": "service", "appId": app_id,
                   "environments": ["Development"], "allowedIps": ["127.0.0.1", bad]}),
        );
        assert_error(
            &answer,
            400,
            &format!("Invalid IP or CIDR: '{bad}'"),
            "invalid_cidr",
        );
    }
    let scopeless = [
        json!({"name": "t", "type": "service"}),
        json!({"name": "t", "type": "service", "environments": ["Development"]}),
        json!({"name": "t", "type": "service", "appId": app_id}),
        json!({"name": "t", "type": "service", "appId": app_id, "environments": []}),
    ];
    for body in scopeless {
        let (status, answer) = admin.post("/v1/tokens/", body.clone());
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        assert!(answer["code"].is_string(), "{answer}");
    }
    let (status, _) = admin.post(
        "/v1/tokens/",
        json!({"name": "t", "type": "service", "appId": app_id, "environments": ["Nope"]}),
    );
    assert_eq!(status, 404);
    let (status, _) = admin.post("/v1/tokens/", json!({"name": "t", "type": "robot"}));
    assert_eq!(status, 400);
    // Nothing was created by any of these.
    let (_, listed) = admin.get("/v1/tokens/");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn a_token_learns_its_own_scope_and_nothing_else() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, app) = create_app(&admin, "shop");
    let staging_id = app["environments"][1]["id"].as_str().unwrap();
    let (token_id, token) = create_token(
        &admin,
        json!({"name": "ci", "type": "service", "appId": app_id,
               "environments": ["staging"], "permissions": ["read"]}),
    );
    let ci = server.client(Some(format!("Bearer Service {token}")));

    let (status, own) = ci.get("/v1/tokens/self/");
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["id"], token_id.as_str());
    assert_eq!(own["type"], "service");
    assert_eq!(own["permissions"], json!(["read"]));
    assert_eq!(own["environments"], json!([staging_id]));
    assert_eq!(
        own["scope"],
        json!({"app": {"id": app_id, "name": "shop"},
               "environments": [{"id": staging_id, "name": "Staging"}]})
    );
    assert!(own.get("token").is_none() && own.get("phaseToken").is_none());
    assert!(!own.to_string().contains(&token));

    // A User token reaches everything: no scope.
    let (status, own) = server.admin().get("/v1/tokens/self/");
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["type"], "user");
    assert_eq!(own["scope"], Value::Null);

    // A service token still may not list the others, and a revoked one learns nothing.
    assert_eq!(ci.get("/v1/tokens/").0, 403);
    assert_eq!(admin.delete(&format!("/v1/tokens/{token_id}/")).0, 204);
    assert_eq!(ci.get("/v1/tokens/self/").0, 403);
}
