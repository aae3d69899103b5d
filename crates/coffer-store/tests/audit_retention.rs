//! Audit retention at the store: trimming removes whole records older than the cutoff,
//! in bounded batches, moves the checkpoint with them, and the chain goes on from the
//! checkpoint (also after it was trimmed to nothing and reopened).

mod common;

use coffer_store::{AuditQuery, Timestamp};
use common::{me, one_chain, secret, TestStore};
use uuid::Uuid;

fn seqs(s: &TestStore) -> Vec<u64> {
    s.list_audit(&AuditQuery {
        limit: 10_000,
        ..Default::default()
    })
    .unwrap()
    .entries
    .iter()
    .map(|e| e.seq)
    .collect()
}

#[test]
fn trimming_keeps_the_newer_entries_and_a_checkpoint_that_verifies() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    // More records than one trimming transaction removes.
    for _ in 0..600 {
        s.record_read(&me(), Uuid::new_v4(), env, Vec::new())
            .unwrap();
    }
    let cutoff = Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(2));
    s.create_secrets(&me(), env, vec![secret("KEPT", "v")])
        .unwrap();
    let before = seqs(&s);
    let total = *before.last().unwrap();

    let trim = s.trim_audit(cutoff).unwrap();
    assert_eq!(trim.entries, total - 1);
    let checkpoint = trim.checkpoint.expect("a checkpoint");
    assert_eq!(checkpoint.seq, total - 1);
    assert_eq!(seqs(&s), [total]);
    assert_eq!(s.audit_checkpoint(0).unwrap(), Some(checkpoint));
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!(
        (
            verified.checked,
            verified.first_broken,
            verified.from_checkpoint
        ),
        (1, None, Some(total - 1))
    );
    // Nothing older is left: trimming again removes nothing.
    assert_eq!(s.trim_audit(cutoff).unwrap().entries, 0);
}

#[test]
fn a_chain_trimmed_to_nothing_goes_on_from_its_checkpoint_after_a_reopen() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    s.create_secrets(&me(), env, vec![secret("A", "1")])
        .unwrap();
    let last = *seqs(&s).last().unwrap();
    let trim = s.trim_audit(Timestamp(i64::MAX)).unwrap();
    assert_eq!(trim.entries, last);
    assert!(seqs(&s).is_empty());

    let s = s.reopen();
    s.create_secrets(&me(), env, vec![secret("B", "2")])
        .unwrap();
    assert_eq!(seqs(&s), [last + 1]);
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!(
        (
            verified.checked,
            verified.first_broken,
            verified.from_checkpoint
        ),
        (1, None, Some(last))
    );
}
