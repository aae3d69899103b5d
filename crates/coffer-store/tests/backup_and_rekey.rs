//! Backups (the sealed snapshot format, its consistency under concurrent batches, and
//! refusals of damaged ones) and master key rotation (the wrapped data key).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use coffer_store::rekey::{rekey, RekeyOutcome, RekeyRequest};
use coffer_store::restore::{restore, RestoreError};
use coffer_store::{
    AuditAction, AuditEntry, AuditQuery, BackupError, ChainPositions, NewToken, OpenError,
    Permissions, Secret, SecretFilter, Store, StoreConfig, TokenKind,
};
use common::{me, secret, update, TestStore};
use uuid::Uuid;

/// A store with secrets, a second version of one, and a Service token.
struct Fixture {
    store: TestStore,
    env: Uuid,
    token: String,
}

fn fixture() -> Fixture {
    let store = TestStore::new();
    let (app, envs) = store.app("shop");
    let env = envs[0].id;
    let created = store
        .create_secrets(
            &me(),
            env,
            vec![
                secret("DB_URL", "postgres://shop@db/shop"),
                secret("API_KEY", "sk_live_42"),
            ],
        )
        .unwrap();
    let mut change = update(created[0].id);
    change.value = Some("postgres://shop@db2/shop".into());
    store.update_secrets(&me(), env, vec![change]).unwrap();
    let (_, issued) = store
        .create_token(
            &me(),
            NewToken {
                name: "ci".into(),
                kind: TokenKind::Service,
                app_id: Some(app),
                environments: vec!["development".into()],
                permissions: Permissions::ALL,
                expires_at: None,
                allowed_ips: Vec::new(),
            },
        )
        .unwrap();
    Fixture {
        store,
        env,
        token: issued.token.to_string(),
    }
}

fn secrets(store: &Store, env: Uuid) -> Vec<Secret> {
    store.list_secrets(env, &SecretFilter::default()).unwrap()
}

fn audit(store: &Store) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    let mut since = ChainPositions::default();
    loop {
        let page = store
            .list_audit(&AuditQuery {
                since: since.clone(),
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        entries.extend(page.entries);
        match page.next {
            Some(next) => since = next,
            None => return entries,
        }
    }
}

fn backup_bytes(store: &Store) -> Vec<u8> {
    let (stream, _) = store.backup(&me()).unwrap();
    stream.flatten().collect()
}

fn key_file(dir: &Path) -> PathBuf {
    dir.join("master.key")
}

/// A key file holding a fresh key, mode 0600.
fn new_key_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let bytes: [u8; 32] = rand::random();
    std::fs::write(&path, hex::encode(bytes)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn open_with(dir: &Path, key: Option<&Path>) -> Result<Store, OpenError> {
    let mut config = StoreConfig::new(dir);
    config.master_key_file = key.map(Path::to_path_buf);
    Store::open(&config)
}

/// The store in `dir` closed, so another process (or call) may open it.
fn closed(store: TestStore) -> tempfile::TempDir {
    let TestStore { store, dir } = store;
    drop(store);
    dir
}

#[test]
fn a_restored_store_serves_the_same_secrets_versions_tokens_and_audit_chain() {
    let f = fixture();
    let bytes = backup_bytes(&f.store);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("restored");
    let report = restore(&bytes[..], &key_file(f.store.dir.path()), &target).unwrap();
    assert!(report.master_key_in_data_dir);
    assert_eq!(report.secrets, 2);

    let restored = open_with(&target, None).unwrap();
    assert_eq!(secrets(&restored, f.env), secrets(&f.store, f.env));
    let first = &secrets(&f.store, f.env)[1];
    assert_eq!(
        restored.secret_history(f.env, first.id).unwrap(),
        f.store.secret_history(f.env, first.id).unwrap()
    );
    assert_eq!(
        restored.list_tokens().unwrap(),
        f.store.list_tokens().unwrap()
    );
    assert!(restored.authenticate(&f.token).unwrap().is_some());
    let chain = audit(&restored);
    assert_eq!(chain, audit(&f.store));
    assert_eq!(chain.last().unwrap().action, AuditAction::StoreBackup);
    assert!(restored.verify_audit().unwrap().intact());
}

#[test]
fn a_backup_holds_no_secret_value_and_no_key_in_clear() {
    let f = fixture();
    let bytes = backup_bytes(&f.store);
    let key_hex = std::fs::read_to_string(key_file(f.store.dir.path())).unwrap();
    let key = hex::decode(key_hex.trim()).unwrap();
    for needle in [
        b"sk_live_42".as_slice(),
        b"postgres://shop",
        b"API_KEY",
        key_hex.trim().as_bytes(),
        &key,
        f.token.as_bytes(),
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "a backup holds {} in clear",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn a_backup_taken_during_concurrent_batches_holds_each_batch_whole_or_not_at_all() {
    const WRITERS: usize = 4;
    const BATCH: usize = 5;
    let store = Arc::new(TestStore::new());
    let env = store.dev_env("shop");
    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, stop, batches) = (store.clone(), stop.clone(), batches.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let batch = (0..BATCH)
                        .map(|i| secret(&format!("W{w}_B{n}_S{i}"), &format!("{w}.{n}.{i}")))
                        .collect();
                    store.create_secrets(&me(), env, batch).unwrap();
                    batches.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
            })
        })
        .collect();
    while batches.load(Ordering::SeqCst) < 20 {
        std::thread::yield_now();
    }
    let bytes = backup_bytes(&store);
    while batches.load(Ordering::SeqCst) < 40 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }

    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("restored");
    restore(&bytes[..], &key_file(store.dir.path()), &target).unwrap();
    let restored = open_with(&target, None).unwrap();
    let got = secrets(&restored, env);
    let mut per_batch = std::collections::HashMap::<String, usize>::new();
    for s in &got {
        let batch = s.key.rsplit_once("_S").unwrap().0.to_owned();
        *per_batch.entry(batch).or_default() += 1;
        assert_eq!(
            s.value,
            s.key.replace('W', "").replace("_B", ".").replace("_S", ".")
        );
    }
    assert!(!per_batch.is_empty());
    assert!(got.len() < 40 * BATCH, "the cut was taken mid-stream");
    for (batch, count) in &per_batch {
        assert_eq!(*count, BATCH, "batch {batch} restored in part");
    }
    // The restored chain is the source's up to the cut, and names exactly the batches
    // restored.
    let chain = audit(&restored);
    let source = audit(&store);
    assert_eq!(chain[..], source[..chain.len()]);
    let created = chain
        .iter()
        .filter(|e| e.action == AuditAction::SecretCreate)
        .count();
    assert_eq!(created, per_batch.len());
    assert!(restored.verify_audit().unwrap().intact());
}

#[test]
fn backups_batches_and_audited_reads_running_together_never_wait_for_each_other_for_ever() {
    // A batch's commit holds the backup gate while it waits for the audit chain's head;
    // a read's audit append holds the head while it passes the gate; a backup waits at
    // the gate for the batch. If any of them waited for another for ever, everything
    // would stop: the test fails if nothing is done for two seconds.
    let store = Arc::new(TestStore::new());
    let (app, envs) = store.app("shop");
    let (writes_to, read_from) = (envs[0].id, envs[1].id);
    let read = store
        .create_secrets(&me(), read_from, vec![secret("READ_ME", "1")])
        .unwrap()[0]
        .id;
    let stop = Arc::new(AtomicBool::new(false));
    let (done, backups) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    let spawn = |work: Box<dyn Fn(usize) + Send>| {
        let (stop, done) = (stop.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                work(n);
                done.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        })
    };
    for w in 0..2 {
        let store = store.clone();
        workers.push(spawn(Box::new(move |n| {
            let batch = (0..50)
                .map(|i| secret(&format!("W{w}_B{n}_S{i}"), "v"))
                .collect();
            store.create_secrets(&me(), writes_to, batch).unwrap();
        })));
    }
    // Enough readers that one of them holds the head whenever a backup waits.
    for _ in 0..6 {
        let store = store.clone();
        workers.push(spawn(Box::new(move |_| {
            let reads = vec![coffer_store::SecretRead {
                actor: me(),
                app_id: app,
                env_id: read_from,
                secret_ids: vec![read],
            }];
            store.record_reads(reads).unwrap();
        })));
    }
    {
        let (store, backups) = (store.clone(), backups.clone());
        workers.push(spawn(Box::new(move |_| {
            backup_bytes(&store);
            backups.fetch_add(1, Ordering::SeqCst);
        })));
    }
    let mut seen = 0;
    for _ in 0..16 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = done.load(Ordering::SeqCst);
        let stalled = now == seen;
        seen = now;
        if stalled {
            std::thread::sleep(std::time::Duration::from_millis(1500));
            let still = done.load(Ordering::SeqCst) == seen;
            stop.store(true, Ordering::SeqCst);
            assert!(
                !still,
                "nothing was done for two seconds: the writers wait on each other"
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.join().unwrap();
    }
    assert!(backups.load(Ordering::SeqCst) > 0);
    assert!(store.verify_audit().unwrap().intact());
}

/// The offsets of the frames of a backup (after the header), for cutting at each.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = coffer_store::BACKUP_HEADER_LEN;
    let mut starts = Vec::new();
    while at < bytes.len() {
        starts.push(at);
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        at += 5 + len;
    }
    assert_eq!(at, bytes.len());
    starts
}

fn assert_nothing_restored(bytes: &[u8], key: &Path, expect: impl Fn(&RestoreError) -> bool) {
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("restored");
    match restore(bytes, key, &target) {
        Err(e) if expect(&e) => {}
        other => panic!("unexpected outcome: {other:?}"),
    }
    assert!(!target.exists(), "nothing at the target");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "no temporary directory left"
    );
}

#[test]
fn a_truncated_or_edited_backup_is_refused_and_restores_nothing() {
    let f = fixture();
    let bytes = backup_bytes(&f.store);
    let key = key_file(f.store.dir.path());
    let truncated = |e: &RestoreError| matches!(e, RestoreError::Backup(BackupError::Truncated));
    let damaged = |e: &RestoreError| matches!(e, RestoreError::Backup(BackupError::Damaged(_)));
    for start in frame_starts(&bytes) {
        // Cut at a frame boundary (whole chunks dropped from the end), and inside one.
        assert_nothing_restored(&bytes[..start], &key, truncated);
        assert_nothing_restored(&bytes[..start + 7], &key, truncated);
        // One bit of a chunk flipped.
        let mut edited = bytes.clone();
        edited[start + 9] ^= 0x01;
        assert_nothing_restored(&edited, &key, damaged);
    }
    let last = *frame_starts(&bytes).last().unwrap();
    let mut marked = bytes.clone();
    marked[frame_starts(&bytes)[0]] = 1; // the first chunk passed off as the last
    assert_nothing_restored(&marked, &key, damaged);
    let mut unmarked = bytes.clone();
    unmarked[last] = 0; // the last chunk passed off as one more
    assert_nothing_restored(&unmarked, &key, damaged);
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"x");
    assert_nothing_restored(&longer, &key, |e| {
        matches!(e, RestoreError::Backup(BackupError::TrailingData))
    });
    assert_nothing_restored(b"not a backup at all", &key, |e| {
        matches!(e, RestoreError::Backup(BackupError::NotABackup))
    });
    let mut header = bytes.clone();
    header[20] ^= 0x01; // the salt
    assert_nothing_restored(&header, &key, |e| {
        matches!(e, RestoreError::Backup(BackupError::WrongMasterKey))
    });
}

#[test]
fn a_backup_opens_only_with_the_master_key_it_was_taken_under() {
    let f = fixture();
    let bytes = backup_bytes(&f.store);
    let other = new_key_file(f.store.dir.path(), "other.key");
    assert_nothing_restored(&bytes, &other, |e| {
        matches!(e, RestoreError::Backup(BackupError::WrongMasterKey))
    });
}

#[test]
fn restore_refuses_a_directory_that_is_not_empty() {
    let f = fixture();
    let bytes = backup_bytes(&f.store);
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep.txt"), b"mine").unwrap();
    let refused = restore(&bytes[..], &key_file(f.store.dir.path()), &target);
    assert!(
        matches!(refused, Err(RestoreError::NotEmpty(_))),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(target.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 1);
    // An empty directory is taken.
    std::fs::remove_file(target.join("keep.txt")).unwrap();
    restore(&bytes[..], &key_file(f.store.dir.path()), &target).unwrap();
    assert_eq!(secrets(&open_with(&target, None).unwrap(), f.env).len(), 2);
}

/// What rekey must keep: every secret (with its key digest), the token, the chain.
fn assert_serves_the_same(store: &Store, env: Uuid, token: &str, before: &[Secret]) {
    assert_eq!(secrets(store, env), before);
    assert!(store.authenticate(token).unwrap().is_some());
    assert!(store.verify_audit().unwrap().intact());
}

#[test]
fn rekey_rewraps_the_data_key_and_the_old_key_stops_opening_the_store() {
    let f = fixture();
    let before = secrets(&f.store, f.env);
    let digest = f.store.key_digest("DB_URL");
    let dir = closed(f.store);
    let old = std::fs::read(key_file(dir.path())).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let old_copy = keys.path().join("old.key");
    std::fs::write(&old_copy, &old).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&old_copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let new = new_key_file(keys.path(), "new.key");
    let request = RekeyRequest {
        data_dir: dir.path().to_path_buf(),
        master_key_file: None,
        new_master_key_file: new.clone(),
    };
    let outcome = rekey(&request).unwrap();
    assert_eq!(
        outcome,
        RekeyOutcome::Rotated {
            key_file_replaced: Some(key_file(dir.path()))
        }
    );
    assert_eq!(
        std::fs::read(key_file(dir.path())).unwrap(),
        std::fs::read_to_string(&new).unwrap().trim().as_bytes()
    );
    assert!(matches!(
        open_with(dir.path(), Some(&old_copy)),
        Err(OpenError::WrongMasterKey)
    ));
    let store = open_with(dir.path(), None).unwrap();
    assert_serves_the_same(&store, f.env, &f.token, &before);
    assert_eq!(store.key_digest("DB_URL"), digest, "digests never change");
    assert_eq!(
        audit(&store).last().unwrap().action,
        AuditAction::StoreRekey
    );
    drop(store);
    assert_eq!(rekey(&request).unwrap(), RekeyOutcome::AlreadyDone);
}

#[test]
fn rekey_with_a_key_file_outside_the_data_directory_leaves_the_key_files_alone() {
    let f = fixture();
    let before = secrets(&f.store, f.env);
    let dir = closed(f.store);
    let keys = tempfile::tempdir().unwrap();
    let old = keys.path().join("old.key");
    std::fs::rename(key_file(dir.path()), &old).unwrap();
    let new = new_key_file(keys.path(), "new.key");
    let (old_text, new_text) = (std::fs::read(&old).unwrap(), std::fs::read(&new).unwrap());
    let outcome = rekey(&RekeyRequest {
        data_dir: dir.path().to_path_buf(),
        master_key_file: Some(old.clone()),
        new_master_key_file: new.clone(),
    })
    .unwrap();
    assert_eq!(
        outcome,
        RekeyOutcome::Rotated {
            key_file_replaced: None
        }
    );
    assert_eq!(std::fs::read(&old).unwrap(), old_text);
    assert_eq!(std::fs::read(&new).unwrap(), new_text);
    assert!(!key_file(dir.path()).exists());
    assert!(matches!(
        open_with(dir.path(), Some(&old)),
        Err(OpenError::WrongMasterKey)
    ));
    let store = open_with(dir.path(), Some(&new)).unwrap();
    assert_serves_the_same(&store, f.env, &f.token, &before);
}

#[test]
fn rekey_of_a_store_made_before_data_keys_keeps_its_records_and_digests() {
    let f = fixture();
    let before = secrets(&f.store, f.env);
    let dir = closed(f.store);
    common::rewrite_as_format_1(dir.path());
    // Opened once by this release: migrated, still with no data key of its own.
    drop(open_with(dir.path(), None).unwrap());
    let keys = tempfile::tempdir().unwrap();
    let new = new_key_file(keys.path(), "new.key");
    rekey(&RekeyRequest {
        data_dir: dir.path().to_path_buf(),
        master_key_file: None,
        new_master_key_file: new,
    })
    .unwrap();
    let store = open_with(dir.path(), None).unwrap();
    assert_serves_the_same(&store, f.env, &f.token, &before);
}

#[test]
fn a_backup_taken_before_a_rekey_opens_with_the_old_key_only() {
    let f = fixture();
    let bytes = backup_bytes(&f.store);
    let dir = closed(f.store);
    let keys = tempfile::tempdir().unwrap();
    let old = keys.path().join("old.key");
    std::fs::copy(key_file(dir.path()), &old).unwrap();
    let new = new_key_file(keys.path(), "new.key");
    rekey(&RekeyRequest {
        data_dir: dir.path().to_path_buf(),
        master_key_file: None,
        new_master_key_file: new.clone(),
    })
    .unwrap();
    assert_nothing_restored(&bytes, &new, |e| {
        matches!(e, RestoreError::Backup(BackupError::WrongMasterKey))
    });
    let target = keys.path().join("restored");
    restore(&bytes[..], &old, &target).unwrap();
    assert_eq!(secrets(&open_with(&target, None).unwrap(), f.env).len(), 2);
}

#[test]
fn a_new_store_keeps_its_data_key_wrapped_never_in_clear() {
    let f = fixture();
    let dir = closed(f.store);
    let db = common::open_raw_sled(dir.path());
    let wrapped = db.open_tree("meta").unwrap().get(b"data key").unwrap();
    assert!(wrapped.is_some(), "a wrapped data key in meta");
    drop(db);
    let key_hex = std::fs::read_to_string(key_file(dir.path())).unwrap();
    let key = hex::decode(key_hex.trim()).unwrap();
    assert!(common::files_holding(&dir.path().join("db"), &key).is_empty());
}
