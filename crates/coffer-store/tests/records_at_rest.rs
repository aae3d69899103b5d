//! Every stored record is authenticated at rest (DESIGN.md, "Encryption at rest"): for
//! each record kind on disk, a byte edited, two records swapped, or (for a secret's
//! version and a token's revocation) an older copy put back is refused at the next open
//! or by the reads that meet it, and never served. Format-1 stores are migrated at open;
//! the data directory is private to its owner.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use coffer_store::{
    AuditQuery, InternalError, IssuedToken, NewApp, NewToken, OpenError, Permissions, SecretFilter,
    SecretUpdate, Store, StoreConfig, StoreError, TokenKind,
};
use common::{me, secret, update, TestStore, TAG_LEN};
use uuid::Uuid;

/// A store holding at least one record of every kind: an app with three environments,
/// two secrets (one updated, so it has a version in history), the first user token,
/// a service token, one revoked token, and their audit records.
struct Fixture {
    store: TestStore,
    app: Uuid,
    env: Uuid,
    updated: Uuid,
    other: Uuid,
    service: Uuid,
    service_token: IssuedToken,
    revoked_token: IssuedToken,
    /// Every environment and token, for their key material.
    env_ids: Vec<Uuid>,
    token_ids: Vec<Uuid>,
}

fn fixture() -> Fixture {
    let s = TestStore::new();
    s.initialize().unwrap().expect("a new store initialises");
    let (app, envs) = s.app("shop");
    let env = envs[0].id;
    let created = s
        .create_secrets(&me(), env, vec![secret("A", "one"), secret("B", "b")])
        .unwrap();
    let (updated, other) = (created[0].id, created[1].id);
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some("two".into()),
            ..update(updated)
        }],
    )
    .unwrap();
    let (service, service_token) = s
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
        .map(|(t, secret)| (t.id, secret))
        .unwrap();
    let (revoked, revoked_token) = s
        .create_token(
            &me(),
            NewToken {
                name: "old".into(),
                kind: TokenKind::User,
                app_id: None,
                environments: Vec::new(),
                permissions: Permissions::ALL,
                expires_at: None,
                allowed_ips: Vec::new(),
            },
        )
        .map(|(t, secret)| (t.id, secret))
        .unwrap();
    s.revoke_token(&me(), revoked).unwrap();
    // Used once now, so that the reads below do not write `last_used_at` back.
    assert!(s.authenticate(&service_token).unwrap().is_some());
    let env_ids = envs.iter().map(|env| env.id).collect();
    let token_ids = s.list_tokens().unwrap().iter().map(|t| t.id).collect();
    Fixture {
        env_ids,
        token_ids,
        store: s,
        app,
        env,
        updated,
        other,
        service,
        service_token,
        revoked_token,
    }
}

/// A read's outcome as text; an error that is the caller's (not found, name taken) is an
/// outcome like any other.
fn shown<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Result<String, StoreError> {
    match result {
        Ok(value) => Ok(format!("{value:?}")),
        Err(e) if !e.is_internal() => Ok(format!("refused: {e:?}")),
        Err(e) => Err(e),
    }
}

/// Everything the store serves from its records, as text, one entry per read. Reads do
/// not write (the app create is refused as a duplicate, which reads the name index): the
/// same store read twice gives the same list.
fn read_everything(s: &Store, f: &Fixture) -> Vec<Result<String, StoreError>> {
    let by_key = SecretFilter {
        key: Some("A".into()),
        ..Default::default()
    };
    let all_audit = AuditQuery {
        limit: 10_000,
        ..Default::default()
    };
    let same_name = NewApp {
        name: "SHOP".into(),
        ..Default::default()
    };
    vec![
        shown(s.list_apps()),
        shown(s.get_app(f.app)),
        shown(s.create_app(&me(), same_name)),
        shown(s.list_environments(f.app)),
        shown(s.find_environment(f.app, "development")),
        shown(s.get_environment(f.env)),
        shown(s.list_secrets(f.env, &SecretFilter::default())),
        shown(s.list_secrets(f.env, &by_key)),
        shown(s.get_secret(f.env, f.updated)),
        shown(s.get_secret(f.env, f.other)),
        shown(s.secret_history(f.env, f.updated)),
        shown(s.list_tokens()),
        shown(s.get_token(f.service)),
        shown(s.authenticate(&f.service_token)),
        shown(s.authenticate(&f.revoked_token)),
        shown(s.list_audit(&all_audit)),
        shown(s.initialize()),
    ]
}

/// The Phase clients' key material of every environment and token. Not in
/// [`read_everything`]: a format-1 store had none, and gets fresh material at migration.
fn read_key_material(s: &TestStore, f: &Fixture) -> Vec<Result<String, StoreError>> {
    let env_keys = f.env_ids.iter().map(|id| {
        shown(
            s.environment_keys(*id)
                .map(|keys| keys.seed_hex().to_string()),
        )
    });
    let token_keys = f.token_ids.iter().map(|id| shown(s.token_keys(*id)));
    env_keys.chain(token_keys).collect()
}

/// Everything a fixture serves.
fn read_all(s: &TestStore, f: &Fixture) -> Vec<Result<String, StoreError>> {
    let mut reads = read_everything(s, f);
    reads.extend(read_key_material(s, f));
    reads
}

/// Closes the fixture, changes its database with `tamper`, reopens it with the right key
/// and checks that the change is refused and nothing else is served differently: the
/// open fails, or every read gives what it gave before or an `Unauthentic` error, and at
/// least one read gives that error.
fn assert_refused_after(what: &str, tamper: impl FnOnce(&sled::Db)) {
    let f = fixture();
    let before: Vec<String> = read_all(&f.store, &f)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let Fixture { store, .. } = f;
    let TestStore { store: open, dir } = store;
    drop(open);
    {
        let db = common::open_raw_sled(dir.path());
        tamper(&db);
        db.flush().unwrap();
    }
    let reopened = match Store::open(&StoreConfig::new(dir.path())) {
        Err(OpenError::Store(StoreError::Internal(_))) => return,
        Err(other) => panic!("{what}: open refused with an unexpected error: {other:?}"),
        Ok(store) => store,
    };
    let f = Fixture {
        store: TestStore {
            store: reopened,
            dir,
        },
        ..f
    };
    let after = read_all(&f.store, &f);
    let mut refused = 0;
    for (i, (was, now)) in before.iter().zip(&after).enumerate() {
        match now {
            Ok(now) => assert_eq!(now, was, "{what}: read {i} served changed content"),
            Err(StoreError::Internal(InternalError::Unauthentic { .. })) => refused += 1,
            Err(other) => panic!("{what}: read {i} failed otherwise: {other:?}"),
        }
    }
    assert!(refused > 0, "{what}: no read refused the change");
}

const TREES: [&str; 12] = [
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
    "client_keys",
];

/// The number of records in each tree of a fixture (the same for every fixture).
fn records_per_tree() -> Vec<(&'static str, usize)> {
    let f = fixture();
    let TestStore { store, dir } = f.store;
    drop(store);
    let db = common::open_raw_sled(dir.path());
    TREES
        .iter()
        .map(|name| (*name, db.open_tree(name).unwrap().len()))
        .collect()
}

fn nth_key(tree: &sled::Tree, n: usize) -> sled::IVec {
    tree.iter().nth(n).unwrap().unwrap().0
}

#[test]
fn the_fixture_holds_every_record_kind() {
    for (name, count) in records_per_tree() {
        assert!(count > 0, "no record in {name}");
    }
}

#[test]
fn one_byte_edited_in_any_record_is_refused() {
    for (name, count) in records_per_tree() {
        for n in 0..count {
            // Every byte of a value is covered alike: flip one in the body, and for the
            // first record also one in the tag.
            let spots: &[bool] = if n == 0 { &[false, true] } else { &[false] };
            for &in_tag in spots {
                assert_refused_after(&format!("{name}[{n}] edited (tag: {in_tag})"), |db| {
                    let tree = db.open_tree(name).unwrap();
                    let key = nth_key(&tree, n);
                    let mut value = tree.get(&key).unwrap().unwrap().to_vec();
                    let body = value.len() - TAG_LEN;
                    let at = if in_tag { body + TAG_LEN / 2 } else { body / 2 };
                    value[at] ^= 0x01;
                    tree.insert(key, value).unwrap();
                });
            }
        }
    }
}

#[test]
fn two_records_of_a_kind_swapped_are_refused() {
    for (name, count) in records_per_tree() {
        if count < 2 {
            continue;
        }
        assert_refused_after(&format!("{name}: first and last swapped"), |db| {
            let tree = db.open_tree(name).unwrap();
            let (first, last) = (nth_key(&tree, 0), nth_key(&tree, count - 1));
            let a = tree.get(&first).unwrap().unwrap();
            let b = tree.get(&last).unwrap().unwrap();
            tree.insert(&first, b).unwrap();
            tree.insert(&last, a).unwrap();
        });
    }
}

#[test]
fn a_record_moved_to_another_tree_is_refused() {
    // An index entry of one kind put where one of another kind is looked up.
    assert_refused_after("token-hash entry moved into app_names", |db| {
        let hashes = db.open_tree("token_hashes").unwrap();
        let names = db.open_tree("app_names").unwrap();
        let (_, entry) = hashes.iter().next().unwrap().unwrap();
        let key = nth_key(&names, 0);
        names.insert(key, entry).unwrap();
    });
}

/// The bytes of the record at `key` in `tree`, as stored.
fn raw(dir: &Path, tree: &str, key: &[u8]) -> Vec<u8> {
    let tree = common::open_raw_sled(dir).open_tree(tree).unwrap();
    tree.get(key).unwrap().unwrap().to_vec()
}

fn put_raw(dir: &Path, tree: &str, key: &[u8], value: &[u8]) {
    let db = common::open_raw_sled(dir);
    db.open_tree(tree).unwrap().insert(key, value).unwrap();
    db.flush().unwrap();
}

fn is_unauthentic<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(
        result,
        Err(StoreError::Internal(InternalError::Unauthentic { .. }))
    )
}

#[test]
fn an_older_version_of_a_secret_put_back_is_refused() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = s
        .create_secrets(&me(), env, vec![secret("K", "old")])
        .unwrap()[0]
        .id;
    let key = [env.as_bytes().as_slice(), id.as_bytes()].concat();
    let TestStore { store, dir } = s;
    drop(store);
    let version_1 = raw(dir.path(), "secrets", &key);
    let s = TestStore::open_in(dir);
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some("new".into()),
            ..update(id)
        }],
    )
    .unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    put_raw(dir.path(), "secrets", &key, &version_1);

    let s = TestStore::open_in(dir);
    assert!(is_unauthentic(&s.get_secret(env, id)));
    assert!(is_unauthentic(
        &s.list_secrets(env, &SecretFilter::default())
    ));
    let by_key = SecretFilter {
        key: Some("K".into()),
        ..Default::default()
    };
    assert!(is_unauthentic(&s.list_secrets(env, &by_key)));
    assert!(is_unauthentic(&s.secret_history(env, id)));
    // Nor can it be written over: the update and the delete read it first.
    let rewritten = s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some("x".into()),
            ..update(id)
        }],
    );
    assert!(is_unauthentic(&rewritten));
    assert!(is_unauthentic(&s.delete_secrets(&me(), env, &[id])));
}

#[test]
fn a_revoked_token_put_back_unrevoked_is_refused() {
    let s = TestStore::new();
    let token = s.initialize().unwrap().unwrap();
    let id = s.authenticate(&token).unwrap().unwrap().id;
    let TestStore { store, dir } = s;
    drop(store);
    let live = raw(dir.path(), "tokens", id.as_bytes());
    let s = TestStore::open_in(dir);
    s.revoke_token(&me(), id).unwrap();
    assert!(s.authenticate(&token).unwrap().is_none());
    let TestStore { store, dir } = s;
    drop(store);
    put_raw(dir.path(), "tokens", id.as_bytes(), &live);

    let s = TestStore::open_in(dir);
    assert!(is_unauthentic(&s.authenticate(&token)));
    assert!(is_unauthentic(&s.get_token(id)));
    assert!(is_unauthentic(&s.list_tokens()));
}

#[test]
fn a_format_1_store_is_migrated_at_open_and_serves_the_same() {
    let f = fixture();
    let before: Vec<String> = read_everything(&f.store, &f)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let Fixture { store, .. } = f;
    let TestStore { store: open, dir } = store;
    drop(open);
    common::rewrite_as_format_1(dir.path());
    assert_eq!(raw(dir.path(), "meta", b"format"), [1]);

    let s = TestStore::open_in(dir);
    let f = Fixture { store: s, ..f };
    let after: Vec<String> = read_everything(&f.store, &f)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(after, before);
    assert!(f.store.verify_audit().unwrap().intact());
    for env in f.store.list_environments(f.app).unwrap() {
        assert!(
            f.store.environment_keys(env.id).is_ok(),
            "environments get key material"
        );
    }
    // Migrated for good: the current format on disk, with every record authenticated,
    // and the store keeps working across a reopen.
    let Fixture { store, .. } = f;
    let TestStore { store: open, dir } = store;
    drop(open);
    assert_eq!(raw(dir.path(), "meta", b"format")[0], 5);
    assert_eq!(raw(dir.path(), "meta", b"format").len(), 1 + TAG_LEN);
    let s = TestStore::open_in(dir);
    let f = Fixture { store: s, ..f };
    let again: Vec<String> = read_everything(&f.store, &f)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(again, before);
}

#[test]
fn a_format_2_store_with_its_format_byte_put_back_is_refused_not_migrated() {
    // A format-2 store whose format byte is put back to 1 would have its clear records
    // authenticated by a migration: refused.
    let s = TestStore::new();
    s.dev_env("shop");
    let TestStore { store, dir } = s;
    drop(store);
    put_raw(dir.path(), "meta", b"format", &[1]);
    assert!(matches!(
        Store::open(&StoreConfig::new(dir.path())),
        Err(OpenError::Store(StoreError::Internal(
            InternalError::Unauthentic { tree: "meta" }
        )))
    ));
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every directory and file under `dir` (itself included) with its mode.
fn modes_under(dir: &Path) -> Vec<(std::path::PathBuf, bool, u32)> {
    let mut out = vec![(dir.to_path_buf(), true, mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(modes_under(&path));
        } else {
            out.push((path.clone(), false, mode(&path)));
        }
    }
    out
}

#[test]
fn the_data_directory_is_private_to_its_owner() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let s = Store::open(&StoreConfig::new(&data)).unwrap();
    s.create_app(
        &me(),
        NewApp {
            name: "shop".into(),
            ..Default::default()
        },
    )
    .unwrap();
    s.flush().unwrap();
    drop(s);
    let entries = modes_under(&data);
    assert!(entries.len() > 4, "control: the walk sees sled's files");
    for (path, is_dir, mode) in &entries {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} has mode {mode:04o}", path.display());
    }
}

#[test]
fn a_data_directory_open_to_others_is_made_private_at_open() {
    let s = TestStore::new();
    s.dev_env("shop");
    let TestStore { store, dir } = s;
    drop(store);
    // As stores made before were: 0755 directories, 0644 files.
    for (path, is_dir, _) in modes_under(dir.path()) {
        if path.file_name().is_some_and(|n| n == "master.key") {
            continue;
        }
        let loose = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
    }
    let s = TestStore::open_in(dir);
    for (path, is_dir, mode) in modes_under(s.dir.path()) {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} has mode {mode:04o}", path.display());
    }
}

#[test]
fn a_master_key_file_readable_by_others_is_refused_with_the_fix() {
    let s = TestStore::new();
    s.dev_env("shop");
    let TestStore { store, dir } = s;
    drop(store);
    let key = dir.path().join("master.key");
    for loose in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(loose)).unwrap();
        let err = Store::open(&StoreConfig::new(dir.path())).unwrap_err();
        assert!(
            matches!(err, OpenError::MasterKeyExposed { mode, .. } if mode == loose),
            "{err:?}"
        );
        let shown = key.display();
        assert_eq!(
            err.to_string(),
            format!(
                "master key file {shown} is accessible by group or others (mode {loose:04o}); \
                 run chmod 600 {shown}"
            )
        );
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = TestStore::open_in(dir);
    assert_eq!(s.list_apps().unwrap().len(), 1);
}
