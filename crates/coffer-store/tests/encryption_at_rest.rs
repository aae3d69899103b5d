//! Encryption at rest and the master key (DESIGN.md, "Encryption at rest"): no key
//! name, value or comment reaches the data files in clear; a sealed record opens only
//! where it was written; the wrong or a missing master key is refused at open.

mod common;

use std::path::{Path, PathBuf};

use coffer_store::{
    InternalError, MasterKey, NewSecret, OpenError, SecretUpdate, Store, StoreConfig, StoreError,
};
use common::{files_holding, me, secret, update, TestStore};
use rand::RngCore;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[test]
fn no_key_value_or_comment_reaches_the_data_files_in_clear() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let key = format!("KEY_{}", random_hex(12).to_uppercase());
    let value = format!("value-{}", random_hex(16));
    let comment = format!("comment-{}", random_hex(16));
    let new_value = format!("rotated-{}", random_hex(16));
    // Paths are stored in clear (they are the index); one serves as a control that the
    // scan below does see the records.
    let path_marker = format!("path{}", random_hex(8));
    let id = s
        .create_secrets(
            &me(),
            env,
            vec![NewSecret {
                comment: comment.clone(),
                path: format!("/{path_marker}"),
                ..secret(&key, &value)
            }],
        )
        .unwrap()[0]
        .id;
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some(new_value.clone()),
            ..update(id)
        }],
    )
    .unwrap();
    s.flush().unwrap();
    let TestStore { store, dir } = s;
    drop(store);

    assert!(
        !files_holding(dir.path(), path_marker.as_bytes()).is_empty(),
        "control: the scan must see the stored records"
    );
    for (what, clear) in [
        ("key", &key),
        ("value", &value),
        ("updated value", &new_value),
        ("comment", &comment),
    ] {
        let found = files_holding(dir.path(), clear.as_bytes());
        assert!(found.is_empty(), "{what} in clear in {found:?}");
    }
}

#[test]
fn the_key_digest_is_keyed_by_the_master_key() {
    let a = TestStore::new();
    let b = TestStore::new();
    let env_a = a.dev_env("shop");
    let created = a
        .create_secrets(&me(), env_a, vec![secret("db_url", "v")])
        .unwrap();
    assert_eq!(created[0].key_digest, a.key_digest("DB_URL"));
    assert_eq!(a.key_digest("db_url"), a.key_digest("DB_URL"));
    assert_ne!(a.key_digest("DB_URL"), b.key_digest("DB_URL"));
}

#[test]
fn a_record_copied_onto_another_is_refused() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = s
        .create_secrets(
            &me(),
            env,
            vec![secret("DONOR", "donor value"), secret("VICTIM", "v")],
        )
        .unwrap();
    let (donor, victim) = (created[0].id, created[1].id);
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        let secrets = db.open_tree("secrets").unwrap();
        let record_key = |id: uuid::Uuid| [env.as_bytes().as_slice(), id.as_bytes()].concat();
        let donor_bytes = secrets.get(record_key(donor)).unwrap().unwrap();
        secrets.insert(record_key(victim), donor_bytes).unwrap();
        db.flush().unwrap();
    }
    // The record's tag binds it to its key, before its sealed fields are even opened
    // (their binding to the location is checked in `crypto`'s unit tests).
    let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
    assert!(matches!(
        store.get_secret(env, victim),
        Err(StoreError::Internal(InternalError::Unauthentic {
            tree: "secrets"
        }))
    ));
    assert_eq!(store.get_secret(env, donor).unwrap().value, "donor value");
}

/// Writes a key file readable by its owner only (others are refused at open).
fn private_file(path: &Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    private_file(&path, hex::encode([byte; 32]));
    path
}

fn config(data: &Path, key: &Path) -> StoreConfig {
    StoreConfig {
        master_key_file: Some(key.to_path_buf()),
        ..StoreConfig::new(data)
    }
}

#[test]
fn the_wrong_master_key_is_refused_at_open() {
    let keys = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let right = key_file(keys.path(), "right.key", 1);
    let wrong = key_file(keys.path(), "wrong.key", 2);
    let (env, id) = {
        let store = Store::open(&config(data.path(), &right)).unwrap();
        let (_, envs) = store
            .create_app(
                &me(),
                coffer_store::NewApp {
                    name: "shop".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let id = store
            .create_secrets(&me(), envs[0].id, vec![secret("K", "v")])
            .unwrap()[0]
            .id;
        (envs[0].id, id)
    };
    assert!(matches!(
        Store::open(&config(data.path(), &wrong)),
        Err(OpenError::WrongMasterKey)
    ));
    // The refusal changed nothing: the right key still opens everything.
    let store = Store::open(&config(data.path(), &right)).unwrap();
    assert_eq!(store.get_secret(env, id).unwrap().value, "v");
}

#[test]
fn a_master_key_file_may_hold_raw_bytes_or_hex() {
    let keys = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let hex_file = keys.path().join("hex.key");
    private_file(&hex_file, format!("  {}\n", hex::encode([7u8; 32])));
    let raw_file = keys.path().join("raw.key");
    private_file(&raw_file, [7u8; 32]);
    drop(Store::open(&config(data.path(), &hex_file)).unwrap());
    drop(Store::open(&config(data.path(), &raw_file)).unwrap());
}

#[test]
fn a_malformed_master_key_file_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let short = keys.path().join("short.key");
    private_file(&short, "abcd");
    assert!(matches!(
        Store::open(&config(data.path(), &short)),
        Err(OpenError::MasterKeyFormat(_))
    ));
}

#[test]
fn a_named_master_key_file_that_does_not_exist_is_an_error_not_a_new_key() {
    let keys = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let missing = keys.path().join("missing.key");
    assert!(matches!(
        Store::open(&config(data.path(), &missing)),
        Err(OpenError::MasterKeyFile { .. })
    ));
    assert!(!missing.exists());
}

#[test]
fn the_default_master_key_is_generated_once_owner_only() {
    let s = TestStore::new();
    let key_path = s.dir.path().join("master.key");
    let first = std::fs::read(&key_path).unwrap();
    assert!(MasterKey::read(&key_path).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = s.reopen();
    assert_eq!(
        std::fs::read(s.dir.path().join("master.key")).unwrap(),
        first
    );
}

#[test]
fn a_missing_master_key_with_existing_data_is_refused() {
    let s = TestStore::new();
    s.dev_env("shop");
    let TestStore { store, dir } = s;
    drop(store);
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    assert!(matches!(
        Store::open(&StoreConfig::new(dir.path())),
        Err(OpenError::MasterKeyMissing(_))
    ));
    assert!(
        !dir.path().join("master.key").exists(),
        "no new key may be generated over existing data"
    );
}

#[test]
fn a_second_open_of_an_open_data_directory_is_locked() {
    let s = TestStore::new();
    s.dev_env("shop");
    assert!(matches!(
        Store::open(&StoreConfig::new(s.dir.path())),
        Err(OpenError::Locked(_))
    ));
    // The first store is unharmed.
    assert_eq!(s.list_apps().unwrap().len(), 1);
    let s = s.reopen();
    assert_eq!(s.list_apps().unwrap().len(), 1);
}

#[test]
fn a_store_on_a_backend_given_by_the_embedder_checks_its_master_key() {
    use coffer_store::kv::SledBackend;
    let dir = tempfile::tempdir().unwrap();
    let open = |byte: u8| {
        let backend = SledBackend::open(dir.path(), 1 << 20).unwrap();
        Store::with_backend(backend, &MasterKey::from_bytes([byte; 32]))
    };
    {
        let store = open(1).unwrap();
        let (_, envs) = store
            .create_app(
                &me(),
                coffer_store::NewApp {
                    name: "shop".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        store
            .create_secrets(&me(), envs[0].id, vec![secret("K", "v")])
            .unwrap();
    }
    assert!(matches!(open(2), Err(OpenError::WrongMasterKey)));
    assert_eq!(open(1).unwrap().counts().secrets, 1);
}

#[test]
fn a_closed_store_can_be_reopened_at_once() {
    // sled releases its file lock a moment after a drop (spacejam/sled#1289); closing
    // and reopening a store in one process must still just work.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..30 {
        let store = Store::open(&StoreConfig::new(dir.path()))
            .unwrap_or_else(|e| panic!("reopen {round}: {e:?}"));
        let (_, envs) = store
            .create_app(
                &me(),
                coffer_store::NewApp {
                    name: format!("app{round}"),
                    ..Default::default()
                },
            )
            .unwrap();
        store
            .create_secrets(&me(), envs[0].id, vec![secret("K", "v")])
            .unwrap();
        assert_eq!(store.list_apps().unwrap().len(), round + 1);
    }
}

#[test]
fn data_of_an_unknown_format_version_is_refused_at_open() {
    let s = TestStore::new();
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        db.open_tree("meta")
            .unwrap()
            .insert("format", &[9])
            .unwrap();
        db.flush().unwrap();
    }
    assert!(matches!(
        Store::open(&StoreConfig::new(dir.path())),
        Err(OpenError::UnsupportedFormat(9))
    ));
}

#[test]
fn a_garbled_record_is_an_internal_error_naming_its_tree() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = s
        .create_secrets(&me(), env, vec![secret("K", "v")])
        .unwrap()[0]
        .id;
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        let key = [env.as_bytes().as_slice(), id.as_bytes()].concat();
        db.open_tree("secrets")
            .unwrap()
            .insert(key, b"\x01\xff".to_vec())
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
    let err = store.get_secret(env, id).unwrap_err();
    assert!(err.is_internal());
    assert!(
        matches!(
            &err,
            StoreError::Internal(InternalError::Unauthentic { tree: "secrets" })
        ),
        "{err:?}"
    );
}
