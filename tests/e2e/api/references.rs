//! Secret references in `GET /v1/secrets/` (API.md, "Secrets", References): each form
//! resolves, across environments and apps; what the token may not read, cycles and
//! non-references stay as written; `resolve=false` and writes answer values as stored;
//! reads through references are audited.

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// The values of a listing, by key.
fn values(listed: &[Value]) -> Vec<(String, String)> {
    listed
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn every_reference_form_resolves_in_the_listing() {
    let shop = Shop::start();
    let (billing_id, _) = create_app(&shop.admin, "Billing");
    let made = shop.admin.post(
        &secrets_path(&billing_id, "Production"),
        batch(json!([{"key": "STRIPE", "value": "sk_live", "path": "/pay"}])),
    );
    assert_eq!(made.0, 200, "{}", made.1);
    shop.create_in(
        "Production",
        json!([
            {"key": "HOST", "value": "prod-db"},
            {"key": "PASS", "value": "pw-${HOST}", "path": "/db"}
        ]),
    );
    shop.create(json!([
        {"key": "USER", "value": "shop"},
        {"key": "NAME", "value": "main", "path": "/db"},
        {"key": "A_LOCAL", "value": "${user}"},
        {"key": "B_PATH", "value": "${/db/NAME}"},
        {"key": "C_ENV", "value": "${production.HOST}"},
        {"key": "D_ENV_PATH", "value": "${Production./db/PASS}"},
        {"key": "E_APP", "value": "${billing::PRODUCTION./pay/stripe}"},
        {"key": "F_ALL", "value": "postgres://${USER}:${production./db/PASS}@${PRODUCTION.HOST}/${/db/NAME}"},
        {"key": "G_LEFT", "value": "${{USER}} $USER ${USER ${NOPE}"}
    ]));
    assert_eq!(
        values(&shop.list("&path=/")),
        pairs(&[
            ("A_LOCAL", "shop"),
            ("B_PATH", "main"),
            ("C_ENV", "prod-db"),
            ("D_ENV_PATH", "pw-prod-db"),
            ("E_APP", "sk_live"),
            ("F_ALL", "postgres://shop:pw-prod-db@prod-db/main"),
            ("G_LEFT", "${{USER}} $USER ${USER ${NOPE}"),
            ("USER", "shop"),
        ])
    );
}

#[test]
fn a_cycle_stays_as_written() {
    let shop = Shop::start();
    shop.create(json!([
        {"key": "A", "value": "a ${B}"},
        {"key": "B", "value": "b ${A}"},
        {"key": "C", "value": "c ${A}"}
    ]));
    assert_eq!(
        values(&shop.list("")),
        pairs(&[("A", "a ${B}"), ("B", "b ${A}"), ("C", "c a ${B}")])
    );
}

#[test]
fn resolve_false_and_writes_answer_values_as_stored() {
    let shop = Shop::start();
    let created = shop.create(json!([
        {"key": "HOST", "value": "db"},
        {"key": "URL", "value": "pg://${HOST}"}
    ]));
    assert_eq!(created[1]["value"], "pg://${HOST}");
    let (status, updated) = shop.admin.put(
        &shop.dev(),
        batch(json!([{"id": id(&created[1]), "value": "pg://${HOST}/x"}])),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated[0]["value"], "pg://${HOST}/x");
    assert_eq!(
        values(&shop.list("&resolve=false")),
        pairs(&[("HOST", "db"), ("URL", "pg://${HOST}/x")])
    );
    assert_eq!(
        values(&shop.list("&resolve=true")),
        pairs(&[("HOST", "db"), ("URL", "pg://db/x")])
    );
    assert_error(
        &shop.admin.get(&format!("{}&resolve=yes", shop.dev())),
        400,
        "Invalid 'resolve'",
        "invalid_resolve",
    );
}

#[test]
fn a_service_token_resolves_only_into_what_it_may_read_and_learns_nothing_else() {
    let shop = Shop::start();
    let (other_id, _) = create_app(&shop.admin, "other");
    shop.create_in("Staging", json!([{"key": "S", "value": "staging-value"}]));
    shop.create(json!([
        {"key": "IN_SCOPE", "value": "${staging.S}"},
        {"key": "OTHER_ENV", "value": "${production.HOST}"},
        {"key": "OTHER_APP", "value": "${other::development.K}"},
        {"key": "NO_SUCH_ENV", "value": "${nowhere.K}"}
    ]));
    let (_, token) = create_token(
        &shop.admin,
        json!({"name": "ci", "type": "service", "appId": shop.app_id,
               "environments": ["Development", "Staging"], "permissions": ["read"]}),
    );
    let service = shop.server.client(Some(format!("Bearer Service {token}")));
    let listing = || {
        let (status, body) = service.send_raw(reqwest::Method::GET, &shop.dev(), None, &[]);
        assert_eq!(status, 200, "{body}");
        body
    };
    let before = listing();
    // The targets now exist: the service token's answer does not change.
    shop.create_in("Production", json!([{"key": "HOST", "value": "prod-db"}]));
    let made = shop.admin.post(
        &secrets_path(&other_id, "Development"),
        batch(json!([{"key": "K", "value": "other-value"}])),
    );
    assert_eq!(made.0, 200, "{}", made.1);
    let after = listing();
    assert_eq!(before, after);
    assert_eq!(
        values(after.as_array().unwrap()),
        pairs(&[
            ("IN_SCOPE", "staging-value"),
            ("NO_SUCH_ENV", "${nowhere.K}"),
            ("OTHER_APP", "${other::development.K}"),
            ("OTHER_ENV", "${production.HOST}"),
        ])
    );
    // A User token reads every app.
    assert_eq!(
        values(&shop.list("&key=OTHER_APP")),
        pairs(&[("OTHER_APP", "other-value")])
    );
    assert_eq!(
        values(&shop.list("&key=OTHER_ENV")),
        pairs(&[("OTHER_ENV", "prod-db")])
    );
}

#[test]
fn reads_through_references_are_audited_as_reads_of_each_environment() {
    let shop = Shop::start();
    let (billing_id, billing) = create_app(&shop.admin, "billing");
    let prod = shop.create_in(
        "Production",
        json!([{"key": "A", "value": "a"}, {"key": "B", "value": "${A}"}]),
    );
    let (_, paid) = shop.admin.post(
        &secrets_path(&billing_id, "Development"),
        batch(json!([{"key": "C", "value": "c"}])),
    );
    let dev = shop.create(json!([
        {"key": "PLAIN", "value": "p"},
        {"key": "X", "value": "${production.B}${billing::development.C}${PLAIN}"}
    ]));
    assert_eq!(values(&shop.list("&key=X")), pairs(&[("X", "acp")]));
    let (status, page) = shop.admin.get("/v1/audit/?limit=1000");
    assert_eq!(status, 200, "{page}");
    let reads: Vec<(String, String, Vec<String>)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "secret.read")
        .map(|e| {
            let mut ids: Vec<String> = e["secretIds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            (
                e["appId"].as_str().unwrap().to_owned(),
                e["envId"].as_str().unwrap().to_owned(),
                ids,
            )
        })
        .collect();
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let billing_dev = billing["environments"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The listed environment names X and PLAIN (read through X), each other
    // environment its own secrets read.
    let mut expected = vec![
        (
            shop.app_id.clone(),
            shop.env_id("Development"),
            sorted(vec![id(&dev[1]), id(&dev[0])]),
        ),
        (
            shop.app_id.clone(),
            shop.env_id("Production"),
            sorted(vec![id(&prod[0]), id(&prod[1])]),
        ),
        (billing_id, billing_dev, vec![id(&paid[0])]),
    ];
    let mut got = reads;
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn a_streamed_listing_audits_the_reads_of_its_later_chunks() {
    let shop = Shop::start();
    let prod = shop.create_in("Production", json!([{"key": "P", "value": "prod"}]));
    let pad = "x".repeat(40 * 1024);
    shop.create(json!([
        {"key": "A_PAD", "value": pad},
        {"key": "B_PAD", "value": pad},
        {"key": "Z_REF", "value": "${production.P}"}
    ]));
    let listed = shop.list("");
    assert_eq!(listed[2]["value"], "prod");
    let (status, page) = shop.admin.get("/v1/audit/?limit=1000");
    assert_eq!(status, 200, "{page}");
    let prod_reads: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "secret.read" && e["envId"] == shop.env_id("Production"))
        .collect();
    assert_eq!(prod_reads.len(), 1, "{page}");
    assert_eq!(prod_reads[0]["secretIds"], json!([id(&prod[0])]));
}
