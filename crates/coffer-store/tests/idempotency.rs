//! Kept answers of idempotent requests: kept in the transaction of the write they
//! answer (or not at all), per token, durable, and deleted 24 hours later.

mod common;

use coffer_store::{
    AnswerToKeep, IdempotentRequest, Secret, StoreError, Timestamp, KEPT_ANSWER_LIFETIME_MICROS,
};
use common::{me, secret, TestStore};
use uuid::Uuid;

fn request(token_id: Uuid, key: &str) -> IdempotentRequest {
    IdempotentRequest {
        token_id,
        key: key.into(),
        fingerprint: [7; 32],
    }
}

/// Renders a batch's answer as its keys, comma-separated.
#[allow(clippy::ptr_arg)]
fn keys(secrets: &Vec<Secret>) -> (u16, Vec<u8>) {
    let keys: Vec<&str> = secrets.iter().map(|s| s.key.as_str()).collect();
    (200, keys.join(",").into_bytes())
}

#[test]
fn a_write_keeps_its_answer_in_its_transaction_and_a_failed_one_keeps_nothing() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let token = Uuid::new_v4();
    let kept = request(token, "first");
    let keep = AnswerToKeep {
        request: &kept,
        render: &keys,
    };
    s.create_secrets_keeping(
        &me(),
        env,
        vec![secret("a", "1"), secret("b", "2")],
        Some(&keep),
    )
    .unwrap();
    let answer = s.kept_answer(token, "first").unwrap().expect("kept");
    assert_eq!((answer.status, answer.body.as_slice()), (200, &b"A,B"[..]));
    assert_eq!(answer.fingerprint, [7; 32]);

    let refused = request(token, "second");
    let keep = AnswerToKeep {
        request: &refused,
        render: &keys,
    };
    let duplicate = s.create_secrets_keeping(&me(), env, vec![secret("A", "3")], Some(&keep));
    assert!(matches!(duplicate, Err(StoreError::DuplicateSecret)));
    assert_eq!(s.kept_answer(token, "second").unwrap(), None);
}

#[test]
fn answers_are_kept_per_token_and_survive_a_reopen() {
    let s = TestStore::new();
    let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    s.keep_answer(&request(mine, "k"), 409, b"refused".to_vec())
        .unwrap();
    assert_eq!(s.kept_answer(theirs, "k").unwrap(), None);
    assert_eq!(s.kept_answer(mine, "other").unwrap(), None);
    let s = s.reopen();
    let answer = s
        .kept_answer(mine, "k")
        .unwrap()
        .expect("kept across a reopen");
    assert_eq!((answer.status, answer.body), (409, b"refused".to_vec()));
}

#[test]
fn the_sweep_deletes_answers_24_hours_old_and_only_those() {
    let s = TestStore::new();
    let token = Uuid::new_v4();
    s.keep_answer(&request(token, "old"), 200, b"a".to_vec())
        .unwrap();
    let now = Timestamp::now().as_micros();
    let hour = 60 * 60 * 1_000_000;
    assert_eq!(s.sweep_kept_answers(Timestamp(now + 23 * hour)).unwrap(), 0);
    assert!(s.kept_answer(token, "old").unwrap().is_some());
    let later = Timestamp(now + KEPT_ANSWER_LIFETIME_MICROS + 1);
    assert_eq!(s.sweep_kept_answers(later).unwrap(), 1);
    // Deleted, not hidden: read at the real time, it would still be young.
    assert_eq!(s.kept_answer(token, "old").unwrap(), None);
    let TestStore { store, dir } = s;
    drop(store);
    let raw = common::open_raw_sled(dir.path());
    assert_eq!(raw.open_tree("idempotent_answers").unwrap().len(), 0);
}
