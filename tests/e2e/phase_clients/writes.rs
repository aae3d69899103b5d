//! `POST|PUT|DELETE /service/secrets/` (PHASE-CLIENTS.md §2.3–2.5, API.md "Phase
//! clients"): sealed writes land in the same store as REST writes, under the same rules
//! of scope, permission, uniqueness and atomicity.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::client::{issue, EnvironmentSession, PhaseToken};
use crate::common::{assert_error, create_app, secrets_path, Api, Server};

struct Client {
    api: Api,
    env: EnvironmentSession,
}

impl Client {
    fn new(server: &Server, token: &PhaseToken, app_id: &str) -> Client {
        let api = token.client(server);
        let env = EnvironmentSession::open(&api, token, app_id, "development");
        Client { api, env }
    }

    fn send(&self, method: Method, body: &Value) -> (StatusCode, Value) {
        self.send_as(method, body, "application/json")
    }

    /// The Node SDK labels its JSON `application/x-www-form-urlencoded` or `text/plain`.
    fn send_as(&self, method: Method, body: &Value, content_type: &str) -> (StatusCode, Value) {
        self.api.send_raw(
            method,
            "/service/secrets/",
            Some(serde_json::to_vec(body).unwrap()),
            &[
                ("Environment", self.env.env_id.as_str()),
                ("Content-Type", content_type),
            ],
        )
    }

    /// An entry as the Python CLI sends it: key and value sealed, comment empty in clear.
    fn entry(&self, key: &str, value: &str) -> Value {
        json!({"key": self.env.seal(key), "keyDigest": self.env.digest(key),
               "value": self.env.seal(value), "path": "/", "tags": [], "comment": ""})
    }
}

struct Setup {
    server: Server,
    app_id: String,
}

impl Setup {
    fn new() -> Setup {
        let server = Server::start();
        let (app_id, _) = create_app(&server.admin(), "shop");
        Setup { server, app_id }
    }

    fn token(&self, permissions: Value) -> PhaseToken {
        let body = json!({"name": "ci", "type": "service", "appId": self.app_id,
                          "environments": ["development"], "permissions": permissions});
        issue(&self.server.admin(), body).1
    }

    fn rest_list(&self) -> Vec<Value> {
        let (status, listed) = self
            .server
            .admin()
            .get(&secrets_path(&self.app_id, "development"));
        assert_eq!(status.as_u16(), 200, "{listed}");
        listed.as_array().unwrap().clone()
    }
}

const ALL: [&str; 4] = ["read", "create", "update", "delete"];

#[test]
fn a_sealed_create_is_read_back_by_rest_with_the_key_rule_applied() {
    let s = Setup::new();
    let client = Client::new(&s.server, &s.token(json!(ALL)), &s.app_id);
    let mut with_comment = client.entry("db_url", "postgres://db\nsecond line \"q\" $X");
    with_comment["comment"] = json!(client.env.seal("the primary"));
    with_comment["tags"] = json!(["db"]);
    with_comment["path"] = json!("backend/");
    let (status, body) = client.send(
        Method::POST,
        &json!({"secrets": [with_comment, client.entry("API_KEY", "k")]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, Value::Null, "200 with no body, as Phase");
    let listed = s.rest_list();
    assert_eq!(listed.len(), 2);
    let db = listed
        .iter()
        .find(|x| x["key"] == "DB_URL")
        .expect("stored upper-cased");
    assert_eq!(db["value"], "postgres://db\nsecond line \"q\" $X");
    assert_eq!(
        (&db["comment"], &db["path"], &db["tags"]),
        (&json!("the primary"), &json!("/backend"), &json!(["db"]))
    );
    assert_eq!(db["version"], 1);
}

#[test]
fn a_key_taken_by_either_route_is_a_409_and_nothing_of_the_batch_is_written() {
    let s = Setup::new();
    let (status, _) = s.server.admin().post(
        &secrets_path(&s.app_id, "development"),
        json!({"secrets": [{"key": "TAKEN", "value": "rest"}]}),
    );
    assert_eq!(status.as_u16(), 200);
    let client = Client::new(&s.server, &s.token(json!(ALL)), &s.app_id);
    for batch in [
        json!({"secrets": [client.entry("NEW", "x"), client.entry("taken", "cli")]}),
        json!({"secrets": [client.entry("TWICE", "a"), client.entry("twice", "b")]}),
    ] {
        let (status, body) = client.send(Method::POST, &batch);
        assert_error(
            &(status, body),
            409,
            "Duplicate secret found",
            "duplicate_secret",
        );
    }
    let keys: Vec<Value> = s.rest_list().iter().map(|x| x["key"].clone()).collect();
    assert_eq!(keys, [json!("TAKEN")]);
    // And the reverse: a key the client created refuses a REST create.
    assert_eq!(
        client
            .send(
                Method::POST,
                &json!({"secrets": [client.entry("FROM_CLI", "1")]})
            )
            .0,
        200
    );
    let (status, body) = s.server.admin().post(
        &secrets_path(&s.app_id, "development"),
        json!({"secrets": [{"key": "from_cli", "value": "2"}]}),
    );
    assert_error(
        &(status, body),
        409,
        "Duplicate secret found",
        "duplicate_secret",
    );
}

#[test]
fn a_field_that_is_not_a_ciphertext_of_this_environment_is_a_400_and_writes_nothing() {
    let s = Setup::new();
    let client = Client::new(&s.server, &s.token(json!(ALL)), &s.app_id);
    let other = coffer_store::phase_crypto::KxKeyPair::generate();
    let foreign = coffer_store::phase_crypto::seal_to("V", &other.public).unwrap();
    let mut bad_entries = Vec::new();
    for (field, bad) in [
        ("value", json!("in clear")),
        ("value", json!(foreign)),
        ("key", json!("ph:v1:zz:abc")),
    ] {
        let mut entry = client.entry("K", "v");
        entry[field] = bad;
        bad_entries.push(entry);
    }
    for entry in bad_entries {
        let (status, body) = client.send(
            Method::POST,
            &json!({"secrets": [client.entry("FIRST", "ok"), entry]}),
        );
        assert_error(
            &(status, body),
            400,
            "Invalid ciphertext format",
            "invalid_ciphertext",
        );
    }
    assert!(s.rest_list().is_empty());
}

#[test]
fn bodies_are_json_whatever_their_content_type() {
    let s = Setup::new();
    let client = Client::new(&s.server, &s.token(json!(ALL)), &s.app_id);
    let batch = json!({"secrets": [client.entry("NODE", "sdk")]});
    let (status, body) = client.send_as(Method::POST, &batch, "application/x-www-form-urlencoded");
    assert_eq!(status, 200, "{body}");
    let id = s.rest_list()[0]["id"].clone();
    let (status, body) = client.send_as(
        Method::DELETE,
        &json!({"secrets": [id]}),
        "text/plain;charset=UTF-8",
    );
    assert_eq!(status, 200, "{body}");
    assert!(s.rest_list().is_empty());
}

#[test]
fn a_sealed_update_is_a_new_version_and_a_move_onto_a_live_key_is_refused() {
    let s = Setup::new();
    let client = Client::new(&s.server, &s.token(json!(ALL)), &s.app_id);
    let batch = json!({"secrets": [client.entry("A", "1"), client.entry("B", "2")]});
    assert_eq!(client.send(Method::POST, &batch).0, 200);
    let listed = s.rest_list();
    let a = listed.iter().find(|x| x["key"] == "A").unwrap()["id"].clone();
    let change = json!({"secrets": [{"id": a, "value": client.env.seal("one"), "tags": []}]});
    assert_eq!(client.send(Method::PUT, &change).0, 200);
    let updated = s.rest_list().into_iter().find(|x| x["id"] == a).unwrap();
    assert_eq!(
        (&updated["value"], &updated["version"], &updated["key"]),
        (&json!("one"), &json!(2), &json!("A"))
    );
    let onto_b =
        json!({"secrets": [{"id": a, "key": client.env.seal("b"), "keyDigest": "x", "tags": []}]});
    let (status, body) = client.send(Method::PUT, &onto_b);
    assert_error(
        &(status, body),
        409,
        "Duplicate secret found",
        "duplicate_secret",
    );
    assert_eq!(
        s.rest_list().into_iter().find(|x| x["id"] == a).unwrap()["version"],
        2
    );
}

#[test]
fn a_delete_ignores_ids_that_are_not_the_environments_as_phase_does() {
    let s = Setup::new();
    let admin = s.server.admin();
    let (_, staging) = admin.post(
        &secrets_path(&s.app_id, "staging"),
        json!({"secrets": [{"key": "ELSEWHERE", "value": "x"}]}),
    );
    let client = Client::new(&s.server, &s.token(json!(ALL)), &s.app_id);
    assert_eq!(
        client
            .send(
                Method::POST,
                &json!({"secrets": [client.entry("GONE", "x"), client.entry("KEPT", "y")]})
            )
            .0,
        200
    );
    let gone = s
        .rest_list()
        .into_iter()
        .find(|x| x["key"] == "GONE")
        .unwrap()["id"]
        .clone();
    let body = json!({"secrets": [gone, staging[0]["id"], uuid::Uuid::new_v4(), "not-an-id"]});
    assert_eq!(client.send(Method::DELETE, &body).0, 200);
    let keys: Vec<Value> = s.rest_list().iter().map(|x| x["key"].clone()).collect();
    assert_eq!(keys, [json!("KEPT")]);
    let (_, still) = admin.get(&secrets_path(&s.app_id, "staging"));
    assert_eq!(
        still.as_array().unwrap().len(),
        1,
        "another environment's secret stays"
    );
}

#[test]
fn each_write_needs_its_permission_and_a_refused_one_changes_nothing() {
    let s = Setup::new();
    let reader = Client::new(&s.server, &s.token(json!(["read"])), &s.app_id);
    for (method, action) in [
        (Method::POST, "create"),
        (Method::PUT, "update"),
        (Method::DELETE, "delete"),
    ] {
        let body = match action {
            "create" => json!({"secrets": [reader.entry("K", "v")]}),
            _ => json!({"secrets": []}),
        };
        let (status, answer) = reader.send(method, &body);
        let message = format!("You don't have permission to {action} secrets in this environment.");
        assert_error(&(status, answer), 403, &message, "permission_denied");
    }
    assert!(s.rest_list().is_empty());
}

#[test]
fn a_user_tokens_sealed_override_is_kept_for_it_alone() {
    let s = Setup::new();
    let (_, me) = issue(&s.server.admin(), json!({"name": "me", "type": "user"}));
    let client = Client::new(&s.server, &me, &s.app_id);
    let mut entry = client.entry("DB_URL", "");
    entry["override"] = json!({"value": client.env.seal("mine"), "isActive": false});
    assert_eq!(
        client.send(Method::POST, &json!({"secrets": [entry]})).0,
        200
    );
    let (_, as_me) = client.api.get(&secrets_path(&s.app_id, "development"));
    assert_eq!(as_me[0]["override"]["value"], "mine");
    assert_eq!(
        as_me[0]["override"]["isActive"], true,
        "a new override is active, as Phase"
    );
    assert_eq!(
        s.rest_list()[0]["override"],
        Value::Null,
        "the admin token sees none"
    );
}
