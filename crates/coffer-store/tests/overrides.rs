//! Personal overrides (API.md, "Secrets"): a User token's own value for a secret, kept
//! for that token alone, sealed at rest, written with its batch, gone with its secret,
//! environment, app or token.

mod common;

use coffer_store::{
    Actor, ListPage, NewSecret, NewToken, OverrideChange, OverrideInput, Permissions,
    PersonalOverride, Secret, SecretFilter, SecretUpdate, StoreError, TokenKind,
};
use common::{files_holding, me, secret, update, TestStore};
use rand::RngCore;
use uuid::Uuid;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new token of `kind` as an actor (a Service token scoped to `app` and `env`).
fn token_actor(s: &TestStore, kind: TokenKind, scope: Option<(Uuid, Uuid)>) -> Actor {
    let (token, _) = s
        .create_token(
            &me(),
            NewToken {
                name: format!("t{}", random_hex(4)),
                kind,
                app_id: scope.map(|(app, _)| app),
                environments: scope
                    .map(|(_, env)| vec![env.to_string()])
                    .unwrap_or_default(),
                permissions: Permissions::ALL,
                expires_at: None,
                allowed_ips: Vec::new(),
            },
        )
        .unwrap();
    Actor {
        token_id: Some(token.id),
        kind: Some(kind),
        ..Actor::default()
    }
}

fn user(s: &TestStore) -> Actor {
    token_actor(s, TokenKind::User, None)
}

fn with_override(key: &str, value: &str, personal: &str, is_active: bool) -> NewSecret {
    NewSecret {
        personal_override: Some(OverrideInput {
            value: personal.into(),
            is_active,
        }),
        ..secret(key, value)
    }
}

fn set(value: &str, is_active: bool) -> OverrideChange {
    OverrideChange::Set(OverrideInput {
        value: value.into(),
        is_active,
    })
}

/// Every secret of the environment as `viewer` lists it.
fn listed(s: &TestStore, env: Uuid, viewer: &Actor) -> Vec<Secret> {
    let page = s
        .list_page(
            env,
            &SecretFilter::default(),
            &ListPage::default(),
            viewer.override_owner(),
        )
        .unwrap();
    page.entries
        .into_iter()
        .map(|entry| s.open_listed(entry).unwrap())
        .collect()
}

fn override_of(s: &TestStore, env: Uuid, viewer: &Actor, id: Uuid) -> Option<PersonalOverride> {
    listed(s, env, viewer)
        .into_iter()
        .find(|secret| secret.id == id)
        .expect("the secret is listed")
        .personal_override
}

/// Closes the store and counts the records of its overrides tree on disk.
fn stored_overrides(s: TestStore) -> usize {
    let TestStore { store, dir } = s;
    drop(store);
    let db = common::open_raw_sled(dir.path());
    db.open_tree("overrides").unwrap().len()
}

#[test]
fn the_owner_sees_its_override_and_no_other_token_does() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let (alice, bob) = (user(&s), user(&s));
    let created = s
        .create_secrets(
            &alice,
            env,
            vec![
                with_override("DB_URL", "shared", "mine", true),
                secret("PLAIN", "p"),
            ],
        )
        .unwrap();
    let id = created[0].id;
    assert_eq!(created[0].value, "shared");
    let answered = created[0]
        .personal_override
        .clone()
        .expect("shown to its owner");
    assert_eq!(
        (answered.value.as_str(), answered.is_active),
        ("mine", true)
    );
    assert_eq!(created[1].personal_override, None);

    assert_eq!(override_of(&s, env, &alice, id), Some(answered.clone()));
    assert_eq!(override_of(&s, env, &bob, id), None);
    assert_eq!(override_of(&s, env, &me(), id), None);
    for viewer in [&alice, &bob] {
        let shown = listed(&s, env, viewer);
        assert!(shown.iter().all(|secret| secret.value != "mine"));
    }
    assert_eq!(s.get_secret(env, id).unwrap().personal_override, None);

    // Another token's update shows it nothing and leaves it in place.
    let by_bob = s
        .update_secrets(
            &bob,
            env,
            vec![SecretUpdate {
                value: Some("rotated".into()),
                ..update(id)
            }],
        )
        .unwrap();
    assert_eq!(by_bob[0].personal_override, None);
    // The owner's update without a change shows it as it was.
    let by_alice = s
        .update_secrets(
            &alice,
            env,
            vec![SecretUpdate {
                comment: Some("c".into()),
                ..update(id)
            }],
        )
        .unwrap();
    assert_eq!(by_alice[0].value, "rotated");
    assert_eq!(by_alice[0].personal_override, Some(answered));
}

#[test]
fn an_update_sets_replaces_and_removes_the_callers_override() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let (alice, bob) = (user(&s), user(&s));
    let id = s
        .create_secrets(&alice, env, vec![secret("K", "shared")])
        .unwrap()[0]
        .id;
    let change = |actor: &Actor, personal_override: OverrideChange| {
        s.update_secrets(
            actor,
            env,
            vec![SecretUpdate {
                personal_override,
                ..update(id)
            }],
        )
        .unwrap()
        .remove(0)
    };
    let first = change(&alice, set("a1", true)).personal_override.unwrap();
    let bobs = change(&bob, set("b1", false)).personal_override.unwrap();
    assert_ne!(first.id, bobs.id);
    let replaced = change(&alice, set("a2", false)).personal_override.unwrap();
    assert_eq!(
        (replaced.id, replaced.created_at),
        (first.id, first.created_at)
    );
    assert_eq!((replaced.value.as_str(), replaced.is_active), ("a2", false));
    assert!(replaced.updated_at >= first.updated_at);
    assert_eq!(override_of(&s, env, &alice, id), Some(replaced));

    assert_eq!(
        change(&alice, OverrideChange::Remove).personal_override,
        None
    );
    assert_eq!(override_of(&s, env, &alice, id), None);
    // Removing one token's override leaves the other's.
    assert_eq!(override_of(&s, env, &bob, id), Some(bobs));
    assert_eq!(s.get_secret(env, id).unwrap().value, "shared");
}

#[test]
fn only_a_user_token_s_override_is_kept() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let env = envs[0].id;
    let service = token_actor(&s, TokenKind::Service, Some((app, env)));
    let alice = user(&s);
    let created = s
        .create_secrets(
            &service,
            env,
            vec![with_override("A", "shared", "ignored", true)],
        )
        .unwrap();
    assert_eq!(created[0].personal_override, None);
    let updated = s
        .update_secrets(
            &service,
            env,
            vec![SecretUpdate {
                personal_override: set("ignored too", true),
                ..update(created[0].id)
            }],
        )
        .unwrap();
    assert_eq!(updated[0].personal_override, None);
    let embedded = s
        .create_secrets(&me(), env, vec![with_override("B", "shared", "x", true)])
        .unwrap();
    assert_eq!(embedded[0].personal_override, None);
    assert_eq!(override_of(&s, env, &alice, created[0].id), None);
    assert_eq!(stored_overrides(s), 0);
}

#[test]
fn no_override_value_reaches_the_data_files_in_clear() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let alice = user(&s);
    let on_create = format!("created-{}", random_hex(16));
    let on_update = format!("updated-{}", random_hex(16));
    let path_marker = format!("path{}", random_hex(8));
    let id = s
        .create_secrets(
            &alice,
            env,
            vec![NewSecret {
                path: format!("/{path_marker}"),
                ..with_override("K", "shared", &on_create, true)
            }],
        )
        .unwrap()[0]
        .id;
    // A second secret keeps the first value on disk as a live record, not only as
    // a replaced one.
    s.create_secrets(
        &alice,
        env,
        vec![with_override("K2", "v", &on_create, true)],
    )
    .unwrap();
    s.update_secrets(
        &alice,
        env,
        vec![SecretUpdate {
            personal_override: set(&on_update, true),
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
    for clear in [&on_create, &on_update] {
        let found = files_holding(dir.path(), clear.as_bytes());
        assert!(found.is_empty(), "an override value in clear in {found:?}");
    }
}

#[test]
fn overrides_go_with_their_secret() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let (alice, bob) = (user(&s), user(&s));
    let created = s
        .create_secrets(
            &alice,
            env,
            vec![
                with_override("GONE", "v", "a", true),
                with_override("KEPT", "v", "a", true),
            ],
        )
        .unwrap();
    let (gone, kept) = (created[0].id, created[1].id);
    s.update_secrets(
        &bob,
        env,
        vec![SecretUpdate {
            personal_override: set("b", true),
            ..update(gone)
        }],
    )
    .unwrap();
    assert_eq!(s.delete_secrets(&me(), env, &[gone]).unwrap(), 1);
    assert!(override_of(&s, env, &alice, kept).is_some());
    // Only the kept secret's override is left on disk: both tokens' of the deleted
    // one went with it.
    assert_eq!(stored_overrides(s), 1);
}

#[test]
fn overrides_go_with_their_environment_and_app() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let other = s.dev_env("other");
    let alice = user(&s);
    for env in [envs[0].id, envs[1].id, other] {
        s.create_secrets(&alice, env, vec![with_override("K", "v", "o", true)])
            .unwrap();
    }
    s.delete_environment(&me(), envs[0].id).unwrap();
    let s = {
        let TestStore { store, dir } = s;
        drop(store);
        let db = common::open_raw_sled(dir.path());
        assert_eq!(db.open_tree("overrides").unwrap().len(), 2);
        drop(db);
        TestStore::open_in(dir)
    };
    s.delete_app(&me(), app).unwrap();
    let id = listed(&s, other, &alice)[0].id;
    assert!(override_of(&s, other, &alice, id).is_some());
    assert_eq!(stored_overrides(s), 1);
}

#[test]
fn revoking_a_token_deletes_its_overrides() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let (alice, bob) = (user(&s), user(&s));
    let id = s
        .create_secrets(&alice, env, vec![with_override("K", "v", "a", true)])
        .unwrap()[0]
        .id;
    s.update_secrets(
        &bob,
        env,
        vec![SecretUpdate {
            personal_override: set("b", true),
            ..update(id)
        }],
    )
    .unwrap();
    s.revoke_token(&me(), alice.token_id.unwrap()).unwrap();
    assert_eq!(override_of(&s, env, &alice, id), None);
    assert!(override_of(&s, env, &bob, id).is_some());
    assert_eq!(stored_overrides(s), 1);
}

#[test]
fn an_override_is_written_with_its_batch_or_not_at_all() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let alice = user(&s);
    let existing = s
        .create_secrets(&alice, env, vec![secret("TAKEN", "v")])
        .unwrap()[0]
        .id;
    // The second entry is a duplicate: the first one's override must not land.
    let failed = s.create_secrets(
        &alice,
        env,
        vec![
            with_override("NEW", "v", "o", true),
            secret("TAKEN", "again"),
        ],
    );
    assert!(matches!(failed, Err(StoreError::DuplicateSecret)));
    // An update batch failing on its second entry leaves the first's override unset.
    let failed = s.update_secrets(
        &alice,
        env,
        vec![
            SecretUpdate {
                personal_override: set("o", true),
                ..update(existing)
            },
            update(Uuid::new_v4()),
        ],
    );
    assert!(matches!(failed, Err(StoreError::SecretNotFound(_))));
    assert_eq!(override_of(&s, env, &alice, existing), None);
    assert_eq!(listed(&s, env, &alice).len(), 1);
    assert_eq!(stored_overrides(s), 0);
}

#[test]
fn the_override_value_counts_against_the_value_limit() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let alice = user(&s);
    let limit = coffer_store::limits::MAX_VALUE_BYTES;
    let too_large = "x".repeat(limit + 1);
    let refused = s.create_secrets(&alice, env, vec![with_override("K", "v", &too_large, true)]);
    assert!(matches!(
        refused,
        Err(StoreError::FieldTooLarge {
            field: "override.value",
            ..
        })
    ));
    let at_limit = "x".repeat(limit);
    let created = s
        .create_secrets(&alice, env, vec![with_override("K", "v", &at_limit, true)])
        .unwrap();
    assert_eq!(
        created[0].personal_override.as_ref().unwrap().value.len(),
        limit
    );
}

#[test]
fn a_listing_opened_late_still_shows_the_override() {
    // Past 1 MiB of decrypted values a listing keeps entries sealed until their turn:
    // the override must come back with them.
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let alice = user(&s);
    let big = "v".repeat(60 * 1024);
    let batch: Vec<NewSecret> = (0..24)
        .map(|i| with_override(&format!("K{i:02}"), &big, &format!("mine-{i}"), true))
        .collect();
    s.create_secrets(&alice, env, batch).unwrap();
    let shown = listed(&s, env, &alice);
    assert_eq!(shown.len(), 24);
    for (i, secret) in shown.iter().enumerate() {
        let personal = secret
            .personal_override
            .as_ref()
            .expect("every one has its override");
        assert_eq!(personal.value, format!("mine-{i}"));
    }
}
