//! `GET /v1/changes/` (API.md, "Changes feed"), one test per line of the section, and
//! the refusals every secrets route gives (400, 403, 404).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// The feed's current position, as a request without `since` gives it.
fn position(shop: &Shop, extra_query: &str) -> String {
    let (status, body) = shop.admin.get(&changes_path(&shop.app_id, extra_query));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!([]), "no `since`: no changes");
    body["next"].as_str().expect("next is a string").to_owned()
}

fn changes(api: &Api, app_id: &str, extra_query: &str) -> Value {
    let (status, body) = api.get(&changes_path(app_id, extra_query));
    assert_eq!(status, 200, "{body}");
    body
}

fn actions(page: &Value) -> Vec<(String, String, Vec<String>)> {
    page["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|c| {
            let mut ids: Vec<String> = c["secretIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            (
                c["action"].as_str().unwrap().to_owned(),
                c["envId"].as_str().unwrap().to_owned(),
                ids,
            )
        })
        .collect()
}

#[test]
fn without_since_the_answer_is_empty_and_next_is_the_current_position() {
    let shop = Shop::start();
    let before = position(&shop, "");
    chain_seq(&before);
    shop.create(json!([{"key": "A", "value": "a"}]));
    let after = position(&shop, "&env=Development");
    assert_ne!(after, before, "a write moves the position");
    assert_eq!(
        position(&shop, "&env=Development&wait=5"),
        after,
        "no wait without since"
    );
}

#[test]
fn changes_come_oldest_first_and_name_ids_never_values() {
    let shop = Shop::start();
    let since = position(&shop, "");
    let created = shop.create(json!([{"key": "DB_URL", "value": "postgres://hidden-value"}]));
    let id = id(&created[0]);
    let (status, _) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id, "value": "another-hidden-value"}])),
    );
    assert_eq!(status, 200);
    assert_eq!(shop.list("").len(), 1, "a read between the writes");
    let (status, _) = shop.admin.delete_with(&shop.dev(), batch(json!([id])));
    assert_eq!(status, 200);

    let page = changes(&shop.admin, &shop.app_id, &format!("&since={since}"));
    let dev = shop.env_id("Development");
    let one = vec![id.clone()];
    assert_eq!(
        actions(&page),
        vec![
            ("secret.create".into(), dev.clone(), one.clone()),
            ("secret.update".into(), dev.clone(), one.clone()),
            ("secret.delete".into(), dev.clone(), one.clone()),
        ]
    );
    let data = page["data"].as_array().unwrap();
    assert_eq!(
        keys_of(&data[0]),
        [
            "action",
            "envId",
            "nodeId",
            "secretIds",
            "seq",
            "time",
            "version"
        ]
    );
    // The version written, for the one secret each write concerns (what a delete
    // numbers is the history's business).
    assert_eq!(
        (&data[0]["version"], &data[1]["version"]),
        (&json!(1), &json!(2))
    );
    let seqs: Vec<u64> = data.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    assert!(data[0]["time"].as_str().unwrap().ends_with('Z'));
    let text = page.to_string();
    assert!(
        !text.contains("hidden-value") && !text.contains("DB_URL"),
        "{text}"
    );
}

#[test]
fn next_passed_back_as_since_returns_what_came_after_the_last_change_returned() {
    let shop = Shop::start();
    let since = position(&shop, "");
    shop.create(json!([{"key": "A", "value": "a"}]));
    let first = changes(&shop.admin, &shop.app_id, &format!("&since={since}"));
    assert_eq!(first["data"].as_array().unwrap().len(), 1);
    let next = first["next"].as_str().unwrap();
    assert_eq!(
        changes(&shop.admin, &shop.app_id, &format!("&since={next}"))["data"],
        json!([])
    );
    shop.create(json!([{"key": "B", "value": "b"}]));
    let second = changes(&shop.admin, &shop.app_id, &format!("&since={next}"));
    let data = second["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert!(data[0]["seq"].as_u64().unwrap() >= chain_seq(next));
}

#[test]
fn reads_are_not_changes_and_next_skips_past_them() {
    let shop = Shop::start();
    let since = position(&shop, "");
    shop.create(json!([{"key": "A", "value": "a"}]));
    let next = changes(&shop.admin, &shop.app_id, &format!("&since={since}"))["next"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        shop.list("");
    }
    // The reads' entries become part of the feed with the next write, here in another app.
    let (other, _) = create_app(&shop.admin, "other");
    let page = changes(&shop.admin, &shop.app_id, &format!("&since={next}"));
    assert_eq!(page["data"], json!([]));
    let skipped_to = chain_seq(page["next"].as_str().unwrap());
    assert!(skipped_to > chain_seq(&next) + 5, "{page}");
    assert_eq!(
        changes(&shop.admin, &other, &format!("&since={skipped_to}"))["data"],
        json!([])
    );
}

#[test]
fn an_answer_holds_at_most_1000_changes() {
    let server = Server::start_with(&["--durability", "relaxed"]);
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "bulk");
    let since = changes(&admin, &app_id, "")["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = secrets_path(&app_id, "Development");
    for i in 0..1001 {
        let (status, body) = admin.post(
            &path,
            batch(json!([{"key": format!("K{i}"), "value": "v"}])),
        );
        assert_eq!(status, 200, "{body}");
    }
    let first = changes(&admin, &app_id, &format!("&since={since}"));
    assert_eq!(first["data"].as_array().unwrap().len(), 1000);
    let next = first["next"].as_str().unwrap();
    let rest = changes(&admin, &app_id, &format!("&since={next}"));
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
}

#[test]
fn a_wait_holds_the_answer_until_a_change_arrives() {
    let shop = Shop::start();
    let since = position(&shop, "");
    let admin = shop.admin.clone();
    let path = changes_path(
        &shop.app_id,
        &format!("&env=Development&since={since}&wait=30"),
    );
    let started = Instant::now();
    let waiter = std::thread::spawn(move || (admin.get(&path), Instant::now()));
    until_feed_waiting(&shop.server, 1, Duration::from_secs(10));
    let created = shop.create(json!([{"key": "A", "value": "a"}]));
    let written = Instant::now();
    let ((status, page), answered) = waiter.join().unwrap();
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"][0]["secretIds"], json!([id(&created[0])]));
    assert!(answered.duration_since(written) < Duration::from_secs(2));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "woken, not timed out"
    );
    assert_eq!(feed_waiting(&shop.server), 0);
}

#[test]
fn a_wait_with_nothing_new_ends_empty_with_next_equal_to_since() {
    let shop = Shop::start();
    let since = position(&shop, "");
    let started = Instant::now();
    let page = changes(
        &shop.admin,
        &shop.app_id,
        &format!("&env=Development&since={since}&wait=1"),
    );
    let waited = started.elapsed();
    assert_eq!(page, json!({"data": [], "next": since}));
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[test]
fn a_waiting_request_woken_by_a_change_it_does_not_see_goes_on_waiting() {
    let shop = Shop::start();
    let since = position(&shop, "");
    let admin = shop.admin.clone();
    let path = changes_path(
        &shop.app_id,
        &format!("&env=Development&since={since}&wait=2"),
    );
    let started = Instant::now();
    let waiter = std::thread::spawn(move || admin.get(&path));
    until_feed_waiting(&shop.server, 1, Duration::from_secs(10));
    shop.create_in("Staging", json!([{"key": "ELSEWHERE", "value": "v"}]));
    let (status, page) = waiter.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "held for the whole wait"
    );
    assert_eq!(page, json!({"data": [], "next": since}));
}

#[test]
fn deleting_an_environment_or_the_app_feeds_one_delete_per_environment_naming_its_secrets() {
    let shop = Shop::start();
    let dev = shop.create(json!([{"key": "A", "value": "a"}, {"key": "B", "value": "b"}]));
    let staging = shop.create_in("Staging", json!([{"key": "C", "value": "c"}]));
    let since = position(&shop, "");
    let (status, _) = shop
        .admin
        .delete(&format!("/v1/environments/{}/", shop.env_id("Staging")));
    assert_eq!(status, 204);
    let page = changes(&shop.admin, &shop.app_id, &format!("&since={since}"));
    assert_eq!(
        actions(&page),
        vec![(
            "secret.delete".into(),
            shop.env_id("Staging"),
            vec![id(&staging[0])]
        )]
    );

    // The app's deletion reaches a request already waiting on the feed.
    let next = page["next"].as_str().unwrap();
    let admin = shop.admin.clone();
    let path = changes_path(&shop.app_id, &format!("&since={next}&wait=30"));
    let waiter = std::thread::spawn(move || admin.get(&path));
    until_feed_waiting(&shop.server, 1, Duration::from_secs(10));
    let (status, _) = shop.admin.delete(&format!("/v1/apps/{}/", shop.app_id));
    assert_eq!(status, 204);
    let (status, page) = waiter.join().unwrap();
    assert_eq!(status, 200, "{page}");
    let mut dev_ids = vec![id(&dev[0]), id(&dev[1])];
    dev_ids.sort();
    assert_eq!(
        actions(&page),
        vec![
            ("secret.delete".into(), shop.env_id("Development"), dev_ids),
            ("secret.delete".into(), shop.env_id("Production"), vec![]),
        ]
    );
}

#[test]
fn a_user_token_without_env_sees_every_environment_of_the_app() {
    let shop = Shop::start();
    let since = position(&shop, "");
    for env in ["Development", "Staging", "Production"] {
        shop.create_in(env, json!([{"key": "K", "value": "v"}]));
    }
    let (other, _) = create_app(&shop.admin, "other");
    let (status, _) = shop.admin.post(
        &secrets_path(&other, "Development"),
        batch(json!([{"key": "K", "value": "v"}])),
    );
    assert_eq!(status, 200);
    let page = changes(&shop.admin, &shop.app_id, &format!("&since={since}"));
    let envs: Vec<String> = actions(&page).into_iter().map(|(_, env, _)| env).collect();
    assert_eq!(
        envs,
        ["Development", "Staging", "Production"].map(|e| shop.env_id(e))
    );
    let one = changes(
        &shop.admin,
        &shop.app_id,
        &format!("&env=staging&since={since}"),
    );
    let envs: Vec<String> = actions(&one).into_iter().map(|(_, env, _)| env).collect();
    assert_eq!(envs, [shop.env_id("Staging")]);
}

#[test]
fn a_service_token_sees_only_the_environments_it_may_read() {
    let shop = Shop::start();
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "watch", "type": "service", "appId": shop.app_id,
               "environments": ["Development", "Staging"], "permissions": ["read"]}),
    );
    let service = shop.server.client(Some(format!("Bearer Service {token}")));
    let since = position(&shop, "");
    for env in ["Development", "Staging", "Production"] {
        shop.create_in(env, json!([{"key": "K", "value": "v"}]));
    }
    let all = changes(&service, &shop.app_id, &format!("&since={since}"));
    let envs: Vec<String> = actions(&all).into_iter().map(|(_, env, _)| env).collect();
    assert_eq!(envs, [shop.env_id("Development"), shop.env_id("Staging")]);
    let dev = changes(
        &service,
        &shop.app_id,
        &format!("&env=Development&since={since}"),
    );
    assert_eq!(actions(&dev).len(), 1);
    assert_error(
        &service.get(&changes_path(&shop.app_id, "&env=Production")),
        403,
        "Service token cannot access this environment",
        "environment_out_of_scope",
    );
    let (other, _) = create_app(&shop.admin, "other");
    for extra in ["", "&env=Development"] {
        assert_error(
            &service.get(&changes_path(&other, extra)),
            403,
            "Service token cannot access this app",
            "app_out_of_scope",
        );
    }
}

#[test]
fn a_service_token_without_read_permission_is_403() {
    let shop = Shop::start();
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "writer", "type": "service", "appId": shop.app_id,
               "environments": ["Development"], "permissions": ["create", "update", "delete"]}),
    );
    let service = shop.server.client(Some(format!("Bearer Service {token}")));
    for extra in ["", "&env=Development", "&since=1&wait=5"] {
        assert_error(
            &service.get(&changes_path(&shop.app_id, extra)),
            403,
            "You don't have permission to read secrets in this environment.",
            "permission_denied",
        );
    }
}

#[test]
fn no_token_or_a_bad_one_is_403() {
    let shop = Shop::start();
    let path = changes_path(&shop.app_id, "");
    assert_error(
        &shop.server.client(None).get(&path),
        403,
        "Authentication credentials were not provided.",
        "not_authenticated",
    );
    let wrong = format!("Bearer User {}", "0".repeat(64));
    assert_error(
        &shop.server.client(Some(wrong)).get(&path),
        403,
        "Token expired or deleted",
        "token_invalid",
    );
}

#[test]
fn missing_or_malformed_app_id_is_400() {
    let shop = Shop::start();
    for path in [
        "/v1/changes/",
        "/v1/changes/?app_id=",
        "/v1/changes/?env=Development&since=1",
    ] {
        assert_error(
            &shop.admin.get(path),
            400,
            "Missing required query parameter: app_id",
            "missing_parameter",
        );
    }
    for bad in ["shop", "123", &shop.app_id[..35]] {
        assert_error(
            &shop.admin.get(&changes_path(bad, "")),
            400,
            "Invalid app_id",
            "invalid_app_id",
        );
    }
}

#[test]
fn an_unknown_app_or_environment_is_404() {
    let shop = Shop::start();
    let unknown = random_id();
    for extra in ["", "&env=Development", "&since=1&wait=5"] {
        assert_error(
            &shop.admin.get(&changes_path(&unknown, extra)),
            404,
            &format!("App with ID {unknown} not found"),
            "app_not_found",
        );
    }
    let (_, other) = create_app(&shop.admin, "other");
    let foreign_env = other["environments"][0]["id"].as_str().unwrap().to_string();
    for env in ["Nowhere", foreign_env.as_str()] {
        assert_error(
            &shop
                .admin
                .get(&changes_path(&shop.app_id, &format!("&env={env}"))),
            404,
            &format!("Environment '{env}' not found in App {}", shop.app_id),
            "environment_not_found",
        );
    }
}

#[test]
fn a_bad_since_is_400() {
    let shop = Shop::start();
    let ahead = chain_seq(&position(&shop, "")) + 1000;
    for bad in [
        "",
        "abc",
        "0",
        "-1",
        "+3",
        "1.0",
        " 1",
        "99999999999999999999",
        &ahead.to_string(),
    ] {
        let query = format!("&since={}", bad.replace(' ', "%20").replace('+', "%2B"));
        assert_error(
            &shop.admin.get(&changes_path(&shop.app_id, &query)),
            400,
            "Invalid 'since'",
            "invalid_since",
        );
    }
}

#[test]
fn a_bad_wait_is_400_and_wait_is_whole_seconds_from_0_to_60() {
    let shop = Shop::start();
    let since = position(&shop, "");
    for bad in ["", "-1", "61", "1.5", "abc", "1e1", "99999999999999999999"] {
        assert_error(
            &shop.admin.get(&changes_path(
                &shop.app_id,
                &format!("&since={since}&wait={bad}"),
            )),
            400,
            "Invalid 'wait'",
            "invalid_wait",
        );
    }
    for good in ["0", "00"] {
        let page = changes(
            &shop.admin,
            &shop.app_id,
            &format!("&since={since}&wait={good}"),
        );
        assert_eq!(page["next"], since.as_str());
    }
}

#[test]
fn the_oldest_retained_entry_is_a_valid_cursor() {
    // Nothing is trimmed from the audit chain yet, so its first entry is the oldest kept:
    // a cursor there reads the whole feed (before it lies only 0, refused as malformed).
    let shop = Shop::start();
    shop.create(json!([{"key": "A", "value": "a"}]));
    let page = changes(&shop.admin, &shop.app_id, "&since=1");
    assert_eq!(actions(&page).len(), 1);
}

#[test]
fn other_methods_are_405() {
    let shop = Shop::start();
    let answer = shop.admin.post(&changes_path(&shop.app_id, ""), json!({}));
    assert_error(&answer, 405, "Method not allowed.", "method_not_allowed");
}
