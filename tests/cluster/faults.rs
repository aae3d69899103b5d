//! Members lost under load: the leader killed in the middle of writes on both nodes, and
//! quorum lost and regained. Nothing acknowledged is lost; while etcd cannot answer, the
//! nodes say so with 503 and `Retry-After`, and nothing else goes wrong.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{create_app, secrets_path, Api, Server};
use crate::etcd::EtcdCluster;
use crate::nodes::Nodes;

/// What the writers saw: every acknowledged key and value, and when a 503 came.
#[derive(Default)]
struct Outcomes {
    acknowledged: BTreeMap<String, String>,
    unavailable: Vec<Instant>,
}

/// Creates one new secret after another on `api` until `stop`; every answer must be 200
/// or 503.
fn write_until(api: &Api, path: &str, writer: usize, stop: &AtomicBool, seen: &Mutex<Outcomes>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let (key, value) = (format!("W{writer}_{n}"), format!("value-{writer}-{n}"));
        let (status, body) = api.post(path, json!({"secrets": [{"key": key, "value": value}]}));
        let mut seen = seen.lock().unwrap();
        match status.as_u16() {
            200 => {
                seen.acknowledged.insert(key, value);
            }
            503 => {
                assert_eq!(body["error"], "Service unavailable.", "{body}");
                seen.unavailable.push(Instant::now());
            }
            other => panic!("writer {writer} got {other}: {body}"),
        }
    }
}

/// Every acknowledged secret, as each node serves it.
fn assert_all_present(nodes: &Nodes, path: &str, acknowledged: &BTreeMap<String, String>) {
    for i in 0..2 {
        let (status, listed) = nodes.admin(i).get(path);
        assert_eq!(status, 200, "{listed}");
        let served: BTreeMap<String, String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let text = |field: &str| s[field].as_str().unwrap().to_owned();
                (text("key"), text("value"))
            })
            .collect();
        for (key, value) in acknowledged {
            assert_eq!(
                served.get(key),
                Some(value),
                "acknowledged {key} missing or changed on node {i}"
            );
        }
    }
}

fn health(server: &Server) -> u16 {
    server.client(None).get("/health").0.as_u16()
}

#[test]
fn the_leader_killed_under_writes_on_both_nodes_loses_nothing_acknowledged() {
    const WRITERS: usize = 6;
    let mut cluster = EtcdCluster::start(3);
    let nodes = Nodes::start(&cluster);
    let (app, _) = create_app(&nodes.admin(0), "shop");
    let path = secrets_path(&app, "Development");
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Outcomes::default());
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (api, path, stop, seen) = (nodes.admin(w), &path, &stop, &seen);
            scope.spawn(move || write_until(&api, path, w, stop, seen));
        }
        std::thread::sleep(Duration::from_secs(2));
        let leader = cluster.leader();
        cluster.kill_member(leader);
        std::thread::sleep(Duration::from_secs(3));
        cluster.start_member(leader);
        cluster.until_healthy(Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
    });
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.acknowledged.len() > 20,
        "only {} writes acknowledged",
        seen.acknowledged.len()
    );
    // The 503s, if any, came while a new leader was being elected: a bounded window.
    if let (Some(first), Some(last)) = (seen.unavailable.first(), seen.unavailable.last()) {
        assert!(
            *last - *first < Duration::from_secs(10),
            "503s for {:?}",
            *last - *first
        );
    }
    assert_all_present(&nodes, &path, &seen.acknowledged);
    let (verified, printed) = nodes.verify_audit();
    assert!(verified, "{printed}");
}

#[test]
fn without_quorum_writes_and_health_answer_503_and_service_resumes_by_itself() {
    let mut cluster = EtcdCluster::start(3);
    let nodes = Nodes::start(&cluster);
    let admin = nodes.admin(0);
    let (app, _) = create_app(&admin, "shop");
    let path = secrets_path(&app, "Development");
    let (status, _) = admin.post(&path, json!({"secrets": [{"key": "BEFORE", "value": "1"}]}));
    assert_eq!(status, 200);

    cluster.kill_member(0);
    cluster.kill_member(1);
    for node in [&nodes.a, &nodes.b] {
        let answer = node
            .client(Some(format!("Bearer User {}", nodes.admin_token)))
            .http
            .post(format!("{}{path}", node.base))
            .header(
                "Authorization",
                format!("Bearer User {}", nodes.admin_token),
            )
            .json(&json!({"secrets": [{"key": "DURING", "value": "2"}]}))
            .send()
            .expect("an answer");
        assert_eq!(answer.status(), 503);
        assert!(answer.headers().contains_key("retry-after"));
        let body: Value = answer.json().unwrap();
        assert_eq!(body["error"], "Service unavailable.", "{body}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while health(node) != 503 {
            assert!(
                Instant::now() < deadline,
                "/health still 200 without quorum"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    cluster.start_member(0);
    cluster.start_member(1);
    cluster.until_healthy(Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in [&nodes.a, &nodes.b] {
        while health(node) != 200 {
            assert!(Instant::now() < deadline, "/health did not return to 200");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (status, body) = admin.post(&path, json!({"secrets": [{"key": "AFTER", "value": "3"}]}));
    assert_eq!(status, 200, "{body}");
    let acknowledged = BTreeMap::from([
        ("BEFORE".to_owned(), "1".to_owned()),
        ("AFTER".to_owned(), "3".to_owned()),
    ]);
    assert_all_present(&nodes, &path, &acknowledged);
    let (verified, printed) = nodes.verify_audit();
    assert!(verified, "{printed}");
}
