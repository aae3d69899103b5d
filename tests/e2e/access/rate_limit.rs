//! Rate limits: per token (`--rate-limit`), and failed authentications per client IP
//! (`--auth-failure-limit`). A 429 says when to come back, in a header and in words.

use std::time::Duration;

use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::Value;

use super::support::*;
use crate::common::*;

/// Sends a GET and keeps the response headers.
fn get_with_headers(api: &Api, path: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = api.http.get(format!("{}{path}", api.base));
    if let Some(auth) = &api.authorization {
        request = request.header("Authorization", auth);
    }
    if let Some(ip) = forwarded_for {
        request = request.header("X-Forwarded-For", ip);
    }
    request.send().expect("request sent")
}

/// Asserts a 429 whose `Retry-After` (integer seconds, > 0) matches its message;
/// returns the seconds.
#[track_caller]
fn assert_throttled(response: Response) -> u64 {
    assert_eq!(response.status(), 429);
    let header = response
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .to_string();
    let seconds: u64 = header.parse().expect("Retry-After is integer seconds");
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    let body: Value = response.json().unwrap();
    let message = format!("Request was throttled. Expected available in {seconds} seconds.");
    assert_error(
        &(reqwest::StatusCode::TOO_MANY_REQUESTS, body),
        429,
        &message,
        "throttled",
    );
    seconds
}

#[test]
fn the_sixth_request_in_a_minute_waits_and_then_passes() {
    let server = Server::start_with(&["--rate-limit", "5"]);
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "limited");
    let (_, first) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let (_, second) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let first = server.client(service_header(&first));
    let path = secrets_path(&app_id, "Development");
    for n in 1..=5 {
        assert_eq!(first.get(&path).0, 200, "request {n}");
    }
    // 5 per minute: the next slot opens 12 s after the first of the five.
    let wait = assert_throttled(get_with_headers(&first, &path, None));
    assert!(wait <= 12, "Retry-After {wait}");
    // The limit comes before the scope checks (authenticate → policy → limit → scope).
    assert_throttled(get_with_headers(
        &first,
        &secrets_path(&app_id, "Production"),
        None,
    ));
    // Per token: another token and the admin are not affected.
    let second = server.client(service_header(&second));
    assert_eq!(second.get(&path).0, 200);
    assert_eq!(admin.get("/v1/apps/").0, 200);
    // Operations routes are never limited.
    for _ in 0..10 {
        assert_eq!(first.get("/health").0, 200);
    }
    // Recovery: after Retry-After seconds, exactly one more request.
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(100));
    assert_eq!(first.get(&path).0, 200);
    assert_throttled(get_with_headers(&first, &path, None));
}

#[test]
fn a_burst_at_the_limit_recovers_within_seconds() {
    let server = Server::start_with(&["--rate-limit", "60"]);
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "burst");
    let (_, token) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let client = server.client(service_header(&token));
    let path = secrets_path(&app_id, "Development");
    // At least the burst of 60 passes (more only if the burst outlasts a second).
    let mut passed = 0;
    let throttled = loop {
        let response = get_with_headers(&client, &path, None);
        if response.status() != 200 {
            break response;
        }
        passed += 1;
        assert!(passed <= 200, "never throttled");
    };
    assert!(passed >= 60, "throttled after {passed}");
    assert_eq!(assert_throttled(throttled), 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(client.get(&path).0, 200);
}

#[test]
fn failed_authentications_are_throttled_per_client_ip() {
    let server = Server::start_with(&[
        "--auth-failure-limit",
        "3",
        "--trusted-proxies",
        "127.0.0.1/32",
    ]);
    let unknown = server.client(Some(format!("Bearer User {}", "0".repeat(64))));
    let malformed = server.client(Some("Bearer User nope".into()));
    let anonymous = server.client(None);
    let admin = server.admin();

    // Three failures of any kind are answered as usual…
    assert_denied(&unknown.get("/v1/apps/"), GONE);
    assert_denied(&malformed.get("/v1/apps/"), INVALID);
    assert_denied(&anonymous.get("/v1/apps/"), NO_CREDENTIALS);
    // …the fourth within the minute is throttled: 3 per minute, one every 20 s.
    let wait = assert_throttled(get_with_headers(&unknown, "/v1/apps/", None));
    assert!(wait <= 20, "Retry-After {wait}");
    assert_throttled(get_with_headers(&anonymous, "/v1/apps/", None));
    // The address is refused before any token is looked up: a valid token from it waits
    // too, so guessing cannot go on behind a good token.
    assert_throttled(get_with_headers(&admin, "/v1/apps/", None));

    // Per client IP: another client behind the trusted proxy has its own budget.
    for _ in 0..3 {
        let answer = forwarded(&unknown, Method::GET, "/v1/apps/", None, "10.0.0.7");
        assert_denied(&answer, GONE);
    }
    assert_throttled(get_with_headers(&unknown, "/v1/apps/", Some("10.0.0.7")));
    let answer = forwarded(&unknown, Method::GET, "/v1/apps/", None, "10.0.0.8");
    assert_denied(&answer, GONE);
    // Operations routes stay open to a throttled address.
    assert_eq!(anonymous.get("/health").0, 200);
}
