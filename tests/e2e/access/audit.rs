//! The audit log: one entry per action with who, from where and what; a hash chain that
//! `coffer audit verify` checks; filters and pages; and never a secret value or token.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

const USER_AGENT: &str = "coffer-access-tests/1.0";
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A client with a known User-Agent.
fn client_with_agent(server: &Server, authorization: Option<String>) -> Api {
    Api {
        http: Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        base: server.base.clone(),
        authorization,
    }
}

/// `GET /v1/audit/?<query>` → the page.
#[track_caller]
fn audit_page(admin: &Api, query: &str) -> Value {
    let (status, page) = admin.get(&format!("/v1/audit/?{query}"));
    assert_eq!(status, 200, "{query}: {page}");
    assert!(page["data"].is_array(), "{page}");
    page
}

fn entries(admin: &Api, query: &str) -> Vec<Value> {
    audit_page(admin, query)["data"].as_array().unwrap().clone()
}

fn is_hex64(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The end of the chain as seen so far.
struct Tail {
    next_seq: u64,
    hash: Value,
}

impl Tail {
    /// Asserts that exactly one entry was appended since the last call, carrying
    /// `expected` (action, actor, appId, envId, secretIds, version), from 127.0.0.1
    /// with our User-Agent, linked to the entry before it.
    #[track_caller]
    fn expect_one(&mut self, admin: &Api, expected: Value) -> Value {
        self.expect_entries(admin, &[expected]).remove(0)
    }

    /// [`Tail::expect_one`] for a write that appends several entries, in this order.
    #[track_caller]
    fn expect_entries(&mut self, admin: &Api, expected: &[Value]) -> Vec<Value> {
        let new = entries(admin, &format!("since={}", self.next_seq));
        assert_eq!(
            new.len(),
            expected.len(),
            "entries for {expected:?}: {new:#?}"
        );
        new.into_iter()
            .zip(expected)
            .map(|(entry, expected)| self.expect_next(entry, expected))
            .collect()
    }

    #[track_caller]
    fn expect_next(&mut self, entry: Value, expected: &Value) -> Value {
        let keys: Vec<&String> = entry.as_object().unwrap().keys().collect();
        let mut want_keys = [
            "seq",
            "nodeId",
            "time",
            "actor",
            "ip",
            "userAgent",
            "action",
            "appId",
            "envId",
            "secretIds",
            "version",
            "prevHash",
            "hash",
        ];
        want_keys.sort_unstable();
        let mut keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, want_keys, "{entry}");
        assert_eq!(entry["seq"], self.next_seq, "{entry}");
        assert_eq!(entry["prevHash"], self.hash, "{entry}");
        assert!(is_hex64(&entry["hash"]), "{entry}");
        assert_ne!(entry["hash"], entry["prevHash"]);
        let time = entry["time"].as_str().unwrap();
        assert!(
            time.len() == 27 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
            "{time}"
        );
        assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
        assert_eq!(entry["userAgent"], USER_AGENT, "{entry}");
        for (field, value) in expected.as_object().unwrap() {
            assert_eq!(&entry[field], value, "{field} of {entry}");
        }
        self.next_seq += 1;
        self.hash = entry["hash"].clone();
        entry
    }

    #[track_caller]
    fn expect_none(&self, admin: &Api, why: &str) {
        let new = entries(admin, &format!("since={}", self.next_seq));
        assert!(new.is_empty(), "{why} left entries: {new:#?}");
    }
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().unwrap().to_string()
}

#[test]
fn every_action_leaves_exactly_one_linked_entry_and_no_secret() {
    const KEY: &str = "ZEBRA_PASSPHRASE_91";
    const VALUE: &str = "plaintext-canary-5e1f0c9a";
    const VALUE2: &str = "plaintext-canary-updated-77d2";
    const BATCH_VALUE: &str = "plaintext-canary-batch-3b8e";
    const COMMENT: &str = "comment-canary-c0ffee";
    let mut server = Server::start();
    let admin = client_with_agent(&server, Some(format!("Bearer User {}", server.admin_token)));

    let (_, tokens) = admin.get("/v1/tokens/");
    let admin_id = tokens["data"][0]["id"].clone();
    let user = json!({"tokenId": admin_id, "kind": "user"});
    // The first entry: the admin token made when the data directory was initialised.
    let first = entries(&admin, "");
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["seq"], 1);
    assert_eq!(first[0]["prevHash"], ZERO_HASH);
    assert_eq!(first[0]["action"], "token.create");
    assert_eq!(first[0]["secretIds"], json!([admin_id]));
    let mut tail = Tail {
        next_seq: 2,
        hash: first[0]["hash"].clone(),
    };

    let (status, app) = admin.post("/v1/apps/", json!({"name": "ledger"}));
    assert_eq!(status, 201);
    let app_id = id_of(&app);
    let dev_id = id_of(&app["environments"][0]);
    tail.expect_one(
        &admin,
        json!({"action": "app.create", "actor": user, "appId": app_id,
        "envId": null, "secretIds": [], "version": null}),
    );

    let app_path = format!("/v1/apps/{app_id}/");
    assert_eq!(admin.put(&app_path, json!({"description": "books"})).0, 200);
    tail.expect_one(
        &admin,
        json!({"action": "app.update", "actor": user, "appId": app_id,
        "envId": null, "secretIds": [], "version": null}),
    );

    let (status, qa) = admin.post(
        &format!("/v1/environments/?app_id={app_id}"),
        json!({"name": "Qa"}),
    );
    assert_eq!(status, 201);
    let qa_id = id_of(&qa);
    tail.expect_one(
        &admin,
        json!({"action": "env.create", "actor": user, "appId": app_id,
        "envId": qa_id, "secretIds": [], "version": null}),
    );

    let qa_path = format!("/v1/environments/{qa_id}/");
    assert_eq!(admin.put(&qa_path, json!({"name": "Qa2"})).0, 200);
    tail.expect_one(
        &admin,
        json!({"action": "env.update", "actor": user, "appId": app_id,
        "envId": qa_id, "secretIds": [], "version": null}),
    );

    let (status, created) = admin.post(
        "/v1/tokens/",
        json!({"name": "deployer", "type": "service", "appId": app_id,
               "environments": ["Development"]}),
    );
    assert_eq!(status, 201);
    let (svc_id, svc_token) = (
        id_of(&created),
        created["token"].as_str().unwrap().to_string(),
    );
    tail.expect_one(
        &admin,
        json!({"action": "token.create", "actor": user, "appId": app_id,
        "envId": null, "secretIds": [svc_id], "version": null}),
    );

    let svc = client_with_agent(&server, service_header(&svc_token));
    let service = json!({"tokenId": svc_id, "kind": "service"});
    let path = secrets_path(&app_id, "Development");
    let (status, body) = svc.post(
        &path,
        json!({"secrets": [{"key": KEY, "value": VALUE, "comment": COMMENT}]}),
    );
    assert_eq!(status, 200, "{body}");
    let secret_id = id_of(&body[0]);
    tail.expect_one(
        &admin,
        json!({"action": "secret.create", "actor": service, "appId": app_id,
        "envId": dev_id, "secretIds": [secret_id], "version": 1}),
    );

    // A refused write leaves nothing.
    let (status, _) = svc.post(&path, json!({"secrets": [{"key": KEY, "value": "again"}]}));
    assert_eq!(status, 409);
    tail.expect_none(&admin, "a conflicting create");

    let (status, body) = svc.put(
        &path,
        json!({"secrets": [{"id": secret_id, "value": VALUE2}]}),
    );
    assert_eq!(status, 200, "{body}");
    tail.expect_one(
        &admin,
        json!({"action": "secret.update", "actor": service, "appId": app_id,
        "envId": dev_id, "secretIds": [secret_id], "version": 2}),
    );

    let (status, listed) = svc.get(&path);
    assert_eq!(status, 200);
    assert_eq!(listed[0]["value"], VALUE2);
    tail.expect_one(
        &admin,
        json!({"action": "secret.read", "actor": service, "appId": app_id,
        "envId": dev_id, "secretIds": [secret_id], "version": null}),
    );

    // A batch is one action: one entry naming every secret.
    let (status, batch) = svc.post(
        &path,
        json!({"secrets": [
        {"key": "BATCH_ONE", "value": BATCH_VALUE}, {"key": "BATCH_TWO", "value": BATCH_VALUE}]}),
    );
    assert_eq!(status, 200, "{batch}");
    tail.expect_one(
        &admin,
        json!({"action": "secret.create", "actor": service, "appId": app_id,
        "envId": dev_id, "secretIds": [id_of(&batch[0]), id_of(&batch[1])], "version": null}),
    );

    let (status, _) = svc.delete_with(&path, json!({"secrets": [secret_id]}));
    assert_eq!(status, 200);
    let deleted = tail.expect_one(
        &admin,
        json!({"action": "secret.delete", "actor": service,
        "appId": app_id, "envId": dev_id, "secretIds": [secret_id]}),
    );
    // API.md does not say which version a delete carries: none, or the tombstone's.
    assert!(
        deleted["version"].is_null() || deleted["version"] == 3,
        "{deleted}"
    );

    assert_eq!(admin.delete(&format!("/v1/tokens/{svc_id}/")).0, 204);
    tail.expect_one(
        &admin,
        json!({"action": "token.revoke", "actor": user, "appId": app_id,
        "envId": null, "secretIds": [svc_id], "version": null}),
    );

    // Deleting an environment deletes its secrets: a `secret.delete` names them (here
    // none), for the changes feed.
    assert_eq!(admin.delete(&qa_path).0, 204);
    tail.expect_entries(
        &admin,
        &[
            json!({"action": "env.delete", "actor": user, "appId": app_id,
            "envId": qa_id, "secretIds": [], "version": null}),
            json!({"action": "secret.delete", "actor": user, "appId": app_id,
            "envId": qa_id, "secretIds": [], "version": null}),
        ],
    );

    // Deleting an app takes its environments, secrets and tokens: one entry, then a
    // `secret.delete` per environment naming its secrets.
    let (_, envs) = admin.get(&format!("/v1/environments/?app_id={app_id}"));
    let mut expected = vec![
        json!({"action": "app.delete", "actor": user, "appId": app_id,
        "envId": null, "secretIds": [], "version": null}),
    ];
    for env in envs["data"].as_array().unwrap() {
        let env_id = id_of(env);
        let secret_ids = if env_id == dev_id {
            let mut ids = vec![id_of(&batch[0]), id_of(&batch[1])];
            ids.sort();
            ids
        } else {
            vec![]
        };
        expected.push(
            json!({"action": "secret.delete", "actor": user, "appId": app_id,
            "envId": env_id, "version": null, "secretIds": secret_ids}),
        );
    }
    assert_eq!(admin.delete(&app_path).0, 204);
    tail.expect_entries(&admin, &expected);

    // The whole chain: contiguous, each entry linked to the one before.
    let chain = entries(&admin, "limit=1000");
    assert_eq!(chain.len() as u64, tail.next_seq - 1);
    let mut prev = Value::from(ZERO_HASH);
    for (n, entry) in chain.iter().enumerate() {
        assert_eq!(entry["seq"], n as u64 + 1);
        assert_eq!(entry["prevHash"], prev, "{entry}");
        prev = entry["hash"].clone();
    }

    // No secret value, key name, comment or token in the audit answers, the logs, or
    // the raw files of the data directory.
    let canaries = [KEY, VALUE, VALUE2, BATCH_VALUE, COMMENT, svc_token.as_str()];
    let text = audit_page(&admin, "limit=1000").to_string();
    for canary in canaries.iter().chain([&server.admin_token.as_str()]) {
        assert!(!text.contains(canary), "the audit log holds {canary}");
    }
    assert!(server.stop().success());
    let logs = server.logs();
    for canary in canaries {
        assert!(!logs.contains(canary), "the log holds {canary}");
    }
    let mut files = Vec::new();
    collect_files(&server.data_dir, &mut files);
    assert!(files.len() > 1, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for canary in canaries.iter().chain([&server.admin_token.as_str()]) {
            let found = bytes.windows(canary.len()).any(|w| w == canary.as_bytes());
            assert!(!found, "{} holds {canary}", file.display());
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn audit_listing_filters_and_pages() {
    let server = Server::start();
    let admin = server.admin();
    let (app_a, a) = create_app(&admin, "alpha");
    let (app_b, _) = create_app(&admin, "beta");
    let a_dev = id_of(&a["environments"][0]);
    let a_prod = id_of(&a["environments"][2]);
    let dev_path = secrets_path(&app_a, "Development");
    let (_, batch) = admin.post(
        &dev_path,
        json!({"secrets": [
        {"key": "ONE", "value": "1"}, {"key": "TWO", "value": "2"}]}),
    );
    let (s1, s2) = (id_of(&batch[0]), id_of(&batch[1]));
    assert_eq!(
        admin
            .put(&dev_path, json!({"secrets": [{"id": s1, "value": "1b"}]}))
            .0,
        200
    );
    assert_eq!(admin.get(&dev_path).0, 200);
    let s3 = seed_secret(&admin, &app_a, "Production", "THREE", "3");
    let s4 = seed_secret(&admin, &app_b, "Development", "FOUR", "4");

    let actions = |list: &[Value]| -> Vec<String> {
        list.iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };
    let all = entries(&admin, "");
    assert_eq!(all.len(), 8, "{all:#?}"); // token, 2 apps, create, update, read, 2 creates

    let of_a = entries(&admin, &format!("app_id={app_a}"));
    assert_eq!(
        actions(&of_a),
        [
            "app.create",
            "secret.create",
            "secret.update",
            "secret.read",
            "secret.create"
        ]
    );
    assert!(of_a.iter().all(|e| e["appId"] == app_a.as_str()));
    let of_b = entries(&admin, &format!("app_id={app_b}"));
    assert_eq!(actions(&of_b), ["app.create", "secret.create"]);

    let a_dev_entries = entries(&admin, &format!("app_id={app_a}&env=Development"));
    assert_eq!(
        actions(&a_dev_entries),
        ["secret.create", "secret.update", "secret.read"]
    );
    assert!(a_dev_entries.iter().all(|e| e["envId"] == a_dev.as_str()));
    assert_eq!(
        entries(&admin, &format!("app_id={app_a}&env=development")),
        a_dev_entries
    );
    assert_eq!(entries(&admin, &format!("env={a_dev}")), a_dev_entries);
    let a_prod_entries = entries(&admin, &format!("app_id={app_a}&env={a_prod}"));
    assert_eq!(a_prod_entries.len(), 1);
    assert_eq!(a_prod_entries[0]["secretIds"], json!([s3]));

    let of_s1 = entries(&admin, &format!("secret_id={s1}"));
    assert_eq!(
        actions(&of_s1),
        ["secret.create", "secret.update", "secret.read"]
    );
    let of_s2 = entries(&admin, &format!("secret_id={s2}"));
    assert_eq!(actions(&of_s2), ["secret.create", "secret.read"]);
    assert_eq!(
        entries(&admin, &format!("secret_id={s4}&app_id={app_b}")).len(),
        1
    );
    assert!(entries(&admin, &format!("secret_id={s4}&app_id={app_a}")).is_empty());

    // `since` is inclusive; past the end there is nothing and no cursor.
    let since5 = entries(&admin, "since=5");
    assert_eq!(since5, all[4..].to_vec());
    let page = audit_page(&admin, "since=9");
    assert_eq!(page, json!({"data": [], "next": null}));

    // Pages: `next` is where the following page starts.
    let page = audit_page(&admin, "limit=3");
    assert_eq!(page["data"].as_array().unwrap().to_vec(), all[..3].to_vec());
    assert_eq!(page["next"], "0:4");
    let mut walked = Vec::new();
    let mut cursor = Some("1".to_string());
    while let Some(since) = cursor {
        let page = audit_page(&admin, &format!("limit=3&since={since}"));
        walked.extend(page["data"].as_array().unwrap().iter().cloned());
        cursor = page["next"].as_str().map(String::from);
    }
    assert_eq!(walked, all);
    // With a filter, pages hold only matching entries.
    let mut walked = Vec::new();
    let mut query = format!("app_id={app_a}&limit=2");
    loop {
        let page = audit_page(&admin, &query);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        walked.extend(data.iter().cloned());
        match page["next"].as_str() {
            Some(next) => query = format!("app_id={app_a}&limit=2&since={next}"),
            None => break,
        }
    }
    assert_eq!(walked, of_a);

    assert_eq!(
        audit_page(&admin, "limit=1000")["data"]
            .as_array()
            .unwrap()
            .len(),
        8
    );
    for bad in [
        "limit=0".to_string(),
        "limit=1001".into(),
        "limit=ten".into(),
        "since=abc".into(),
        "app_id=nope".into(),
        "secret_id=nope".into(),
        "env=Development".into(),
    ] {
        let (status, body) = admin.get(&format!("/v1/audit/?{bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

fn verify(data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .env_remove("COFFER_MASTER_KEY_FILE")
        .output()
        .expect("run coffer audit verify")
}

/// Opens the stopped server's sled database, lets `change` edit the audit tree, and
/// flushes and closes it again.
fn edit_audit_tree(data_dir: &Path, change: impl FnOnce(&sled::Tree)) {
    // sled releases its file lock a moment after the process exits (spacejam/sled#1289).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let db = loop {
        match sled::open(data_dir.join("db")) {
            Ok(db) => break db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("open the data directory with sled: {e}"),
        }
    };
    let tree = db.open_tree("audit").unwrap();
    change(&tree);
    tree.flush().unwrap();
    db.flush().unwrap();
}

fn audit_record(data_dir: &Path, seq: u64) -> Vec<u8> {
    let mut record = None;
    edit_audit_tree(data_dir, |tree| {
        record = tree.get(audit_key(seq)).unwrap().map(|v| v.to_vec());
    });
    record.unwrap_or_else(|| panic!("no audit entry {seq}"))
}

fn put_record(data_dir: &Path, seq: u64, bytes: &[u8]) {
    edit_audit_tree(data_dir, |tree| {
        tree.insert(audit_key(seq), bytes).unwrap();
    });
}

#[track_caller]
fn assert_broken_at(data_dir: &Path, seq: u64) {
    let out = verify(data_dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "verify passed a tampered chain: {stderr}"
    );
    assert!(
        stderr.contains(&format!("entry {seq}")),
        "names entry {seq}: {stderr}"
    );
}

#[track_caller]
fn assert_intact(data_dir: &Path, entries: usize) {
    let out = verify(data_dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("{entries} entries")), "{stdout}");
}

#[test]
fn concurrent_reads_each_leave_one_entry_in_an_unbroken_chain() {
    const READERS: usize = 8;
    const EACH: usize = 25;
    let mut server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "busy");
    let id = seed_secret(&admin, &app_id, "Development", "K", "v");
    let (_, token) = service_token(&admin, &app_id, &["Development"], &["read"]);
    let path = format!("{}&key=K", secrets_path(&app_id, "Development"));
    let before = entries(&admin, "limit=1000").len();
    std::thread::scope(|scope| {
        for _ in 0..READERS {
            let reader = server.client(Some(format!("Bearer Service {token}")));
            let path = &path;
            scope.spawn(move || {
                for _ in 0..EACH {
                    let (status, body) = reader.get(path);
                    assert_eq!(status, 200, "{body}");
                    assert_eq!(body[0]["value"], "v");
                }
            });
        }
    });
    let all = entries(&admin, "limit=1000");
    let reads: Vec<&Value> = all[before..].iter().collect();
    assert_eq!(reads.len(), READERS * EACH, "one entry per answered read");
    for entry in &reads {
        assert_eq!(entry["action"], "secret.read");
        assert_eq!(entry["secretIds"], json!([id]));
    }
    for pair in all.windows(2) {
        assert_eq!(
            pair[1]["seq"].as_u64(),
            Some(pair[0]["seq"].as_u64().unwrap() + 1)
        );
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"]);
    }
    assert!(server.stop().success());
    assert_intact(&server.data_dir.clone(), all.len());
}

#[test]
fn tampering_with_a_stored_entry_is_detected() {
    let mut server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "ledger");
    let path = secrets_path(&app_id, "Development");
    let id = seed_secret(&admin, &app_id, "Development", "K", "v");
    assert_eq!(
        admin
            .put(&path, json!({"secrets": [{"id": id, "value": "w"}]}))
            .0,
        200
    );
    assert_eq!(admin.get(&path).0, 200);
    service_token(&admin, &app_id, &["Development"], &["read"]);
    let total = entries(&admin, "").len();
    assert_eq!(total, 6);
    assert!(server.stop().success());
    let dir = server.data_dir.clone();
    assert_intact(&dir, total);

    // Rewrite who did it: the entry still decodes, but no longer matches its hash.
    let original = audit_record(&dir, 4);
    assert_eq!(
        original[..2],
        [0x10, 1],
        "kind byte (one entry), then layout byte"
    );
    let at = original
        .windows(9)
        .position(|w| w == b"127.0.0.1")
        .expect("entry 4 records the client IP");
    let mut forged = original.clone();
    forged[at + 8] = b'9';
    put_record(&dir, 4, &forged);
    assert_broken_at(&dir, 4);
    put_record(&dir, 4, &original);
    assert_intact(&dir, total);

    // Flip one byte in the middle of another entry.
    let original = audit_record(&dir, 3);
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x20;
    put_record(&dir, 3, &flipped);
    assert_broken_at(&dir, 3);
    put_record(&dir, 3, &original);

    // Remove an entry: the gap is found.
    let original = audit_record(&dir, 2);
    edit_audit_tree(&dir, |tree| {
        tree.remove(audit_key(2)).unwrap();
    });
    assert_broken_at(&dir, 2);
    put_record(&dir, 2, &original);
    assert_intact(&dir, total);

    // Restored, the server carries on with the same chain.
    server.start_again();
    assert_eq!(server.admin().get(&path).0, 200);
    assert!(server.stop().success());
    assert_intact(&dir, total + 1);
}
