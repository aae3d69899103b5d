//! "Idempotent retries" in API.md: `Idempotency-Key` on `POST`, `PUT` and `DELETE`
//! `/v1/secrets/` and on rollback, row by row, with real concurrent requests and a real
//! crash between a commit and its answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// An answer with the header a replay carries.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
    replayed: bool,
}

/// Sends a request with an `Idempotency-Key` (or none).
fn send(api: &Api, method: Method, path: &str, body: Option<&Value>, key: Option<&str>) -> Answer {
    let mut request = api.http.request(method, format!("{}{path}", api.base));
    if let Some(auth) = &api.authorization {
        request = request.header("Authorization", auth);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().expect("request sent");
    let status = response.status().as_u16();
    let replayed = match response.headers().get("idempotent-replayed") {
        None => false,
        Some(value) => {
            assert_eq!(value, "true", "the header's only value");
            true
        }
    };
    let text = response.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        body,
        replayed,
    }
}

fn post(shop: &Shop, api: &Api, body: &Value, key: &str) -> Answer {
    send(api, Method::POST, &shop.dev(), Some(body), Some(key))
}

/// Every secret.* entry of the app's audit log: (action, secret ids).
fn secret_writes(shop: &Shop) -> Vec<(String, Value)> {
    let (status, body) = shop
        .admin
        .get(&format!("/v1/audit/?app_id={}", shop.app_id));
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("secret.") && a != "secret.read")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["secretIds"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_repeat_gets_the_kept_answer_and_writes_nothing() {
    let shop = Shop::start();
    let body = batch(json!([{"key": "DB_URL", "value": "postgres://db", "tags": ["a"]}]));
    let first = post(&shop, &shop.admin, &body, "create-1");
    assert_eq!((first.status, first.replayed), (200, false), "{first:?}");
    let again = post(&shop, &shop.admin, &body, "create-1");
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first.clone()
        }
    );
    assert_eq!(shop.list("").len(), 1);
    assert_eq!(secret_writes(&shop).len(), 1, "one write audited");
}

#[test]
fn the_same_request_spelled_otherwise_is_the_same_request() {
    let shop = Shop::start();
    let first = post(
        &shop,
        &shop.admin,
        &json!({"secrets": [{"key": "K", "value": "v", "comment": "c"}]}),
        "spelled",
    );
    assert_eq!(first.status, 200, "{first:?}");
    // Query order, the environment by id or by name in any case, another prefix, and
    // the body's key order and spacing aside.
    let path = format!(
        "/public/v1/secrets?env={}&app_id={}",
        shop.env_id("Development"),
        shop.app_id
    );
    let body = br#"{ "secrets" : [ {"comment":"c", "value":"v", "key":"K"} ] }"#.to_vec();
    let (status, replayed) = {
        let response = shop
            .admin
            .http
            .post(format!("{}{path}", shop.admin.base))
            .header("Authorization", shop.admin.authorization.clone().unwrap())
            .header("Idempotency-Key", "spelled")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        (status, (replayed, response.json::<Value>().unwrap()))
    };
    assert_eq!((status, replayed), (200, (true, first.body.clone())));
    let by_name = secrets_path(&shop.app_id, "development");
    let answer = send(
        &shop.admin,
        Method::POST,
        &by_name,
        Some(&json!({"secrets": [{"key": "K", "value": "v", "comment": "c"}]})),
        Some("spelled"),
    );
    assert_eq!((answer.status, answer.replayed), (200, true));
    assert_eq!(shop.list("").len(), 1);
}

#[test]
fn every_write_route_replays() {
    let shop = Shop::start();
    let id =
        id(&shop.create(json!([{"key": "K", "value": "one"}, {"key": "GONE", "value": "x"}]))[0]);
    let gone = id_of(&shop, "GONE");
    let rollback = format!(
        "/v1/secrets/{id}/rollback/?app_id={}&env=Development",
        shop.app_id
    );
    let upsert = format!("{}&upsert=true", shop.dev());
    let writes = [
        (
            Method::PUT,
            shop.dev(),
            batch(json!([{"id": id, "value": "two"}])),
        ),
        (Method::POST, rollback, json!({"version": 1})),
        (
            Method::POST,
            upsert,
            batch(json!([{"key": "K", "value": "three"}, {"key": "NEW", "value": "n"}])),
        ),
        (Method::DELETE, shop.dev(), batch(json!([gone]))),
    ];
    for (i, (method, path, body)) in writes.into_iter().enumerate() {
        let key = format!("write-{i}");
        let first = send(&shop.admin, method.clone(), &path, Some(&body), Some(&key));
        assert_eq!(
            (first.status, first.replayed),
            (200, false),
            "{method} {path}: {first:?}"
        );
        let listed = shop.list("");
        let audited = secret_writes(&shop);
        let again = send(&shop.admin, method.clone(), &path, Some(&body), Some(&key));
        assert_eq!(
            again,
            Answer {
                replayed: true,
                ..first
            },
            "{method} {path}"
        );
        assert_eq!(shop.list(""), listed, "a replay writes nothing");
        assert_eq!(
            secret_writes(&shop),
            audited,
            "a replay is not audited as a write"
        );
    }
}

/// The id of the secret with this key in Development.
fn id_of(shop: &Shop, key: &str) -> String {
    let listed = shop.list(&format!("&key={key}"));
    id(&listed[0])
}

#[test]
fn a_key_reused_with_another_request_is_422() {
    let shop = Shop::start();
    let body = batch(json!([{"key": "K", "value": "v"}]));
    assert_eq!(post(&shop, &shop.admin, &body, "reused").status, 200);
    let before = shop.list("");
    let other_body = batch(json!([{"key": "K", "value": "other"}]));
    let upsert = format!("{}&upsert=true", shop.dev());
    for (method, path, body) in [
        (Method::POST, shop.dev(), &other_body),
        (Method::POST, upsert, &body),
        (Method::PUT, shop.dev(), &body),
        (Method::POST, shop.env("Staging"), &body),
    ] {
        let answer = send(&shop.admin, method, &path, Some(body), Some("reused"));
        assert_eq!(answer.status, 422, "{path}: {answer:?}");
        assert_eq!(
            answer.body,
            json!({"error": "Idempotency-Key reused with a different request.", "code": "idempotency_key_reused"})
        );
        assert!(!answer.replayed);
    }
    assert_eq!(shop.list(""), before);
}

#[test]
fn a_malformed_key_is_400() {
    let shop = Shop::start();
    let body = batch(json!([{"key": "K", "value": "v"}]));
    let too_long = "k".repeat(256);
    for key in ["", "with space", "tab\there", too_long.as_str()] {
        let answer = post(&shop, &shop.admin, &body, key);
        assert_eq!(answer.status, 400, "{key:?}: {answer:?}");
        assert_eq!(
            answer.body,
            json!({"error": "Invalid Idempotency-Key", "code": "invalid_idempotency_key"})
        );
    }
    let (status, _) = {
        let response = shop
            .admin
            .http
            .post(format!("{}{}", shop.admin.base, shop.dev()))
            .header("Authorization", shop.admin.authorization.clone().unwrap())
            .header("Idempotency-Key", "one")
            .header("Idempotency-Key", "two")
            .json(&body)
            .send()
            .unwrap();
        (response.status().as_u16(), ())
    };
    assert_eq!(status, 400, "two keys");
    assert_eq!(shop.list(""), Vec::<Value>::new());
    // The longest and the oddest visible keys are fine.
    let longest = "~".repeat(255);
    assert_eq!(post(&shop, &shop.admin, &body, &longest).status, 200);
    let odd = batch(json!([{"key": "ODD", "value": "v"}]));
    assert_eq!(
        post(
            &shop,
            &shop.admin,
            &odd,
            "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}"
        )
        .status,
        200
    );
}

#[test]
fn keys_belong_to_their_token() {
    let shop = Shop::start();
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "ci", "type": "service", "appId": shop.app_id,
               "environments": ["Development"], "permissions": ["read", "create"]}),
    );
    let ci = shop.server.client(Some(format!("Bearer Service {token}")));
    let body = batch(json!([{"key": "K", "value": "v"}]));
    assert_eq!(post(&shop, &shop.admin, &body, "shared").status, 200);
    // The same key and request from another token is its own request: it runs, and
    // finds the key taken.
    let answer = post(&shop, &ci, &body, "shared");
    assert_eq!((answer.status, answer.replayed), (409, false), "{answer:?}");
    let again = post(&shop, &ci, &body, "shared");
    assert_eq!((again.status, again.replayed), (409, true));
}

#[test]
fn refusals_are_kept_too() {
    let shop = Shop::start();
    let existing = id(&shop.create(json!([{"key": "K", "value": "v"}]))[0]);
    let body = batch(json!([{"key": "K", "value": "again"}]));
    let first = post(&shop, &shop.admin, &body, "refused");
    assert_eq!(first.status, 409, "{first:?}");
    let (status, _) = shop
        .admin
        .delete_with(&shop.dev(), batch(json!([existing])));
    assert_eq!(status, 200);
    // The key is free now, but the answer to this request was the 409.
    let again = post(&shop, &shop.admin, &body, "refused");
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first
        }
    );
    assert_eq!(shop.list(""), Vec::<Value>::new());
    // A 404 of a rollback, as well.
    let unknown = random_id();
    let path = format!(
        "/v1/secrets/{unknown}/rollback/?app_id={}&env=Development",
        shop.app_id
    );
    let first = send(
        &shop.admin,
        Method::POST,
        &path,
        Some(&json!({"version": 1})),
        Some("nothing"),
    );
    assert_eq!(first.status, 404);
    let again = send(
        &shop.admin,
        Method::POST,
        &path,
        Some(&json!({"version": 1})),
        Some("nothing"),
    );
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first
        }
    );
}

#[test]
fn a_body_not_received_in_time_is_not_kept() {
    let shop = Shop::start_with(&["--body-timeout", "1"]);
    let body = serde_json::to_vec(&batch(json!([{"key": "K", "value": "v"}]))).unwrap();
    let addr = shop.server.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer User {}\r\nIdempotency-Key: slow\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        shop.dev(),
        shop.server.admin_token,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body[..5]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let retry = post(
        &shop,
        &shop.admin,
        &batch(json!([{"key": "K", "value": "v"}])),
        "slow",
    );
    assert_eq!(
        (retry.status, retry.replayed),
        (200, false),
        "the retry runs: {retry:?}"
    );
}

#[test]
fn a_repeat_while_the_first_runs_is_409_and_another_request_422() {
    let shop = Shop::start_with_env(&[], &[("COFFER_FAULT_PAUSE_AFTER_COMMIT", "slow-write")]);
    let body = batch(json!([{"key": "K", "value": "v"}]));
    let first = {
        let (shop_admin, path, body) = (shop.admin.clone(), shop.dev(), body.clone());
        std::thread::spawn(move || {
            send(
                &shop_admin,
                Method::POST,
                &path,
                Some(&body),
                Some("slow-write"),
            )
        })
    };
    // The first request holds its key for two seconds after its commit.
    std::thread::sleep(Duration::from_millis(700));
    let repeat = post(&shop, &shop.admin, &body, "slow-write");
    assert_eq!(repeat.status, 409, "{repeat:?}");
    assert_eq!(
        repeat.body,
        json!({"error": "A request with this Idempotency-Key is in progress.", "code": "idempotency_in_progress"})
    );
    let other = post(
        &shop,
        &shop.admin,
        &batch(json!([{"key": "OTHER", "value": "v"}])),
        "slow-write",
    );
    assert_eq!(other.status, 422, "{other:?}");
    assert_eq!(other.body["code"], "idempotency_key_reused");
    let first = first.join().unwrap();
    assert_eq!((first.status, first.replayed), (200, false), "{first:?}");
    // Once it answered, the repeat gets its answer.
    let again = post(&shop, &shop.admin, &body, "slow-write");
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first
        }
    );
    assert_eq!(shop.list("").len(), 1);
}

#[test]
fn a_retry_after_a_crash_between_commit_and_answer_gets_the_committed_answer() {
    let mut shop = Shop::start_with_env(&[], &[("COFFER_FAULT_ABORT_AFTER_COMMIT", "crash")]);
    let body = batch(json!([{"key": "DB_URL", "value": "postgres://db"}]));
    let lost = shop
        .admin
        .http
        .post(format!("{}{}", shop.admin.base, shop.dev()))
        .header("Authorization", shop.admin.authorization.clone().unwrap())
        .header("Idempotency-Key", "crash")
        .json(&body)
        .send();
    assert!(lost.is_err(), "the server died before answering: {lost:?}");
    let status = shop.server.wait();
    assert!(!status.success(), "aborted: {status}");
    shop.server.start_again();
    shop.admin = shop.server.admin();
    let written = shop.list("");
    assert_eq!(written.len(), 1, "the write committed before the crash");
    let retry = post(&shop, &shop.admin, &body, "crash");
    assert_eq!((retry.status, retry.replayed), (200, true), "{retry:?}");
    assert_eq!(retry.body, json!(written), "the committed answer");
    assert_eq!(shop.list(""), written, "written once");
    assert_eq!(secret_writes(&shop).len(), 1);
}

#[test]
fn kept_answers_survive_a_restart_and_are_sealed_at_rest() {
    let mut shop = Shop::start();
    let marker = format!("kept-{}", random_id());
    let body = batch(json!([{"key": "K", "value": marker}]));
    let first = post(&shop, &shop.admin, &body, "restart");
    assert_eq!(first.status, 200);
    shop.server.restart();
    shop.admin = shop.server.admin();
    let again = post(&shop, &shop.admin, &body, "restart");
    assert_eq!(
        again,
        Answer {
            replayed: true,
            ..first
        }
    );
    let status = shop.server.stop();
    assert!(status.success());
    for file in files_under(shop.server.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [marker.as_bytes(), b"restart".as_slice()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {} in clear",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
