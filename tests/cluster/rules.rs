//! The store's rules, held across two nodes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{assert_error, create_app, create_token, secrets_path};
use crate::etcd::EtcdCluster;
use crate::nodes::Nodes;

#[test]
fn of_32_racers_on_both_nodes_one_creates_the_key_and_31_get_409() {
    const RACERS: usize = 32;
    let cluster = EtcdCluster::start(3);
    let nodes = Nodes::start(&cluster);
    let (app, _) = create_app(&nodes.admin(0), "shop");
    let path = secrets_path(&app, "Development");
    let barrier = Barrier::new(RACERS);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let (api, path, barrier) = (nodes.admin(i), &path, &barrier);
                scope.spawn(move || {
                    let body = json!({"secrets": [{"key": "SHARED", "value": format!("r{i}")}]});
                    barrier.wait();
                    api.post(path, body).0.as_u16()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((won, refused), (1, RACERS - 1), "{statuses:?}");
    for i in 0..2 {
        let (status, listed) = nodes.admin(i).get(&path);
        assert_eq!(status, 200);
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    }
    let (verified, printed) = nodes.verify_audit();
    assert!(verified, "{printed}");
}

#[test]
fn batches_on_both_nodes_are_never_seen_torn_by_readers_on_either() {
    const BATCH: usize = 20;
    const ROUNDS: usize = 8;
    let cluster = EtcdCluster::start(3);
    let nodes = Nodes::start(&cluster);
    let admin = nodes.admin(0);
    // One environment per writing node: a reader sees 0 or BATCH in each.
    let (app, _) = create_app(&admin, "shop");
    let envs = ["Development", "Staging"];
    let done = AtomicBool::new(false);
    let seen: Vec<BTreeSet<usize>> = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..4)
            .map(|r| {
                let (api, app, done) = (nodes.admin(r), &app, &done);
                scope.spawn(move || {
                    let mut seen = BTreeSet::new();
                    while !done.load(Ordering::SeqCst) {
                        for env in envs {
                            let (status, listed) = api.get(&secrets_path(app, env));
                            assert_eq!(status, 200, "{listed}");
                            let n = listed.as_array().map_or(0, Vec::len);
                            assert!(n == 0 || n == BATCH, "saw {n} of a {BATCH}-secret batch");
                            seen.insert(n);
                        }
                    }
                    seen
                })
            })
            .collect();
        let writers: Vec<_> = envs
            .iter()
            .enumerate()
            .map(|(w, env)| {
                let (api, path) = (nodes.admin(w), secrets_path(&app, env));
                scope.spawn(move || {
                    for round in 0..ROUNDS {
                        let batch: Vec<Value> = (0..BATCH)
                            .map(|i| json!({"key": format!("R{round}_{i}"), "value": "v"}))
                            .collect();
                        let (status, created) = api.post(&path, json!({ "secrets": batch }));
                        assert_eq!(status, 200, "{created}");
                        let ids: Vec<Value> = created
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|s| s["id"].clone())
                            .collect();
                        std::thread::sleep(Duration::from_millis(150));
                        let (status, deleted) = api.delete_with(&path, json!({ "secrets": ids }));
                        assert_eq!(status, 200, "{deleted}");
                        std::thread::sleep(Duration::from_millis(150));
                    }
                })
            })
            .collect();
        // The readers stop even if a writer failed, so that its failure is reported.
        let written: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::SeqCst);
        let seen = readers.into_iter().map(|r| r.join().unwrap()).collect();
        for writer in written {
            writer.unwrap();
        }
        seen
    });
    // Readers saw batches come and go: the check above did see whole states.
    let all: BTreeSet<usize> = seen.into_iter().flatten().collect();
    assert_eq!(all, BTreeSet::from([0, BATCH]));
    let (verified, printed) = nodes.verify_audit();
    assert!(verified, "{printed}");
}

#[test]
fn a_token_revoked_on_node_a_is_refused_by_node_b_within_a_second() {
    let cluster = EtcdCluster::start(3);
    let nodes = Nodes::start(&cluster);
    let admin = nodes.admin(0);
    let (app, _) = create_app(&admin, "shop");
    let (id, token) = create_token(
        &admin,
        json!({"name": "ci", "type": "service", "appId": app,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    let on_b = nodes.b.client(Some(format!("Bearer Service {token}")));
    let path = secrets_path(&app, "Development");
    // Node B has taken the token, and so holds it in its cache.
    assert_eq!(on_b.get(&path).0, 200);
    assert_eq!(admin.delete(&format!("/v1/tokens/{id}/")).0, 204);
    let revoked_at = Instant::now();
    loop {
        let (status, body) = on_b.get(&path);
        if status == 403 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "node B still takes the token a second after node A revoked it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_batch_over_the_clusters_limits_is_413_naming_the_flag_and_writes_nothing() {
    // etcd's defaults: at most 128 operations in one transaction.
    let cluster = EtcdCluster::start_with(1, &[]);
    let nodes = Nodes::start(&cluster);
    let admin = nodes.admin(0);
    let (app, _) = create_app(&admin, "shop");
    let path = secrets_path(&app, "Development");
    let batch: Vec<Value> = (0..100)
        .map(|i| json!({"key": format!("K{i}"), "value": "v"}))
        .collect();
    let answer = admin.post(&path, json!({ "secrets": batch }));
    assert_error(
        &answer,
        413,
        "Batch too large for the storage backend: --max-txn-ops.",
        "backend_batch_too_large",
    );
    for i in 0..2 {
        let (status, listed) = nodes.admin(i).get(&path);
        assert_eq!(status, 200);
        assert_eq!(listed, json!([]), "nothing of the batch was written");
    }
    let (_, audit) = admin.get("/v1/audit/?action=secret.create");
    assert_eq!(audit["data"], json!([]), "no create was recorded: {audit}");
    // A batch that fits goes through.
    let (status, body) = admin.post(&path, json!({"secrets": [{"key": "K", "value": "v"}]}));
    assert_eq!(status, 200, "{body}");
    let (verified, printed) = nodes.verify_audit();
    assert!(verified, "{printed}");
}
