//! Who may do what: every kind of caller against every route, as one table that reads
//! like API.md's Authentication section, plus the ways a scoped token could learn about
//! what lies outside its scope.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// The callers of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    /// The admin User token.
    User,
    /// Service token of app A, env Development, permission `read`.
    ReadOnly,
    /// Service token of app A, env Development, all four permissions.
    ReadWrite,
    /// Service token of app B, env Development, all four permissions.
    OtherApp,
    /// Service token of app A whose `expiresAt` has passed.
    Expired,
    /// Service token of app A, revoked.
    Revoked,
    /// `Bearer Service not-a-token`.
    Malformed,
    /// No Authorization header.
    Anonymous,
}

/// Where a secrets request points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Place {
    /// App A, Development.
    ADev,
    /// App A, Production.
    AProd,
    /// App B, Development.
    BDev,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Route {
    Secrets(Verb, Place),
    ListApps,
    ListEnvironments,
    ListTokens,
    CreateToken,
    ListAudit,
}

#[derive(Clone, Copy, Debug)]
enum Want {
    /// Success with this status.
    Allowed(u16),
    /// 403 with this message.
    Denied(&'static str),
}

use Place::*;
use Route::*;
use Verb::*;
use Want::*;
use Who::*;

#[rustfmt::skip]
const MATRIX: &[(Who, Route, Want)] = &[
    // The admin User token reaches everything.
    (User, Secrets(Get, ADev), Allowed(200)),
    (User, Secrets(Post, ADev), Allowed(200)),
    (User, Secrets(Put, ADev), Allowed(200)),
    (User, Secrets(Delete, ADev), Allowed(200)),
    (User, Secrets(Get, AProd), Allowed(200)),
    (User, Secrets(Post, AProd), Allowed(200)),
    (User, Secrets(Put, AProd), Allowed(200)),
    (User, Secrets(Delete, AProd), Allowed(200)),
    (User, Secrets(Get, BDev), Allowed(200)),
    (User, Secrets(Post, BDev), Allowed(200)),
    (User, Secrets(Put, BDev), Allowed(200)),
    (User, Secrets(Delete, BDev), Allowed(200)),
    (User, ListApps, Allowed(200)),
    (User, ListEnvironments, Allowed(200)),
    (User, ListTokens, Allowed(200)),
    (User, CreateToken, Allowed(201)),
    (User, ListAudit, Allowed(200)),
    // Service token, A/Development, read only.
    (ReadOnly, Secrets(Get, ADev), Allowed(200)),
    (ReadOnly, Secrets(Post, ADev), Denied(NO_CREATE)),
    (ReadOnly, Secrets(Put, ADev), Denied(NO_UPDATE)),
    (ReadOnly, Secrets(Delete, ADev), Denied(NO_DELETE)),
    (ReadOnly, Secrets(Get, AProd), Denied(OTHER_ENV)),
    (ReadOnly, Secrets(Post, AProd), Denied(OTHER_ENV)),
    (ReadOnly, Secrets(Put, AProd), Denied(OTHER_ENV)),
    (ReadOnly, Secrets(Delete, AProd), Denied(OTHER_ENV)),
    (ReadOnly, Secrets(Get, BDev), Denied(OTHER_APP)),
    (ReadOnly, Secrets(Post, BDev), Denied(OTHER_APP)),
    (ReadOnly, Secrets(Put, BDev), Denied(OTHER_APP)),
    (ReadOnly, Secrets(Delete, BDev), Denied(OTHER_APP)),
    (ReadOnly, ListApps, Denied(USER_ONLY)),
    (ReadOnly, ListEnvironments, Denied(USER_ONLY)),
    (ReadOnly, ListTokens, Denied(USER_ONLY)),
    (ReadOnly, CreateToken, Denied(USER_ONLY)),
    (ReadOnly, ListAudit, Denied(USER_ONLY)),
    // Service token, A/Development, read + create + update + delete.
    (ReadWrite, Secrets(Get, ADev), Allowed(200)),
    (ReadWrite, Secrets(Post, ADev), Allowed(200)),
    (ReadWrite, Secrets(Put, ADev), Allowed(200)),
    (ReadWrite, Secrets(Delete, ADev), Allowed(200)),
    (ReadWrite, Secrets(Get, AProd), Denied(OTHER_ENV)),
    (ReadWrite, Secrets(Post, AProd), Denied(OTHER_ENV)),
    (ReadWrite, Secrets(Put, AProd), Denied(OTHER_ENV)),
    (ReadWrite, Secrets(Delete, AProd), Denied(OTHER_ENV)),
    (ReadWrite, Secrets(Get, BDev), Denied(OTHER_APP)),
    (ReadWrite, Secrets(Post, BDev), Denied(OTHER_APP)),
    (ReadWrite, Secrets(Put, BDev), Denied(OTHER_APP)),
    (ReadWrite, Secrets(Delete, BDev), Denied(OTHER_APP)),
    (ReadWrite, ListApps, Denied(USER_ONLY)),
    (ReadWrite, ListEnvironments, Denied(USER_ONLY)),
    (ReadWrite, ListTokens, Denied(USER_ONLY)),
    (ReadWrite, CreateToken, Denied(USER_ONLY)),
    (ReadWrite, ListAudit, Denied(USER_ONLY)),
    // Service token of app B: nothing of app A, whatever the environment.
    (OtherApp, Secrets(Get, ADev), Denied(OTHER_APP)),
    (OtherApp, Secrets(Post, ADev), Denied(OTHER_APP)),
    (OtherApp, Secrets(Put, ADev), Denied(OTHER_APP)),
    (OtherApp, Secrets(Delete, ADev), Denied(OTHER_APP)),
    (OtherApp, Secrets(Get, AProd), Denied(OTHER_APP)),
    (OtherApp, Secrets(Post, AProd), Denied(OTHER_APP)),
    (OtherApp, Secrets(Put, AProd), Denied(OTHER_APP)),
    (OtherApp, Secrets(Delete, AProd), Denied(OTHER_APP)),
    (OtherApp, Secrets(Get, BDev), Allowed(200)),
    (OtherApp, Secrets(Post, BDev), Allowed(200)),
    (OtherApp, Secrets(Put, BDev), Allowed(200)),
    (OtherApp, Secrets(Delete, BDev), Allowed(200)),
    (OtherApp, ListApps, Denied(USER_ONLY)),
    (OtherApp, ListEnvironments, Denied(USER_ONLY)),
    (OtherApp, ListTokens, Denied(USER_ONLY)),
    (OtherApp, CreateToken, Denied(USER_ONLY)),
    (OtherApp, ListAudit, Denied(USER_ONLY)),
    // Expired: refused everywhere, before any scope check.
    (Expired, Secrets(Get, ADev), Denied(GONE)),
    (Expired, Secrets(Post, ADev), Denied(GONE)),
    (Expired, Secrets(Put, ADev), Denied(GONE)),
    (Expired, Secrets(Delete, ADev), Denied(GONE)),
    (Expired, Secrets(Get, AProd), Denied(GONE)),
    (Expired, Secrets(Post, AProd), Denied(GONE)),
    (Expired, Secrets(Put, AProd), Denied(GONE)),
    (Expired, Secrets(Delete, AProd), Denied(GONE)),
    (Expired, Secrets(Get, BDev), Denied(GONE)),
    (Expired, Secrets(Post, BDev), Denied(GONE)),
    (Expired, Secrets(Put, BDev), Denied(GONE)),
    (Expired, Secrets(Delete, BDev), Denied(GONE)),
    (Expired, ListApps, Denied(GONE)),
    (Expired, ListEnvironments, Denied(GONE)),
    (Expired, ListTokens, Denied(GONE)),
    (Expired, CreateToken, Denied(GONE)),
    (Expired, ListAudit, Denied(GONE)),
    // Revoked: the same.
    (Revoked, Secrets(Get, ADev), Denied(GONE)),
    (Revoked, Secrets(Post, ADev), Denied(GONE)),
    (Revoked, Secrets(Put, ADev), Denied(GONE)),
    (Revoked, Secrets(Delete, ADev), Denied(GONE)),
    (Revoked, Secrets(Get, AProd), Denied(GONE)),
    (Revoked, Secrets(Post, AProd), Denied(GONE)),
    (Revoked, Secrets(Put, AProd), Denied(GONE)),
    (Revoked, Secrets(Delete, AProd), Denied(GONE)),
    (Revoked, Secrets(Get, BDev), Denied(GONE)),
    (Revoked, Secrets(Post, BDev), Denied(GONE)),
    (Revoked, Secrets(Put, BDev), Denied(GONE)),
    (Revoked, Secrets(Delete, BDev), Denied(GONE)),
    (Revoked, ListApps, Denied(GONE)),
    (Revoked, ListEnvironments, Denied(GONE)),
    (Revoked, ListTokens, Denied(GONE)),
    (Revoked, CreateToken, Denied(GONE)),
    (Revoked, ListAudit, Denied(GONE)),
    // Malformed header.
    (Malformed, Secrets(Get, ADev), Denied(INVALID)),
    (Malformed, Secrets(Post, ADev), Denied(INVALID)),
    (Malformed, Secrets(Put, ADev), Denied(INVALID)),
    (Malformed, Secrets(Delete, ADev), Denied(INVALID)),
    (Malformed, Secrets(Get, AProd), Denied(INVALID)),
    (Malformed, Secrets(Post, AProd), Denied(INVALID)),
    (Malformed, Secrets(Put, AProd), Denied(INVALID)),
    (Malformed, Secrets(Delete, AProd), Denied(INVALID)),
    (Malformed, Secrets(Get, BDev), Denied(INVALID)),
    (Malformed, Secrets(Post, BDev), Denied(INVALID)),
    (Malformed, Secrets(Put, BDev), Denied(INVALID)),
    (Malformed, Secrets(Delete, BDev), Denied(INVALID)),
    (Malformed, ListApps, Denied(INVALID)),
    (Malformed, ListEnvironments, Denied(INVALID)),
    (Malformed, ListTokens, Denied(INVALID)),
    (Malformed, CreateToken, Denied(INVALID)),
    (Malformed, ListAudit, Denied(INVALID)),
    // No Authorization header at all.
    (Anonymous, Secrets(Get, ADev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Post, ADev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Put, ADev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Delete, ADev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Get, AProd), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Post, AProd), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Put, AProd), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Delete, AProd), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Get, BDev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Post, BDev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Put, BDev), Denied(NO_CREDENTIALS)),
    (Anonymous, Secrets(Delete, BDev), Denied(NO_CREDENTIALS)),
    (Anonymous, ListApps, Denied(NO_CREDENTIALS)),
    (Anonymous, ListEnvironments, Denied(NO_CREDENTIALS)),
    (Anonymous, ListTokens, Denied(NO_CREDENTIALS)),
    (Anonymous, CreateToken, Denied(NO_CREDENTIALS)),
    (Anonymous, ListAudit, Denied(NO_CREDENTIALS)),
];

const CALLERS: [Who; 8] = [
    User, ReadOnly, ReadWrite, OtherApp, Expired, Revoked, Malformed, Anonymous,
];

fn all_routes() -> Vec<Route> {
    let mut routes = Vec::new();
    for place in [ADev, AProd, BDev] {
        for verb in [Get, Post, Put, Delete] {
            routes.push(Secrets(verb, place));
        }
    }
    routes.extend([
        ListApps,
        ListEnvironments,
        ListTokens,
        CreateToken,
        ListAudit,
    ]);
    routes
}

/// The server, two apps, and a client per caller.
struct World {
    admin: Api,
    app_a: String,
    app_b: String,
    callers: HashMap<Who, Api>,
    /// One secret per place that no cell deletes.
    seeds: HashMap<Place, String>,
    // Last, so the server stops after the clients are gone.
    _server: Server,
}

impl World {
    fn build() -> World {
        // The matrix sends ~50 failed authentications; keep the brute-force guard out
        // of its way (rate_limit.rs tests the guard).
        let server = Server::start_with(&["--auth-failure-limit", "100000"]);
        let admin = server.admin();
        let (app_a, _) = create_app(&admin, "alpha");
        let (app_b, _) = create_app(&admin, "beta");
        let all = ["read", "create", "update", "delete"];

        // A token that expires three seconds from now; it works until then.
        let expires_at = SystemTime::now() + Duration::from_secs(3);
        let (_, expiring) = create_token(
            &admin,
            json!({"name": "expiring", "type": "service", "appId": app_a,
                   "environments": ["Development"], "expiresAt": rfc3339(expires_at)}),
        );
        let expired = server.client(service_header(&expiring));
        assert_eq!(expired.get(&secrets_path(&app_a, "Development")).0, 200);

        let (_, read_only) = service_token(&admin, &app_a, &["Development"], &["read"]);
        let (_, read_write) = service_token(&admin, &app_a, &["Development"], &all);
        let (_, other_app) = service_token(&admin, &app_b, &["Development"], &all);
        let (revoked_id, revoked) = service_token(&admin, &app_a, &["Development"], &all);
        let revoked_client = server.client(service_header(&revoked));
        assert_eq!(
            revoked_client.get(&secrets_path(&app_a, "Development")).0,
            200
        );
        assert_eq!(admin.delete(&format!("/v1/tokens/{revoked_id}/")).0, 204);

        let mut seeds = HashMap::new();
        for (place, app, env) in [
            (ADev, &app_a, "Development"),
            (AProd, &app_a, "Production"),
            (BDev, &app_b, "Development"),
        ] {
            seeds.insert(place, seed_secret(&admin, app, env, "SEED", "seed-value"));
        }

        let callers = HashMap::from([
            (User, admin.clone()),
            (ReadOnly, server.client(service_header(&read_only))),
            (ReadWrite, server.client(service_header(&read_write))),
            (OtherApp, server.client(service_header(&other_app))),
            (Expired, expired),
            (Revoked, revoked_client),
            (
                Malformed,
                server.client(Some("Bearer Service not-a-token".into())),
            ),
            (Anonymous, server.client(None)),
        ]);

        let left = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        std::thread::sleep(left + Duration::from_millis(200));
        World {
            admin,
            app_a,
            app_b,
            callers,
            seeds,
            _server: server,
        }
    }

    fn secrets_of(&self, place: Place) -> String {
        match place {
            ADev => secrets_path(&self.app_a, "Development"),
            AProd => secrets_path(&self.app_a, "Production"),
            BDev => secrets_path(&self.app_b, "Development"),
        }
    }

    /// What the admin sees in a place.
    fn listing(&self, place: Place) -> Value {
        let (status, body) = self.admin.get(&self.secrets_of(place));
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Runs one cell; returns a description of any disagreement with the table.
    fn check(&self, row: usize, who: Who, route: Route, want: Want) -> Result<(), String> {
        let api = &self.callers[&who];
        let cell = format!("row {row}: {who:?} × {route:?}");
        let (method, path, body, place) = match route {
            Secrets(verb, place) => {
                let path = self.secrets_of(place);
                let (app, env) = match place {
                    ADev => (&self.app_a, "Development"),
                    AProd => (&self.app_a, "Production"),
                    BDev => (&self.app_b, "Development"),
                };
                let (method, body) = match verb {
                    Get => (Method::GET, None),
                    Post => (
                        Method::POST,
                        Some(json!({"secrets": [{"key": format!("NEW_{row}"), "value": "v"}]})),
                    ),
                    Put => {
                        let id = seed_secret(&self.admin, app, env, &format!("PUT_{row}"), "old");
                        (
                            Method::PUT,
                            Some(json!({"secrets": [{"id": id, "value": "changed"}]})),
                        )
                    }
                    Delete => {
                        let id = seed_secret(&self.admin, app, env, &format!("DEL_{row}"), "v");
                        (Method::DELETE, Some(json!({"secrets": [id]})))
                    }
                };
                (method, path, body, Some((verb, place)))
            }
            ListApps => (Method::GET, "/v1/apps/".to_string(), None, None),
            ListEnvironments => (
                Method::GET,
                format!("/v1/environments/?app_id={}", self.app_a),
                None,
                None,
            ),
            ListTokens => (Method::GET, "/v1/tokens/".to_string(), None, None),
            CreateToken => (
                Method::POST,
                "/v1/tokens/".to_string(),
                Some(json!({"name": format!("row-{row}"), "type": "service",
                            "appId": self.app_a, "environments": ["Production"]})),
                None,
            ),
            ListAudit => (Method::GET, "/v1/audit/".to_string(), None, None),
        };
        let before = place.map(|(_, place)| self.listing(place));
        let answer = api.send(method, &path, body.as_ref());
        let (status, got) = &answer;
        match want {
            Denied(message) => {
                let expected = json!({"error": message, "code": code_of(message)});
                if status.as_u16() != 403 || *got != expected {
                    return Err(format!("{cell}: want 403 {expected}, got {status} {got}"));
                }
                if let Some((_, place)) = place {
                    if self.listing(place) != before.unwrap() {
                        return Err(format!("{cell}: a refused request changed {place:?}"));
                    }
                }
                Ok(())
            }
            Allowed(code) => {
                if status.as_u16() != code {
                    return Err(format!("{cell}: want {code}, got {status} {got}"));
                }
                let Some((verb, place)) = place else {
                    return Ok(());
                };
                let after = self.listing(place);
                let ids = |list: &Value| -> HashSet<String> {
                    list.as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s["id"].as_str().unwrap().to_string())
                        .collect()
                };
                let effect = match verb {
                    Get => {
                        ids(got) == ids(&before.unwrap()) && ids(got).contains(&self.seeds[&place])
                    }
                    Post => {
                        got[0]["key"] == format!("NEW_{row}")
                            && ids(&after).contains(got[0]["id"].as_str().unwrap_or(""))
                    }
                    Put => got[0]["value"] == "changed" && got[0]["version"] == 2,
                    Delete => {
                        got["message"] == "Deleted 1 secret"
                            && ids(&after).len() + 1 == ids(&before.unwrap()).len()
                    }
                };
                if effect {
                    Ok(())
                } else {
                    Err(format!("{cell}: allowed, but the effect is wrong: {got}"))
                }
            }
        }
    }
}

#[test]
fn every_caller_against_every_route() {
    // The table is complete: every caller meets every route exactly once.
    let cells: HashSet<(Who, Route)> = MATRIX.iter().map(|(w, r, _)| (*w, *r)).collect();
    let routes = all_routes();
    assert_eq!(MATRIX.len(), cells.len(), "a cell appears twice");
    assert_eq!(MATRIX.len(), CALLERS.len() * routes.len());
    for who in CALLERS {
        for route in &routes {
            assert!(
                cells.contains(&(who, *route)),
                "missing cell {who:?} × {route:?}"
            );
        }
    }

    let world = World::build();
    let failures: Vec<String> = MATRIX
        .iter()
        .enumerate()
        .filter_map(|(row, (who, route, want))| world.check(row, *who, *route, *want).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cells disagree with the contract:\n{}",
        failures.len(),
        MATRIX.len(),
        failures.join("\n")
    );
    // The seeds survived every refused DELETE and PUT.
    for (place, seed) in &world.seeds {
        let listing = world.listing(*place);
        let seed = listing
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == seed.as_str())
            .unwrap_or_else(|| panic!("seed of {place:?} is gone"));
        assert_eq!(seed["value"], "seed-value");
        assert_eq!(seed["version"], 1);
    }
}

#[test]
fn malformed_authorization_headers_are_invalid_tokens_and_the_type_word_grants_nothing() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shapes");
    let path = secrets_path(&app_id, "Development");
    let (_, service) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let token = &server.admin_token;
    let invalid = [
        String::new(),
        "Bearer".into(),
        "Bearer User".into(),
        format!("Bearer User {token} extra"),
        format!("Token {token}"),
        format!("Basic {token}"),
        format!("Bearer Robot {token}"),
        format!("Bearer User {}", token.to_uppercase()),
        format!("Bearer User {}", &token[..63]),
        format!("Bearer User {token}0"),
        format!("Bearer User {}", "g".repeat(64)),
    ];
    for header in invalid {
        let answer = server.client(Some(header.clone())).get(&path);
        assert_eq!(answer.1["error"], INVALID, "header {header:?}");
        assert_denied(&answer, INVALID);
    }
    // The token alone decides what it may do, whichever of the three words comes with it.
    for word in ["Service", "ServiceAccount", "user"] {
        let (status, _) = server
            .client(Some(format!("Bearer {word} {token}")))
            .get("/v1/apps/");
        assert_eq!(status, 200, "the admin token sent as {word}");
    }
    let (status, body) = server
        .client(Some(format!("Bearer User {service}")))
        .get("/v1/apps/");
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (403, &json!("This action requires a User token."))
    );
    assert_eq!(
        server
            .client(Some(format!("Bearer User {service}")))
            .get(&path)
            .0,
        200
    );
    // Well formed but unknown.
    let unknown = format!("Bearer User {}", "0".repeat(64));
    assert_denied(&server.client(Some(unknown)).get(&path), GONE);
    // `ServiceAccount` is a synonym of `Service`.
    let synonym = server.client(Some(format!("Bearer ServiceAccount {service}")));
    assert_eq!(synonym.get(&path).0, 200);
}

#[test]
fn access_rules_hold_under_every_prefix() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "prefixed");
    let (_, token) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let service = server.client(service_header(&token));
    let anonymous = server.client(None);
    for prefix in ["/v1", "/service/public/v1", "/public/v1"] {
        let dev = format!("{prefix}/secrets/?app_id={app_id}&env=Development");
        let prod = format!("{prefix}/secrets/?app_id={app_id}&env=Production");
        assert_eq!(service.get(&dev).0, 200, "{prefix}");
        let create = json!({"secrets": [{"key": "K", "value": "v"}]});
        assert_denied(&service.post(&dev, create), NO_CREATE);
        assert_denied(&service.get(&prod), OTHER_ENV);
        assert_denied(&service.get(&format!("{prefix}/apps/")), USER_ONLY);
        assert_denied(&service.get(&format!("{prefix}/audit")), USER_ONLY);
        assert_denied(&anonymous.get(&dev), NO_CREDENTIALS);
        assert_denied(&anonymous.get(&format!("{prefix}/tokens")), NO_CREDENTIALS);
    }
}

#[test]
fn a_token_of_app_b_learns_nothing_about_app_a() {
    let server = Server::start();
    let admin = server.admin();
    let (app_a, a_body) = create_app(&admin, "alpha");
    let (app_b, _) = create_app(&admin, "beta");
    let a_dev_id = a_body["environments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a_secret = seed_secret(&admin, &app_a, "Development", "DB_URL", "pg://alpha");
    let all = ["read", "create", "update", "delete"];
    let (_, b_token) = service_token(&admin, &app_b, &["Development"], &all);
    let b = server.client(service_header(&b_token));
    let b_dev = secrets_path(&app_b, "Development");
    let a_dev = secrets_path(&app_a, "Development");
    let a_before = admin.get(&a_dev);

    // Existing app, missing app, missing environment, environment by id: one answer.
    let missing_app = uuid::Uuid::new_v4().to_string();
    for path in [
        a_dev.clone(),
        secrets_path(&app_a, "NoSuchEnv"),
        secrets_path(&app_a, &a_dev_id),
        secrets_path(&missing_app, "Development"),
    ] {
        assert_denied(&b.get(&path), OTHER_APP);
        let body = json!({"secrets": [{"key": "X", "value": "v"}]});
        assert_denied(&b.post(&path, body), OTHER_APP);
        let body = json!({"secrets": [{"id": a_secret, "value": "stolen"}]});
        assert_denied(&b.put(&path, body), OTHER_APP);
        assert_denied(
            &b.delete_with(&path, json!({"secrets": [a_secret]})),
            OTHER_APP,
        );
    }
    // Its own app with another app's environment id: as unknown as a random id.
    let random_env = uuid::Uuid::new_v4().to_string();
    for env in [&a_dev_id, &random_env] {
        assert_error(
            &b.get(&secrets_path(&app_b, env)),
            404,
            &format!("Environment '{env}' not found in App {app_b}"),
            "environment_not_found",
        );
    }
    // A's secret id inside B's environment: the same 404 as an id that never existed.
    let random = uuid::Uuid::new_v4().to_string();
    for id in [&a_secret, &random] {
        let body = json!({"secrets": [{"id": id, "value": "stolen"}]});
        assert_error(
            &b.put(&b_dev, body),
            404,
            &format!("Secret not found: {id}"),
            "secret_not_found",
        );
        assert_error(
            &b.delete_with(&b_dev, json!({"secrets": [id]})),
            404,
            &format!("Secret(s) not found in this environment: {id}"),
            "secrets_not_found",
        );
    }
    // A's key name is invisible and free in B.
    let (status, listed) = b.get(&format!("{b_dev}&key=DB_URL"));
    assert_eq!((status.as_u16(), listed), (200, json!([])));
    let (status, _) = b.post(
        &b_dev,
        json!({"secrets": [{"key": "DB_URL", "value": "b"}]}),
    );
    assert_eq!(status, 200, "no conflict with app A's key");
    // Nor can it reach A through the admin routes.
    assert_denied(&b.get(&format!("/v1/audit/?app_id={app_a}")), USER_ONLY);
    assert_denied(&b.get(&format!("/v1/apps/{app_a}/")), USER_ONLY);
    assert_denied(&b.get(&format!("/v1/environments/{a_dev_id}/")), USER_ONLY);
    assert_denied(&b.delete(&format!("/v1/apps/{app_a}/")), USER_ONLY);
    // App A is exactly as it was.
    assert_eq!(admin.get(&a_dev), a_before);
}

#[test]
fn refusals_come_before_the_body_is_looked_at() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, app) = create_app(&admin, "ordered");
    let prod_id = app["environments"][2]["id"].as_str().unwrap().to_string();
    let (_, read_only) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let read_only = server.client(service_header(&read_only));
    let (_, other) = create_app(&admin, "other");
    let other_id = other["id"].as_str().unwrap();
    let all = ["read", "create", "update", "delete"];
    let (_, other_token) = service_token(&admin, other_id, &["Development"], &all);
    let other_app = server.client(service_header(&other_token));
    let dev = secrets_path(&app_id, "Development");
    let garbage = Some(b"{not json".to_vec());
    for (api, method, path, message) in [
        (&read_only, Method::POST, dev.clone(), NO_CREATE),
        (&read_only, Method::PUT, dev.clone(), NO_UPDATE),
        (&read_only, Method::DELETE, dev.clone(), NO_DELETE),
        (
            &read_only,
            Method::POST,
            secrets_path(&app_id, &prod_id),
            OTHER_ENV,
        ),
        (&other_app, Method::PUT, dev.clone(), OTHER_APP),
        (&read_only, Method::POST, "/v1/apps/".to_string(), USER_ONLY),
        (
            &read_only,
            Method::POST,
            "/v1/tokens/".to_string(),
            USER_ONLY,
        ),
    ] {
        let answer = api.send_raw(method.clone(), &path, garbage.clone(), &[]);
        assert_denied(&answer, message);
    }
    let anonymous = server.client(None);
    let answer = anonymous.send_raw(Method::POST, &dev, garbage.clone(), &[]);
    assert_denied(&answer, NO_CREDENTIALS);
    // With access, the same body is a validation error.
    let answer = admin.send_raw(Method::POST, &dev, garbage, &[]);
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert_eq!(answer.1["error"], "Request body must be valid JSON.");
}
