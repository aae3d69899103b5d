//! API tokens (API.md, "Authentication" and "Tokens"): only hashes are stored, service
//! tokens are scoped, revocation and expiry take effect at once.

mod common;

use std::sync::Barrier;

use coffer_store::{
    token_hash, AuditAction, AuditQuery, IssuedToken, NewToken, Permissions, StoreError, Timestamp,
    TokenKind,
};
use common::{me, TestStore};
use uuid::Uuid;

fn user_token(name: &str) -> NewToken {
    NewToken {
        name: name.into(),
        kind: TokenKind::User,
        app_id: None,
        environments: vec![],
        permissions: Permissions::default(),
        expires_at: None,
        allowed_ips: vec![],
    }
}

fn service_token(app_id: Uuid, envs: &[&str]) -> NewToken {
    NewToken {
        name: "ci".into(),
        kind: TokenKind::Service,
        app_id: Some(app_id),
        environments: envs.iter().map(|e| e.to_string()).collect(),
        permissions: Permissions {
            read: true,
            ..Default::default()
        },
        ..user_token("ci")
    }
}

fn is_token_format(token: &str) -> bool {
    token.len() == 64 && token.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

#[test]
fn a_token_is_64_lowercase_hex_and_only_its_hash_is_stored() {
    let s = TestStore::new();
    let (record, token) = s.create_token(&me(), user_token("admin")).unwrap();
    assert!(is_token_format(&token), "{}", &*token);
    assert_eq!(record.hash, token_hash(&token));
    let stored = s.get_token(record.id).unwrap();
    assert_eq!(stored, record);
    assert_eq!(s.list_tokens().unwrap(), vec![record]);
}

#[test]
fn a_token_authenticates_as_itself() {
    let s = TestStore::new();
    let (record, token) = s.create_token(&me(), user_token("admin")).unwrap();
    let found = s.authenticate(&token).unwrap().expect("live token");
    assert_eq!((found.id, found.kind), (record.id, TokenKind::User));
    assert!(s.get_token(record.id).unwrap().last_used_at.is_some());
    assert!(s.authenticate(&"0".repeat(64)).unwrap().is_none());
    assert!(s.authenticate("").unwrap().is_none());
}

#[test]
fn a_user_token_may_do_everything() {
    let s = TestStore::new();
    let (record, _) = s.create_token(&me(), user_token("admin")).unwrap();
    assert_eq!(record.permissions, Permissions::ALL);
    assert_eq!((record.app_id, record.env_ids.len()), (None, 0));
}

#[test]
fn a_service_token_needs_an_app_and_an_environment() {
    let s = TestStore::new();
    let (app, _) = s.app("shop");
    let no_app = NewToken {
        app_id: None,
        ..service_token(app, &["development"])
    };
    assert!(matches!(
        s.create_token(&me(), no_app),
        Err(StoreError::ServiceTokenScopeMissing)
    ));
    assert!(matches!(
        s.create_token(&me(), service_token(app, &[])),
        Err(StoreError::ServiceTokenScopeMissing)
    ));
    let err = s
        .create_token(&me(), service_token(app, &["qa"]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::EnvironmentNotFound { name, .. } if name == "qa"),
        "{err:?}"
    );
    let unknown = Uuid::new_v4();
    assert!(matches!(
        s.create_token(&me(), service_token(unknown, &["development"])),
        Err(StoreError::AppNotFound(id)) if id == unknown
    ));
    assert!(s.list_tokens().unwrap().is_empty());
}

#[test]
fn a_service_token_is_scoped_to_environments_named_or_by_id() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let staging_id = envs[1].id.to_string();
    let (record, token) = s
        .create_token(
            &me(),
            service_token(app, &["DEVELOPMENT", &staging_id, "development"]),
        )
        .unwrap();
    assert_eq!(record.kind, TokenKind::Service);
    assert_eq!(record.app_id, Some(app));
    assert_eq!(record.env_ids, vec![envs[0].id, envs[1].id]);
    let read_only = Permissions {
        read: true,
        ..Default::default()
    };
    assert_eq!(record.permissions, read_only);
    assert_eq!(
        s.authenticate(&token).unwrap().unwrap().env_ids,
        record.env_ids
    );
}

#[test]
fn token_names_are_1_to_64_characters() {
    let s = TestStore::new();
    for bad in ["", "  ", " ops", "new\nline", &"n".repeat(65)] {
        assert!(
            matches!(
                s.create_token(&me(), user_token(bad)),
                Err(StoreError::InvalidTokenName)
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        s.create_token(&me(), user_token(&"n".repeat(64)))
            .unwrap()
            .0
            .name,
        "n".repeat(64)
    );
    assert_eq!(
        s.create_token(&me(), user_token("ci deploy"))
            .unwrap()
            .0
            .name,
        "ci deploy"
    );
}

#[test]
fn a_revoked_token_stops_authenticating_at_once() {
    let s = TestStore::new();
    let (record, token) = s.create_token(&me(), user_token("admin")).unwrap();
    let (_, other) = s.create_token(&me(), user_token("other")).unwrap();
    assert!(s.authenticate(&token).unwrap().is_some());
    s.revoke_token(&me(), record.id).unwrap();
    assert!(s.authenticate(&token).unwrap().is_none());
    assert!(s.get_token(record.id).unwrap().revoked);
    assert!(s.authenticate(&other).unwrap().is_some());
    let s = s.reopen();
    assert!(s.authenticate(&token).unwrap().is_none());
    assert!(s.authenticate(&other).unwrap().is_some());
}

#[test]
fn revoking_an_unknown_token_is_not_found() {
    let s = TestStore::new();
    let unknown = Uuid::new_v4();
    assert!(matches!(
        s.revoke_token(&me(), unknown),
        Err(StoreError::TokenNotFound(id)) if id == unknown
    ));
}

#[test]
fn an_expired_token_does_not_authenticate() {
    let s = TestStore::new();
    let now = Timestamp::now().as_micros();
    let expiring = |name: &str, at: i64| NewToken {
        expires_at: Some(Timestamp(at)),
        ..user_token(name)
    };
    let (_, past) = s
        .create_token(&me(), expiring("past", now - 1_000_000))
        .unwrap();
    let (_, future) = s
        .create_token(&me(), expiring("future", now + 3_600_000_000))
        .unwrap();
    assert!(s.authenticate(&past).unwrap().is_none());
    assert!(s.authenticate(&future).unwrap().is_some());
}

#[test]
fn a_token_that_expires_while_cached_stops_authenticating() {
    let s = TestStore::new();
    let at = Timestamp::now().as_micros() + 300_000;
    let (_, token) = s
        .create_token(
            &me(),
            NewToken {
                expires_at: Some(Timestamp(at)),
                ..user_token("short")
            },
        )
        .unwrap();
    assert!(s.authenticate(&token).unwrap().is_some());
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(s.authenticate(&token).unwrap().is_none());
}

#[test]
fn tokens_survive_a_reopen() {
    let s = TestStore::new();
    let (record, token) = s.create_token(&me(), user_token("admin")).unwrap();
    let s = s.reopen();
    assert_eq!(s.authenticate(&token).unwrap().unwrap().id, record.id);
}

#[test]
fn initialize_creates_the_first_user_token_once() {
    let s = TestStore::new();
    let token = s.initialize().unwrap().expect("first initialisation");
    assert!(is_token_format(&token));
    let found = s.authenticate(&token).unwrap().unwrap();
    assert_eq!(found.kind, TokenKind::User);
    assert_eq!(s.initialize().unwrap(), None);
    let s = s.reopen();
    assert_eq!(s.initialize().unwrap(), None);
    assert!(s.authenticate(&token).unwrap().is_some());
    assert_eq!(s.list_tokens().unwrap().len(), 1);
}

#[test]
fn concurrent_initialisations_make_one_token_and_one_audit_entry() {
    let s = TestStore::new();
    let barrier = Barrier::new(8);
    let made: Vec<Option<IssuedToken>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    s.initialize().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(made.iter().flatten().count(), 1, "{made:?}");
    assert_eq!(s.list_tokens().unwrap().len(), 1);
    let entries = s
        .list_audit(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .entries;
    let actions: Vec<AuditAction> = entries.iter().map(|e| e.action).collect();
    assert_eq!(actions, [AuditAction::TokenCreate]);
    assert_eq!(entries[0].secret_ids, [s.list_tokens().unwrap()[0].id]);
}

#[test]
fn listing_and_reading_tokens_while_others_are_created_and_revoked_sees_each_whole() {
    // A token's record and its hash entry change in one transaction; a listing or a read
    // that saw one before the change and the other after it would report tampering.
    const WRITES: usize = 40;
    let s = TestStore::new();
    let first = s.create_token(&me(), user_token("first")).unwrap().0.id;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..WRITES {
                let (token, _) = s.create_token(&me(), user_token(&format!("t{i}"))).unwrap();
                s.revoke_token(&me(), token.id).unwrap();
            }
            s.revoke_token(&me(), first).unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            s.list_tokens().unwrap();
            for token in s.list_tokens().unwrap() {
                s.get_token(token.id).unwrap();
            }
        }
    });
    let tokens = s.list_tokens().unwrap();
    assert_eq!(tokens.len(), WRITES + 1);
    assert!(tokens.iter().all(|t| t.revoked));
}

#[test]
fn a_revoked_token_is_refused_once_revoke_returns_while_lookups_fill_the_cache() {
    // Lookups read the backend without the cache's lock; one that read the token before
    // its revocation committed must not put it back into the cache afterwards. Each
    // round starts the lookups with the revocation, so their first fills race it.
    const ROUNDS: usize = 40;
    const LOOKUPS: usize = 3;
    let s = TestStore::new();
    for round in 0..ROUNDS {
        let (record, token) = s
            .create_token(&me(), user_token(&format!("round {round}")))
            .unwrap();
        let token = token.token;
        let start = Barrier::new(LOOKUPS + 1);
        let revoked = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..LOOKUPS {
                scope.spawn(|| {
                    start.wait();
                    loop {
                        let after_revoke = revoked.load(std::sync::atomic::Ordering::SeqCst);
                        // Never an error: a revocation between a lookup's reads is not
                        // tampering.
                        let found = s.authenticate(&token).unwrap();
                        if after_revoke {
                            assert!(found.is_none(), "round {round}: revoked, yet found");
                            break;
                        }
                    }
                });
            }
            start.wait();
            let revocation = s.revoke_token(&me(), record.id);
            // Set even if the revocation failed, so that the lookups stop.
            revoked.store(true, std::sync::atomic::Ordering::SeqCst);
            revocation.unwrap();
            for _ in 0..100 {
                assert!(s.authenticate(&token).unwrap().is_none(), "round {round}");
                assert!(
                    !matches!(s.authenticate_cached(&token), Some(Some(_))),
                    "round {round}: the cache answered a revoked token"
                );
            }
        });
    }
}

#[test]
fn concurrent_authentications_record_the_last_use_and_then_answer_from_the_cache() {
    // Last use is kept to the minute and written by the lookup that finds it due first,
    // without the cache's lock; the others go on meanwhile. Once it is written, the
    // cache answers alone.
    const LOOKUPS: usize = 8;
    let s = TestStore::new();
    let (record, token) = s.create_token(&me(), user_token("busy")).unwrap();
    let start = Barrier::new(LOOKUPS);
    std::thread::scope(|scope| {
        for _ in 0..LOOKUPS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..50 {
                    let found = s.authenticate(&token.token).unwrap().unwrap();
                    assert_eq!(found.id, record.id);
                }
            });
        }
    });
    let stored = s.get_token(record.id).unwrap();
    let used = stored.last_used_at.expect("the last use is recorded");
    assert!(used >= stored.created_at);
    // Recorded: the cache now answers without another write.
    assert!(matches!(s.authenticate_cached(&token.token), Some(Some(_))));
}
