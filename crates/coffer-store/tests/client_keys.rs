//! Key material for the Phase clients (API.md, "Phase clients"; PHASE-CLIENTS.md §1, §3,
//! §4): every environment has a seed and a salt from its creation, every token a key
//! pair whose secret half only the holder of its `phaseToken` can rebuild.

mod common;

use coffer_store::phase_crypto::{self, decode_key, KxKeyPair};
use coffer_store::{IssuedToken, NewToken, Permissions, StoreError, TokenKind};
use common::{me, open_raw_sled, TestStore};
use uuid::Uuid;
use zeroize::Zeroizing;

fn token(kind: TokenKind, app_id: Option<Uuid>) -> NewToken {
    NewToken {
        name: "ci".into(),
        kind,
        app_id,
        environments: match kind {
            TokenKind::Service => vec!["development".into()],
            TokenKind::User => vec![],
        },
        permissions: Permissions::ALL,
        expires_at: None,
        allowed_ips: vec![],
    }
}

/// What a Phase client does with a token (PHASE-CLIENTS.md §1): split it into fields,
/// unwrap the kept share with the wrap key, and join the shares into the secret key.
fn rebuild_key_pair(issued: &IssuedToken, wrapped_share: &str) -> (Vec<String>, KxKeyPair) {
    let fields: Vec<String> = issued.phase_token.split(':').map(str::to_owned).collect();
    assert_eq!(
        fields.len(),
        6,
        "prefix, version, token, public key, share0, wrap key"
    );
    let share0 = decode_key(&fields[4]).unwrap();
    let wrap_key = decode_key(&fields[5]).unwrap();
    let share1 = phase_crypto::unwrap_share(wrapped_share, &wrap_key).unwrap();
    let secret = phase_crypto::join_shares(&share0, &share1);
    (fields, KxKeyPair::from_secret(Zeroizing::new(*secret)))
}

#[test]
fn a_service_token_is_issued_in_the_phase_form_around_the_same_bearer_secret() {
    let s = TestStore::new();
    let (app, _) = s.app("shop");
    let (record, issued) = s
        .create_token(&me(), token(TokenKind::Service, Some(app)))
        .unwrap();
    let kept = s.token_keys(record.id).unwrap().expect("key material kept");
    let (fields, pair) = rebuild_key_pair(&issued, &kept.wrapped_share);
    assert_eq!(
        (fields[0].as_str(), fields[1].as_str()),
        ("pss_service", "v2")
    );
    assert_eq!(
        fields[2], *issued.token,
        "the bearer part is the token itself"
    );
    assert_eq!(fields[3], hex::encode(kept.public));
    assert_eq!(
        pair.public, kept.public,
        "the shares join into the key of field 4"
    );
    assert_eq!(kept.wrapped_share.len(), 208);
    assert!(s.authenticate(&issued.token).unwrap().is_some());
}

#[test]
fn a_user_token_and_the_first_admin_token_are_pss_user_v1() {
    let s = TestStore::new();
    let admin = s.initialize().unwrap().expect("a new store initialises");
    assert!(admin
        .phase_token
        .starts_with(&format!("pss_user:v1:{}:", *admin.token)));
    let (record, issued) = s.create_token(&me(), token(TokenKind::User, None)).unwrap();
    let kept = s.token_keys(record.id).unwrap().unwrap();
    let (fields, pair) = rebuild_key_pair(&issued, &kept.wrapped_share);
    assert_eq!((fields[0].as_str(), fields[1].as_str()), ("pss_user", "v1"));
    assert_eq!(pair.public, kept.public);
}

#[test]
fn no_two_tokens_share_key_material_and_the_store_keeps_no_share0_or_wrap_key() {
    let s = TestStore::new();
    let (a, issued_a) = s.create_token(&me(), token(TokenKind::User, None)).unwrap();
    let (b, issued_b) = s.create_token(&me(), token(TokenKind::User, None)).unwrap();
    let (ka, kb) = (
        s.token_keys(a.id).unwrap().unwrap(),
        s.token_keys(b.id).unwrap().unwrap(),
    );
    assert_ne!(ka.public, kb.public);
    let dir = s.dir.path().to_owned();
    let store = s.reopen();
    drop(store.store);
    let db = open_raw_sled(&dir);
    for issued in [&issued_a, &issued_b] {
        let fields: Vec<&str> = issued.phase_token.split(':').collect();
        for secret_field in [fields[2], fields[4], fields[5]] {
            let bytes = hex::decode(secret_field).unwrap();
            for name in db.tree_names() {
                let tree = db.open_tree(&name).unwrap();
                for pair in tree.iter() {
                    let (k, v) = pair.unwrap();
                    assert!(
                        !k.windows(32).any(|w| w == bytes) && !v.windows(32).any(|w| w == bytes),
                        "a token secret, share0 or wrap key is stored"
                    );
                    let text = secret_field.as_bytes();
                    assert!(
                        !v.windows(64).any(|w| w == text),
                        "hex of a secret is stored"
                    );
                }
            }
        }
    }
}

#[test]
fn every_environment_has_its_own_seed_and_salt_from_its_creation() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let added = s.create_environment(&me(), app, "qa").unwrap();
    let mut publics = Vec::new();
    for env in envs.iter().chain([&added]) {
        let keys = s.environment_keys(env.id).unwrap();
        assert_eq!(keys.seed_hex().len(), 64);
        assert_eq!(keys.salt_hex().len(), 64);
        assert_ne!(*keys.seed_hex(), *keys.salt_hex());
        let pair = keys.key_pair();
        assert_eq!(
            pair.public,
            KxKeyPair::from_seed(&decode_key(&keys.seed_hex()).unwrap()).public
        );
        publics.push(pair.public);
    }
    publics.sort();
    publics.dedup();
    assert_eq!(publics.len(), 4, "no two environments share a key pair");
}

#[test]
fn environment_keys_survive_a_reopen_unchanged() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let before = s.environment_keys(env).unwrap().seed_hex();
    let s = s.reopen();
    assert_eq!(*s.environment_keys(env).unwrap().seed_hex(), *before);
}

#[test]
fn deleting_an_environment_or_an_app_removes_its_keys() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    s.delete_environment(&me(), envs[0].id).unwrap();
    assert!(matches!(
        s.environment_keys(envs[0].id),
        Err(StoreError::EnvironmentIdNotFound(_))
    ));
    let (token_record, _) = s
        .create_token(&me(), {
            let mut t = token(TokenKind::Service, Some(app));
            t.environments = vec!["staging".into()];
            t
        })
        .unwrap();
    s.delete_app(&me(), app).unwrap();
    for env in &envs[1..] {
        assert!(s.environment_keys(env.id).is_err());
    }
    assert_eq!(s.token_keys(token_record.id).unwrap(), None);
}

#[test]
fn a_revoked_token_loses_its_wrapped_share() {
    let s = TestStore::new();
    let (record, _) = s.create_token(&me(), token(TokenKind::User, None)).unwrap();
    s.revoke_token(&me(), record.id).unwrap();
    assert_eq!(s.token_keys(record.id).unwrap(), None);
}

#[test]
fn a_store_made_before_environment_keys_gets_them_once_at_open() {
    let s = TestStore::new();
    let (_, envs) = s.app("shop");
    let kept = s.environment_keys(envs[1].id).unwrap().seed_hex();
    let dir = s.dir.path().to_owned();
    let TestStore {
        store,
        dir: tempdir,
    } = s;
    drop(store);
    {
        // As a store of an earlier release: no key material for two environments.
        let db = open_raw_sled(&dir);
        let tree = db.open_tree("client_keys").unwrap();
        for env in [&envs[0], &envs[2]] {
            let mut key = vec![b'e'];
            key.extend_from_slice(env.id.as_bytes());
            assert!(tree.remove(key).unwrap().is_some());
        }
        db.flush().unwrap();
    }
    let s = TestStore::open_in(tempdir);
    let filled = s.environment_keys(envs[0].id).unwrap().seed_hex();
    assert_eq!(*s.environment_keys(envs[1].id).unwrap().seed_hex(), *kept);
    assert!(s.environment_keys(envs[2].id).is_ok());
    let s = s.reopen();
    assert_eq!(
        *s.environment_keys(envs[0].id).unwrap().seed_hex(),
        *filled,
        "filled once, not again at every open"
    );
}
