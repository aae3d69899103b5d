//! Rollback and upsert under races, and what they record: each is one transaction with
//! its uniqueness check, so concurrent writers cannot both win a version or a place.

mod common;

use std::sync::Barrier;

use coffer_store::{
    AuditAction, AuditQuery, OverrideChange, Rollback, StoreError, UpsertSecret, VersionAction,
};
use common::{me, secret, update, TestStore};

const WRITERS: usize = 8;

fn upsert(key: &str, value: &str) -> UpsertSecret {
    UpsertSecret {
        key: key.into(),
        value: value.into(),
        personal_override: OverrideChange::Keep,
        ..Default::default()
    }
}

#[test]
fn of_concurrent_rollbacks_expecting_one_version_exactly_one_wins() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = s
        .create_secrets(&me(), env, vec![secret("K", "one")])
        .unwrap()[0]
        .id;
    let change = coffer_store::SecretUpdate {
        value: Some("two".into()),
        ..update(id)
    };
    s.update_secrets(&me(), env, vec![change]).unwrap();
    let barrier = Barrier::new(WRITERS);
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let rollback = Rollback {
                        id,
                        version: 1,
                        expected_version: Some(2),
                        may_restore: false,
                    };
                    s.rollback_secret(&me(), env, rollback)
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(
            matches!(
                lost,
                StoreError::VersionConflict {
                    expected: 2,
                    current: 3
                }
            ),
            "{lost:?}"
        );
    }
    assert_eq!(s.get_secret(env, id).unwrap().version, 3);
}

#[test]
fn concurrent_upserts_of_one_new_key_make_one_secret() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let barrier = Barrier::new(WRITERS);
    std::thread::scope(|scope| {
        for i in 0..WRITERS {
            let (s, barrier) = (&s, &barrier);
            scope.spawn(move || {
                barrier.wait();
                s.upsert_secrets(&me(), env, vec![upsert("K", &format!("v{i}"))])
                    .unwrap();
            });
        }
    });
    let listed = s.list_secrets(env, &Default::default()).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    // One created it, every other updated it: one version each.
    assert_eq!(listed[0].version, WRITERS as u64);
    let actions: Vec<VersionAction> = s
        .secret_history(env, listed[0].id)
        .unwrap()
        .iter()
        .map(|v| v.action)
        .collect();
    assert_eq!(actions[0], VersionAction::Create);
    assert!(actions[1..].iter().all(|a| *a == VersionAction::Update));
}

#[test]
fn an_upsert_records_its_creates_and_updates_apart_and_a_restore_as_a_create() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let existing = s
        .create_secrets(&me(), env, vec![secret("K", "v")])
        .unwrap()[0]
        .id;
    let written = s
        .upsert_secrets(&me(), env, vec![upsert("NEW", "n"), upsert("K", "w")])
        .unwrap();
    s.delete_secrets(&me(), env, &[existing]).unwrap();
    let rollback = Rollback {
        id: existing,
        version: 1,
        expected_version: None,
        may_restore: true,
    };
    let restored = s.rollback_secret(&me(), env, rollback).unwrap();
    assert!(restored.restored);
    let page = s
        .list_audit(&AuditQuery {
            app_id: None,
            env_id: Some(env),
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    let seen: Vec<_> = page
        .entries
        .iter()
        .map(|e| (e.action, e.secret_ids.clone(), e.version))
        .collect();
    let tail = &seen[seen.len() - 4..];
    assert_eq!(
        tail,
        [
            (AuditAction::SecretCreate, vec![written[0].id], Some(1)),
            (AuditAction::SecretUpdate, vec![existing], Some(2)),
            (AuditAction::SecretDelete, vec![existing], None),
            (AuditAction::SecretCreate, vec![existing], Some(4)),
        ]
    );
}

#[test]
fn a_restore_without_leave_to_create_changes_nothing() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = s
        .create_secrets(&me(), env, vec![secret("K", "v")])
        .unwrap()[0]
        .id;
    s.delete_secrets(&me(), env, &[id]).unwrap();
    let rollback = Rollback {
        id,
        version: 1,
        expected_version: None,
        may_restore: false,
    };
    assert!(matches!(
        s.rollback_secret(&me(), env, rollback),
        Err(StoreError::RestoreNotAllowed(refused)) if refused == id
    ));
    assert!(s.list_secrets(env, &Default::default()).unwrap().is_empty());
    assert_eq!(s.secret_history(env, id).unwrap().len(), 2);
}
