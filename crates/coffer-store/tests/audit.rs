//! The audit log (API.md, "Audit"; DESIGN.md, "Audit chain"): one entry per write,
//! naming what was done to which ids, chained by hashes so that tampering is found.

mod common;

use coffer_store::{
    Actor, AppUpdate, AuditAction, AuditEntry, AuditQuery, ChainPositions, NewApp, NewToken,
    Permissions, SecretRead, SecretUpdate, StoreError, TokenKind,
};
use common::{me, on_the_one_chain, one_chain, secret, update, TestStore};
use uuid::Uuid;

fn everything() -> AuditQuery {
    AuditQuery {
        limit: 10_000,
        ..Default::default()
    }
}

fn entries(s: &TestStore) -> Vec<AuditEntry> {
    s.list_audit(&everything()).unwrap().entries
}

/// What an entry says, without time and hashes.
#[derive(Debug, PartialEq)]
struct Said {
    action: AuditAction,
    app_id: Option<Uuid>,
    env_id: Option<Uuid>,
    ids: Vec<Uuid>,
    version: Option<u64>,
}

fn said(
    action: AuditAction,
    app_id: Option<Uuid>,
    env_id: Option<Uuid>,
    ids: &[Uuid],
    version: Option<u64>,
) -> Said {
    Said {
        action,
        app_id,
        env_id,
        ids: ids.to_vec(),
        version,
    }
}

/// Runs `op` and checks that it appended exactly one entry, saying `expected`.
fn one_entry<T>(s: &TestStore, op: impl FnOnce() -> T, expected: impl FnOnce(&T) -> Said) -> T {
    op_entries(s, op, |out| vec![expected(out)])
}

/// Runs `op` and checks that it appended exactly the entries `expected` says, in order.
fn op_entries<T>(
    s: &TestStore,
    op: impl FnOnce() -> T,
    expected: impl FnOnce(&T) -> Vec<Said>,
) -> T {
    let before = entries(s).len();
    let out = op();
    let got: Vec<Said> = entries(s)[before..]
        .iter()
        .map(|e| Said {
            action: e.action,
            app_id: e.app_id,
            env_id: e.env_id,
            ids: e.secret_ids.clone(),
            version: e.version,
        })
        .collect();
    assert_eq!(got, expected(&out));
    out
}

#[test]
fn every_write_leaves_one_entry_naming_its_action_and_ids() {
    use AuditAction as A;
    let s = TestStore::new();
    let (app, envs) = one_entry(
        &s,
        || {
            s.create_app(
                &me(),
                NewApp {
                    name: "shop".into(),
                    ..Default::default()
                },
            )
            .unwrap()
        },
        |(app, _)| said(A::AppCreate, Some(app.id), None, &[], None),
    );
    let (app, dev) = (app.id, envs[0].id);
    one_entry(
        &s,
        || {
            s.update_app(
                &me(),
                app,
                AppUpdate {
                    description: Some("d".into()),
                    ..Default::default()
                },
            )
            .unwrap()
        },
        |_| said(A::AppUpdate, Some(app), None, &[], None),
    );
    let qa = one_entry(
        &s,
        || s.create_environment(&me(), app, "qa").unwrap(),
        |qa| said(A::EnvCreate, Some(app), Some(qa.id), &[], None),
    );
    one_entry(
        &s,
        || s.rename_environment(&me(), qa.id, "qa2").unwrap(),
        |_| said(A::EnvUpdate, Some(app), Some(qa.id), &[], None),
    );
    let one = one_entry(
        &s,
        || {
            s.create_secrets(&me(), dev, vec![secret("A", "a")])
                .unwrap()
        },
        |c| said(A::SecretCreate, Some(app), Some(dev), &[c[0].id], Some(1)),
    );
    let two = one_entry(
        &s,
        || {
            s.create_secrets(&me(), dev, vec![secret("B", "b"), secret("C", "c")])
                .unwrap()
        },
        |c| {
            said(
                A::SecretCreate,
                Some(app),
                Some(dev),
                &[c[0].id, c[1].id],
                None,
            )
        },
    );
    one_entry(
        &s,
        || {
            s.update_secrets(
                &me(),
                dev,
                vec![SecretUpdate {
                    value: Some("a2".into()),
                    ..update(one[0].id)
                }],
            )
            .unwrap()
        },
        |_| said(A::SecretUpdate, Some(app), Some(dev), &[one[0].id], Some(2)),
    );
    one_entry(
        &s,
        || {
            s.update_secrets(&me(), dev, vec![update(two[0].id), update(two[1].id)])
                .unwrap()
        },
        |_| {
            said(
                A::SecretUpdate,
                Some(app),
                Some(dev),
                &[two[0].id, two[1].id],
                None,
            )
        },
    );
    one_entry(
        &s,
        || s.record_read(&me(), app, dev, vec![one[0].id]).unwrap(),
        |_| said(A::SecretRead, Some(app), Some(dev), &[one[0].id], None),
    );
    one_entry(
        &s,
        || {
            s.delete_secrets(&me(), dev, &[two[0].id, two[1].id])
                .unwrap()
        },
        |_| {
            said(
                A::SecretDelete,
                Some(app),
                Some(dev),
                &[two[0].id, two[1].id],
                None,
            )
        },
    );
    let (token, _) = one_entry(
        &s,
        || {
            s.create_token(
                &me(),
                NewToken {
                    name: "ci".into(),
                    kind: TokenKind::Service,
                    app_id: Some(app),
                    environments: vec!["development".into()],
                    permissions: Permissions::ALL,
                    expires_at: None,
                    allowed_ips: vec![],
                },
            )
            .unwrap()
        },
        |(t, _)| said(A::TokenCreate, Some(app), None, &[t.id], None),
    );
    one_entry(
        &s,
        || s.revoke_token(&me(), token.id).unwrap(),
        |_| said(A::TokenRevoke, Some(app), None, &[token.id], None),
    );
    // Deleting an environment or an app also deletes their secrets: one `secret.delete`
    // per environment names them, for the changes feed.
    let in_qa = s
        .create_secrets(&me(), qa.id, vec![secret("Q", "q")])
        .unwrap();
    op_entries(
        &s,
        || s.delete_environment(&me(), qa.id).unwrap(),
        |_| {
            vec![
                said(A::EnvDelete, Some(app), Some(qa.id), &[], None),
                said(
                    A::SecretDelete,
                    Some(app),
                    Some(qa.id),
                    &[in_qa[0].id],
                    None,
                ),
            ]
        },
    );
    let live_in_dev = [one[0].id];
    op_entries(
        &s,
        || s.delete_app(&me(), app).unwrap(),
        |_| {
            let mut expected = vec![said(A::AppDelete, Some(app), None, &[], None)];
            expected.push(said(
                A::SecretDelete,
                Some(app),
                Some(dev),
                &live_in_dev,
                None,
            ));
            for env in &envs[1..] {
                expected.push(said(A::SecretDelete, Some(app), Some(env.id), &[], None));
            }
            expected
        },
    );
    let seqs: Vec<u64> = entries(&s).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[test]
fn failed_writes_leave_no_entry() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let dev = envs[0].id;
    let id = s
        .create_secrets(&me(), dev, vec![secret("A", "a")])
        .unwrap()[0]
        .id;
    let before = entries(&s);
    assert!(matches!(
        s.create_secrets(&me(), dev, vec![secret("B", "b"), secret("a", "dup")]),
        Err(StoreError::DuplicateSecret)
    ));
    assert!(matches!(
        s.update_secrets(
            &me(),
            dev,
            vec![SecretUpdate {
                expected_version: Some(9),
                ..update(id)
            }]
        ),
        Err(StoreError::VersionConflict { .. })
    ));
    assert!(matches!(
        s.delete_secrets(&me(), dev, &[id, Uuid::new_v4()]),
        Err(StoreError::SecretsNotFound(_))
    ));
    assert!(matches!(
        s.create_app(
            &me(),
            NewApp {
                name: "SHOP".into(),
                ..Default::default()
            }
        ),
        Err(StoreError::AppNameTaken(_))
    ));
    assert!(matches!(
        s.create_environment(&me(), app, "staging"),
        Err(StoreError::EnvironmentNameTaken(_))
    ));
    assert!(matches!(
        s.revoke_token(&me(), Uuid::new_v4()),
        Err(StoreError::TokenNotFound(_))
    ));
    assert_eq!(entries(&s), before);
    assert_eq!(one_chain(s.verify_audit().unwrap()).first_broken, None);
}

#[test]
fn an_entry_names_its_actor() {
    let s = TestStore::new();
    let actor = Actor {
        token_id: Some(Uuid::new_v4()),
        kind: Some(TokenKind::Service),
        ip: Some("203.0.113.7".into()),
        user_agent: Some("curl/8".into()),
    };
    s.create_app(
        &actor,
        NewApp {
            name: "shop".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(entries(&s)[0].actor, actor);
}

#[test]
fn the_chain_links_every_entry_to_the_one_before_across_reopens() {
    let s = TestStore::new();
    let dev = s.dev_env("shop");
    s.create_secrets(&me(), dev, vec![secret("A", "a")])
        .unwrap();
    let s = s.reopen();
    s.create_secrets(&me(), dev, vec![secret("B", "b")])
        .unwrap();
    let all = entries(&s);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].prev_hash, [0; 32]);
    for pair in all.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for e in &all {
        assert_eq!(e.hash, e.compute_hash());
    }
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!((verified.checked, verified.first_broken), (3, None));
}

#[test]
fn audit_listing_filters_and_pages() {
    let s = TestStore::new();
    let (shop, shop_envs) = s.app("shop");
    let (_, blog_envs) = s.app("blog");
    let a = s
        .create_secrets(&me(), shop_envs[0].id, vec![secret("A", "a")])
        .unwrap()[0]
        .id;
    s.create_secrets(&me(), shop_envs[1].id, vec![secret("A", "a")])
        .unwrap();
    s.create_secrets(&me(), blog_envs[0].id, vec![secret("A", "a")])
        .unwrap();
    s.update_secrets(&me(), shop_envs[0].id, vec![update(a)])
        .unwrap();

    let seqs = |q: AuditQuery| -> Vec<u64> {
        s.list_audit(&AuditQuery { limit: 100, ..q })
            .unwrap()
            .entries
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(
        seqs(AuditQuery {
            app_id: Some(shop),
            ..Default::default()
        }),
        [1, 3, 4, 6]
    );
    assert_eq!(
        seqs(AuditQuery {
            env_id: Some(shop_envs[0].id),
            ..Default::default()
        }),
        [3, 6]
    );
    assert_eq!(
        seqs(AuditQuery {
            secret_id: Some(a),
            ..Default::default()
        }),
        [3, 6]
    );
    assert_eq!(
        seqs(AuditQuery {
            since: ChainPositions::every_chain_from(4),
            ..Default::default()
        }),
        [4, 5, 6]
    );

    let first = s
        .list_audit(&AuditQuery {
            limit: 4,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(first.entries.len(), 4);
    assert_eq!(first.next, Some(on_the_one_chain(5)));
    let rest = s
        .list_audit(&AuditQuery {
            limit: 4,
            since: first.next.unwrap(),
            ..Default::default()
        })
        .unwrap();
    let rest_seqs: Vec<u64> = rest.entries.iter().map(|e| e.seq).collect();
    assert_eq!((rest_seqs, rest.next), (vec![5, 6], None));
}

// --- tampering, through the raw sled database while the store is closed ---------------

/// Fills a store with a few entries, closes it, lets `tamper` change the raw `audit`
/// tree, reopens, and returns what verification says.
fn verify_after(
    tamper: impl FnOnce(&sled::Tree, &[AuditEntry]),
) -> coffer_store::ChainVerification {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    for key in ["A", "B", "C", "D"] {
        s.create_secrets(&me(), envs[0].id, vec![secret(key, "v")])
            .unwrap();
    }
    s.update_app(
        &me(),
        app,
        AppUpdate {
            description: Some("last".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let before = entries(&s);
    assert_eq!(one_chain(s.verify_audit().unwrap()).first_broken, None);
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        let audit = db.open_tree("audit").unwrap();
        tamper(&audit, &before);
        db.flush().unwrap();
    }
    let s = TestStore::open_in(dir);
    one_chain(s.verify_audit().unwrap())
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(from.len())
        .position(|w| w == from)
        .expect("bytes to replace are in the record");
    let mut out = haystack.to_vec();
    out[at..at + from.len()].copy_from_slice(to);
    out
}

#[test]
fn an_entry_edited_on_disk_is_named_by_verification() {
    // Entry 3 is re-attributed to another secret: still decodes, hash no longer matches.
    let verified = verify_after(|audit, entries| {
        let key = common::audit_key(3);
        let raw = audit.get(key).unwrap().unwrap();
        let forged = replace(
            &raw,
            entries[2].secret_ids[0].as_bytes(),
            Uuid::new_v4().as_bytes(),
        );
        audit.insert(key, forged).unwrap();
    });
    assert_eq!((verified.first_broken, verified.checked), (Some(3), 2));
}

#[test]
fn an_entry_rehashed_after_editing_breaks_the_next_link() {
    // A forger who also recomputes the edited entry's hash would break entry 4's link;
    // without the master key the record's own tag gives the edit away first, at entry 3.
    let verified = verify_after(|audit, entries| {
        let mut forged = entries[2].clone();
        forged.secret_ids = vec![Uuid::new_v4()];
        forged.hash = forged.compute_hash();
        let key = common::audit_key(3);
        let raw = audit.get(key).unwrap().unwrap();
        let raw = replace(
            &raw,
            entries[2].secret_ids[0].as_bytes(),
            forged.secret_ids[0].as_bytes(),
        );
        let raw = replace(&raw, &entries[2].hash, &forged.hash);
        audit.insert(key, raw).unwrap();
    });
    assert_eq!((verified.first_broken, verified.checked), (Some(3), 2));
}

#[test]
fn a_removed_entry_is_named_by_verification() {
    let verified = verify_after(|audit, _| {
        audit.remove(common::audit_key(2)).unwrap();
    });
    assert_eq!((verified.first_broken, verified.checked), (Some(2), 1));
}

#[test]
fn a_garbled_entry_is_named_by_verification() {
    let verified = verify_after(|audit, _| {
        audit
            .insert(common::audit_key(5), b"\x01garbage".to_vec())
            .unwrap();
    });
    assert_eq!((verified.first_broken, verified.checked), (Some(5), 4));
}

#[test]
fn the_counted_audit_entries_are_the_stored_ones_across_reopens() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(&me(), env, vec![secret("A", "1")])
        .unwrap();
    s.record_read(&me(), Uuid::new_v4(), env, Vec::new())
        .unwrap();
    assert_eq!(s.counts().audit_entries, entries(&s).len());
    let s = s.reopen();
    assert_eq!(s.counts().audit_entries, entries(&s).len());
    s.create_secrets(&me(), env, vec![secret("B", "2")])
        .unwrap();
    assert_eq!(s.counts().audit_entries, entries(&s).len());
    assert_eq!(entries(&s).len(), 4, "app, create, read, create");
}

fn reads(env: Uuid, n: usize) -> Vec<SecretRead> {
    (0..n)
        .map(|i| SecretRead {
            actor: Actor {
                user_agent: Some(format!("reader {i}")),
                ..me()
            },
            app_id: Uuid::new_v4(),
            env_id: env,
            secret_ids: vec![Uuid::new_v4()],
        })
        .collect()
}

#[test]
fn reads_recorded_together_are_consecutive_entries_of_the_chain() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let group = reads(env, 5);
    s.record_reads(group.clone()).unwrap();
    s.create_secrets(&me(), env, vec![secret("A", "a")])
        .unwrap();
    let all = entries(&s);
    assert_eq!(all.len(), 7, "app, five reads, create");
    for (entry, read) in all[1..6].iter().zip(&group) {
        assert_eq!(entry.action, AuditAction::SecretRead);
        assert_eq!(entry.actor, read.actor);
        assert_eq!(
            (entry.app_id, entry.env_id, &entry.secret_ids),
            (Some(read.app_id), Some(read.env_id), &read.secret_ids)
        );
    }
    assert_eq!(all[6].action, AuditAction::SecretCreate);
    let s = s.reopen();
    assert_eq!(s.counts().audit_entries, 7);
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!((verified.checked, verified.first_broken), (7, None));
    s.record_reads(reads(env, 2)).unwrap();
    assert_eq!(entries(&s).last().unwrap().seq, 9);
}

#[test]
fn listing_can_start_and_page_inside_a_group_of_reads() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.record_reads(reads(env, 10)).unwrap();
    let page = |since, limit| {
        let page = s
            .list_audit(&AuditQuery {
                since: ChainPositions::every_chain_from(since),
                limit,
                ..Default::default()
            })
            .unwrap();
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        (seqs, page.next.map(|next| next.of(0)))
    };
    assert_eq!(page(4, 3), (vec![4, 5, 6], Some(7)));
    assert_eq!(page(7, 100), (vec![7, 8, 9, 10, 11], None));
    assert_eq!(page(12, 100), (vec![], None));
}

#[test]
fn an_entry_edited_inside_a_group_of_reads_is_named_by_verification() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let group = reads(env, 4);
    s.record_reads(group.clone()).unwrap();
    s.create_secrets(&me(), env, vec![secret("A", "a")])
        .unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        let audit = db.open_tree("audit").unwrap();
        // Entries 2–5 are the reads, stored as one record under the first one's seq.
        let raw = audit.get(common::audit_key(2)).unwrap().unwrap();
        assert!(audit.get(common::audit_key(3)).unwrap().is_none());
        let forged = replace(
            &raw,
            group[2].secret_ids[0].as_bytes(),
            Uuid::new_v4().as_bytes(),
        );
        audit.insert(common::audit_key(2), forged).unwrap();
        db.flush().unwrap();
    }
    // The record holding entries 2–5 fails its tag as a whole: the first entry it
    // holds is the first broken one.
    let verified = one_chain(TestStore::open_in(dir).verify_audit().unwrap());
    assert_eq!((verified.first_broken, verified.checked), (Some(2), 1));
}

#[test]
fn concurrent_reads_and_writes_keep_one_unbroken_chain() {
    let s = std::sync::Arc::new(TestStore::new());
    let env = s.dev_env("shop");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..25 {
                    if t % 2 == 0 {
                        s.record_reads(reads(env, 1 + i % 3)).unwrap();
                    } else {
                        let key = format!("K{t}_{i}");
                        s.create_secrets(&me(), env, vec![secret(&key, "v")])
                            .unwrap();
                    }
                }
            });
        }
    });
    // app + 2 threads × 25 writes + 2 threads × (9×1 + 8×2 + 8×3) reads
    let expected = 1 + 50 + 2 * (9 + 16 + 24);
    assert_eq!(entries(&s).len(), expected);
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!(
        (verified.checked, verified.first_broken),
        (expected as u64, None)
    );
}

/// Replaces the record at `seq` with a run of no entries.
fn empty_the_run_at(dir: &std::path::Path, seq: u64) {
    let db = common::open_raw_sled(dir);
    let audit = db.open_tree("audit").unwrap();
    // Layout byte of a run, then a length of zero.
    let empty_run = [2u8, 0, 0, 0, 0, 0, 0, 0, 0];
    audit.insert(common::audit_key(seq), &empty_run).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_group_of_reads_emptied_on_disk_is_named_by_verification() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.record_reads(reads(env, 3)).unwrap();
    s.create_secrets(&me(), env, vec![secret("A", "a")])
        .unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    empty_the_run_at(dir.path(), 2);
    let verified = one_chain(TestStore::open_in(dir).verify_audit().unwrap());
    assert_eq!((verified.first_broken, verified.checked), (Some(2), 1));
}

#[test]
fn an_emptied_last_record_stops_the_store_from_opening_instead_of_restarting_the_chain() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.record_reads(reads(env, 3)).unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    empty_the_run_at(dir.path(), 2);
    let opened = coffer_store::Store::open(&coffer_store::StoreConfig::new(dir.path()));
    assert!(
        matches!(opened, Err(coffer_store::OpenError::Store(_))),
        "{opened:?}"
    );
}
