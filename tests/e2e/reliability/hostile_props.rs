//! Random hostile requests: a method, a route from the API (or a made-up one) with
//! random extra segments, a random query, a random JSON or byte body and a random
//! Authorization header. Whatever the request, the answer is below 500, a 4xx carries
//! the JSON error body, and the server keeps serving.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Map, Number, Value};

use super::hostile::{assert_json_error, Probe};
use crate::common::*;

/// Stands for the id of the app the test made.
const APP: &str = "{app}";
/// Stands for the id of one of its environments.
const ENV: &str = "{env}";
/// Cases per run; `COFFER_PROP_CASES` runs more.
const CASES: u32 = 200;

#[derive(Clone, Debug)]
enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
enum Authorization {
    None,
    Admin,
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Body,
    authorization: Authorization,
}

/// Percent-encodes everything but unreserved characters.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(*b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]).prop_map(String::from),
        1 => prop::sample::select(vec!["PATCH", "OPTIONS", "TRACE", "HEAD"]).prop_map(String::from),
        1 => "[A-Z]{1,10}".prop_filter("CONNECT is for proxies", |m| m != "CONNECT"),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let base = prop::sample::select(vec![
        "/v1/secrets/",
        "/v1/secrets",
        "/public/v1/secrets/",
        "/service/public/v1/secrets",
        "/v1/apps/",
        "/v1/apps/{app}/",
        "/v1/apps/{app}",
        "/v1/environments/",
        "/v1/environments/{env}/",
        "/v1/tokens/",
        "/v1/audit/",
        "/health",
        "/metrics",
        "/",
        "/v1",
        "/v2/secrets/",
    ]);
    let segment = prop_oneof![
        "[a-zA-Z0-9._~-]{0,12}",
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| encode(&b)),
        Just(uuid::Uuid::new_v4().to_string()),
    ];
    let extra = prop_oneof![
        3 => Just(Vec::new()),
        1 => prop::collection::vec(segment, 1..3),
    ];
    (base, extra).prop_map(|(base, extra)| {
        if extra.is_empty() {
            base.to_string()
        } else {
            format!("{}/{}", base.trim_end_matches('/'), extra.join("/"))
        }
    })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(APP.to_string()),
        Just(ENV.to_string()),
        prop::sample::select(vec![
            "Development",
            "production",
            "",
            "..",
            "/a//b",
            "1",
            "-1"
        ])
        .prop_map(String::from),
        "\\PC{0,20}",
        prop::collection::vec(any::<char>(), 0..20).prop_map(|c| c.into_iter().collect()),
    ]
}

fn random_query() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "app_id",
            "env",
            "path",
            "key",
            "tags",
            "limit",
            "since",
            "secret_id",
        ])
        .prop_map(String::from),
        "[a-z_]{1,8}",
    ];
    prop::collection::vec((name, text()), 0..5)
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    // Often a real app and environment, so that requests get past the lookups.
    let env = prop::sample::select(vec!["Development", "staging", ENV]).prop_map(String::from);
    let addressed = (env, random_query()).prop_map(|(env, extra)| {
        let mut query = vec![
            ("app_id".to_string(), APP.to_string()),
            ("env".to_string(), env),
        ];
        query.extend(extra);
        query
    });
    prop_oneof![1 => random_query(), 2 => addressed]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "secrets", "key", "value", "comment", "tags", "path", "type", "id", "version",
            "name", "description", "environments", "permissions", "appId", "expiresAt",
            "allowedIps",
        ])
        .prop_map(String::from),
        1 => "\\PC{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body shaped like a secrets batch, with random fields in its entries.
fn secrets_body() -> impl Strategy<Value = Value> {
    let entry = prop::collection::btree_map(field_name(), json_value(), 0..6).prop_map(|m| {
        let mut object: Map<String, Value> = m.into_iter().collect();
        object
            .entry("key".to_string())
            .or_insert_with(|| Value::String("K".into()));
        Value::Object(object)
    });
    prop::collection::vec(entry, 0..4).prop_map(|entries| {
        let mut body = Map::new();
        body.insert("secrets".into(), Value::Array(entries));
        Value::Object(body)
    })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => Just(Body::None),
        2 => json_value().prop_map(Body::Json),
        3 => secrets_body().prop_map(Body::Json),
        2 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Body::Bytes),
    ]
}

fn authorization() -> impl Strategy<Value = Authorization> {
    let header_byte = prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, Just(b'\t')];
    prop_oneof![
        4 => Just(Authorization::Admin),
        1 => Just(Authorization::None),
        1 => prop::collection::vec(header_byte, 0..100).prop_map(Authorization::Raw),
        1 => ("(User|Service|ServiceAccount|Root|)", "[0-9a-fA-F]{60,68}")
            .prop_map(|(kind, token)| Authorization::Raw(format!("Bearer {kind} {token}").into_bytes())),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (method(), path(), query(), body(), authorization()).prop_map(
        |(method, path, query, body, authorization)| Request {
            method,
            path,
            query,
            body,
            authorization,
        },
    )
}

#[test]
fn random_requests_never_break_the_server() {
    let server = Server::start_with(&["--auth-failure-limit", "1000000"]);
    let probe = Probe::new(&server);
    let admin = server.admin();
    // The app and environment the placeholders name; made again if a random request
    // deletes either.
    let target = std::cell::RefCell::new((String::new(), String::new()));
    let make_target = |n: usize| {
        let (app_id, app) = create_app(&admin, &format!("props-{n}"));
        let env_id = app["environments"][0]["id"].as_str().unwrap().to_string();
        *target.borrow_mut() = (app_id, env_id);
    };
    make_target(0);
    let fill = |text: &str| {
        let (app_id, env_id) = &*target.borrow();
        text.replace(APP, app_id).replace(ENV, env_id)
    };
    let apps_made = std::cell::Cell::new(1);
    let http = admin.http.clone();
    let mut runner = TestRunner::new(Config {
        cases: std::env::var("COFFER_PROP_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(BTreeMap::<u16, usize>::new());
    let result = runner.run(&request(), |request| {
        let query: Vec<String> = request
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k.as_bytes()), encode(fill(v).as_bytes())))
            .collect();
        let mut url = format!("{}{}", server.base, fill(&request.path));
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let method = Method::from_bytes(request.method.as_bytes()).expect("method");
        let mut builder = http.request(method.clone(), &url);
        match &request.authorization {
            Authorization::None => {}
            Authorization::Admin => {
                builder = builder.header("Authorization", admin.authorization.clone().unwrap())
            }
            Authorization::Raw(bytes) => {
                let value =
                    reqwest::header::HeaderValue::from_bytes(bytes).expect("valid header bytes");
                builder = builder.header("Authorization", value);
            }
        }
        builder = match &request.body {
            Body::None => builder,
            Body::Json(value) => builder
                .header("Content-Type", "application/json")
                .body(fill(&value.to_string())),
            Body::Bytes(bytes) => builder
                .header("Content-Type", "application/json")
                .body(bytes.clone()),
        };
        let response = builder
            .send()
            .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        *statuses.borrow_mut().entry(status).or_default() += 1;
        let text = response.text().unwrap_or_default();
        let context = format!("{} {url}: {status} {text}", request.method);
        prop_assert!(status < 500, "{}", context);
        if (400..500).contains(&status) && method != Method::HEAD {
            let body: Value = serde_json::from_str(&text)
                .map_err(|_| TestCaseError::fail(format!("not JSON: {context}")))?;
            assert_json_error(status, &body, &context);
        }
        probe.alive(&context);
        let gone = |route: &str| admin.get(&fill(route)).0 == 404;
        if gone("/v1/apps/{app}/") || gone("/v1/environments/{env}/") {
            make_target(apps_made.get());
            apps_made.set(apps_made.get() + 1);
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}\nserver log tail:\n{}", tail(&server.logs(), 20));
    }
    let statuses = statuses.into_inner();
    eprintln!("random requests answered, by status: {statuses:?}");
    assert!(statuses.keys().any(|s| *s < 300), "some requests succeed");
    assert!(statuses.keys().filter(|s| (400..500).contains(*s)).count() >= 3);
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
