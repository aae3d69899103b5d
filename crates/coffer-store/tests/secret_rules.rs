//! The data rules of secrets (API.md, "Secret object" and the error table of
//! `/v1/secrets/`), each checked through the public `Store` API with the exact
//! error variant a front end maps to its message.

mod common;

use coffer_store::{
    limits, NewSecret, SecretFilter, SecretType, SecretUpdate, StoreError, VersionAction,
    VersionActor,
};
use common::{me, secret, secret_at, update, TestStore};
use uuid::Uuid;

fn all(store: &TestStore, env: Uuid) -> Vec<coffer_store::Secret> {
    store.list_secrets(env, &SecretFilter::default()).unwrap()
}

fn create_one(
    store: &TestStore,
    env: Uuid,
    new: NewSecret,
) -> Result<coffer_store::Secret, StoreError> {
    store
        .create_secrets(&me(), env, vec![new])
        .map(|mut v| v.remove(0))
}

// --- keys ------------------------------------------------------------------------------

#[test]
fn keys_are_stored_upper_cased() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = create_one(&s, env, secret("db_Url.v2-x", "v")).unwrap();
    assert_eq!(created.key, "DB_URL.V2-X");
    assert_eq!(s.get_secret(env, created.id).unwrap().key, "DB_URL.V2-X");
}

#[test]
fn malformed_keys_are_refused_with_the_key_as_given() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let long = "K".repeat(257);
    for bad in ["A\0B", "LINE\nBREAK", "TAB\tKEY", long.as_str()] {
        let err = create_one(&s, env, secret(bad, "v")).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidKey(k) if k == bad),
            "{bad:?}: {err:?}"
        );
    }
    assert!(all(&s, env).is_empty());
}

#[test]
fn blank_keys_are_missing_keys() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    for blank in ["", " ", "\t "] {
        let err = create_one(&s, env, secret(blank, "v")).unwrap_err();
        assert!(matches!(err, StoreError::MissingKey), "{blank:?}: {err:?}");
    }
}

#[test]
fn keys_are_at_most_256_bytes() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let longest = "K".repeat(limits::MAX_KEY_BYTES);
    assert_eq!(
        create_one(&s, env, secret(&longest, "v")).unwrap().key,
        longest
    );
    let err = create_one(&s, env, secret(&"K".repeat(257), "v")).unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(k) if k.len() == 257));
}

#[test]
fn renames_follow_the_key_rules() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("A", "v")).unwrap().id;
    let rename = |key: &str| {
        s.update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                key: Some(key.into()),
                ..update(id)
            }],
        )
    };
    assert!(matches!(rename("A\nB"), Err(StoreError::InvalidKey(k)) if k == "A\nB"));
    assert_eq!(rename("1password").unwrap()[0].key, "1PASSWORD");
    assert!(matches!(rename(" "), Err(StoreError::MissingKey)));
    assert_eq!(rename("renamed").unwrap()[0].key, "RENAMED");
}

// --- paths -----------------------------------------------------------------------------

#[test]
fn paths_are_normalised() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    for (i, (given, stored)) in [
        ("", "/"),
        ("/", "/"),
        ("///", "/"),
        ("backend", "/backend"),
        ("/backend/", "/backend"),
        ("//backend//db///", "/backend/db"),
        ("/v1.2/a..b", "/v1.2/a..b"),
    ]
    .into_iter()
    .enumerate()
    {
        let created = create_one(&s, env, secret_at(given, &format!("K{i}"), "v")).unwrap();
        assert_eq!(created.path, stored, "{given:?}");
    }
}

#[test]
fn bad_paths_are_refused_with_the_path_as_given() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    for bad in [
        "/a/../b", "/.", "..", "/a/./b", "/a/ /b", "/a\n", "/a\u{0}b", "/\u{7f}",
    ] {
        let err = create_one(&s, env, secret_at(bad, "K", "v")).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidPath(p) if p == bad),
            "{bad:?}: {err:?}"
        );
    }
    assert!(all(&s, env).is_empty());
}

#[test]
fn paths_are_at_most_1024_bytes() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let longest = format!("/{}", "p".repeat(limits::MAX_PATH_BYTES - 1));
    assert_eq!(
        create_one(&s, env, secret_at(&longest, "K", "v"))
            .unwrap()
            .path,
        longest
    );
    // The limit holds for the stored (normalised) path: 1024 bytes given without the
    // leading `/` would be stored as 1025.
    for over in [format!("{longest}p"), "p".repeat(limits::MAX_PATH_BYTES)] {
        let err = create_one(&s, env, secret_at(&over, "K2", "v")).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::FieldTooLarge {
                    field: "path",
                    limit: 1024
                }
            ),
            "{} bytes given: {err:?}",
            over.len()
        );
    }
}

#[test]
fn moves_follow_the_path_rules() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("A", "v")).unwrap().id;
    let mv = |path: &str| {
        s.update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                path: Some(path.into()),
                ..update(id)
            }],
        )
    };
    assert!(matches!(mv("/x/../y"), Err(StoreError::InvalidPath(p)) if p == "/x/../y"));
    assert_eq!(mv("x//y/").unwrap()[0].path, "/x/y");
}

// --- sizes -----------------------------------------------------------------------------

#[test]
fn values_are_at_most_64_kib() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let largest = "v".repeat(64 * 1024);
    let created = create_one(&s, env, secret("BIG", &largest)).unwrap();
    assert_eq!(s.get_secret(env, created.id).unwrap().value, largest);
    let err = create_one(&s, env, secret("BIGGER", &format!("{largest}v"))).unwrap_err();
    assert!(matches!(
        err,
        StoreError::FieldTooLarge {
            field: "value",
            limit: 65536
        }
    ));
    let err = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                value: Some(format!("{largest}v")),
                ..update(created.id)
            }],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::FieldTooLarge { field: "value", .. }
    ));
}

#[test]
fn comments_are_at_most_4_kib() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let with_comment = |key: &str, len: usize| NewSecret {
        comment: "c".repeat(len),
        ..secret(key, "v")
    };
    let created = create_one(&s, env, with_comment("OK", 4096)).unwrap();
    assert_eq!(created.comment.len(), 4096);
    let err = create_one(&s, env, with_comment("TOO_LONG", 4097)).unwrap_err();
    assert!(matches!(
        err,
        StoreError::FieldTooLarge {
            field: "comment",
            limit: 4096
        }
    ));
    let err = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                comment: Some("c".repeat(4097)),
                ..update(created.id)
            }],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::FieldTooLarge {
            field: "comment",
            ..
        }
    ));
}

fn tagged(key: &str, tags: Vec<String>) -> NewSecret {
    NewSecret {
        tags,
        ..secret(key, "v")
    }
}

#[test]
fn a_secret_has_at_most_32_tags() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let tags = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    assert_eq!(
        create_one(&s, env, tagged("OK", tags(32)))
            .unwrap()
            .tags
            .len(),
        32
    );
    let err = create_one(&s, env, tagged("TOO_MANY", tags(33))).unwrap_err();
    assert!(matches!(err, StoreError::TooManyTags { max: 32 }));
}

#[test]
fn tags_are_1_to_64_characters() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    // Characters, not bytes: 64 two-byte characters are fine.
    let wide = "é".repeat(64);
    assert_eq!(
        create_one(&s, env, tagged("WIDE", vec![wide.clone()]))
            .unwrap()
            .tags,
        [wide]
    );
    let long = format!("{}xyz", "t".repeat(64));
    let err = create_one(&s, env, tagged("LONG", vec![long])).unwrap_err();
    assert!(
        matches!(&err, StoreError::TagTooLong(first) if *first == "t".repeat(64)),
        "{err:?}"
    );
    // Empty tag names are skipped, as Phase does.
    let skipped = create_one(&s, env, tagged("EMPTY", vec![String::new(), "db".into()]));
    assert_eq!(skipped.unwrap().tags, ["db"]);
}

#[test]
fn repeated_tags_are_kept_once_in_the_order_given() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = create_one(
        &s,
        env,
        tagged("K", vec!["b".into(), "a".into(), "b".into()]),
    )
    .unwrap();
    assert_eq!(created.tags, ["b", "a"]);
}

#[test]
fn batches_hold_1_to_1000_entries() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let batch = |n: usize, prefix: &str| {
        (0..n)
            .map(|i| secret(&format!("{prefix}{i}"), "v"))
            .collect::<Vec<_>>()
    };
    assert!(matches!(
        s.create_secrets(&me(), env, vec![]),
        Err(StoreError::EmptyBatch)
    ));
    assert!(matches!(
        s.create_secrets(&me(), env, batch(1001, "OVER")),
        Err(StoreError::BatchTooLarge { max: 1000 })
    ));
    assert!(all(&s, env).is_empty());
    let created = s.create_secrets(&me(), env, batch(1000, "K")).unwrap();
    assert_eq!(created.len(), 1000);
    assert_eq!(all(&s, env).len(), 1000);

    assert!(matches!(
        s.update_secrets(&me(), env, vec![]),
        Err(StoreError::EmptyBatch)
    ));
    let updates = (0..1001).map(|i| update(created[i % 1000].id)).collect();
    assert!(matches!(
        s.update_secrets(&me(), env, updates),
        Err(StoreError::BatchTooLarge { max: 1000 })
    ));
    assert!(matches!(
        s.delete_secrets(&me(), env, &[]),
        Err(StoreError::EmptyBatch)
    ));
    let ids: Vec<Uuid> = (0..1001).map(|i| created[i % 1000].id).collect();
    assert!(matches!(
        s.delete_secrets(&me(), env, &ids),
        Err(StoreError::BatchTooLarge { max: 1000 })
    ));
    assert_eq!(all(&s, env).len(), 1000);
}

#[test]
fn one_invalid_entry_refuses_the_whole_batch() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let err = s
        .create_secrets(
            &me(),
            env,
            vec![
                secret("GOOD", "v"),
                secret("ALSO_GOOD", "v"),
                secret("BAD\u{1}KEY", "v"),
            ],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(_)));
    assert!(all(&s, env).is_empty());
}

// --- type ------------------------------------------------------------------------------

fn typed(key: &str, secret_type: SecretType) -> NewSecret {
    NewSecret {
        secret_type,
        ..secret(key, "v")
    }
}

#[test]
fn sealed_secrets_cannot_be_unsealed() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let sealed = create_one(&s, env, typed("SEALED", SecretType::Sealed)).unwrap();
    assert_eq!(sealed.secret_type, SecretType::Sealed);
    for other in [SecretType::Secret, SecretType::Config] {
        let err = s
            .update_secrets(
                &me(),
                env,
                vec![SecretUpdate {
                    secret_type: Some(other),
                    ..update(sealed.id)
                }],
            )
            .unwrap_err();
        assert!(
            matches!(err, StoreError::SealedCannotBeUnsealed),
            "{other:?}"
        );
    }
    // Staying sealed, and changing the value of a sealed secret, are fine.
    let still = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                secret_type: Some(SecretType::Sealed),
                value: Some("new".into()),
                ..update(sealed.id)
            }],
        )
        .unwrap();
    assert_eq!(
        (still[0].secret_type, still[0].version),
        (SecretType::Sealed, 2)
    );
}

#[test]
fn other_types_change_freely_and_may_become_sealed() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, typed("K", SecretType::Config))
        .unwrap()
        .id;
    for next in [SecretType::Secret, SecretType::Config, SecretType::Sealed] {
        let got = s
            .update_secrets(
                &me(),
                env,
                vec![SecretUpdate {
                    secret_type: Some(next),
                    ..update(id)
                }],
            )
            .unwrap();
        assert_eq!(got[0].secret_type, next);
    }
    assert_eq!(
        s.get_secret(env, id).unwrap().secret_type,
        SecretType::Sealed
    );
}

// --- uniqueness ------------------------------------------------------------------------

#[test]
fn a_key_exists_once_per_environment_and_path() {
    let s = TestStore::new();
    let (_, envs) = s.app("shop");
    let (dev, staging) = (envs[0].id, envs[1].id);
    create_one(&s, dev, secret_at("/backend", "DB_URL", "first")).unwrap();
    // Same key in any case, same path in any spelling: a duplicate.
    for (path, key) in [
        ("/backend", "DB_URL"),
        ("backend/", "db_url"),
        ("//backend", "Db_Url"),
    ] {
        let err = create_one(&s, dev, secret_at(path, key, "again")).unwrap_err();
        assert!(matches!(err, StoreError::DuplicateSecret), "{path} {key}");
    }
    // Another path, or another environment: a different secret.
    create_one(&s, dev, secret_at("/frontend", "DB_URL", "v")).unwrap();
    create_one(&s, staging, secret_at("/backend", "DB_URL", "v")).unwrap();
    let dev_backend = s
        .list_secrets(
            dev,
            &SecretFilter {
                path: Some("/backend".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(dev_backend.len(), 1);
    assert_eq!(dev_backend[0].value, "first");
}

#[test]
fn a_key_twice_in_one_batch_is_a_duplicate_and_nothing_is_written() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let err = s
        .create_secrets(
            &me(),
            env,
            vec![secret("A", "1"), secret("B", "2"), secret_at("/", "a", "3")],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSecret));
    assert!(all(&s, env).is_empty());
    // The keys were not reserved by the failed batch.
    assert_eq!(
        s.create_secrets(&me(), env, vec![secret("A", "1"), secret("B", "2")])
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_batch_colliding_with_a_stored_key_writes_nothing() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    create_one(&s, env, secret("TAKEN", "v")).unwrap();
    let err = s
        .create_secrets(&me(), env, vec![secret("FRESH", "v"), secret("taken", "v")])
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSecret));
    let keys: Vec<String> = all(&s, env).into_iter().map(|s| s.key).collect();
    assert_eq!(keys, ["TAKEN"]);
}

#[test]
fn renaming_onto_an_existing_key_is_a_duplicate() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = s
        .create_secrets(&me(), env, vec![secret("A", "a"), secret("B", "b")])
        .unwrap();
    let err = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                key: Some("b".into()),
                ..update(created[0].id)
            }],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSecret));
    assert_eq!(s.get_secret(env, created[0].id).unwrap().key, "A");
}

#[test]
fn moving_onto_an_existing_key_is_a_duplicate() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = s
        .create_secrets(
            &me(),
            env,
            vec![secret_at("/a", "K", "1"), secret_at("/b", "K", "2")],
        )
        .unwrap();
    let err = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                path: Some("b/".into()),
                ..update(created[0].id)
            }],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSecret));
    // A move and rename together onto an existing (path, key) as well.
    let other = create_one(&s, env, secret_at("/c", "OTHER", "3")).unwrap();
    let err = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                path: Some("/b".into()),
                key: Some("k".into()),
                ..update(other.id)
            }],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSecret));
    assert_eq!(s.get_secret(env, created[0].id).unwrap().path, "/a");
    assert_eq!(s.get_secret(env, other.id).unwrap().path, "/c");
}

#[test]
fn a_failed_update_batch_writes_none_of_its_entries() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = s
        .create_secrets(&me(), env, vec![secret("A", "a"), secret("B", "b")])
        .unwrap();
    let err = s
        .update_secrets(
            &me(),
            env,
            vec![
                SecretUpdate {
                    value: Some("changed".into()),
                    ..update(created[0].id)
                },
                SecretUpdate {
                    key: Some("A".into()),
                    ..update(created[1].id)
                },
            ],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateSecret));
    let a = s.get_secret(env, created[0].id).unwrap();
    assert_eq!((a.value.as_str(), a.version), ("a", 1));
    assert_eq!(s.secret_history(env, created[0].id).unwrap().len(), 1);
}

#[test]
fn renaming_to_the_same_key_in_another_case_is_not_a_duplicate() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret_at("/p", "KEY", "v")).unwrap().id;
    let got = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                key: Some("key".into()),
                path: Some("p/".into()),
                ..update(id)
            }],
        )
        .unwrap();
    assert_eq!(
        (got[0].key.as_str(), got[0].path.as_str(), got[0].version),
        ("KEY", "/p", 2)
    );
}

#[test]
fn a_renamed_secret_frees_its_old_key() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("OLD", "v")).unwrap().id;
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            key: Some("NEW".into()),
            ..update(id)
        }],
    )
    .unwrap();
    create_one(&s, env, secret("OLD", "reused")).unwrap();
    assert!(matches!(
        create_one(&s, env, secret("NEW", "v")),
        Err(StoreError::DuplicateSecret)
    ));
}

#[test]
fn a_deleted_key_can_be_created_again_as_a_new_secret() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let first = create_one(&s, env, secret("K", "1")).unwrap();
    s.delete_secrets(&me(), env, &[first.id]).unwrap();
    let second = create_one(&s, env, secret("K", "2")).unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.version, 1);
}

// --- versions --------------------------------------------------------------------------

#[test]
fn versions_start_at_1_and_grow_by_1_per_update() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = create_one(&s, env, secret("K", "v0")).unwrap();
    assert_eq!(created.version, 1);
    for expected in 2..=5 {
        let got = s
            .update_secrets(
                &me(),
                env,
                vec![SecretUpdate {
                    value: Some(format!("v{expected}")),
                    ..update(created.id)
                }],
            )
            .unwrap();
        assert_eq!(got[0].version, expected);
        assert_eq!(s.get_secret(env, created.id).unwrap().version, expected);
    }
}

#[test]
fn one_secret_twice_in_an_update_batch_is_updated_twice_in_order() {
    // Updates are sealed before their transaction, from the record stored then; the
    // second entry finds the record the first one wrote instead, and is worked out
    // again from it (its check-and-set sees version 2).
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("K", "one")).unwrap().id;
    let updated = s
        .update_secrets(
            &me(),
            env,
            vec![
                SecretUpdate {
                    value: Some("two".into()),
                    ..update(id)
                },
                SecretUpdate {
                    key: Some("RENAMED".into()),
                    expected_version: Some(2),
                    ..update(id)
                },
            ],
        )
        .unwrap();
    let seen: Vec<(u64, &str, &str)> = updated
        .iter()
        .map(|u| (u.version, u.key.as_str(), u.value.as_str()))
        .collect();
    assert_eq!(seen, [(2, "K", "two"), (3, "RENAMED", "two")]);
    let stored = s.get_secret(env, id).unwrap();
    assert_eq!((stored.version, stored.key.as_str()), (3, "RENAMED"));
    let history = s.secret_history(env, id).unwrap();
    let values: Vec<(u64, &str)> = history
        .iter()
        .map(|v| (v.secret.version, v.secret.value.as_str()))
        .collect();
    assert_eq!(values, [(1, "one"), (2, "two"), (3, "two")]);
    // The old key is free again; the new one is taken.
    create_one(&s, env, secret("K", "again")).unwrap();
    assert!(matches!(
        create_one(&s, env, secret("RENAMED", "x")),
        Err(StoreError::DuplicateSecret)
    ));
}

#[test]
fn a_stale_check_and_set_later_in_the_batch_refuses_the_whole_batch() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("K", "one")).unwrap().id;
    let refused = s.update_secrets(
        &me(),
        env,
        vec![
            SecretUpdate {
                value: Some("two".into()),
                ..update(id)
            },
            // Version 1 was current when the batch was sealed, not when this entry runs.
            SecretUpdate {
                value: Some("three".into()),
                expected_version: Some(1),
                ..update(id)
            },
        ],
    );
    assert!(
        matches!(
            refused,
            Err(StoreError::VersionConflict {
                expected: 1,
                current: 2
            })
        ),
        "{refused:?}"
    );
    let stored = s.get_secret(env, id).unwrap();
    assert_eq!((stored.version, stored.value.as_str()), (1, "one"));
}

#[test]
fn check_and_set_refuses_a_stale_version() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("K", "v1")).unwrap().id;
    let cas = |expected: u64, value: &str| {
        s.update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                value: Some(value.into()),
                expected_version: Some(expected),
                ..update(id)
            }],
        )
    };
    assert_eq!(cas(1, "v2").unwrap()[0].version, 2);
    let err = cas(1, "lost update").unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionConflict {
                expected: 1,
                current: 2
            }
        ),
        "{err:?}"
    );
    let err = cas(7, "from the future").unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionConflict {
            expected: 7,
            current: 2
        }
    ));
    let now = s.get_secret(env, id).unwrap();
    assert_eq!((now.value.as_str(), now.version), ("v2", 2));
}

#[test]
fn an_update_keeps_the_fields_it_does_not_name() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = create_one(
        &s,
        env,
        NewSecret {
            comment: "why".into(),
            tags: vec!["db".into()],
            secret_type: SecretType::Config,
            ..secret_at("/p", "K", "v")
        },
    )
    .unwrap();
    let got = s
        .update_secrets(
            &me(),
            env,
            vec![SecretUpdate {
                value: Some("new".into()),
                ..update(created.id)
            }],
        )
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            got.key.as_str(),
            got.path.as_str(),
            got.comment.as_str(),
            got.tags.clone(),
            got.secret_type
        ),
        ("K", "/p", "why", vec!["db".to_string()], SecretType::Config)
    );
    assert_eq!(
        (got.value.as_str(), got.created_at),
        ("new", created.created_at)
    );
    assert!(got.updated_at >= created.updated_at);
}

#[test]
fn updating_a_secret_of_another_environment_is_not_found() {
    let s = TestStore::new();
    let (_, envs) = s.app("shop");
    let in_staging = create_one(&s, envs[1].id, secret("K", "v")).unwrap().id;
    let err = s
        .update_secrets(&me(), envs[0].id, vec![update(in_staging)])
        .unwrap_err();
    assert!(matches!(err, StoreError::SecretNotFound(id) if id == in_staging));
    let unknown = Uuid::new_v4();
    let err = s
        .update_secrets(&me(), envs[0].id, vec![update(unknown)])
        .unwrap_err();
    assert!(matches!(err, StoreError::SecretNotFound(id) if id == unknown));
    assert!(matches!(
        s.get_secret(envs[0].id, in_staging),
        Err(StoreError::SecretNotFound(_))
    ));
}

// --- delete ----------------------------------------------------------------------------

#[test]
fn deleting_missing_ids_lists_every_one_and_deletes_nothing() {
    let s = TestStore::new();
    let (_, envs) = s.app("shop");
    let env = envs[0].id;
    let here = s
        .create_secrets(&me(), env, vec![secret("A", "a"), secret("B", "b")])
        .unwrap();
    let elsewhere = create_one(&s, envs[1].id, secret("C", "c")).unwrap().id;
    let unknown = Uuid::new_v4();
    let err = s
        .delete_secrets(&me(), env, &[here[0].id, unknown, here[1].id, elsewhere])
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::SecretsNotFound(ids) if *ids == vec![unknown, elsewhere]),
        "{err:?}"
    );
    assert_eq!(all(&s, env).len(), 2);
    assert_eq!(all(&s, envs[1].id).len(), 1);
}

#[test]
fn delete_counts_each_secret_once() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = s
        .create_secrets(
            &me(),
            env,
            vec![secret("A", "a"), secret("B", "b"), secret("C", "c")],
        )
        .unwrap();
    let n = s
        .delete_secrets(&me(), env, &[created[0].id, created[1].id, created[0].id])
        .unwrap();
    assert_eq!(n, 2);
    let left: Vec<String> = all(&s, env).into_iter().map(|s| s.key).collect();
    assert_eq!(left, ["C"]);
    assert!(matches!(
        s.get_secret(env, created[0].id),
        Err(StoreError::SecretNotFound(_))
    ));
}

// --- history ---------------------------------------------------------------------------

#[test]
fn history_keeps_every_version_and_the_deletion() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("K", "one")).unwrap().id;
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some("two".into()),
            ..update(id)
        }],
    )
    .unwrap();
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            key: Some("RENAMED".into()),
            path: Some("/moved".into()),
            ..update(id)
        }],
    )
    .unwrap();
    s.delete_secrets(&me(), env, &[id]).unwrap();

    let history = s.secret_history(env, id).unwrap();
    /// (version, action, path, key, value) of one version.
    type Fields = (u64, VersionAction, String, String, String);
    let seen: Vec<Fields> = history
        .iter()
        .map(|v| {
            let s = &v.secret;
            (
                v.version,
                v.action,
                s.path.clone(),
                s.key.clone(),
                s.value.clone(),
            )
        })
        .collect();
    let version = |n: u64, a: VersionAction, p: &str, k: &str, v: &str| {
        (n, a, p.to_string(), k.to_string(), v.to_string())
    };
    use VersionAction::{Create, Delete, Update};
    assert_eq!(
        seen,
        vec![
            version(1, Create, "/", "K", "one"),
            version(2, Update, "/", "K", "two"),
            version(3, Update, "/moved", "RENAMED", "two"),
            // The deletion carries the content it deleted.
            version(4, Delete, "/moved", "RENAMED", "two"),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));
    // An embedding program writes as no token.
    assert!(history
        .iter()
        .all(|v| v.actor == Some(VersionActor::default())));
    for v in history.iter().map(|v| &v.secret) {
        assert_eq!(v.id, id);
    }
}

#[test]
fn history_of_an_unknown_secret_is_not_found() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let unknown = Uuid::new_v4();
    assert!(matches!(
        s.secret_history(env, unknown),
        Err(StoreError::SecretNotFound(id)) if id == unknown
    ));
}

#[test]
fn history_survives_a_reopen() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("K", "one")).unwrap().id;
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some("two".into()),
            ..update(id)
        }],
    )
    .unwrap();
    let s = s.reopen();
    let values: Vec<String> = s
        .secret_history(env, id)
        .unwrap()
        .into_iter()
        .map(|v| v.secret.value)
        .collect();
    assert_eq!(values, ["one", "two"]);
}

// --- listing ---------------------------------------------------------------------------

fn keys_of(secrets: &[coffer_store::Secret]) -> Vec<(String, String)> {
    secrets
        .iter()
        .map(|s| (s.path.clone(), s.key.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(p, k)| (p.to_string(), k.to_string()))
        .collect()
}

#[test]
fn listings_are_ordered_by_path_then_key() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(
        &me(),
        env,
        vec![
            secret_at("/b", "ALPHA", "v"),
            secret_at("/a/b", "BETA", "v"),
            secret_at("/", "ZULU", "v"),
            secret_at("/a", "BETA", "v"),
            secret_at("/a", "ALPHA", "v"),
            secret_at("/", "ALPHA", "v"),
        ],
    )
    .unwrap();
    assert_eq!(
        keys_of(&all(&s, env)),
        pairs(&[
            ("/", "ALPHA"),
            ("/", "ZULU"),
            ("/a", "ALPHA"),
            ("/a", "BETA"),
            ("/a/b", "BETA"),
            ("/b", "ALPHA"),
        ])
    );
}

#[test]
fn listing_filters_by_exact_normalised_path() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(
        &me(),
        env,
        vec![
            secret_at("/a", "K", "v"),
            secret_at("/a/b", "K", "v"),
            secret_at("/", "K", "v"),
        ],
    )
    .unwrap();
    let by_path = |path: &str| {
        s.list_secrets(
            env,
            &SecretFilter {
                path: Some(path.into()),
                ..Default::default()
            },
        )
    };
    assert_eq!(keys_of(&by_path("a/").unwrap()), pairs(&[("/a", "K")]));
    assert_eq!(keys_of(&by_path("/").unwrap()), pairs(&[("/", "K")]));
    // An empty path lists every path, as Phase does.
    assert_eq!(
        keys_of(&by_path("").unwrap()),
        pairs(&[("/", "K"), ("/a", "K"), ("/a/b", "K")])
    );
    assert!(by_path("/nowhere").unwrap().is_empty());
    assert!(matches!(by_path("/a/.."), Err(StoreError::InvalidPath(p)) if p == "/a/.."));
}

#[test]
fn listing_filters_by_key_in_any_case() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(
        &me(),
        env,
        vec![
            secret_at("/x", "DB_URL", "1"),
            secret_at("/y", "DB_URL", "2"),
            secret("DB_USER", "3"),
        ],
    )
    .unwrap();
    let got = s
        .list_secrets(
            env,
            &SecretFilter {
                key: Some("db_url".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(keys_of(&got), pairs(&[("/x", "DB_URL"), ("/y", "DB_URL")]));
}

#[test]
fn listing_by_tags_matches_any_tag_once() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(
        &me(),
        env,
        vec![
            tagged("BOTH", vec!["db".into(), "prod".into()]),
            tagged("DB", vec!["db".into()]),
            tagged("NONE", vec![]),
            tagged("OTHER", vec!["cache".into()]),
        ],
    )
    .unwrap();
    let by_tags = |tags: &[&str]| {
        let filter = SecretFilter {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        let listed = s.list_secrets(env, &filter).unwrap();
        listed.into_iter().map(|s| s.key).collect::<Vec<_>>()
    };
    assert_eq!(by_tags(&["db", "prod"]), ["BOTH", "DB"]);
    assert_eq!(by_tags(&["prod"]), ["BOTH"]);
    assert_eq!(by_tags(&["cache", "db"]), ["BOTH", "DB", "OTHER"]);
    assert!(by_tags(&["nothing"]).is_empty());
}

#[test]
fn listing_filters_combine() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(
        &me(),
        env,
        vec![
            NewSecret {
                tags: vec!["t".into()],
                ..secret_at("/a", "K", "hit")
            },
            secret_at("/a", "K2", "other key"),
            NewSecret {
                tags: vec!["t".into()],
                ..secret_at("/b", "K", "other path")
            },
        ],
    )
    .unwrap();
    let got = s
        .list_secrets(
            env,
            &SecretFilter {
                path: Some("/a".into()),
                key: Some("k".into()),
                tags: vec!["t".into()],
            },
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value, "hit");
}

#[test]
fn listing_returns_every_field_as_stored() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let created = create_one(
        &s,
        env,
        NewSecret {
            comment: "c".into(),
            tags: vec!["t".into()],
            secret_type: SecretType::Sealed,
            ..secret_at("/p", "k", "v")
        },
    )
    .unwrap();
    assert_eq!(created.key_digest, s.key_digest("K"));
    assert_eq!(created.env_id, env);
    assert_eq!(all(&s, env), vec![created.clone()]);
    assert_eq!(s.get_secret(env, created.id).unwrap(), created);
}

#[test]
fn a_store_that_kept_the_current_version_in_history_too_lists_it_once() {
    // Stores written before each version was stored once hold the current version in
    // the history tree as well as in the secrets tree.
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let id = create_one(&s, env, secret("K", "one")).unwrap().id;
    s.update_secrets(
        &me(),
        env,
        vec![SecretUpdate {
            value: Some("two".into()),
            ..update(id)
        }],
    )
    .unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    // Those stores are of format 1 (records without tags), migrated at open.
    common::rewrite_as_format_1(dir.path());
    {
        let db = common::open_raw_sled(dir.path());
        let record_key = [env.as_bytes().as_slice(), id.as_bytes()].concat();
        let version_key = |v: u64| [record_key.as_slice(), &v.to_be_bytes()].concat();
        let history = db.open_tree("history").unwrap();
        assert!(history.get(version_key(2)).unwrap().is_none());
        let first = history.get(version_key(1)).unwrap().unwrap();
        let current = db.open_tree("secrets").unwrap().get(&record_key).unwrap();
        let current = current.unwrap();
        // The current record without what the second layout adds: the action (an
        // update, bincode's variant 1 as a u32) and the writer (`Some` embedding
        // program: no token id, no kind).
        let suffix = [1u8, 0, 0, 0, 1, 0, 0];
        let body = &current[1..];
        let body = body
            .strip_suffix(&suffix[..])
            .expect("action and writer last");
        // The old layout of version 2: layout byte, `Some`, the record, then a time.
        let old_layout = [&[1u8, 1][..], body, &first[first.len() - 8..]].concat();
        history.insert(version_key(2), old_layout).unwrap();
        db.flush().unwrap();
    }
    let s = TestStore::open_in(dir);
    let versions: Vec<(u64, String)> = s
        .secret_history(env, id)
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.secret.value))
        .collect();
    assert_eq!(versions, [(1, "one".to_string()), (2, "two".to_string())]);
}
