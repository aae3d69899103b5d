//! Secret references resolved by `Resolver` (API.md, "Secrets", References): recursion,
//! cycles, the depth limit, other paths, environments and apps, scope, and the reads
//! reported for the audit.

mod common;

use std::sync::Arc;

use coffer_store::references::{MAX_REFERENCE_DEPTH, MAX_RESOLVED_BYTES};
use coffer_store::{
    Environment, NewSecret, ReferencedReads, Resolver, Secret, SecretFilter, Store, StoreConfig,
};
use common::{me, secret, secret_at};
use tempfile::TempDir;
use uuid::Uuid;

struct Fixture {
    store: Arc<Store>,
    _dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&StoreConfig::new(dir.path())).unwrap());
        Fixture { store, _dir: dir }
    }

    fn app(&self, name: &str) -> (Uuid, Vec<Environment>) {
        common::new_app(&self.store, name)
    }

    fn put(&self, env: Uuid, secrets: Vec<NewSecret>) -> Vec<Secret> {
        self.store.create_secrets(&me(), env, secrets).unwrap()
    }

    /// A resolver for a caller who may read everything.
    fn resolver(&self) -> Resolver {
        Resolver::new(Arc::clone(&self.store), Box::new(|_, _| true))
    }

    /// Every listed value of `env`, resolved, by key.
    fn resolved(&self, env: Uuid) -> Vec<(String, String)> {
        let mut resolver = self.resolver();
        self.store
            .list_secrets(env, &SecretFilter::default())
            .unwrap()
            .iter()
            .map(|s| (s.key.clone(), resolver.resolve(s).unwrap()))
            .collect()
    }
}

fn value_of(listed: &[(String, String)], key: &str) -> String {
    listed.iter().find(|(k, _)| k == key).unwrap().1.clone()
}

#[test]
fn references_resolve_recursively_within_an_environment() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    f.put(
        dev,
        vec![
            secret("HOST", "db.internal"),
            secret("PORT", "5432"),
            secret("ADDR", "${HOST}:${port}"),
            secret("URL", "postgres://${Addr}/shop"),
            secret_at("/backend", "USER", "shop"),
            secret("DSN", "${/backend/USER}@${ADDR}"),
        ],
    );
    let listed = f.resolved(dev);
    assert_eq!(value_of(&listed, "ADDR"), "db.internal:5432");
    assert_eq!(value_of(&listed, "URL"), "postgres://db.internal:5432/shop");
    assert_eq!(value_of(&listed, "DSN"), "shop@db.internal:5432");
}

#[test]
fn missing_targets_and_non_references_stay_as_written() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    f.put(
        dev,
        vec![
            secret("A", "x"),
            secret(
                "B",
                "${NOPE} ${/elsewhere/A} ${nowhere.A} ${nope::development.A} ${{A}} $A ${A",
            ),
        ],
    );
    assert_eq!(
        value_of(&f.resolved(dev), "B"),
        "${NOPE} ${/elsewhere/A} ${nowhere.A} ${nope::development.A} ${{A}} $A ${A"
    );
}

#[test]
fn a_cycle_stays_as_written_and_what_reaches_it_resolves_around_it() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    f.put(
        dev,
        vec![
            secret("A", "a(${B})"),
            secret("B", "b(${A})"),
            secret("SELF", "me ${SELF}"),
            secret("C", "c(${A})"),
            secret("D", "d"),
            secret("E", "${D} ${E}"),
        ],
    );
    let listed = f.resolved(dev);
    assert_eq!(value_of(&listed, "A"), "a(${B})");
    assert_eq!(value_of(&listed, "B"), "b(${A})");
    assert_eq!(value_of(&listed, "SELF"), "me ${SELF}");
    // C is not on the cycle: it takes A's value, whose reference into the cycle stays.
    assert_eq!(value_of(&listed, "C"), "c(a(${B}))");
    // A self-reference stays, the others in the same value resolve.
    assert_eq!(value_of(&listed, "E"), "d ${E}");
}

#[test]
fn a_chain_deeper_than_the_limit_stays_as_written() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    // K0 → K1 → … → K9 = "end": K0 needs 9 references, K1 needs 8.
    let chain = MAX_REFERENCE_DEPTH + 1;
    let mut secrets: Vec<NewSecret> = (0..chain)
        .map(|i| secret(&format!("K{i}"), &format!("${{K{}}}", i + 1)))
        .collect();
    secrets.push(secret(&format!("K{chain}"), "end"));
    f.put(dev, secrets);
    let listed = f.resolved(dev);
    assert_eq!(value_of(&listed, "K0"), "${K1}");
    assert_eq!(value_of(&listed, "K1"), "end");
    assert_eq!(value_of(&listed, &format!("K{chain}")), "end");
}

#[test]
fn a_resolved_value_never_grows_past_the_limit() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    let big = "x".repeat(MAX_RESOLVED_BYTES / 2 + 1);
    f.put(
        dev,
        vec![secret("BIG", &big), secret("TWICE", "${BIG}${BIG}")],
    );
    let twice = value_of(&f.resolved(dev), "TWICE");
    assert_eq!(twice, format!("{big}${{BIG}}"));
}

#[test]
fn references_reach_other_environments_and_apps_by_name_in_any_case() {
    let f = Fixture::new();
    let (_, shop) = f.app("shop");
    let (_, billing) = f.app("Billing");
    let (dev, prod) = (shop[0].id, shop[2].id);
    f.put(
        billing[2].id,
        vec![
            secret_at("/stripe", "KEY", "sk_live"),
            secret("LOCAL", "${/stripe/key}"),
        ],
    );
    f.put(
        prod,
        vec![
            secret("HOST", "prod-db"),
            secret_at("/db", "PASS", "${HOST}-pw"),
        ],
    );
    f.put(
        dev,
        vec![
            secret("ENV", "${PRODUCTION.HOST}"),
            secret("ENV_PATH", "${production./db/pass}"),
            secret("APP", "${billing::production./stripe/KEY}"),
            secret("APP_ROOT", "${BILLING::Production.LOCAL}"),
        ],
    );
    let listed = f.resolved(dev);
    assert_eq!(value_of(&listed, "ENV"), "prod-db");
    // A reference's own references resolve in the environment it lives in.
    assert_eq!(value_of(&listed, "ENV_PATH"), "prod-db-pw");
    assert_eq!(value_of(&listed, "APP"), "sk_live");
    assert_eq!(value_of(&listed, "APP_ROOT"), "sk_live");
}

#[test]
fn a_cycle_across_environments_stays_as_written() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let (dev, prod) = (envs[0].id, envs[2].id);
    f.put(prod, vec![secret("B", "${development.A}")]);
    f.put(dev, vec![secret("A", "${production.B}")]);
    assert_eq!(value_of(&f.resolved(dev), "A"), "${production.B}");
    assert_eq!(value_of(&f.resolved(prod), "B"), "${development.A}");
}

#[test]
fn an_environment_the_caller_may_not_read_is_never_resolved_into() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let (dev, staging, prod) = (envs[0].id, envs[1].id, envs[2].id);
    f.put(prod, vec![secret("HOST", "prod-db")]);
    // Staging may be read, but its value leads into production, which may not.
    f.put(staging, vec![secret("HOP", "via ${production.HOST}")]);
    let listed = f.put(
        dev,
        vec![
            secret("DIRECT", "${production.HOST}"),
            secret("MISSING", "${production.NOPE}"),
            secret("HOPPED", "${staging.HOP}"),
        ],
    );
    let mut resolver = Resolver::new(Arc::clone(&f.store), Box::new(move |_, env| env != prod));
    let values: Vec<String> = listed
        .iter()
        .map(|s| resolver.resolve(s).unwrap())
        .collect();
    assert_eq!(
        values,
        [
            "${production.HOST}",
            "${production.NOPE}",
            "via ${production.HOST}"
        ]
    );
    let reads = resolver.take_reads();
    assert_eq!(
        reads,
        [ReferencedReads {
            app_id: envs[1].app_id,
            env_id: staging,
            secret_ids: vec![
                f.store
                    .list_secrets(staging, &SecretFilter::default())
                    .unwrap()[0]
                    .id
            ],
        }]
    );
}

#[test]
fn reads_through_references_are_reported_once_per_secret_by_environment() {
    let f = Fixture::new();
    let (shop_id, shop) = f.app("shop");
    let (billing_id, billing) = f.app("billing");
    let (dev, prod) = (shop[0].id, shop[2].id);
    let prod_secrets = f.put(prod, vec![secret("A", "a"), secret("B", "${A}b")]);
    let billing_secrets = f.put(billing[0].id, vec![secret("C", "c")]);
    let listed = f.put(
        dev,
        vec![
            secret("PLAIN", "plain"),
            secret("ONE", "${production.B}"),
            secret("TWO", "${production.B}${billing::development.C}${PLAIN}"),
        ],
    );
    let mut resolver = f.resolver();
    for s in &listed {
        resolver.resolve(s).unwrap();
    }
    let mut reads = resolver.take_reads();
    for read in &mut reads {
        read.secret_ids.sort();
    }
    reads.sort_by_key(|r| r.env_id);
    let mut prod_ids = vec![prod_secrets[0].id, prod_secrets[1].id];
    prod_ids.sort();
    let mut expected = vec![
        ReferencedReads {
            app_id: shop_id,
            env_id: prod,
            secret_ids: prod_ids,
        },
        ReferencedReads {
            app_id: billing_id,
            env_id: billing[0].id,
            secret_ids: vec![billing_secrets[0].id],
        },
        ReferencedReads {
            app_id: shop_id,
            env_id: dev,
            secret_ids: vec![listed[0].id],
        },
    ];
    expected.sort_by_key(|r| r.env_id);
    assert_eq!(reads, expected);
    // Handed out once.
    assert_eq!(resolver.take_reads(), []);
}

#[test]
fn each_environment_is_read_once_per_resolver() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let (dev, prod) = (envs[0].id, envs[2].id);
    f.put(prod, vec![secret("A", "before")]);
    let listed = f.put(
        dev,
        vec![
            secret("X", "${production.A}"),
            secret("Y", "${production.A}"),
        ],
    );
    let mut resolver = f.resolver();
    assert_eq!(resolver.resolve(&listed[0]).unwrap(), "before");
    // A write after the snapshot was taken is not seen by this resolver.
    let a = f
        .store
        .list_secrets(prod, &SecretFilter::default())
        .unwrap()[0]
        .id;
    f.store
        .update_secrets(
            &me(),
            prod,
            vec![coffer_store::SecretUpdate {
                value: Some("after".into()),
                ..common::update(a)
            }],
        )
        .unwrap();
    assert_eq!(resolver.resolve(&listed[1]).unwrap(), "before");
    assert_eq!(f.resolver().resolve(&listed[1]).unwrap(), "after");
}

#[test]
fn a_listed_value_newer_than_the_snapshot_resolves_on_its_own() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    let made = f.put(dev, vec![secret("A", "a"), secret("B", "${A}")]);
    let mut stale = made[1].clone();
    stale.value = "${A}-${B}".into();
    // The snapshot holds B = "${A}"; the listed B differs, and still may not name itself.
    assert_eq!(f.resolver().resolve(&stale).unwrap(), "a-${B}");
}

#[test]
fn a_long_chain_resolves_without_recursion_limits() {
    let f = Fixture::new();
    let (_, envs) = f.app("shop");
    let dev = envs[0].id;
    // 5000 secrets in one cycle: deep for a recursive search, found without one.
    let n = 5000;
    let secrets: Vec<NewSecret> = (0..n)
        .map(|i| secret(&format!("K{i}"), &format!("${{K{}}}", (i + 1) % n)))
        .collect();
    for batch in secrets.chunks(1000) {
        f.put(dev, batch.to_vec());
    }
    let listed = f.resolved(dev);
    assert_eq!(value_of(&listed, "K0"), "${K1}");
    assert_eq!(value_of(&listed, "K4999"), "${K0}");
}
