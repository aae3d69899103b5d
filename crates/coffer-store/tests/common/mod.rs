//! Helpers shared by the integration tests: a store in a temporary directory, an app
//! with its default environments, and short constructors for batch entries.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod power_loss;

use coffer_store::{Actor, Environment, NewApp, NewSecret, SecretUpdate, Store, StoreConfig};
use tempfile::TempDir;
use uuid::Uuid;

/// A store opened on its own temporary data directory (kept alive with it).
pub struct TestStore {
    pub store: Store,
    pub dir: TempDir,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        TestStore { store, dir }
    }

    /// A store on an existing data directory.
    pub fn open_in(dir: TempDir) -> Self {
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        TestStore { store, dir }
    }

    /// Closes the store and opens the same data directory again.
    pub fn reopen(self) -> Self {
        let TestStore { store, dir } = self;
        drop(store);
        Self::open_in(dir)
    }

    /// Creates an app with the default environments; returns its id and environments.
    pub fn app(&self, name: &str) -> (Uuid, Vec<Environment>) {
        new_app(self, name)
    }

    /// The `Development` environment of a new app.
    pub fn dev_env(&self, app_name: &str) -> Uuid {
        self.app(app_name).1[0].id
    }
}

/// Creates an app with the default environments in `store`; returns its id and
/// environments.
pub fn new_app(store: &Store, name: &str) -> (Uuid, Vec<Environment>) {
    let (app, envs) = store
        .create_app(
            &me(),
            NewApp {
                name: name.into(),
                ..Default::default()
            },
        )
        .unwrap();
    (app.id, envs)
}

/// The embedding program as actor.
pub fn me() -> Actor {
    Actor::embedded()
}

/// A secret to create at the root path.
pub fn secret(key: &str, value: &str) -> NewSecret {
    NewSecret {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// A secret to create at `path`.
pub fn secret_at(path: &str, key: &str, value: &str) -> NewSecret {
    NewSecret {
        path: path.into(),
        ..secret(key, value)
    }
}

/// An update of one secret that changes nothing yet.
pub fn update(id: Uuid) -> SecretUpdate {
    SecretUpdate {
        id,
        ..Default::default()
    }
}

/// Opens a closed store's sled database directly, to corrupt it as an attacker with disk
/// access would. Retries briefly: sled releases its file lock a moment after the store
/// is dropped (spacejam/sled#1289).
pub fn open_raw_sled(data_dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::open(data_dir.join("db")) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("opening the raw database: {e}"),
        }
    }
}

/// Length of the tag format 2 appends to every stored value.
pub const TAG_LEN: usize = 32;

/// Rewrites a closed store, byte by byte, as the format-1 layout that earlier releases
/// wrote: values without tags, index entries holding only the id, audit records whose
/// first byte told one entry (1) from a run (2), a check record sealing the format-1
/// plaintext, format byte 1, and no wrapped data key: `master.key` is made to hold the
/// data key itself, as the master key of a store of that time did.
pub fn rewrite_as_format_1(data_dir: &std::path::Path) {
    let db = open_raw_sled(data_dir);
    let meta = db.open_tree("meta").unwrap();
    let wrapped = meta
        .remove(b"data key")
        .unwrap()
        .expect("a wrapped data key");
    let data_key = unwrap_data_key(data_dir, &wrapped[..wrapped.len() - TAG_LEN]);
    std::fs::write(data_dir.join("master.key"), hex::encode(data_key)).unwrap();
    // Format 1 kept no key material for the Phase clients.
    db.drop_tree("client_keys").unwrap();
    for name in [
        "meta",
        "apps",
        "app_names",
        "envs",
        "env_names",
        "secrets",
        "secret_index",
        "history",
        "tokens",
        "token_hashes",
        "audit",
    ] {
        let tree = db.open_tree(name).unwrap();
        for pair in tree.iter() {
            let (key, stored) = pair.unwrap();
            // Format 1 had one audit chain, keyed by sequence number alone, and no list
            // of chains. (The store's own node id stays, so that the migrated chain is
            // listed under the same one as before.)
            if name == "meta" && &*key == b"audit_chains" {
                tree.remove(key).unwrap();
                continue;
            }
            let key = match name {
                "audit" => {
                    tree.remove(&key).unwrap();
                    sled::IVec::from(&key[4..])
                }
                _ => key,
            };
            let value = &stored[..stored.len() - TAG_LEN];
            let old: Vec<u8> = match name {
                "meta" if &*key == b"format" => vec![1],
                "meta" if &*key == b"check" => format_1_check(data_dir),
                "secret_index" | "token_hashes" => value[..16].to_vec(),
                "audit" => {
                    let kind = match value[0] {
                        0x10 => 1,
                        0x11 => 2,
                        other => panic!("audit record kind {other}"),
                    };
                    assert_eq!(value[1], 1, "record layout byte");
                    [&[kind][..], &value[2..]].concat()
                }
                _ => value.to_vec(),
            };
            tree.insert(key, old).unwrap();
        }
    }
    db.flush().unwrap();
}

/// The data key in a `data key` record (witness ‖ nonce ‖ sealed key), unwrapped with
/// the master key in `master.key`.
fn unwrap_data_key(data_dir: &std::path::Path, wrapped: &[u8]) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let text = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    let master = hex::decode(text.trim()).unwrap();
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"coffer"), &master);
    let mut wrapping_key = [0u8; 32];
    hkdf.expand(b"coffer data key wrapping v1", &mut wrapping_key)
        .unwrap();
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&wrapping_key.into());
    let (nonce, sealed) = wrapped[32..].split_at(24);
    cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: sealed,
                aad: b"data key",
            },
        )
        .unwrap()
}

/// The format-1 check record: `coffer master key check v1` sealed with
/// XChaCha20-Poly1305 under the HKDF record key, bound to `check`.
fn format_1_check(data_dir: &std::path::Path) -> Vec<u8> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let text = std::fs::read_to_string(data_dir.join("master.key")).unwrap();
    let master = hex::decode(text.trim()).unwrap();
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"coffer"), &master);
    let mut record_key = [0u8; 32];
    hkdf.expand(b"coffer record encryption v1", &mut record_key)
        .unwrap();
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&record_key.into());
    let nonce = [5u8; 24];
    let sealed = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: b"coffer master key check v1",
                aad: b"check",
            },
        )
        .unwrap();
    [&nonce[..], &sealed].concat()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Files under `dir` that hold `needle` anywhere.
pub fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// The one chain of a store only one node ever wrote.
pub fn one_chain(verified: coffer_store::AuditVerification) -> coffer_store::ChainVerification {
    assert_eq!(verified.chains.len(), 1, "{verified:?}");
    verified.chains.into_iter().next().unwrap()
}

/// The position `seq` of the one chain of a store only one node ever wrote.
pub fn on_the_one_chain(seq: u64) -> coffer_store::ChainPositions {
    let mut position = coffer_store::ChainPositions::default();
    position.set(0, seq);
    position
}

/// The raw key of the record at `seq` of the one chain of a store only one node ever
/// wrote (chain number 0).
pub fn audit_key(seq: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}
