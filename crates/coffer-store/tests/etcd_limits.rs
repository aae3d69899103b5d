//! etcd's limits on one transaction against what a batch of the store needs. A batch is
//! one etcd `Txn`: a compare on every key it read and a put or delete for every key it
//! writes. Over `--max-txn-ops` or `--max-request-bytes` it is refused naming the flag,
//! and nothing of it is stored; with the flags README.md recommends ("Several nodes on
//! etcd"), the largest batches the API allows fit.
//!
//! Each test starts its own one-member etcd with the flags it is about, so it needs
//! `etcd` (3.4) on PATH and no cluster of its own; without `etcd` it fails.
#![cfg(feature = "etcd")]

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer_store::{
    limits, AuditVerification, MasterKey, NewSecret, SecretFilter, SecretUpdate, Storage, Store,
    StoreConfig, StoreCounts, StoreError,
};
use common::{me, secret, update};
use tempfile::TempDir;
use uuid::Uuid;

/// The etcd flags README.md recommends for batches of up to [`limits::MAX_BATCH`]
/// entries. A 1,000-entry delete puts or deletes 4,002 keys, and a 1,000-entry update
/// of 1,000-byte values sends about 3 MB; 8 MiB stays under the 10 MiB above which etcd
/// warns.
const RECOMMENDED_FLAGS: [&str; 4] = ["--max-txn-ops", "8192", "--max-request-bytes", "8388608"];

/// How long a fresh member may take to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A one-member etcd cluster on free loopback ports with its own data directory,
/// killed when dropped.
struct Etcd {
    process: Child,
    client_addr: SocketAddr,
    dir: TempDir,
}

impl Etcd {
    /// Starts a member with etcd's defaults and then `flags`, and waits until it is
    /// healthy.
    fn start(flags: &[&str]) -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let [client, peer] = free_ports();
        let client_url = format!("http://{client}");
        let peer_url = format!("http://{peer}");
        let log = File::create(dir.path().join("etcd.log")).unwrap();
        let process = Command::new("etcd")
            .arg("--name=limits")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=limits={peer_url}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `etcd` ({e}): these tests need etcd 3.4 on PATH (Debian: etcd-server)")
            });
        let mut etcd = Etcd {
            process,
            client_addr: client,
            dir,
        };
        etcd.wait_healthy();
        etcd
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("etcd exited ({status}) while starting:\n{}", self.log());
            }
            if self.healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy after {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the member answers `GET /health` with `"health":"true"` (it does once it
    /// has a leader and can commit).
    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.client_addr, Duration::from_secs(1))
        else {
            return false;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.client_addr
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
            && answer.contains(r#""health":"true""#)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Two distinct loopback ports free a moment ago (both held while choosing, so they
/// differ).
fn free_ports() -> [SocketAddr; 2] {
    let listeners =
        [(); 2].map(|()| TcpListener::bind("127.0.0.1:0").expect("binding a loopback port"));
    listeners.map(|l| l.local_addr().unwrap())
}

/// A store on a fresh prefix of `etcd`, with a new app; the store, the id of the app's
/// `Development` environment, and the directory holding its master key.
fn open_store(etcd: &Etcd) -> (Store, Uuid, TempDir) {
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("master.key");
    MasterKey::generate().write_new(&key_file).unwrap();
    let mut config = StoreConfig::new(key_dir.path());
    config.storage = Storage::Etcd {
        endpoints: vec![etcd.endpoint()],
        prefix: format!("coffer-limits-{}/", Uuid::new_v4()),
    };
    config.master_key_file = Some(key_file);
    let store = Store::open(&config).unwrap();
    let (_, envs) = common::new_app(&store, "shop");
    (store, envs[0].id, key_dir)
}

/// What a refused write must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    counts: StoreCounts,
    audit: AuditVerification,
    /// `(key, value, version)` of every secret of the environment.
    secrets: Vec<(String, String, u64)>,
}

fn observe(store: &Store, env: Uuid) -> Observed {
    let audit = store.verify_audit().unwrap();
    assert!(audit.intact(), "{audit:?}");
    let mut secrets: Vec<_> = store
        .list_secrets(env, &SecretFilter::default())
        .unwrap()
        .into_iter()
        .map(|s| (s.key, s.value, s.version))
        .collect();
    secrets.sort();
    Observed {
        counts: store.counts(),
        audit,
        secrets,
    }
}

/// `n` secrets `{prefix}_{i}` whose values are `value_bytes` long.
fn batch(prefix: &str, n: usize, value_bytes: usize) -> Vec<NewSecret> {
    (0..n)
        .map(|i| secret(&format!("{prefix}_{i:04}"), &value(i, value_bytes)))
        .collect()
}

/// A value `bytes` long, different for each `i`.
fn value(i: usize, bytes: usize) -> String {
    let mut value = format!("{i:08}-");
    value.extend(std::iter::repeat_n('v', bytes.saturating_sub(value.len())));
    value.truncate(bytes);
    value
}

/// Updates of every secret in `ids` to new values `value_bytes` long.
fn new_values(ids: &[Uuid], value_bytes: usize) -> Vec<SecretUpdate> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| SecretUpdate {
            value: Some(value(i + 1_000_000, value_bytes)),
            ..update(*id)
        })
        .collect()
}

fn ids(created: &[coffer_store::Secret]) -> Vec<Uuid> {
    created.iter().map(|s| s.id).collect()
}

#[test]
fn a_batch_over_max_txn_ops_is_refused_naming_the_flag_and_stores_nothing() {
    let etcd = Etcd::start(&[]);
    let (store, env, _key) = open_store(&etcd);
    let before = observe(&store, env);
    // Two puts a secret (its record and its index entry): 100 secrets are far over
    // etcd's default of 128.
    let refused = store.create_secrets(&me(), env, batch("BIG", 100, 16));
    assert!(
        matches!(refused, Err(StoreError::BackendLimit("--max-txn-ops"))),
        "{refused:?}"
    );
    assert_eq!(observe(&store, env), before);
    assert!(before.secrets.is_empty());
    // The store goes on: a batch that fits is stored, and audited once.
    let created = store
        .create_secrets(&me(), env, batch("SMALL", 10, 16))
        .unwrap();
    let after = observe(&store, env);
    assert_eq!(after.secrets.len(), 10);
    assert_eq!(after.counts.secrets, before.counts.secrets + 10);
    assert_eq!(after.audit.checked(), before.audit.checked() + 1);
    assert_eq!(
        store.get_secret(env, created[9].id).unwrap().value,
        value(9, 16)
    );
}

#[test]
fn updates_and_deletes_over_max_txn_ops_change_nothing() {
    let etcd = Etcd::start(&[]);
    let (store, env, _key) = open_store(&etcd);
    // 60 secrets, created in batches that fit; updating all 60 at once writes three
    // keys each, deleting them four.
    let mut created = Vec::new();
    for part in ["A", "B", "C"] {
        created.extend(
            store
                .create_secrets(&me(), env, batch(part, 20, 16))
                .unwrap(),
        );
    }
    let ids = ids(&created);
    let before = observe(&store, env);
    let refused = store.update_secrets(&me(), env, new_values(&ids, 16));
    assert!(
        matches!(refused, Err(StoreError::BackendLimit("--max-txn-ops"))),
        "{refused:?}"
    );
    assert_eq!(observe(&store, env), before);
    let refused = store.delete_secrets(&me(), env, &ids);
    assert!(
        matches!(refused, Err(StoreError::BackendLimit("--max-txn-ops"))),
        "{refused:?}"
    );
    assert_eq!(observe(&store, env), before);
    assert_eq!(store.delete_secrets(&me(), env, &ids[..10]).unwrap(), 10);
    assert_eq!(observe(&store, env).secrets.len(), 50);
}

#[test]
fn a_batch_over_max_request_bytes_is_refused_naming_the_flag_and_stores_nothing() {
    // 256 KiB a request. etcd takes messages up to 512 KiB over that off the wire and
    // refuses them itself ("request is too large"); gRPC refuses larger ones before
    // etcd sees them ("message larger than max"). One batch of each.
    let etcd = Etcd::start(&["--max-txn-ops", "100000", "--max-request-bytes", "262144"]);
    let (store, env, _key) = open_store(&etcd);
    let before = observe(&store, env);
    for (name, secrets) in [("ABOVE", 6), ("FAR_ABOVE", 40)] {
        let refused = store.create_secrets(&me(), env, batch(name, secrets, 60_000));
        assert!(
            matches!(
                refused,
                Err(StoreError::BackendLimit("--max-request-bytes"))
            ),
            "{secrets} secrets of 60,000 bytes: {refused:?}"
        );
        assert_eq!(observe(&store, env), before);
    }
    let created = store
        .create_secrets(&me(), env, batch("FITS", 3, 60_000))
        .unwrap();
    assert_eq!(
        store.get_secret(env, created[2].id).unwrap().value,
        value(2, 60_000)
    );
}

#[test]
fn with_the_recommended_flags_the_largest_batches_fit() {
    let etcd = Etcd::start(&RECOMMENDED_FLAGS);
    let (store, env, _key) = open_store(&etcd);
    // The largest batch the API takes, its values filling the server's default body
    // limit (1 MiB) with 1,000-byte values.
    let n = limits::MAX_BATCH;
    let created = store
        .create_secrets(&me(), env, batch("BATCH", n, 1000))
        .unwrap();
    let ids = ids(&created);
    assert_eq!(observe(&store, env).counts.secrets, n);
    // An update keeps the replaced version in the history: twice the values.
    let updated = store
        .update_secrets(&me(), env, new_values(&ids, 1000))
        .unwrap();
    assert!(updated.iter().all(|s| s.version == 2));
    let listed = observe(&store, env);
    assert_eq!(listed.secrets.len(), n);
    assert!(listed.secrets.iter().all(|(_, _, version)| *version == 2));
    // A delete moves every current version to the history and marks it deleted.
    assert_eq!(store.delete_secrets(&me(), env, &ids).unwrap(), n);
    let after = observe(&store, env);
    assert!(after.secrets.is_empty());
    assert_eq!(after.audit.checked(), listed.audit.checked() + 1);
}

#[test]
fn a_listing_larger_than_the_clients_default_answer_limit_is_read_whole() {
    let etcd = Etcd::start(&RECOMMENDED_FLAGS);
    let (store, env, _key) = open_store(&etcd);
    // 600 secrets of 60,000-byte values: 36 MB, so one page of a scan (512 records)
    // is far past the 4 MiB a gRPC client takes by default.
    for part in 0..6 {
        store
            .create_secrets(&me(), env, batch(&format!("BIG{part}"), 100, 60_000))
            .unwrap();
    }
    let listed = store.list_secrets(env, &SecretFilter::default()).unwrap();
    assert_eq!(listed.len(), 600);
    assert!(listed.iter().all(|s| s.value.len() == 60_000));
}
