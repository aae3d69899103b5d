//! `GET /v1/audit/?action=`: only entries of that action, combined with the other
//! filters and with paging; an unknown action is a 400.

use serde_json::{json, Value};

use crate::common::*;

fn actions(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect()
}

#[test]
fn the_action_filter_keeps_only_that_action() {
    let server = Server::start();
    let admin = server.admin();
    let (app, _) = create_app(&admin, "filtered");
    let path = secrets_path(&app, "Development");
    let (status, created) = admin.post(
        &path,
        json!({"secrets": [{"key": "ONE", "value": "1"}, {"key": "TWO", "value": "2"}]}),
    );
    assert_eq!(status, 200, "{created}");
    for _ in 0..3 {
        assert_eq!(admin.get(&path).0, 200);
    }
    let (other, _) = create_app(&admin, "other");
    assert_eq!(admin.get(&secrets_path(&other, "Development")).0, 200);

    let (status, reads) = admin.get("/v1/audit/?action=secret.read");
    assert_eq!(status, 200, "{reads}");
    assert_eq!(actions(&reads), ["secret.read"; 4]);
    let (_, creates) = admin.get("/v1/audit/?action=secret.create");
    assert_eq!(actions(&creates), ["secret.create"]);
    let (_, apps) = admin.get("/v1/audit/?action=app.create");
    assert_eq!(actions(&apps), ["app.create", "app.create"]);
    let (_, none) = admin.get("/v1/audit/?action=token.revoke");
    assert_eq!(none, json!({"data": [], "next": null}));

    // With another filter, both hold.
    let (_, reads_of_app) = admin.get(&format!("/v1/audit/?action=secret.read&app_id={app}"));
    assert_eq!(actions(&reads_of_app), ["secret.read"; 3]);
    assert!(reads_of_app["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["appId"] == app.as_str()));

    // Pages of a filtered listing hold only matching entries, and walk all of them.
    let mut walked = Vec::new();
    let mut query = "action=secret.read&limit=3".to_string();
    loop {
        let (status, page) = admin.get(&format!("/v1/audit/?{query}"));
        assert_eq!(status, 200, "{page}");
        walked.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => query = format!("action=secret.read&limit=3&since={next}"),
            None => break,
        }
    }
    assert_eq!(Value::from(walked), reads["data"]);

    for bad in ["secret.reed", "SECRET.READ", ""] {
        let answer = admin.get(&format!("/v1/audit/?action={bad}"));
        assert_error(&answer, 400, "Invalid action", "invalid_parameter");
    }
}
