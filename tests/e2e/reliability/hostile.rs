//! Hostile input over HTTP: every malformed request is a 4xx with the JSON error body
//! (also for requests the HTTP layer itself refuses), never a 5xx or a
//! panic, and the server keeps serving after each one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// Checks answers and that the server is still alive after each.
pub(crate) struct Probe<'a> {
    server: &'a Server,
    health: Api,
    checks: std::cell::Cell<usize>,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(server: &'a Server) -> Self {
        Probe {
            server,
            health: server.client(None),
            checks: std::cell::Cell::new(0),
        }
    }

    /// `/health` answers 200, and (every few calls, as the log grows) nothing panicked.
    #[track_caller]
    pub(crate) fn alive(&self, context: &str) {
        let (status, body) = self.health.get("/health");
        assert_eq!(status, 200, "health after {context}: {body}");
        assert_eq!(
            body,
            json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}),
            "health after {context}"
        );
        let checks = self.checks.get() + 1;
        if checks == 32 {
            self.checks.set(0);
            self.no_panic(context);
        } else {
            self.checks.set(checks);
        }
    }

    /// Nothing in the server log says a thread panicked.
    #[track_caller]
    pub(crate) fn no_panic(&self, context: &str) {
        assert!(
            !self.server.logs().contains("panicked"),
            "panic after {context}:\n{}",
            self.server.logs()
        );
    }

    /// A 4xx with exactly `{"error": "<non-empty>", "code": "<snake_case>"}`, then alive.
    #[track_caller]
    pub(crate) fn refused(&self, answer: &(StatusCode, Value), context: &str) {
        assert_json_error(answer.0.as_u16(), &answer.1, context);
        self.alive(context);
    }

    /// Any answer below 500; a 4xx carries the JSON error body. Then alive.
    #[track_caller]
    pub(crate) fn answered(&self, answer: &(StatusCode, Value), context: &str) {
        assert!(
            answer.0.as_u16() < 500,
            "{context}: {} {}",
            answer.0,
            answer.1
        );
        if answer.0.is_client_error() {
            assert_json_error(answer.0.as_u16(), &answer.1, context);
        }
        self.alive(context);
    }

    /// Like `refused`, with an exact status.
    #[track_caller]
    pub(crate) fn refused_with(&self, answer: &(StatusCode, Value), status: u16, context: &str) {
        assert_eq!(answer.0.as_u16(), status, "{context}: {}", answer.1);
        self.refused(answer, context);
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.no_panic("the test");
        }
    }
}

/// A 4xx whose body is exactly `{"error": "<non-empty>", "code": "<snake_case>"}`.
#[track_caller]
pub(crate) fn assert_json_error(status: u16, body: &Value, context: &str) {
    assert!(
        (400..500).contains(&status),
        "{context}: status {status}, body {body}"
    );
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("{context}: {status} body is not a JSON object: {body}"));
    assert_eq!(object.len(), 2, "{context}: {body}");
    let error = object["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{context}: {body}");
    let code = object["code"].as_str().unwrap_or_default();
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
        "{context}: {body}"
    );
}

/// An answer read off a raw connection.
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl RawAnswer {
    /// The body as JSON (`Null` when empty or not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends raw bytes on a new connection and reads until the server closes it. `None`
/// when the connection ended without a status line (the server may drop a connection
/// whose request head is too large before a client finished sending it).
pub(crate) fn raw(server: &Server, request: &[u8]) -> Option<RawAnswer> {
    let addr = server
        .base
        .strip_prefix("http://")
        .expect("plain HTTP server");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    let _ = stream.write_all(request);
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
    }
    let head_end = received.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&received[..head_end]).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = received[head_end + 4..].to_vec();
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(length) = length {
        body.truncate(length);
    }
    Some(RawAnswer { status, body })
}

/// A raw request with the given target and extra header lines (`Connection: close`).
pub(crate) fn raw_request(method: &str, target: &[u8], headers: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut request = Vec::new();
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for header in headers {
        request.extend_from_slice(header);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    request.extend_from_slice(body);
    request
}

/// Checks a raw answer: below 500; a 4xx from the application carries the JSON body,
/// every 4xx carries the JSON error body, also those the HTTP layer answers itself.
#[track_caller]
fn assert_raw_refusal(answer: &RawAnswer, context: &str) {
    assert!(answer.status < 500, "{context}: status {}", answer.status);
    if answer.status >= 400 {
        assert_json_error(answer.status, &answer.json(), context);
    }
}

/// A fresh server with an app; `(server, app id, secrets route of Development)`.
fn setup(name: &str, args: &[&str]) -> (Server, String, String) {
    let server = Server::start_with(args);
    let (app_id, _) = create_app(&server.admin(), name);
    let path = secrets_path(&app_id, "Development");
    (server, app_id, path)
}

/// Creates one secret; returns its id.
fn create_one(api: &Api, path: &str, key: &str) -> String {
    let (status, body) = api.post(path, json!({"secrets": [{"key": key, "value": "v"}]}));
    assert_eq!(status, 200, "{body}");
    body[0]["id"].as_str().unwrap().to_string()
}

/// Every route that reads a JSON body, with the method that does.
fn body_routes(app_id: &str, secret_path: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, secret_path.to_string()),
        (Method::PUT, secret_path.to_string()),
        (Method::DELETE, secret_path.to_string()),
        (Method::POST, "/v1/apps/".to_string()),
        (Method::PUT, format!("/v1/apps/{app_id}/")),
        (Method::POST, format!("/v1/environments/?app_id={app_id}")),
        (Method::POST, "/v1/tokens/".to_string()),
    ]
}

/// The listing of an environment.
fn listing(api: &Api, path: &str) -> Value {
    let (status, body) = api.get(path);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn malformed_and_truncated_json_is_a_400() {
    let (server, app_id, path) = setup("hostile-json", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    create_one(&admin, &path, "EXISTING");
    let before = listing(&admin, &path);
    let valid: &[u8] = br#"{"secrets":[{"key":"TRUNC","value":"v\u00e9","comment":"c","tags":["t"],"path":"/p","type":"secret"}],"name":"n"}"#;
    let mut bodies: Vec<Vec<u8>> = (0..valid.len()).map(|cut| valid[..cut].to_vec()).collect();
    for malformed in [
        &b"{"[..],
        b"}",
        b"[",
        b"\"",
        b"nul",
        b"tru",
        b"{\"secrets\":}",
        b"{\"secrets\":[,]}",
        b"{'secrets':[]}",
        b"{secrets:[]}",
        b"{\"secrets\":[{\"key\":\"A\",\"value\":\"v\",}]}",
        b"{\"secrets\":[{\"key\":\"A\" \"value\":\"v\"}]}",
        b"{\"secrets\":[]} trailing",
        b"{\"a\":1}{\"b\":2}",
        b"\xEF\xBB\xBF{\"secrets\":[]}",
        b"/* comment */ {}",
        b"{\"a\":NaN}",
        b"{\"a\":Infinity}",
        b"{\"a\":-}",
        b"{\"a\":01}",
        b"{\"a\":1.}",
        b"{\"a\":\"\\x41\"}",
        b"{\"a\":\"\\u12\"}",
        b"{\"a\":\"unterminated}",
        b"{\"a\":\"raw\ncontrol\"}",
        b"null",
        b"[]",
        b"[{\"key\":\"A\",\"value\":\"v\"}]",
        b"1",
        b"\"a string\"",
        b"true",
        b"   \t\r\n ",
    ] {
        bodies.push(malformed.to_vec());
    }
    for (method, route) in body_routes(&app_id, &path) {
        for body in &bodies {
            let answer = admin.send_raw(method.clone(), &route, Some(body.clone()), &[]);
            let context = format!("{method} {route} {:?}", String::from_utf8_lossy(body));
            probe.refused_with(&answer, 400, &context);
        }
    }
    assert_eq!(listing(&admin, &path), before, "nothing changed");
}

/// `base` with `field` set to `value`, inside `{"secrets": [..]}` when `entry`.
fn with_field(base: &Value, field: &str, value: &Value, entry: bool) -> Value {
    let mut object = base.as_object().cloned().unwrap_or_default();
    object.insert(field.to_string(), value.clone());
    if entry {
        json!({ "secrets": [Value::Object(object)] })
    } else {
        Value::Object(object)
    }
}

#[test]
fn wrong_json_types_in_every_field_are_refused() {
    let (server, app_id, path) = setup("hostile-types", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let id = create_one(&admin, &path, "EXISTING");
    let before = listing(&admin, &path);
    let shapes = || {
        vec![
            json!(5),
            json!(-1),
            json!(1.5),
            json!(true),
            json!([]),
            json!({}),
            json!(["x"]),
            json!({"a": "x"}),
        ]
    };
    let strings_only = |extra: Vec<Value>| shapes().into_iter().chain(extra).collect::<Vec<_>>();
    // One wrong field at a time in an otherwise valid entry.
    let create_base = json!({"key": "NEW_KEY", "value": "v"});
    let mut create_cases: Vec<(&str, Vec<Value>)> = vec![
        (
            "key",
            strings_only(vec![Value::Null, json!(""), json!("   ")]),
        ),
        ("value", strings_only(vec![Value::Null])),
        ("comment", strings_only(vec![])),
        ("path", strings_only(vec![])),
        ("type", strings_only(vec![json!("bogus"), json!("")])),
    ];
    create_cases.push((
        "tags",
        vec![
            json!("t"),
            json!(5),
            json!(true),
            json!({}),
            json!([5]),
            json!([null]),
            json!([[]]),
            json!([{}]),
            json!(["ok", 5]),
        ],
    ));
    for (field, values) in &create_cases {
        for value in values {
            let body = with_field(&create_base, field, value, true);
            let answer = admin.post(&path, body.clone());
            probe.refused_with(&answer, 400, &format!("POST {body}"));
        }
    }
    let update_base = json!({"id": id, "value": "changed"});
    let mut update_cases = create_cases.clone();
    update_cases.retain(|(field, _)| *field != "value" && *field != "key");
    update_cases.push(("key", strings_only(vec![json!(""), json!("   ")])));
    update_cases.push(("value", shapes()));
    update_cases.push((
        "id",
        strings_only(vec![Value::Null, json!(""), json!("not-a-uuid")]),
    ));
    update_cases.push((
        "version",
        strings_only(vec![json!("1"), json!("one"), json!(-5), json!(0.5)]),
    ));
    for (field, values) in &update_cases {
        for value in values {
            let body = with_field(&update_base, field, value, true);
            let answer = admin.put(&path, body.clone());
            probe.refused(&answer, &format!("PUT {body}"));
        }
    }
    // `secrets` itself.
    for value in strings_only(vec![
        Value::Null,
        json!("x"),
        json!([5]),
        json!(["x"]),
        json!([null]),
        json!([[]]),
    ]) {
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let body = json!({ "secrets": value });
            let answer = admin.send(method.clone(), &path, Some(&body));
            probe.refused(&answer, &format!("{method} {body}"));
        }
    }
    let delete_values = vec![json!([{}]), json!([true]), json!([id, 5]), json!([[id]])];
    for value in delete_values {
        let body = json!({ "secrets": value });
        let answer = admin.delete_with(&path, body.clone());
        probe.refused(&answer, &format!("DELETE {body}"));
    }
    // Apps, environments and tokens.
    let app_base = json!({"name": "other-app"});
    for (field, values) in [
        ("name", strings_only(vec![Value::Null, json!("")])),
        ("description", shapes()),
        (
            "environments",
            vec![
                json!("Dev"),
                json!(5),
                json!([5]),
                json!([null]),
                json!([[]]),
                json!({}),
            ],
        ),
    ] {
        for value in values {
            let body = with_field(&app_base, field, &value, false);
            probe.refused(
                &admin.post("/v1/apps/", body.clone()),
                &format!("POST app {body}"),
            );
            // As Phase, a field an update does not take is ignored.
            if !value.is_null() && field != "environments" {
                let answer = admin.put(&format!("/v1/apps/{app_id}/"), body.clone());
                probe.refused(&answer, &format!("PUT app {body}"));
            }
        }
    }
    let envs = format!("/v1/environments/?app_id={app_id}");
    for value in strings_only(vec![
        Value::Null,
        json!(""),
        json!("bad name!"),
        json!("x".repeat(65)),
    ]) {
        let body = json!({ "name": value });
        probe.refused(
            &admin.post(&envs, body.clone()),
            &format!("POST env {body}"),
        );
    }
    let token_base = json!({
        "name": "t", "type": "service", "appId": app_id,
        "environments": ["Development"], "permissions": ["read"],
    });
    for (field, values) in [
        ("name", strings_only(vec![Value::Null, json!("")])),
        ("type", strings_only(vec![Value::Null, json!("root")])),
        ("appId", strings_only(vec![json!("not-a-uuid")])),
        (
            "environments",
            vec![
                json!("Development"),
                json!(5),
                json!([5]),
                json!([null]),
                json!({}),
            ],
        ),
        (
            "permissions",
            vec![
                json!("read"),
                json!(5),
                json!([5]),
                json!(["admin"]),
                json!({}),
            ],
        ),
        ("expiresAt", strings_only(vec![json!("yesterday")])),
        (
            "allowedIps",
            vec![
                json!("1.2.3.4"),
                json!([5]),
                json!(["300.1.1.1"]),
                json!(["1.2.3.4/99"]),
                json!({}),
            ],
        ),
    ] {
        for value in values {
            let body = with_field(&token_base, field, &value, false);
            probe.refused(
                &admin.post("/v1/tokens/", body.clone()),
                &format!("POST token {body}"),
            );
        }
    }
    assert_eq!(listing(&admin, &path), before, "nothing changed");
    let (_, apps) = admin.get("/v1/apps/");
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "{apps}");
}

#[test]
fn deeply_nested_json_is_a_400() {
    let (server, app_id, path) = setup("hostile-deep", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    const DEPTH: usize = 10_000;
    let arrays = "[".repeat(DEPTH) + &"]".repeat(DEPTH);
    let objects = r#"{"a":"#.repeat(DEPTH) + "1" + &"}".repeat(DEPTH);
    let unclosed = "[".repeat(DEPTH);
    let mut bodies = Vec::new();
    for nest in [&arrays, &objects, &unclosed] {
        bodies.push(nest.clone());
        bodies.push(format!(r#"{{"secrets":{nest}}}"#));
        bodies.push(format!(r#"{{"secrets":[{{"key":"K","value":{nest}}}]}}"#));
        bodies.push(format!(r#"{{"name":{nest}}}"#));
    }
    for (method, route) in body_routes(&app_id, &path) {
        for body in &bodies {
            let answer =
                admin.send_raw(method.clone(), &route, Some(body.clone().into_bytes()), &[]);
            probe.refused_with(
                &answer,
                400,
                &format!("{method} {route} nested {}", &body[..20]),
            );
        }
    }
}

#[test]
fn huge_numbers_are_refused() {
    let (server, _, path) = setup("hostile-numbers", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let id = create_one(&admin, &path, "EXISTING");
    let long_digits = "9".repeat(100_000);
    let creates = [
        r#"{"secrets":[{"key":"K","value":1e400}]}"#.to_string(),
        r#"{"secrets":[{"key":1e400,"value":"v"}]}"#.to_string(),
        r#"{"secrets":[{"key":"K","value":"v","tags":[1e400]}]}"#.to_string(),
        r#"{"secrets":[{"key":"K","value":"v","comment":-1e400}]}"#.to_string(),
        format!(r#"{{"secrets":[{{"key":"K","value":{long_digits}}}]}}"#),
    ];
    for body in &creates {
        let answer = admin.send_raw(Method::POST, &path, Some(body.clone().into_bytes()), &[]);
        probe.refused_with(
            &answer,
            400,
            &format!("POST {}", &body[..body.len().min(60)]),
        );
    }
    for version in [
        "1e400".to_string(),
        "-1e400".to_string(),
        "18446744073709551617".to_string(),
        "18446744073709551616".to_string(),
        "-1".to_string(),
        "1e308".to_string(),
        "2.5".to_string(),
        long_digits.clone(),
        format!("-{long_digits}"),
    ] {
        let body = format!(r#"{{"secrets":[{{"id":"{id}","value":"x","version":{version}}}]}}"#);
        let answer = admin.send_raw(Method::PUT, &path, Some(body.into_bytes()), &[]);
        probe.refused_with(
            &answer,
            400,
            &format!("version {}", &version[..version.len().min(30)]),
        );
    }
    // The largest u64 is a well-formed version that does not match.
    let answer = admin.put(
        &path,
        json!({"secrets": [{"id": id, "value": "x", "version": u64::MAX}]}),
    );
    assert_error(
        &answer,
        409,
        &format!("Secret version conflict: expected {}, current 1", u64::MAX),
        "version_conflict",
    );
    probe.alive("u64::MAX version");
    for query in [
        "/v1/audit/?limit=99999999999999999999999999".to_string(),
        "/v1/audit/?since=-1".to_string(),
        "/v1/audit/?limit=1e400".to_string(),
        format!("/v1/audit/?since={}", "9".repeat(10_000)),
    ] {
        probe.refused_with(&admin.get(&query), 400, &query[..query.len().min(60)]);
    }
}

#[test]
fn invalid_utf8_in_bodies_is_a_400() {
    let (server, app_id, path) = setup("hostile-utf8", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let id = create_one(&admin, &path, "EXISTING");
    let before = listing(&admin, &path);
    let mut bodies: Vec<Vec<u8>> = vec![
        b"{\"secrets\":[{\"key\":\"K\",\"value\":\"\xff\xfe\"}]}".to_vec(),
        b"{\"secrets\":[{\"key\":\"K\xc3\",\"value\":\"v\"}]}".to_vec(),
        b"{\"secrets\":[{\"key\":\"K\",\"value\":\"\xc0\x80\"}]}".to_vec(),
        b"{\"secrets\":[{\"key\":\"K\",\"value\":\"\xed\xa0\x80\"}]}".to_vec(),
        b"{\"secrets\":[{\"key\":\"K\",\"value\":\"\\ud800\"}]}".to_vec(),
        b"{\"secrets\":[{\"key\":\"K\",\"value\":\"\\udc00x\"}]}".to_vec(),
        [
            format!("{{\"secrets\":[{{\"id\":\"{id}\",\"value\":\"").as_bytes(),
            b"\x80\xbf\"}]}",
        ]
        .concat(),
        b"{\"name\":\"\xf8\x88\x80\x80\x80\"}".to_vec(),
        b"\xfe\xff\x00{\x00}".to_vec(),
        b"\xff\xff\xff\xff".to_vec(),
    ];
    // UTF-16 with a byte order mark.
    let utf16: Vec<u8> = "{\"secrets\":[]}"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    bodies.push([&[0xff, 0xfe][..], &utf16].concat());
    let mut rng = rand::thread_rng();
    for _ in 0..20 {
        let len = rng.gen_range(1..200);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        junk[0] = 0xff;
        bodies.push(junk);
    }
    for (method, route) in body_routes(&app_id, &path) {
        for body in &bodies {
            let answer = admin.send_raw(method.clone(), &route, Some(body.clone()), &[]);
            probe.refused_with(&answer, 400, &format!("{method} {route} {body:?}"));
        }
    }
    assert_eq!(listing(&admin, &path), before, "nothing changed");
}

#[test]
fn control_characters_in_keys_and_paths_are_refused_and_in_values_kept() {
    let (server, app_id, path) = setup("hostile-control", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    for key in ["A\0B", "\0", "A\nB", "A\rB", "A\u{1b}[31m", "A\u{7f}"] {
        let answer = admin.post(&path, json!({"secrets": [{"key": key, "value": "v"}]}));
        assert_error(
            &answer,
            400,
            &format!("Invalid secret key: '{key}'"),
            "invalid_key",
        );
        probe.alive(&format!("key {key:?}"));
    }
    for key in ["\t", " \n ", "\u{3000}"] {
        let answer = admin.post(&path, json!({"secrets": [{"key": key, "value": "v"}]}));
        probe.refused_with(&answer, 400, &format!("blank key {key:?}"));
    }
    for bad_path in ["/a\0b", "/a\nb", "\u{1b}[31m", "/a/\u{7f}", "/\u{9f}", "\t"] {
        let answer = admin.post(
            &path,
            json!({"secrets": [{"key": "K", "value": "v", "path": bad_path}]}),
        );
        assert_error(
            &answer,
            400,
            &format!("Invalid path: '{bad_path}'"),
            "invalid_path",
        );
        probe.alive(&format!("path {bad_path:?}"));
    }
    assert_eq!(listing(&admin, &path), json!([]), "nothing was stored");
    // Values and comments may hold anything; they come back byte for byte.
    let values = [
        "a\0b",
        "\0\0\0",
        "line1\nline2\r\n",
        "\u{1b}[2J\u{7}\u{8}",
        "\u{7f}\u{80}\u{9f}",
        "\u{2028}\u{2029}\u{feff}\u{200b}",
        "tab\there",
        "🦀 ñ 漢字",
        "",
        "\\\"'`$(rm -rf /)",
    ];
    let batch: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"key": format!("VAL_{i}"), "value": v, "comment": v}))
        .collect();
    let (status, created) = admin.post(&path, json!({ "secrets": batch }));
    assert_eq!(status, 200, "{created}");
    let listed = listing(&admin, &path);
    for (i, value) in values.iter().enumerate() {
        let secret = &listed[i];
        assert_eq!(secret["key"], format!("VAL_{i}"));
        assert_eq!(secret["value"], *value, "value {i} read back");
        assert_eq!(secret["comment"], *value, "comment {i} read back");
    }
    // Updated too.
    let id = listed[0]["id"].as_str().unwrap();
    let (status, updated) = admin.put(&path, json!({"secrets": [{"id": id, "value": "\0new\0"}]}));
    assert_eq!(status, 200, "{updated}");
    assert_eq!(listing(&admin, &path)[0]["value"], "\0new\0");
    // Control characters in query parameters.
    let base = format!("/v1/secrets/?app_id={app_id}&env=Development");
    let missing = format!("/v1/secrets/?app_id={app_id}&env=%00");
    assert_error(
        &admin.get(&missing),
        404,
        &format!("Environment '\0' not found in App {app_id}"),
        "environment_not_found",
    );
    probe.alive("env=%00");
    assert_error(
        &admin.get(&format!("{base}&path=%00")),
        400,
        "Invalid path: '\0'",
        "invalid_path",
    );
    probe.alive("path=%00");
    assert_error(
        &admin.get("/v1/secrets/?app_id=%00&env=x"),
        400,
        "Invalid app_id",
        "invalid_app_id",
    );
    probe.alive("app_id=%00");
    for query in ["key=%00", "tags=%00%0a", "key=%1b%5b"] {
        let (status, body) = admin.get(&format!("{base}&{query}"));
        assert_eq!((status.as_u16(), body), (200, json!([])), "{query}");
        probe.alive(query);
    }
    for query in ["path=%ff", "env=%c3", "app_id=%80", "path=%c0%ae%c0%ae"] {
        probe.answered(&admin.get(&format!("{base}&{query}")), query);
    }
}

#[test]
fn dot_dot_and_double_slash_paths() {
    let (server, app_id, path) = setup("hostile-paths", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    for bad in [
        "..", "/..", "/a/..", "../a", "/a/../b", ".", "/.", "/./a", "a/./b", "/a/ /b", "/a/  ",
    ] {
        let answer = admin.post(
            &path,
            json!({"secrets": [{"key": "K", "value": "v", "path": bad}]}),
        );
        assert_error(
            &answer,
            400,
            &format!("Invalid path: '{bad}'"),
            "invalid_path",
        );
        probe.alive(bad);
    }
    // Over the limit as given, or once normalised (the leading `/` added to a path of
    // exactly 1024 bytes); a path that is stored can always be asked for again.
    for too_long in ["/a".repeat(513), "a".repeat(1024)] {
        let answer = admin.post(
            &path,
            json!({"secrets": [{"key": "K", "value": "v", "path": too_long}]}),
        );
        assert_error(
            &answer,
            400,
            "'path' exceeds 1024 bytes.",
            "field_too_large",
        );
    }
    let longest = "a".repeat(1023);
    let (status, body) = admin.post(
        &path,
        json!({"secrets": [{"key": "LONG", "value": "v", "path": longest}]}),
    );
    assert_eq!(status, 200, "{body}");
    let stored = body[0]["path"].as_str().unwrap().to_string();
    assert_eq!(stored.len(), 1024);
    let (status, found) = admin.get(&format!("{path}&path={stored}"));
    assert_eq!(
        (status.as_u16(), found[0]["key"].clone()),
        (200, json!("LONG")),
        "{found}"
    );
    let id = body[0]["id"].as_str().unwrap();
    let (status, moved) = admin.put(&path, json!({"secrets": [{"id": id, "path": stored}]}));
    assert_eq!(status, 200, "{moved}");
    for (i, (given, normalised)) in [
        ("//a//b//", "/a/b"),
        ("a", "/a"),
        ("///", "/"),
        ("", "/"),
        ("/a.b/..c/...", "/a.b/..c/..."),
        ("/ a /b", "/ a /b"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = admin.post(
            &path,
            json!({"secrets": [{"key": format!("K{i}"), "value": "v", "path": given}]}),
        );
        assert_eq!(status, 200, "{given:?}: {body}");
        assert_eq!(body[0]["path"], normalised, "{given:?}");
        let (status, found) = admin.get(&format!("{path}&path={}", given.replace(' ', "%20")));
        assert_eq!(status, 200, "{found}");
        assert!(
            found
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["key"] == format!("K{i}")),
            "{given:?}: {found}"
        );
    }
    for query in ["path=/../", "path=..", "path=/a/./b"] {
        probe.refused_with(&admin.get(&format!("{path}&{query}")), 400, query);
    }
    // Dot segments and doubled slashes in the request target itself.
    let auth = format!("Authorization: Bearer User {}", server.admin_token);
    let targets: Vec<String> = vec![
        "/v1/../v1/apps".into(),
        "/v1/apps/../../etc/passwd".into(),
        "/v1/%2e%2e/apps".into(),
        "/v1/apps/%2F..%2F".into(),
        "/v1/apps/..".into(),
        "/v1/apps/.".into(),
        "/./health".into(),
        "/v1/apps/%00".into(),
        "/v1/apps/%ff%fe".into(),
        format!("/v1/environments/..%2f..%2f{app_id}"),
        "//v1//apps//".into(),
        "/v1/apps//".into(),
        format!("//v1//secrets//?app_id={app_id}&env=Development"),
        "/v1/secrets/?app_id=..&env=..".into(),
    ];
    for target in &targets {
        let request = raw_request("GET", target.as_bytes(), &[auth.as_bytes()], b"");
        let answer = raw(&server, &request).unwrap_or_else(|| panic!("no answer to {target}"));
        assert!(answer.status < 500, "{target}: {answer:?}");
        if answer.status >= 400 {
            assert_json_error(answer.status, &answer.json(), target);
        }
        probe.alive(target);
    }
    for target in ["//v1//apps//", "/v1/apps//"] {
        let answer = raw(
            &server,
            &raw_request("GET", target.as_bytes(), &[auth.as_bytes()], b""),
        )
        .unwrap();
        assert_eq!(answer.status, 200, "{target} is the apps route");
    }
}

#[test]
fn oversized_bodies_are_a_413() {
    let (server, _, path) = setup("hostile-size", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let limit_message = "Request body exceeds 1048576 bytes.";
    for (route, size) in [
        (path.as_str(), 10 * 1024 * 1024),
        ("/v1/apps/", 10 * 1024 * 1024),
        (path.as_str(), 1024 * 1024 + 1),
    ] {
        let mut body = br#"{"secrets":[{"key":"BIG","value":""#.to_vec();
        body.resize(size - 4, b'a');
        body.extend_from_slice(br#""}]}"#);
        let response = admin
            .http
            .post(format!("{}{route}", admin.base))
            .header("Authorization", admin.authorization.clone().unwrap())
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .expect("the server answers an oversized body");
        let status = response.status();
        let value: Value = response.json().expect("JSON body");
        assert_error(&(status, value), 413, limit_message, "payload_too_large");
        probe.alive(&format!("{size} bytes to {route}"));
    }
    // Under the body limit but over the value limit.
    let big = "v".repeat(64 * 1024 + 1);
    let answer = admin.post(&path, json!({"secrets": [{"key": "BIG", "value": big}]}));
    assert_error(
        &answer,
        400,
        "'value' exceeds 65536 bytes.",
        "field_too_large",
    );
    let answer = admin.post(
        &path,
        json!({"secrets": [{"key": "BIG", "value": "v", "comment": "c".repeat(4097)}]}),
    );
    assert_error(
        &answer,
        400,
        "'comment' exceeds 4096 bytes.",
        "field_too_large",
    );
    let answer = admin.post(
        &path,
        json!({"secrets": [{"key": "K".repeat(257), "value": "v"}]}),
    );
    let quoted = format!("Invalid secret key: '{}…'", "K".repeat(64));
    assert_error(&answer, 400, &quoted, "invalid_key");
    probe.alive("field limits");
    assert_eq!(listing(&admin, &path), json!([]));
}

#[test]
fn batches_hold_at_most_a_thousand_entries() {
    let (server, _, path) = setup("hostile-batch", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let entries = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"key": format!("K{i}"), "value": "v"}))
            .collect()
    };
    let too_many = "'secrets' may hold at most 1000 entries.";
    let answer = admin.post(&path, json!({ "secrets": entries(1001) }));
    assert_error(&answer, 400, too_many, "batch_too_large");
    probe.alive("1001 creates");
    assert_eq!(listing(&admin, &path), json!([]));
    let (status, created) = admin.post(&path, json!({ "secrets": entries(1000) }));
    assert_eq!(status, 200, "{created}");
    let ids: Vec<Value> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(listing(&admin, &path).as_array().unwrap().len(), 1000);
    let mut updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "value": "w"}))
        .collect();
    updates.push(json!({"id": ids[0], "value": "w"}));
    assert_error(
        &admin.put(&path, json!({ "secrets": updates })),
        400,
        too_many,
        "batch_too_large",
    );
    let mut doomed = ids.clone();
    doomed.push(ids[0].clone());
    assert_error(
        &admin.delete_with(&path, json!({ "secrets": doomed })),
        400,
        too_many,
        "batch_too_large",
    );
    probe.alive("1001 updates and deletes");
    updates.pop();
    let (status, updated) = admin.put(&path, json!({ "secrets": updates }));
    assert_eq!(status, 200, "{updated}");
    let (status, deleted) = admin.delete_with(&path, json!({ "secrets": ids }));
    assert_eq!(
        (status.as_u16(), deleted),
        (200, json!({"message": "Deleted 1000 secrets"}))
    );
    assert_eq!(listing(&admin, &path), json!([]));
    // Thousands of entries.
    let answer = admin.post(&path, json!({ "secrets": entries(5000) }));
    assert_error(&answer, 400, too_many, "batch_too_large");
    probe.alive("5000 creates");
}

#[test]
fn very_long_query_strings_and_headers_never_break_the_server() {
    let (server, app_id, path) = setup("hostile-long", &["--auth-failure-limit", "1000000"]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let auth = format!("Authorization: Bearer User {}", server.admin_token);
    // Long request targets: the HTTP layer may refuse them (400/414/431) or the
    // application may (400 with the JSON body); either way no 5xx and no crash.
    for size in [8 * 1024, 100 * 1024, 1024 * 1024] {
        for target in [
            format!("{path}&x={}", "q".repeat(size)),
            format!("{path}&path=/{}", "p".repeat(size)),
            format!("/v1/apps/{}", "a".repeat(size)),
            format!("/v1/secrets/?{}", "a=1&".repeat(size / 4)),
        ] {
            let request = raw_request("GET", target.as_bytes(), &[auth.as_bytes()], b"");
            if let Some(answer) = raw(&server, &request) {
                assert_raw_refusal(&answer, &format!("{size}-byte target"));
            }
            probe.alive(&format!("{size}-byte target"));
        }
    }
    // A long query that the HTTP layer takes reaches the application.
    let (status, body) = admin.get(&format!("{path}&x={}", "q".repeat(60 * 1024)));
    assert_eq!((status.as_u16(), body), (200, json!([])), "60 KB query");
    let answer = admin.get(&format!("{path}&path={}", "p".repeat(60 * 1024)));
    assert_error(
        &answer,
        400,
        "'path' exceeds 1024 bytes.",
        "field_too_large",
    );
    probe.alive("60 KB query");
    // Long header values.
    for size in [8 * 1024, 100 * 1024, 1024 * 1024] {
        let long = "h".repeat(size);
        for header in [
            format!("X-Long: {long}"),
            format!("User-Agent: {long}"),
            format!("Authorization: Bearer User {long}"),
            format!("X-Forwarded-For: {}", "1.2.3.4, ".repeat(size / 9)),
            format!("Cookie: {long}"),
        ] {
            let request = raw_request("GET", path.as_bytes(), &[header.as_bytes()], b"");
            if let Some(answer) = raw(&server, &request) {
                assert_raw_refusal(&answer, &format!("{size}-byte header"));
            }
            probe.alive(&format!("{size}-byte header {}", &header[..10]));
        }
    }
    // Within the limits of the HTTP layer, the application answers.
    let ua = "u".repeat(60 * 1024);
    let (status, body) = admin.send_raw(
        Method::POST,
        &path,
        Some(br#"{"secrets":[{"key":"UA","value":"v"}]}"#.to_vec()),
        &[("User-Agent", &ua)],
    );
    assert_eq!(status, 200, "long user agent: {body}");
    let (status, audit) = admin.get(&format!("/v1/audit/?app_id={app_id}&limit=1000"));
    assert_eq!(status, 200, "{audit}");
    let answer = server
        .client(Some(format!("Bearer User {}", "h".repeat(60 * 1024))))
        .get(&path);
    assert_error(&answer, 403, "Invalid token", "invalid_token");
    probe.alive("60 KB authorization");
    // Many headers and many parameters.
    let many: Vec<String> = (0..200).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&[u8]> = many.iter().map(|h| h.as_bytes()).collect();
    if let Some(answer) = raw(&server, &raw_request("GET", b"/health", &many, b"")) {
        assert_raw_refusal(&answer, "200 headers");
    }
    probe.alive("200 headers");
    let params: String = (0..3000).map(|i| format!("&p{i}={i}")).collect();
    let answer = admin.get(&format!("{path}{params}"));
    assert_eq!(answer.0, 200, "{}", answer.1);
    probe.alive("3000 parameters");
}

/// Authorization values that are not a valid token of the right kind.
fn garbage_authorizations(admin_token: &str) -> Vec<(Vec<u8>, &'static str)> {
    const INVALID: &str = "Invalid token";
    const UNKNOWN: &str = "Token expired or deleted";
    let mut rng = rand::thread_rng();
    let hex = |n: usize, rng: &mut rand::rngs::ThreadRng| -> String {
        (0..n)
            .map(|_| format!("{:x}", rng.gen_range(0..16)))
            .collect()
    };
    let mut cases: Vec<(Vec<u8>, &'static str)> = vec![
        ("".into(), INVALID),
        ("Bearer".into(), INVALID),
        ("Bearer ".into(), INVALID),
        ("Bearer User".into(), INVALID),
        ("Bearer User ".into(), INVALID),
        ("Bearer User short".into(), INVALID),
        (
            format!("Bearer User {}", hex(64, &mut rng).to_uppercase()).into(),
            INVALID,
        ),
        (
            format!("Bearer User {}", admin_token.to_uppercase()).into(),
            INVALID,
        ),
        (format!("Bearer User {}", hex(63, &mut rng)).into(), INVALID),
        (format!("Bearer User {}", hex(65, &mut rng)).into(), INVALID),
        (format!("Bearer User {}", "g".repeat(64)).into(), INVALID),
        (format!("Bearer User {}", hex(64, &mut rng)).into(), UNKNOWN),
        (
            format!("Bearer Service {}", hex(64, &mut rng)).into(),
            UNKNOWN,
        ),
        (format!("Bearer Root {admin_token}").into(), INVALID),
        (format!("Bearers User {admin_token}").into(), INVALID),
        (format!("Bearer Users {admin_token}").into(), INVALID),
        (format!("Bearer User {admin_token} extra").into(), INVALID),
        (format!("User {admin_token}").into(), INVALID),
        (format!("Token {admin_token}").into(), INVALID),
        (admin_token.into(), INVALID),
        ("Basic dXNlcjpwYXNz".into(), INVALID),
        ("Bearer User ünïcödé".into(), INVALID),
        ("Bearer User 🦀".into(), INVALID),
        (b"Bearer User \xff\xfe\xfd".to_vec(), INVALID),
        (
            format!("Bearer User {}\u{e9}", &admin_token[..63]).into(),
            INVALID,
        ),
    ];
    for _ in 0..40 {
        let len = rng.gen_range(0..200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| match rng.gen_range(0..3) {
                0 => rng.gen_range(0x20..0x7f),
                1 => rng.gen_range(0x80..=0xff),
                _ => b' ',
            })
            .collect();
        cases.push((bytes, INVALID));
    }
    cases
}

#[test]
fn garbage_authorization_headers_are_a_403() {
    let (server, app_id, path) = setup("hostile-auth", &["--auth-failure-limit", "1000000"]);
    let probe = Probe::new(&server);
    let routes = [
        (Method::GET, path.clone()),
        (Method::POST, path.clone()),
        (Method::GET, "/v1/apps/".to_string()),
        (Method::DELETE, format!("/v1/apps/{app_id}/")),
        (Method::GET, "/v1/tokens/".to_string()),
    ];
    let http = server.client(None).http;
    for (value, message) in garbage_authorizations(&server.admin_token) {
        let header = reqwest::header::HeaderValue::from_bytes(&value).expect("header value");
        for (method, route) in &routes {
            let response = http
                .request(method.clone(), format!("{}{route}", server.base))
                .header("Authorization", header.clone())
                .header("Content-Type", "application/json")
                .body(r#"{"secrets":[{"key":"K","value":"v"}]}"#)
                .send()
                .expect("answered");
            let status = response.status();
            let body: Value = response.json().expect("JSON body");
            let context = format!(
                "{method} {route} with {:?}",
                String::from_utf8_lossy(&value)
            );
            assert_eq!(status, 403, "{context}: {body}");
            assert_eq!(body["error"], message, "{context}: {body}");
            probe.refused(&(status, body), &context);
        }
    }
    // Bytes no HTTP client would send.
    for value in [
        &b"Bearer User \x00abc"[..],
        b"Bearer \x01User",
        b"Bearer User \x7f",
        b"\x1b[31m",
    ] {
        let header = [&b"Authorization: "[..], value].concat();
        let answer = raw(
            &server,
            &raw_request("GET", path.as_bytes(), &[&header], b""),
        )
        .expect("answered");
        assert_raw_refusal(&answer, &format!("{value:?}"));
        probe.alive(&format!("{value:?}"));
    }
    // The app is untouched and the real token still works.
    let admin = server.admin();
    assert_eq!(listing(&admin, &path), json!([]));
    let (status, _) = admin.get(&format!("/v1/apps/{app_id}/"));
    assert_eq!(status, 200);
}

#[test]
fn repeated_authentication_failures_are_a_429_with_the_json_body() {
    let server = Server::start();
    let probe = Probe::new(&server);
    let client = server.client(Some("Bearer User nope".into()));
    let mut throttled = None;
    for i in 0..100 {
        let response = client
            .http
            .get(format!("{}/v1/apps/", server.base))
            .header("Authorization", "Bearer User nope")
            .send()
            .expect("answered");
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().expect("JSON body");
        assert_json_error(status, &body, &format!("failure {i}"));
        match status {
            403 => assert_eq!(body["error"], "Invalid token"),
            429 => {
                assert_eq!(body["code"], "throttled", "{body}");
                assert!(retry_after.is_some(), "429 carries Retry-After");
                throttled = Some(i);
            }
            other => panic!("failure {i}: {other} {body}"),
        }
    }
    assert!(throttled.is_some(), "100 failures in a row are throttled");
    probe.alive("throttled failures");
}

#[test]
fn unknown_routes_and_methods_are_404_and_405() {
    let (server, app_id, path) = setup("hostile-routes", &[]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    let id = uuid::Uuid::new_v4();
    let env_id = {
        let (_, envs) = admin.get(&format!("/v1/environments/?app_id={app_id}"));
        envs["data"][0]["id"].as_str().unwrap().to_string()
    };
    for unknown in [
        "/".to_string(),
        "/v1".to_string(),
        "/v1/".to_string(),
        "/v2/secrets/".to_string(),
        "/v1/secret/".to_string(),
        "/v1/secrets/extra/".to_string(),
        "/v1/secrets/a/b/c".to_string(),
        format!("/v1/apps/{app_id}/environments"),
        "/public/v2/apps/".to_string(),
        "/service/public/v1/nothing".to_string(),
        "/service/v2/apps/".to_string(),
        "/health/x".to_string(),
        "/metrics/x".to_string(),
        "/%00".to_string(),
        "/%ff".to_string(),
        "/.env".to_string(),
        "/admin".to_string(),
    ] {
        for method in [Method::GET, Method::POST, Method::DELETE] {
            let answer = admin.send(method.clone(), &unknown, Some(&json!({})));
            assert_error(&answer, 404, "Not found.", "not_found");
            probe.alive(&format!("{method} {unknown}"));
        }
    }
    let resources = [
        (path.clone(), vec!["PATCH"]),
        ("/v1/apps/".to_string(), vec!["PUT", "DELETE", "PATCH"]),
        (format!("/v1/apps/{app_id}/"), vec!["POST", "PATCH"]),
        (
            format!("/v1/environments/?app_id={app_id}"),
            vec!["PUT", "DELETE", "PATCH"],
        ),
        (format!("/v1/environments/{env_id}/"), vec!["POST", "PATCH"]),
        ("/v1/tokens/".to_string(), vec!["PUT", "DELETE", "PATCH"]),
        (
            format!("/v1/tokens/{id}/"),
            vec!["GET", "POST", "PUT", "PATCH"],
        ),
        (
            "/v1/audit/".to_string(),
            vec!["POST", "PUT", "DELETE", "PATCH"],
        ),
        (
            "/health".to_string(),
            vec!["POST", "PUT", "DELETE", "PATCH"],
        ),
        (
            "/metrics".to_string(),
            vec!["POST", "PUT", "DELETE", "PATCH"],
        ),
    ];
    for (route, methods) in &resources {
        for method in methods
            .iter()
            .chain(&["OPTIONS", "TRACE", "FOO", "PROPFIND", "BREW"])
        {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            for client in [admin.clone(), server.client(None)] {
                let answer = client.send(method.clone(), route, None);
                assert_error(&answer, 405, "Method not allowed.", "method_not_allowed");
                probe.alive(&format!("{method} {route}"));
            }
        }
    }
    // Nonsense on the wire.
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"\x00\x01\x02\xff\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde",
        b"POST /v1/apps/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/apps/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 99999999999999999999\r\n\r\nab",
        b"POST /v1/apps/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: -1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nBad Header\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n: empty-name\r\n\r\n",
        b"GET /health HTTP/1.0\r\n\r\n",
    ] {
        if let Some(answer) = raw(&server, request) {
            assert_raw_refusal(&answer, &format!("{:?}", String::from_utf8_lossy(request)));
        }
        probe.alive(&format!("{:?}", String::from_utf8_lossy(request)));
    }
    // A connection that sends half a request and goes away.
    {
        let addr = server.base.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"POST /v1/apps/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"na")
            .unwrap();
    }
    probe.alive("half a request");
    let (status, _) = admin.get(&format!("/v1/apps/{app_id}/"));
    assert_eq!(status, 200);
    probe.refused_with(
        &admin.post(&path, json!({"secrets": []})),
        400,
        "empty list",
    );
}
