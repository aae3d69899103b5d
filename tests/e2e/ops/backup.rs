//! `coffer backup` and `coffer restore`: a backup taken while batches stream in holds
//! each batch whole or not at all and restores the source's state at its cut; damaged,
//! foreign-key and Service-token backups are refused.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use crate::access::support::{assert_denied, USER_ONLY};
use crate::common::*;

const WRITERS: usize = 3;
const BATCH: usize = 4;

/// Posts batches until `stop`: each creates `BATCH` secrets `W<w>B<n>S<i>` = `v1-…`, then
/// the next updates all of them to `v2-…` in one batch.
fn write_batches(api: Api, path: String, w: usize, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let created = api.post(
            &path,
            json!({"secrets": (0..BATCH)
                .map(|i| json!({"key": format!("W{w}B{n}S{i}"), "value": format!("v1-{w}-{n}-{i}")}))
                .collect::<Vec<_>>()}),
        );
        assert_eq!(created.0, 200, "{}", created.1);
        done.fetch_add(1, Ordering::SeqCst);
        let updates: Vec<Value> = created
            .1
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"id": s["id"], "value": format!("v2-{w}-{n}-{i}")}))
            .collect();
        let updated = api.put(&path, json!({ "secrets": updates }));
        assert_eq!(updated.0, 200, "{}", updated.1);
        done.fetch_add(1, Ordering::SeqCst);
        n += 1;
    }
}

fn wait_for(done: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "writers stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The batch a writer's secret belongs to (`W<w>B<n>`), and the version its value says.
fn batch_of(secret: &Value) -> Option<(String, u64)> {
    let key = secret["key"].as_str()?;
    let (batch, _) = key.split_once('S')?;
    if !batch.starts_with('W') {
        return None;
    }
    let version = secret["version"].as_u64()?;
    let value = secret["value"].as_str()?;
    assert!(value.starts_with(&format!("v{version}-")), "{secret}");
    Some((batch.to_string(), version))
}

#[test]
fn a_backup_taken_while_batches_stream_in_restores_the_state_at_its_cut() {
    let server = Server::start();
    let shop = Shop::stock(&server);
    let path = secrets_path(&shop.app_id, "Development");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (api, path, stop, done) =
                (server.admin(), path.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || write_batches(api, path, w, stop, done))
        })
        .collect();
    wait_for(&done, 30);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("shop.backup");
    let started = Instant::now();
    succeeded(&coffer(
        Some(&server),
        Some(&server.admin_token),
        &["backup", "--out", arg(&file)],
    ));
    let took = started.elapsed();
    let during = done.load(Ordering::SeqCst);
    wait_for(&done, during + 20);
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is private");
    let paused = server
        .logs()
        .lines()
        .find_map(|l| l.split("writes_paused_us=").nth(1).map(str::to_owned))
        .expect("the server logs the pause");
    eprintln!(
        "backup: {} bytes in {took:?}, writes paused {paused} µs",
        std::fs::metadata(&file).unwrap().len()
    );
    let source_chain = audit_chain(&server, &server.admin_token);

    let target = work.path().join("restored");
    let key = server.data_dir().join("master.key");
    let restored = succeeded(&coffer(
        None,
        None,
        &[
            "restore",
            arg(&file),
            "--data-dir",
            arg(&target),
            "--master-key-file",
            arg(&key),
        ],
    ));
    assert!(restored.contains("audit chain intact"), "{restored}");
    let verified = succeeded(&coffer(
        None,
        None,
        &["audit", "verify", "--data-dir", arg(&target)],
    ));
    assert!(verified.starts_with("audit chain intact"), "{verified}");

    let copy = Server::start_on(&target, &[]);
    // The chain first (the reads below add to it): the source's, up to the cut, with the
    // backup's own entry (recorded just before the cut: writes may follow it).
    let chain = audit_chain(&copy, &server.admin_token);
    assert_eq!(chain[..], source_chain[..chain.len()]);
    let backups = chain
        .iter()
        .filter(|e| e["action"] == "store.backup")
        .count();
    assert_eq!(backups, 1);
    assert!(
        chain.len() < source_chain.len(),
        "writes went on after the cut"
    );

    let (status, secrets) = copy
        .client(Some(format!("Bearer User {}", server.admin_token)))
        .get(&path);
    assert_eq!(status, 200, "{secrets}");
    let mut batches: HashMap<String, Vec<u64>> = HashMap::new();
    let mut ids = HashSet::new();
    for secret in secrets.as_array().unwrap() {
        ids.insert(secret["id"].as_str().unwrap().to_string());
        if let Some((batch, version)) = batch_of(secret) {
            batches.entry(batch).or_default().push(version);
        }
    }
    assert!(!batches.is_empty(), "the cut holds some batches");
    for (batch, versions) in &batches {
        assert_eq!(versions.len(), BATCH, "batch {batch} restored in part");
        assert!(
            versions.iter().all(|v| *v == versions[0]),
            "update batch {batch} restored in part: {versions:?}"
        );
    }
    // Exactly the batches the restored chain records: each create and update entry of
    // the writers names secrets that are all there, at the version the entries make.
    let writes: Vec<&Value> = chain
        .iter()
        .filter(|e| e["action"] == "secret.create" || e["action"] == "secret.update")
        .collect();
    for entry in &writes {
        for id in entry["secretIds"].as_array().unwrap() {
            assert!(
                ids.contains(id.as_str().unwrap()),
                "{entry} names a missing secret"
            );
        }
    }
    let creates = writes
        .iter()
        .filter(|e| e["action"] == "secret.create")
        .count();
    let updates = writes
        .iter()
        .filter(|e| e["action"] == "secret.update")
        .count();
    let at_v2 = batches.values().filter(|v| v[0] == 2).count();
    assert_eq!(
        creates,
        batches.len() + 1,
        "one create batch per restored batch, and the shop's"
    );
    assert_eq!(
        updates,
        at_v2 + 1,
        "one update batch per batch at v2, and the shop's"
    );

    // Secrets, versions and tokens as the source serves them (the writers' batches that
    // were updated after the cut aside), and the Service token works.
    let mut original = shop.served(&server, &server.admin_token);
    let mut copied = shop.served(&copy, &server.admin_token);
    assert_eq!(original["tokens"], copied["tokens"]);
    let shop_only = |served: &mut Value| {
        let keep: Vec<usize> = served["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, s)| batch_of(s).is_none())
            .map(|(i, _)| i)
            .collect();
        json!([
            keep.iter()
                .map(|i| served["secrets"][i].clone())
                .collect::<Vec<_>>(),
            keep.iter()
                .map(|i| served["histories"][i].clone())
                .collect::<Vec<_>>(),
        ])
    };
    assert_eq!(shop_only(&mut original), shop_only(&mut copied));
    for (secret, history) in copied["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .zip(copied["histories"].as_array().unwrap())
    {
        if batch_of(secret).is_some() {
            let source = original["secrets"]
                .as_array()
                .unwrap()
                .iter()
                .position(|s| s["id"] == secret["id"])
                .expect("every restored secret is in the source");
            let source_history = original["histories"][source]["data"].as_array().unwrap();
            let restored_history = history["data"].as_array().unwrap();
            // Newest first: the restored versions are the source's oldest ones.
            assert_eq!(
                restored_history[..],
                source_history[source_history.len() - restored_history.len()..]
            );
        }
    }
}

#[test]
fn a_truncated_or_edited_backup_is_refused_and_nothing_is_restored() {
    let server = Server::start();
    Shop::stock(&server);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("shop.backup");
    succeeded(&coffer(
        Some(&server),
        Some(&server.admin_token),
        &["backup", "--out", arg(&file)],
    ));
    let bytes = std::fs::read(&file).unwrap();
    let key = server.data_dir().join("master.key");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    let cases = [
        (
            "truncated",
            bytes[..bytes.len() - 10].to_vec(),
            "the backup is truncated",
        ),
        (
            "halved",
            bytes[..bytes.len() / 2].to_vec(),
            "the backup is truncated",
        ),
        ("flipped", flipped, "the backup is damaged: chunk"),
        ("empty", Vec::new(), "not a Coffer backup"),
    ];
    for (name, damaged, message) in cases {
        let path = work.path().join(format!("{name}.backup"));
        std::fs::write(&path, damaged).unwrap();
        let target = work.path().join(format!("{name}-restored"));
        let stderr = failed(&coffer(
            None,
            None,
            &[
                "restore",
                arg(&path),
                "--data-dir",
                arg(&target),
                "--master-key-file",
                arg(&key),
            ],
        ));
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(stderr.contains("nothing was restored"), "{name}: {stderr}");
        assert!(!target.exists(), "{name}: nothing at the target");
    }
    let left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".backup"))
        .collect();
    assert!(left.is_empty(), "no temporary directory left: {left:?}");
}

#[test]
fn a_backup_opens_only_with_the_master_key_of_its_server() {
    let server = Server::start();
    Shop::stock(&server);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("shop.backup");
    succeeded(&coffer(
        Some(&server),
        Some(&server.admin_token),
        &["backup", "--out", arg(&file)],
    ));
    let other = new_key_file(&work.path().join("other.key"));
    let target = work.path().join("restored");
    let stderr = failed(&coffer(
        None,
        None,
        &[
            "restore",
            arg(&file),
            "--data-dir",
            arg(&target),
            "--master-key-file",
            arg(&other),
        ],
    ));
    assert!(
        stderr.contains("the master key does not open this backup"),
        "{stderr}"
    );
    assert!(!target.exists());
    // Without a key file at all: the key is asked for, never looked for in the backup.
    let stderr = failed(&coffer(
        None,
        None,
        &["restore", arg(&file), "--data-dir", arg(&target)],
    ));
    assert!(stderr.contains("--master-key-file"), "{stderr}");
    assert!(!target.exists());
}

#[test]
fn restore_refuses_a_data_directory_that_is_not_empty() {
    let server = Server::start();
    Shop::stock(&server);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("shop.backup");
    succeeded(&coffer(
        Some(&server),
        Some(&server.admin_token),
        &["backup", "--out", arg(&file)],
    ));
    let key = server.data_dir().join("master.key");
    let stderr = failed(&coffer(
        None,
        None,
        &[
            "restore",
            arg(&file),
            "--data-dir",
            arg(server.data_dir()),
            "--master-key-file",
            arg(&key),
        ],
    ));
    assert!(
        stderr.contains("is not empty: restore makes a new data directory"),
        "{stderr}"
    );
    // The source is untouched and still served.
    assert_eq!(server.admin().get("/v1/apps/").0, 200);
}

#[test]
fn only_a_user_token_takes_a_backup_and_the_backup_is_audited() {
    let server = Server::start();
    let shop = Shop::stock(&server);
    let service = server.client(Some(format!("Bearer Service {}", shop.service_token)));
    assert_denied(&service.get("/v1/backup/"), USER_ONLY);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("shop.backup");
    let stderr = failed(&coffer(
        Some(&server),
        Some(&shop.service_token),
        &["backup", "--out", arg(&file)],
    ));
    assert!(
        stderr.contains("403 This action requires a User token."),
        "{stderr}"
    );
    assert!(!file.exists());
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "no partial file left"
    );
    let chain = audit_chain(&server, &server.admin_token);
    assert!(chain.iter().all(|e| e["action"] != "store.backup"));

    // A User token's backup replaces an older file whole and is audited.
    std::fs::write(&file, b"an older backup").unwrap();
    let response = server
        .admin()
        .http
        .get(format!("{}/v1/backup/", server.base))
        .header(
            "Authorization",
            format!("Bearer User {}", server.admin_token),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert!(response.bytes().unwrap().starts_with(b"COFFERBK"));
    succeeded(&coffer(
        Some(&server),
        Some(&server.admin_token),
        &["backup", "--out", arg(&file)],
    ));
    assert!(std::fs::read(&file).unwrap().starts_with(b"COFFERBK"));
    let backups: Vec<Value> = audit_chain(&server, &server.admin_token)
        .into_iter()
        .filter(|e| e["action"] == "store.backup")
        .collect();
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(backups[0]["actor"]["kind"], "user");
}
