//! Helpers of this binary: a server with one app, and checks of the JSON shapes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// A running server with one app ("shop", default environments) and an admin client.
pub struct Shop {
    /// The server.
    pub server: Server,
    /// Admin (User token) client.
    pub admin: Api,
    /// The app's id.
    pub app_id: String,
    /// The app as created (with `environments`).
    pub app: Value,
}

impl Shop {
    /// Starts a server and creates the app.
    pub fn start() -> Shop {
        Self::start_with_env(&[], &[])
    }

    /// [`Shop::start`] with extra `serve` arguments.
    pub fn start_with(args: &[&str]) -> Shop {
        Self::start_with_env(args, &[])
    }

    /// [`Shop::start`] with extra `serve` arguments and environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Shop {
        let server = Server::start_with_env(args, env);
        let admin = server.admin();
        let (app_id, app) = create_app(&admin, "shop");
        Shop {
            server,
            admin,
            app_id,
            app,
        }
    }

    /// The id of one of the app's environments, by exact name.
    pub fn env_id(&self, name: &str) -> String {
        self.app["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no environment {name} in {}", self.app))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `/v1/secrets/?app_id=..&env=Development`.
    pub fn dev(&self) -> String {
        secrets_path(&self.app_id, "Development")
    }

    /// The secrets route of another environment.
    pub fn env(&self, env: &str) -> String {
        secrets_path(&self.app_id, env)
    }

    /// Creates secrets in Development; asserts 200 and returns them.
    pub fn create(&self, secrets: Value) -> Vec<Value> {
        self.create_in("Development", secrets)
    }

    /// Creates secrets in an environment; asserts 200 and returns them.
    pub fn create_in(&self, env: &str, secrets: Value) -> Vec<Value> {
        let (status, body) = self
            .admin
            .post(&self.env(env), json!({ "secrets": secrets }));
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().expect("an array of secrets").clone()
    }

    /// Lists Development (with extra query, e.g. `&path=/a`); asserts 200.
    pub fn list(&self, extra_query: &str) -> Vec<Value> {
        self.list_in("Development", extra_query)
    }

    /// Lists an environment; asserts 200.
    pub fn list_in(&self, env: &str, extra_query: &str) -> Vec<Value> {
        let (status, body) = self.admin.get(&format!("{}{extra_query}", self.env(env)));
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().expect("an array of secrets").clone()
    }

    /// Sends raw bytes to the Development secrets route.
    pub fn raw(&self, method: Method, bytes: Option<&[u8]>) -> (StatusCode, Value) {
        self.admin
            .send_raw(method, &self.dev(), bytes.map(<[u8]>::to_vec), &[])
    }

    /// Asserts an error answer and that Development still lists exactly `before`.
    #[track_caller]
    pub fn assert_refused(
        &self,
        before: &[Value],
        answer: &(StatusCode, Value),
        status: u16,
        message: &str,
        code: &str,
    ) {
        assert_error(answer, status, message, code);
        assert_eq!(self.list(""), before, "a refused write changes nothing");
    }
}

/// `{"secrets": [...]}`.
pub fn batch(secrets: Value) -> Value {
    json!({ "secrets": secrets })
}

/// A fresh random UUID, as text.
pub fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The keys of a JSON object, sorted.
pub fn keys_of(object: &Value) -> Vec<String> {
    let mut keys: Vec<String> = object
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {object}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Asserts that `object` has exactly these keys.
#[track_caller]
pub fn assert_keys(object: &Value, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(keys_of(object), expected, "keys of {object}");
}

/// Asserts a lowercase hyphenated UUID v4.
#[track_caller]
pub fn assert_uuid(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("uuid string: {value}"));
    let parsed = uuid::Uuid::parse_str(text).unwrap_or_else(|_| panic!("uuid: {text}"));
    assert_eq!(
        parsed.hyphenated().to_string(),
        text,
        "lowercase hyphenated"
    );
    assert_eq!(parsed.get_version_num(), 4, "uuid v4: {text}");
}

/// Asserts an RFC 3339 UTC timestamp with microseconds: `2026-11-25T10:57:21.812009Z`.
#[track_caller]
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp string: {value}"));
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 27
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            26 => *b == b'Z',
            _ => b.is_ascii_digit(),
        });
    assert!(shape_ok, "RFC 3339 with microseconds and Z: {text}");
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap();
    assert!((2024..=2200).contains(&number(0..4)), "year of {text}");
    assert!((1..=12).contains(&number(5..7)), "month of {text}");
    assert!((1..=31).contains(&number(8..10)), "day of {text}");
    assert!(number(11..13) < 24, "hour of {text}");
    assert!(number(14..16) < 60, "minute of {text}");
    assert!(number(17..19) < 61, "second of {text}");
}

/// Asserts 64 lowercase hex characters.
#[track_caller]
pub fn assert_hex64(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("hex string: {value}"));
    assert_eq!(text.len(), 64, "64 hex characters: {text}");
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex: {text}"
    );
}

/// The keys of a secret object.
pub const SECRET_KEYS: [&str; 15] = [
    "id",
    "environment",
    "folder",
    "lifecycle",
    "path",
    "key",
    "value",
    "comment",
    "tags",
    "type",
    "override",
    "keyDigest",
    "version",
    "createdAt",
    "updatedAt",
];

/// Asserts the shape of a secret object (keys and value types).
#[track_caller]
pub fn assert_secret_shape(secret: &Value) {
    assert_keys(secret, &SECRET_KEYS);
    assert_uuid(&secret["id"]);
    assert_uuid(&secret["environment"]);
    for field in ["path", "key", "value", "comment", "type"] {
        assert!(secret[field].is_string(), "{field} is a string: {secret}");
    }
    assert!(secret["tags"]
        .as_array()
        .is_some_and(|t| t.iter().all(Value::is_string)));
    assert!(secret["override"].is_null(), "override is null: {secret}");
    assert!(secret["folder"].is_null(), "folder is null: {secret}");
    assert_eq!(secret["lifecycle"], "static", "{secret}");
    assert_hex64(&secret["keyDigest"]);
    assert!(
        secret["version"].as_u64().is_some_and(|v| v >= 1),
        "version: {secret}"
    );
    assert_timestamp(&secret["createdAt"]);
    assert_timestamp(&secret["updatedAt"]);
}

/// The keys of an environment object.
pub const ENV_KEYS: [&str; 6] = ["id", "name", "envType", "index", "createdAt", "updatedAt"];

/// Asserts the shape of an environment object.
#[track_caller]
pub fn assert_env_shape(env: &Value) {
    assert_keys(env, &ENV_KEYS);
    assert_uuid(&env["id"]);
    assert!(env["name"].is_string());
    assert!(
        ["dev", "staging", "prod", "custom"].contains(&env["envType"].as_str().unwrap_or("")),
        "envType of {env}"
    );
    assert!(env["index"].is_u64(), "index of {env}");
    assert_timestamp(&env["createdAt"]);
    assert_timestamp(&env["updatedAt"]);
}

/// The keys of an app object (without `environments`).
pub const APP_KEYS: [&str; 6] = [
    "id",
    "name",
    "description",
    "sseEnabled",
    "createdAt",
    "updatedAt",
];

/// Asserts the shape of an app object as GET/PUT/list show it.
#[track_caller]
pub fn assert_app_shape(app: &Value) {
    assert_keys(app, &APP_KEYS);
    assert_uuid(&app["id"]);
    assert!(app["name"].is_string());
    assert!(app["description"].is_string());
    assert_eq!(app["sseEnabled"], true);
    assert_timestamp(&app["createdAt"]);
    assert_timestamp(&app["updatedAt"]);
}

/// The `key` fields of a list, in order.
pub fn keys(secrets: &[Value]) -> Vec<&str> {
    secrets.iter().map(|s| s["key"].as_str().unwrap()).collect()
}

/// The `id` of a secret.
pub fn id(secret: &Value) -> String {
    secret["id"].as_str().unwrap().to_string()
}
