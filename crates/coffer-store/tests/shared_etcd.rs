//! Two stores on one etcd prefix, as two Coffer nodes share a cluster (DESIGN.md,
//! "Several nodes on one distributed store"): every rule is decided inside the backend's
//! transactions, so it holds across them, and the audit chain never forks.
//! Runs against the cluster named by `COFFER_TEST_ETCD_ENDPOINTS`; without it, it fails.
#![cfg(feature = "etcd")]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use coffer_store::{
    AuditAction, AuditQuery, AuditVerification, ChainPositions, ChangeAction, ChangeScope,
    ChangesQuery, MasterKey, NewToken, Permissions, SecretFilter, Storage, Store, StoreConfig,
    StoreError, TokenKind,
};
use common::{me, secret, update};
use uuid::Uuid;

fn endpoints() -> Vec<String> {
    std::env::var("COFFER_TEST_ETCD_ENDPOINTS")
        .expect("COFFER_TEST_ETCD_ENDPOINTS names the etcd cluster to test against")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Two nodes on a fresh prefix of the cluster, sharing one master key.
struct TwoNodes {
    a: Arc<Store>,
    b: Arc<Store>,
    _key_dir: tempfile::TempDir,
}

impl TwoNodes {
    fn new() -> Self {
        TwoNodes::claiming(["a", "b"])
    }

    /// Two nodes claiming these node ids (the same one twice: two processes that
    /// claim one id).
    fn claiming(node_ids: [&str; 2]) -> Self {
        let key_dir = tempfile::tempdir().unwrap();
        let key_file = key_dir.path().join("master.key");
        MasterKey::generate().write_new(&key_file).unwrap();
        let prefix = format!("coffer-nodes-{}/", Uuid::new_v4());
        let open = |node_id: &str| {
            let mut config = StoreConfig::new(key_dir.path());
            config.node_id = Some(node_id.to_owned());
            config.storage = Storage::Etcd {
                endpoints: endpoints(),
                prefix: prefix.clone(),
            };
            config.master_key_file = Some(key_file.clone());
            let store = Arc::new(Store::open(&config).unwrap());
            store.follow_other_nodes();
            store
        };
        // Opened side by side on an empty prefix: one initialises it, the other opens
        // what the first wrote.
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| open(node_ids[0]));
            let b = scope.spawn(|| open(node_ids[1]));
            (a.join().unwrap(), b.join().unwrap())
        });
        TwoNodes {
            a,
            b,
            _key_dir: key_dir,
        }
    }

    fn node(&self, i: usize) -> &Store {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }

    fn dev_env(&self, name: &str) -> Uuid {
        self.dev_app(name).1
    }

    /// A new app and its `Development` environment.
    fn dev_app(&self, name: &str) -> (Uuid, Uuid) {
        let (app, envs) = common::new_app(&self.a, name);
        (app, envs[0].id)
    }
}

#[test]
fn nodes_opened_together_on_an_empty_cluster_share_one_store() {
    let nodes = TwoNodes::new();
    let env = nodes.dev_env("shop");
    let created = nodes
        .a
        .create_secrets(&me(), env, vec![secret("DB_URL", "postgres://a")])
        .unwrap();
    let seen = nodes.b.get_secret(env, created[0].id).unwrap();
    assert_eq!(seen.value, "postgres://a");
}

#[test]
fn nodes_initialising_together_issue_one_admin_token_and_audit_it_once() {
    let nodes = TwoNodes::new();
    let issued = std::thread::scope(|scope| {
        let a = scope.spawn(|| nodes.a.initialize().unwrap());
        let b = scope.spawn(|| nodes.b.initialize().unwrap());
        [a.join().unwrap(), b.join().unwrap()]
    });
    assert_eq!(issued.iter().filter(|token| token.is_some()).count(), 1);
    let token_creates = nodes
        .a
        .list_audit(&AuditQuery {
            action: Some(AuditAction::TokenCreate),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .entries;
    assert_eq!(token_creates.len(), 1, "{token_creates:?}");
    assert_eq!(nodes.b.list_tokens().unwrap().len(), 1);
}

#[test]
fn of_32_racers_on_both_nodes_exactly_one_creates_the_key() {
    const RACERS: usize = 32;
    let nodes = TwoNodes::new();
    let env = nodes.dev_env("shop");
    let barrier = Barrier::new(RACERS);
    let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (nodes, barrier) = (&nodes, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    nodes
                        .node(i)
                        .create_secrets(&me(), env, vec![secret("SHARED", &format!("r{i}"))])
                        .map(drop)
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won = results.iter().filter(|r| r.is_ok()).count();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::DuplicateSecret)))
        .count();
    assert_eq!((won, duplicates), (1, RACERS - 1), "{results:?}");
    for node in [&*nodes.a, &*nodes.b] {
        assert_eq!(
            node.list_secrets(env, &SecretFilter::default())
                .unwrap()
                .len(),
            1
        );
    }
}

#[test]
fn writers_on_both_nodes_append_each_to_its_own_whole_chain() {
    let nodes = TwoNodes::new();
    let verified = write_on_both_nodes_and_verify(&nodes);
    let mut chains: Vec<_> = verified
        .chains
        .iter()
        .map(|c| (c.node_id.as_str(), c.checked > 0))
        .collect();
    // Numbered in the order the nodes first opened the store (here, side by side).
    chains.sort();
    assert_eq!(chains, [("a", true), ("b", true)], "{verified:?}");
}

#[test]
fn two_processes_claiming_one_node_id_never_fork_its_chain() {
    let nodes = TwoNodes::claiming(["a", "a"]);
    let verified = write_on_both_nodes_and_verify(&nodes);
    assert_eq!(verified.chains.len(), 1, "{verified:?}");
}

/// Writers on both nodes, each create read back on the other node; then every chain
/// verifies from both nodes, and holds every entry.
fn write_on_both_nodes_and_verify(nodes: &TwoNodes) -> AuditVerification {
    const WRITERS: usize = 8;
    const EACH: usize = 6;
    let (app, env) = nodes.dev_app("shop");
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            scope.spawn(move || {
                for i in 0..EACH {
                    let node = nodes.node(w);
                    let id = node
                        .create_secrets(&me(), env, vec![secret(&format!("K_{w}_{i}"), "v")])
                        .unwrap()[0]
                        .id;
                    // A read's audit entry is appended outside a transaction: it must
                    // not fork a chain either.
                    nodes
                        .node(w + 1)
                        .record_read(&me(), app, env, vec![id])
                        .unwrap();
                }
            });
        }
    });
    for node in [&*nodes.a, &*nodes.b] {
        assert_eq!(
            node.list_secrets(env, &SecretFilter::default())
                .unwrap()
                .len(),
            WRITERS * EACH
        );
    }
    let verified = nodes.a.verify_audit().unwrap();
    assert!(verified.intact(), "{verified:?}");
    assert_eq!(nodes.b.verify_audit().unwrap(), verified);
    // app.create, then a create and a read per write: every one of them in a chain.
    assert_eq!(verified.checked(), 1 + 2 * (WRITERS * EACH) as u64);
    verified
}

#[test]
fn the_audit_log_merges_both_chains_by_time_and_pages_through_them() {
    let nodes = TwoNodes::new();
    let (_, env) = nodes.dev_app("shop");
    for i in 0..6 {
        nodes
            .node(i)
            .create_secrets(&me(), env, vec![secret(&format!("K_{i}"), "v")])
            .unwrap();
    }
    let mut listed = Vec::new();
    let mut since = ChainPositions::default();
    loop {
        let page = nodes
            .b
            .list_audit(&AuditQuery {
                since: since.clone(),
                limit: 2,
                ..Default::default()
            })
            .unwrap();
        listed.extend(page.entries);
        match page.next {
            Some(next) => since = next,
            None => break,
        }
    }
    // app.create and env.create (three environments) on node a, then six creates
    // taking turns.
    let creates: Vec<&str> = listed
        .iter()
        .filter(|e| e.action == AuditAction::SecretCreate)
        .map(|e| &*e.node_id)
        .collect();
    assert_eq!(creates, ["a", "b", "a", "b", "a", "b"]);
    assert!(listed.windows(2).all(|w| w[0].time <= w[1].time));
    let whole = nodes.a.list_audit(&AuditQuery {
        limit: 1000,
        ..Default::default()
    });
    assert_eq!(whole.unwrap().entries, listed);
}

#[test]
fn a_change_on_one_node_is_fed_on_the_other_and_wakes_its_waiters() {
    let nodes = TwoNodes::new();
    let (app, env) = nodes.dev_app("shop");
    // Up to date with node a's app and environments, as it is within a moment anyway.
    nodes.b.refresh_feed().unwrap();
    let since = nodes.b.feed_position();
    let woken = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let started = Instant::now();
            pollster::block_on(nodes.b.fed_beyond(&since));
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(300));
        nodes
            .a
            .create_secrets(&me(), env, vec![secret("FED", "v")])
            .unwrap();
        waiter.join().unwrap()
    });
    // Written 300 ms in; the other node looks every 200 ms.
    assert!(woken < Duration::from_secs(1), "woken after {woken:?}");
    let page = nodes
        .b
        .read_changes(&ChangesQuery {
            scope: ChangeScope::App(app),
            since,
        })
        .unwrap();
    let fed: Vec<_> = page
        .changes
        .iter()
        .map(|c| (&*c.node_id, c.action))
        .collect();
    assert_eq!(fed, [("a", ChangeAction::Create)]);
    assert!(page.caught_up);
}

#[test]
fn readers_on_one_node_never_see_part_of_a_batch_written_on_the_other() {
    const SECRETS: usize = 40;
    const ROUNDS: usize = 8;
    let nodes = TwoNodes::new();
    let env = nodes.dev_env("shop");
    let done = AtomicBool::new(false);
    let counts: BTreeSet<usize> = std::thread::scope(|scope| {
        let reader = {
            let (nodes, done) = (&nodes, &done);
            scope.spawn(move || {
                let mut counts = BTreeSet::new();
                while !done.load(Ordering::SeqCst) {
                    let n = nodes
                        .b
                        .list_secrets(env, &SecretFilter::default())
                        .unwrap()
                        .len();
                    assert!(
                        n == 0 || n == SECRETS,
                        "saw {n} of a {SECRETS}-secret batch"
                    );
                    counts.insert(n);
                }
                counts
            })
        };
        for round in 0..ROUNDS {
            let batch = (0..SECRETS)
                .map(|i| secret(&format!("R{round}_{i}"), "v"))
                .collect();
            let ids: Vec<_> = nodes
                .a
                .create_secrets(&me(), env, batch)
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect();
            // Long enough for the reader to see the whole batch at least once.
            std::thread::sleep(Duration::from_millis(30));
            nodes.a.delete_secrets(&me(), env, &ids).unwrap();
            std::thread::sleep(Duration::from_millis(30));
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert_eq!(counts, BTreeSet::from([0, SECRETS]));
}

#[test]
fn a_token_revoked_on_one_node_is_refused_by_the_other_within_a_second() {
    let nodes = TwoNodes::new();
    let (record, issued) = nodes
        .a
        .create_token(
            &me(),
            NewToken {
                name: "ci".into(),
                kind: TokenKind::User,
                app_id: None,
                environments: vec![],
                permissions: Permissions::default(),
                expires_at: None,
                allowed_ips: vec![],
            },
        )
        .unwrap();
    // Node B authenticates it, and so keeps it in its cache.
    let secret = issued.token.as_str();
    assert!(nodes.b.authenticate(secret).unwrap().is_some());
    nodes.a.revoke_token(&me(), record.id).unwrap();
    let revoked_at = Instant::now();
    while nodes.b.authenticate(secret).unwrap().is_some() {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "node B still takes the token a second after node A revoked it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn updates_of_one_secret_on_both_nodes_all_apply_and_never_look_like_tampering() {
    const WRITERS: usize = 6;
    const EACH: usize = 8;
    let nodes = TwoNodes::new();
    let env = nodes.dev_env("shop");
    let id = nodes
        .a
        .create_secrets(&me(), env, vec![secret("SHARED", "v0")])
        .unwrap()[0]
        .id;
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let nodes = &nodes;
            scope.spawn(move || {
                for i in 0..EACH {
                    // Each node reads the secret and its index entry while the other
                    // rewrites both: never a false alarm, never a lost update.
                    let mut change = update(id);
                    change.value = Some(format!("v{w}-{i}"));
                    nodes
                        .node(w)
                        .update_secrets(&me(), env, vec![change])
                        .unwrap();
                }
            });
        }
    });
    let last = nodes.b.get_secret(env, id).unwrap();
    assert_eq!(last.version, 1 + (WRITERS * EACH) as u64);
}

#[test]
fn a_commit_on_one_node_wakes_the_watch_of_the_other_and_no_other_key_does() {
    use coffer_store::kv::{EtcdBackend, KvBackend, Tree};
    let prefix = format!("coffer-watch-{}/", Uuid::new_v4());
    let a = EtcdBackend::connect(&endpoints(), &prefix).unwrap();
    let b = EtcdBackend::connect(&endpoints(), &prefix).unwrap();
    let watch = a.watch(&[(Tree::Meta, b"epoch")]).expect("etcd watches");
    // The watch is made in the background: commit until one of them is signalled.
    let mut seen = watch.seen();
    let woken = (0..50).any(|n| {
        b.insert(Tree::Meta, b"epoch", format!("{n}").as_bytes())
            .unwrap();
        let now = watch.wait(seen, Duration::from_millis(100));
        let woken = now != seen;
        seen = now;
        woken
    });
    assert!(woken, "no commit to the watched key woke the watch in 5 s");
    // Keys outside what is watched, in the same tree and in another, wake nothing.
    std::thread::sleep(Duration::from_millis(200));
    seen = watch.seen();
    b.insert(Tree::Meta, b"other", b"1").unwrap();
    b.insert(Tree::Apps, b"epoch", b"1").unwrap();
    assert_eq!(watch.wait(seen, Duration::from_millis(500)), seen);
    // And the watched key still does.
    b.insert(Tree::Meta, b"epoch", b"again").unwrap();
    assert_ne!(watch.wait(seen, Duration::from_secs(5)), seen);
}
