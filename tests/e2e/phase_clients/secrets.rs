//! `GET /service/secrets/` (PHASE-CLIENTS.md §2.2, API.md "Phase clients"): the same
//! secrets the REST API serves, sealed to the environment's key, with Coffer's scope and
//! permission rules and the Phase clients' headers.

use reqwest::Method;
use serde_json::{json, Value};

use super::client::{issue, EnvironmentSession, PhaseToken};
use crate::common::{assert_error, create_app, secrets_path, Api, Server};

struct Setup {
    server: Server,
    app_id: String,
    /// Secrets as the REST API created them.
    created: Vec<Value>,
}

fn setup() -> Setup {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let (status, created) = admin.post(
        &secrets_path(&app_id, "development"),
        json!({"secrets": [
            {"key": "DB_URL", "value": "postgres://db\nsecond line", "comment": "primary", "tags": ["db"]},
            {"key": "API_KEY", "value": "k-1", "path": "/backend"},
            {"key": "EMPTY_COMMENT", "value": "$HOME \"quoted\""},
        ]}),
    );
    assert_eq!(status.as_u16(), 200, "{created}");
    Setup {
        server,
        app_id,
        created: created.as_array().unwrap().clone(),
    }
}

fn service_token(s: &Setup, permissions: Value) -> PhaseToken {
    let body = json!({"name": "ci", "type": "service", "appId": s.app_id,
                      "environments": ["development"], "permissions": permissions});
    issue(&s.server.admin(), body).1
}

fn list(api: &Api, env_id: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut all = vec![("Environment", env_id)];
    all.extend_from_slice(headers);
    let (status, body) = api.send_raw(Method::GET, "/service/secrets/", None, &all);
    (status.as_u16(), body)
}

fn by_id<'a>(list: &'a Value, id: &Value) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == *id)
        .expect("listed")
}

#[test]
fn a_client_opens_the_secrets_rest_wrote_with_the_same_ids_and_versions() {
    let s = setup();
    let token = service_token(&s, json!(["read"]));
    let api = token.client(&s.server);
    let env = EnvironmentSession::open(&api, &token, &s.app_id, "Development");
    let (status, listed) = list(&api, &env.env_id, &[("KeyDigest", "")]);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 3);
    for rest in &s.created {
        let sealed = by_id(&listed, &rest["id"]);
        assert_eq!(env.open_text(&sealed["key"]), rest["key"].as_str().unwrap());
        assert_eq!(
            env.open_text(&sealed["value"]),
            rest["value"].as_str().unwrap()
        );
        assert_eq!(
            sealed["key_digest"],
            env.digest(rest["key"].as_str().unwrap())
        );
        for field in ["version", "path", "tags", "type", "environment"] {
            assert_eq!(sealed[field], rest[field], "{field}");
        }
        assert_eq!(
            (&sealed["folder"], &sealed["lifecycle"]),
            (&Value::Null, &json!("static"))
        );
        assert_eq!(sealed["override"], Value::Null);
        match rest["comment"].as_str().unwrap() {
            "" => assert_eq!(sealed["comment"], ""),
            comment => assert_eq!(env.open_text(&sealed["comment"]), comment),
        }
    }
}

#[test]
fn path_and_key_digest_headers_narrow_the_answer() {
    let s = setup();
    let token = service_token(&s, json!(["read"]));
    let api = token.client(&s.server);
    let env = EnvironmentSession::open(&api, &token, &s.app_id, "development");
    let keys_of = |listed: &Value| -> Vec<String> {
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|x| env.open_text(&x["key"]))
            .collect()
    };
    let (_, at_backend) = list(&api, &env.env_id, &[("Path", "backend/")]);
    assert_eq!(keys_of(&at_backend), ["API_KEY"]);
    let (_, at_root) = list(&api, &env.env_id, &[("Path", "/")]);
    assert_eq!(keys_of(&at_root).len(), 2);
    let digest = env.digest("DB_URL");
    let (_, one) = list(&api, &env.env_id, &[("keydigest", digest.as_str())]);
    assert_eq!(keys_of(&one), ["DB_URL"]);
    // The digest of the key as typed in lower case finds it too; another key's does not.
    let typed = env.digest("db_url");
    let (_, typed_one) = list(&api, &env.env_id, &[("KeyDigest", typed.as_str())]);
    assert_eq!(keys_of(&typed_one), ["DB_URL"]);
    let other = env.digest("NO_SUCH_KEY");
    let (_, none) = list(&api, &env.env_id, &[("KeyDigest", other.as_str())]);
    assert_eq!(keys_of(&none), Vec::<String>::new());
    let (status, bad) = list(&api, &env.env_id, &[("Path", "/a/../b")]);
    assert_eq!(status, 400, "{bad}");
}

#[test]
fn x_use_camel_case_true_answers_camel_case() {
    let s = setup();
    let token = service_token(&s, json!(["read"]));
    let api = token.client(&s.server);
    let env = EnvironmentSession::open(&api, &token, &s.app_id, "development");
    let (_, camel) = list(&api, &env.env_id, &[("X-Use-Camel-Case", "true")]);
    let first = &camel[0];
    assert!(
        first.get("keyDigest").is_some() && first.get("createdAt").is_some(),
        "{first}"
    );
    assert!(first.get("key_digest").is_none());
    let (_, snake) = list(&api, &env.env_id, &[("X-Use-Camel-Case", "yes")]);
    assert!(snake[0].get("key_digest").is_some());
}

#[test]
fn a_user_token_sees_its_own_override_sealed_and_no_one_else_does() {
    let s = setup();
    let admin = s.server.admin();
    let (_, me) = issue(&admin, json!({"name": "me", "type": "user"}));
    let mine = me.client(&s.server);
    let (status, body) = mine.put(
        &secrets_path(&s.app_id, "development"),
        json!({"secrets": [{"id": s.created[0]["id"], "override": {"value": "local", "isActive": true}}]}),
    );
    assert_eq!(status.as_u16(), 200, "{body}");
    let env = EnvironmentSession::open(&mine, &me, &s.app_id, "development");
    let (_, listed) = list(&mine, &env.env_id, &[]);
    let personal = &by_id(&listed, &s.created[0]["id"])["override"];
    assert_eq!(env.open_text(&personal["value"]), "local");
    assert_eq!(personal["is_active"], true);
    let reader = service_token(&s, json!(["read"]));
    let (_, theirs) = list(&reader.client(&s.server), &env.env_id, &[]);
    assert_eq!(by_id(&theirs, &s.created[0]["id"])["override"], Value::Null);
}

#[test]
fn the_environment_header_is_required_and_any_environment_outside_scope_looks_the_same() {
    let s = setup();
    let token = service_token(&s, json!(["read"]));
    let api = token.client(&s.server);
    let (status, body) = api.send_raw(Method::GET, "/service/secrets/", None, &[]);
    assert_error(
        &(status, body),
        403,
        "Environment context required.",
        "environment_context_required",
    );
    let (_, envs) = s
        .server
        .admin()
        .get(&format!("/v1/environments/?app_id={}", s.app_id));
    let staging = envs["data"][1]["id"].as_str().unwrap().to_owned();
    let (other_app, _) = create_app(&s.server.admin(), "other");
    let (_, other_envs) = s
        .server
        .admin()
        .get(&format!("/v1/environments/?app_id={other_app}"));
    let foreign = other_envs["data"][0]["id"].as_str().unwrap().to_owned();
    let unknown = uuid::Uuid::new_v4().to_string();
    for env in [
        staging.as_str(),
        foreign.as_str(),
        unknown.as_str(),
        "not-a-uuid",
    ] {
        let (status, body) = api.send_raw(
            Method::GET,
            "/service/secrets/",
            None,
            &[("Environment", env)],
        );
        assert_error(
            &(status, body),
            403,
            "Service token cannot access this environment",
            "environment_out_of_scope",
        );
    }
}

#[test]
fn a_token_without_read_is_refused_and_reads_are_audited() {
    let s = setup();
    let writer = service_token(&s, json!(["create"]));
    let api = writer.client(&s.server);
    let env = EnvironmentSession::open(&api, &writer, &s.app_id, "development");
    let (status, body) = api.send_raw(
        Method::GET,
        "/service/secrets/",
        None,
        &[("Environment", env.env_id.as_str())],
    );
    assert_error(
        &(status, body),
        403,
        "You don't have permission to read secrets in this environment.",
        "permission_denied",
    );
    let reader = service_token(&s, json!(["read"]));
    let (status, _) = list(&reader.client(&s.server), &env.env_id, &[]);
    assert_eq!(status, 200);
    let (_, audit) = s
        .server
        .admin()
        .get(&format!("/v1/audit/?app_id={}&limit=1000", s.app_id));
    let reads: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "secret.read" && e["envId"] == env.env_id.as_str())
        .collect();
    assert_eq!(reads.len(), 1, "{audit}");
    assert_eq!(reads[0]["secretIds"].as_array().unwrap().len(), 3);
}
