//! The conventions of API.md: route prefixes, optional trailing slash, the
//! `ServiceAccount` synonym, unknown routes, unsupported methods, the body limit.

use reqwest::Method;
use serde_json::json;

use super::support::*;
use crate::common::*;

const PREFIXES: [&str; 4] = ["/v1", "/public/v1", "/service/v1", "/service/public/v1"];

#[test]
fn routes_are_served_under_every_prefix() {
    let shop = Shop::start();
    let query = format!("?app_id={}&env=Development", shop.app_id);
    let mut created = Vec::new();
    for (i, prefix) in PREFIXES.iter().enumerate() {
        let (status, body) = shop.admin.post(
            &format!("{prefix}/secrets/{query}"),
            batch(json!([{"key": format!("K{i}"), "value": prefix}])),
        );
        assert_eq!(status, 200, "{prefix}: {body}");
        created.push(body[0].clone());
    }
    let all = shop.list("");
    assert_eq!(all, created);
    for prefix in PREFIXES {
        let (status, listed) = shop.admin.get(&format!("{prefix}/secrets/{query}"));
        assert_eq!(status, 200, "{prefix}: {listed}");
        assert_eq!(listed, json!(shop.list("")), "{prefix}");
        let (status, updated) = shop.admin.put(
            &format!("{prefix}/secrets/{query}"),
            batch(json!([{"id": id(&all[0]), "comment": prefix}])),
        );
        assert_eq!(status, 200, "{prefix}: {updated}");
        assert_eq!(updated[0]["comment"], prefix);
        let (status, apps) = shop.admin.get(&format!("{prefix}/apps/"));
        assert_eq!(status, 200, "{prefix}: {apps}");
        assert_eq!(apps["data"][0]["id"], shop.app_id);
        let (status, app) = shop.admin.get(&format!("{prefix}/apps/{}/", shop.app_id));
        assert_eq!(status, 200, "{prefix}: {app}");
        let (status, envs) = shop
            .admin
            .get(&format!("{prefix}/environments/?app_id={}", shop.app_id));
        assert_eq!(status, 200, "{prefix}: {envs}");
        assert_eq!(envs["data"], shop.app["environments"]);
        let unknown = random_id();
        assert_error(
            &shop.admin.get(&format!("{prefix}/apps/{unknown}/")),
            404,
            &format!("App with ID {unknown} not found"),
            "app_not_found",
        );
    }
    for (i, prefix) in PREFIXES.iter().enumerate() {
        let (status, answer) = shop.admin.delete_with(
            &format!("{prefix}/secrets/{query}"),
            batch(json!([id(&all[i])])),
        );
        assert_eq!(status, 200, "{prefix}: {answer}");
        assert_eq!(answer["message"], "Deleted 1 secret");
    }
    assert!(shop.list("").is_empty());
}

#[test]
fn trailing_slash_is_optional() {
    let shop = Shop::start();
    let with = format!("/v1/secrets/?app_id={}&env=Development", shop.app_id);
    let without = format!("/v1/secrets?app_id={}&env=Development", shop.app_id);
    let (status, created) = shop
        .admin
        .post(&without, batch(json!([{"key": "K", "value": "v"}])));
    assert_eq!(status, 200, "{created}");
    assert_eq!(shop.admin.get(&with), shop.admin.get(&without));
    assert_eq!(shop.admin.get(&without).1, created);
    let (status, updated) = shop.admin.put(
        &without,
        batch(json!([{"id": id(&created[0]), "value": "w"}])),
    );
    assert_eq!(status, 200, "{updated}");
    for pair in [
        ("/v1/apps/", "/v1/apps"),
        (
            &format!("/v1/apps/{}/", shop.app_id)[..],
            &format!("/v1/apps/{}", shop.app_id)[..],
        ),
        (
            &format!("/v1/environments/?app_id={}", shop.app_id)[..],
            &format!("/v1/environments?app_id={}", shop.app_id)[..],
        ),
        (
            &format!("/v1/environments/{}/", shop.env_id("Staging"))[..],
            &format!("/v1/environments/{}", shop.env_id("Staging"))[..],
        ),
        ("/health/", "/health"),
    ] {
        let (slash, bare) = (shop.admin.get(pair.0), shop.admin.get(pair.1));
        assert_eq!(slash.0, 200, "{}: {}", pair.0, slash.1);
        assert_eq!(slash, bare, "{} vs {}", pair.0, pair.1);
    }
    let (status, answer) = shop
        .admin
        .delete_with(&without, batch(json!([id(&created[0])])));
    assert_eq!(status, 200, "{answer}");
    let (status, _) = shop.admin.post("/v1/apps", json!({"name": "no-slash"}));
    assert_eq!(status, 201);
}

#[test]
fn service_account_is_a_synonym_of_service() {
    let shop = Shop::start();
    let created = shop.create(json!([{"key": "K", "value": "v"}]));
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "ci", "type": "service", "appId": shop.app_id,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    for kind in ["Service", "ServiceAccount"] {
        let client = shop.server.client(Some(format!("Bearer {kind} {token}")));
        let (status, listed) = client.get(&shop.dev());
        assert_eq!(status, 200, "{kind}: {listed}");
        assert_eq!(listed, json!(created), "{kind}");
        // Same scope under either name.
        assert_error(
            &client.post(&shop.dev(), batch(json!([{"key": "X", "value": "v"}]))),
            403,
            "You don't have permission to create secrets in this environment.",
            "permission_denied",
        );
        assert_error(
            &client.get(&shop.env("Staging")),
            403,
            "Service token cannot access this environment",
            "environment_out_of_scope",
        );
    }
    assert_eq!(shop.list(""), created);
}

#[test]
fn unknown_route_is_404() {
    let shop = Shop::start();
    let anonymous = shop.server.client(None);
    for path in [
        "/",
        "/v1",
        "/v1/",
        "/v1/nothing/",
        "/v2/secrets/",
        "/v1/secret/",
        "/public/secrets/",
        &format!("/v1/apps/{}/environments/", shop.app_id),
        "/v1/secrets/extra/",
        "/healthz",
    ] {
        for client in [&shop.admin, &anonymous] {
            for method in [Method::GET, Method::POST, Method::DELETE] {
                let answer = client.send(method.clone(), path, Some(&json!({})));
                assert_error(&answer, 404, "Not found.", "not_found");
            }
        }
    }
}

#[test]
fn unsupported_method_is_405() {
    let shop = Shop::start();
    shop.create(json!([{"key": "K", "value": "v"}]));
    let before = shop.list("");
    let app = format!("/v1/apps/{}/", shop.app_id);
    let env = format!("/v1/environments/{}/", shop.env_id("Staging"));
    for (method, path) in [
        (Method::PATCH, shop.dev()),
        (Method::PATCH, "/v1/secrets".to_string()),
        (Method::PATCH, "/public/v1/secrets/".to_string()),
        (Method::PUT, "/v1/apps/".to_string()),
        (Method::DELETE, "/v1/apps/".to_string()),
        (Method::POST, app.clone()),
        (Method::PATCH, app),
        (Method::PUT, "/v1/environments/".to_string()),
        (Method::POST, env),
        (Method::POST, "/health".to_string()),
        (Method::DELETE, "/metrics".to_string()),
    ] {
        let answer = shop.admin.send(method.clone(), &path, Some(&json!({})));
        assert_error(&answer, 405, "Method not allowed.", "method_not_allowed");
        let answer = shop.server.client(None).send(method.clone(), &path, None);
        assert_error(&answer, 405, "Method not allowed.", "method_not_allowed");
    }
    assert_eq!(shop.list(""), before);
    assert_eq!(
        shop.admin.get("/v1/apps/").1["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

const MIB: usize = 1024 * 1024;

/// A JSON body padded with trailing whitespace to exactly `len` bytes.
fn padded(body: serde_json::Value, len: usize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&body).unwrap();
    assert!(bytes.len() <= len);
    bytes.resize(len, b' ');
    bytes
}

#[test]
fn body_over_1_mib_is_413() {
    let shop = Shop::start();
    let before = shop.list("");
    let body = batch(json!([{"key": "BIG", "value": "v"}]));
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let answer = shop.raw(method, Some(&padded(body.clone(), MIB + 1)));
        shop.assert_refused(
            &before,
            &answer,
            413,
            "Request body exceeds 1048576 bytes.",
            "payload_too_large",
        );
    }
    let answer = shop.admin.send_raw(
        Method::POST,
        "/v1/apps/",
        Some(padded(json!({"name": "big"}), MIB + 1)),
        &[],
    );
    assert_error(
        &answer,
        413,
        "Request body exceeds 1048576 bytes.",
        "payload_too_large",
    );
    assert_eq!(
        shop.admin.get("/v1/apps/").1["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Exactly 1 MiB is within the limit.
    let (status, created) = shop.raw(Method::POST, Some(&padded(body, MIB)));
    assert_eq!(status, 200, "{created}");
    assert_eq!(keys(&shop.list("")), ["BIG"]);
}
