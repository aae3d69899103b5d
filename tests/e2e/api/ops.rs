//! `/health`, `/metrics`, persistence across a restart, and what the log never holds.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

#[test]
fn health_is_200_ok_without_a_token() {
    let server = Server::start();
    for authorization in [None, Some("Bearer User nonsense".to_string())] {
        let client = server.client(authorization);
        let (status, body) = client.get("/health");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
        );
    }
}

/// The samples of `coffer_http_requests_total`: labels → count.
fn request_counts(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| line.strip_prefix("coffer_http_requests_total{"))
        .map(|rest| {
            let (labels, count) = rest.rsplit_once("} ").expect("a sample line");
            let mut labels: Vec<&str> = labels.split(',').collect();
            labels.sort();
            (
                labels.join(","),
                count.trim().parse().expect("an integer count"),
            )
        })
        .collect()
}

#[test]
fn metrics_is_prometheus_text_with_request_counts() {
    let shop = Shop::start();
    for _ in 0..3 {
        shop.list("");
    }
    shop.create(json!([{"key": "K", "value": "v"}]));
    let unknown = random_id();
    for _ in 0..2 {
        let (status, _) = shop.admin.get(&secrets_path(&unknown, "Development"));
        assert_eq!(status, 404);
    }
    let response = shop
        .admin
        .http
        .get(format!("{}/metrics", shop.server.base))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().unwrap();
    assert!(
        text.contains("# TYPE coffer_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE coffer_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("coffer_store_"), "store sizes: {text}");
    let counts = request_counts(&text);
    let count = |method: &str, route: &str, status: u16| {
        let key = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
        counts.get(&key).copied().unwrap_or(0)
    };
    assert_eq!(count("GET", "/v1/secrets", 200), 3, "{counts:?}");
    assert_eq!(count("GET", "/v1/secrets", 404), 2, "{counts:?}");
    assert_eq!(count("POST", "/v1/secrets", 200), 1, "{counts:?}");
    assert_eq!(count("POST", "/v1/apps", 201), 1, "{counts:?}");
    // No token needed.
    let (status, _) = shop.server.client(None).get("/metrics");
    assert_eq!(status, 200);
}

#[test]
fn data_written_is_read_back_identically_after_a_restart() {
    let mut shop = Shop::start();
    let (status, _) = shop.admin.post(
        &format!("/v1/environments/?app_id={}", shop.app_id),
        json!({"name": "qa"}),
    );
    assert_eq!(status, 201);
    let (status, _) = shop.admin.put(
        &format!("/v1/environments/{}/", shop.env_id("Staging")),
        json!({"name": "Preprod"}),
    );
    assert_eq!(status, 200);
    let created = shop.create(json!([
        {"key": "db_url", "value": "postgres://u:p@db/shop", "comment": "main",
         "tags": ["db", "ops"], "path": "/svc/api"},
        {"key": "UNICODE", "value": "pässwörd 🔑\n\"quoted\"\t", "type": "sealed"},
        {"key": "GONE", "value": "soon deleted"},
        {"key": "CFG", "value": "", "type": "config"}
    ]));
    let (status, _) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[3]), "value": "on", "version": 1}])),
    );
    assert_eq!(status, 200);
    let (status, _) = shop
        .admin
        .delete_with(&shop.dev(), batch(json!([id(&created[2])])));
    assert_eq!(status, 200);
    shop.create_in(
        "qa",
        json!([{"key": "QA_ONLY", "value": "q", "path": "x/y"}]),
    );
    create_app(&shop.admin, "second");

    let snapshot = |shop: &Shop| -> Vec<(String, Value)> {
        let mut seen = Vec::new();
        for path in [
            "/v1/apps/".to_string(),
            format!("/v1/apps/{}/", shop.app_id),
            format!("/v1/environments/?app_id={}", shop.app_id),
        ] {
            let (status, body) = shop.admin.get(&path);
            assert_eq!(status, 200, "{path}: {body}");
            seen.push((path, body));
        }
        for env in ["Development", "Preprod", "Production", "qa"] {
            seen.push((env.to_string(), json!(shop.list_in(env, ""))));
        }
        seen
    };
    let before = snapshot(&shop);
    assert_eq!(before[3].1.as_array().unwrap().len(), 3);

    shop.server.restart();
    shop.admin = shop.server.admin();
    assert_eq!(snapshot(&shop), before);

    // Writing goes on where it stopped: versions continue, uniqueness still holds.
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[3]), "value": "off"}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["version"], 3);
    let answer = shop.admin.post(
        &shop.dev(),
        batch(json!([{"key": "DB_URL", "value": "x", "path": "/svc/api"}])),
    );
    assert_error(&answer, 409, "Duplicate secret found", "duplicate_secret");
}

#[test]
fn the_log_never_holds_a_secret_value_or_the_admin_token() {
    let mut shop = Shop::start();
    let values = [
        "value-3f9a1c-created",
        "value-77b2e0-updated",
        "value-c41d88-refused",
        "comment-9e0f12-hidden",
    ];
    let created = shop.create(json!([
        {"key": "SECRET_ONE", "value": values[0], "comment": values[3]}
    ]));
    let (status, _) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[0]), "value": values[1]}])),
    );
    assert_eq!(status, 200);
    // Refused writes carrying values.
    let refused = [
        shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "BAD\u{0}KEY", "value": values[2]}])),
        ),
        shop.admin.post(
            &shop.dev(),
            batch(json!([{"key": "SECRET_ONE", "value": values[2]}])),
        ),
        shop.admin.put(
            &shop.dev(),
            batch(json!([{"id": id(&created[0]), "value": values[2], "version": 9}])),
        ),
        shop.admin.send_raw(
            Method::POST,
            &shop.dev(),
            Some(
                format!(
                    "{{\"secrets\": [{{\"key\": \"K\", \"value\": \"{}\"",
                    values[2]
                )
                .into_bytes(),
            ),
            &[],
        ),
    ];
    for (status, body) in &refused {
        assert!(status.is_client_error(), "{status} {body}");
    }
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "ci", "type": "service", "appId": shop.app_id,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    let service = shop
        .server
        .client(Some(format!("Bearer ServiceAccount {token}")));
    assert_eq!(service.get(&shop.dev()).0, 200);
    let forged = shop
        .server
        .client(Some(format!("Bearer User {}", "ab".repeat(32))));
    assert_eq!(forged.get(&shop.dev()).0, 403);
    shop.list("");
    shop.server.restart();
    shop.admin = shop.server.admin();
    assert_eq!(shop.list("")[0]["value"], values[1]);

    let logs = shop.server.logs();
    assert!(
        logs.contains("coffer::request") || logs.contains("/v1/secrets"),
        "requests are logged:\n{logs}"
    );
    for value in values {
        assert!(!logs.contains(value), "the log holds {value}:\n{logs}");
    }
    // The admin token is printed once, in both its forms, on the lines the operator
    // needs, and nowhere else.
    let admin_token = &shop.server.admin_token;
    let holding: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(admin_token.as_str()))
        .collect();
    assert_eq!(holding.len(), 2, "admin token in the log: {holding:?}");
    assert_eq!(holding[0], format!("Admin token: {admin_token}"));
    assert!(
        holding[1].starts_with(&format!("Admin phaseToken: pss_user:v1:{admin_token}:")),
        "{holding:?}"
    );
    assert!(!logs.contains(&token), "the service token is in the log");
    assert!(
        !logs.contains(&"ab".repeat(32)),
        "a presented token is in the log"
    );
}
