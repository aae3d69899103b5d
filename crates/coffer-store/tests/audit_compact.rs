//! The compact record of reads: what a run of entries shares (actor, scope, time,
//! sequence, hashes) stored once; the entries read back are the canonical ones, the
//! chain verifies across compact and plain records and across reopens, the record is a
//! fraction of the plain size, and tampering with it is named by verification.

mod common;

use coffer_store::{
    Actor, AuditAction, AuditEntry, AuditQuery, ChainPositions, SecretRead, TokenKind,
};
use common::{me, one_chain, secret, TestStore};
use uuid::Uuid;

fn entries(s: &TestStore) -> Vec<AuditEntry> {
    s.list_audit(&AuditQuery {
        limit: 10_000,
        ..Default::default()
    })
    .unwrap()
    .entries
}

/// Reads by two clients of two environments, with zero, one or several secrets each.
fn mixed_reads(app: Uuid, envs: [Uuid; 2], n: usize) -> Vec<SecretRead> {
    let clients = [
        Actor {
            token_id: Some(Uuid::new_v4()),
            kind: Some(TokenKind::Service),
            ip: Some("10.1.2.3".into()),
            user_agent: Some("phase-node/1.2".into()),
        },
        Actor {
            ip: Some("::1".into()),
            user_agent: None,
            ..me()
        },
    ];
    (0..n)
        .map(|i| SecretRead {
            actor: clients[i % 2].clone(),
            app_id: app,
            env_id: envs[(i / 3) % 2],
            secret_ids: (0..i % 4).map(|_| Uuid::new_v4()).collect(),
        })
        .collect()
}

#[test]
fn a_compact_run_reads_back_as_the_canonical_entries() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let group = mixed_reads(app, [envs[0].id, envs[1].id], 12);
    s.record_reads(group.clone()).unwrap();
    let all = entries(&s);
    assert_eq!(all.len(), 13, "app, twelve reads");
    for (entry, read) in all[1..].iter().zip(&group) {
        assert_eq!(entry.action, AuditAction::SecretRead);
        assert_eq!(entry.actor, read.actor);
        assert_eq!(
            (entry.app_id, entry.env_id, &entry.secret_ids, entry.version),
            (Some(read.app_id), Some(read.env_id), &read.secret_ids, None)
        );
        assert_eq!(entry.hash, entry.compute_hash());
    }
    for pair in all.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    // Listing from inside the run starts at the entry asked for.
    let from_seven = s
        .list_audit(&AuditQuery {
            since: ChainPositions::every_chain_from(7),
            limit: 3,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(from_seven.entries, all[6..9].to_vec());
}

#[test]
fn the_chain_verifies_across_compact_and_plain_records_and_reopens() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let env = envs[0].id;
    s.record_reads(mixed_reads(app, [env, envs[1].id], 5))
        .unwrap();
    s.create_secrets(&me(), env, vec![secret("A", "1")])
        .unwrap();
    s.record_read(&me(), app, env, vec![Uuid::new_v4()])
        .unwrap();
    let before = entries(&s);
    // The last record is compact: the chain goes on from its computed hash.
    let s = s.reopen();
    assert_eq!(entries(&s), before);
    s.record_reads(mixed_reads(app, [env, env], 3)).unwrap();
    s.create_secrets(&me(), env, vec![secret("B", "2")])
        .unwrap();
    let all = entries(&s);
    assert_eq!(all.len(), before.len() + 4);
    assert_eq!(all[before.len()].prev_hash, before.last().unwrap().hash);
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!(
        (verified.checked, verified.first_broken),
        (all.len() as u64, None)
    );
}

#[test]
fn a_compact_run_stores_what_its_entries_share_once() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let env = envs[0].id;
    let reader = Actor {
        token_id: Some(Uuid::new_v4()),
        kind: Some(TokenKind::Service),
        ip: Some("10.1.2.3".into()),
        user_agent: Some("phase-node/1.2 (linux; x64)".into()),
    };
    let reads: Vec<SecretRead> = (0..100)
        .map(|_| SecretRead {
            actor: reader.clone(),
            app_id: app,
            env_id: env,
            secret_ids: vec![Uuid::new_v4()],
        })
        .collect();
    s.record_reads(reads).unwrap();
    s.record_read(&reader, app, env, vec![Uuid::new_v4()])
        .unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    let db = common::open_raw_sled(dir.path());
    let audit = db.open_tree("audit").unwrap();
    let run = audit.get(common::audit_key(2)).unwrap().expect("the run");
    let single = audit
        .get(common::audit_key(102))
        .unwrap()
        .expect("one read");
    assert_eq!(run[0], 0x12, "compact kind byte");
    // A plain record of one such read takes 284 bytes (its two hashes alone 64, the
    // record's tag 32); in a run, an entry is little more than its secret id, and a run
    // of one still saves its hash, sequence number and fixed-width integers.
    assert!(run.len() / 100 <= 24, "{} bytes for 100 reads", run.len());
    assert!(single.len() <= 200, "{} bytes for one read", single.len());
}

#[test]
fn tampering_with_a_compact_run_is_named_by_verification() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    s.record_reads(mixed_reads(app, [envs[0].id, envs[1].id], 4))
        .unwrap();
    s.record_reads(mixed_reads(app, [envs[0].id, envs[1].id], 4))
        .unwrap();
    s.create_secrets(&me(), envs[0].id, vec![secret("A", "a")])
        .unwrap();
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        let audit = db.open_tree("audit").unwrap();
        // Entries 2–5 and 6–9 are the two runs; the first has a byte of its body changed.
        let raw = audit.get(common::audit_key(2)).unwrap().unwrap();
        let mut forged = raw.to_vec();
        forged[20] ^= 0x40;
        audit.insert(common::audit_key(2), forged).unwrap();
        db.flush().unwrap();
    }
    let s = TestStore::open_in(dir);
    let verified = one_chain(s.verify_audit().unwrap());
    assert_eq!((verified.first_broken, verified.checked), (Some(2), 1));
    let TestStore { store, dir } = s;
    drop(store);
    {
        let db = common::open_raw_sled(dir.path());
        let audit = db.open_tree("audit").unwrap();
        // Both runs removed: the write after them no longer follows entry 1.
        audit.remove(common::audit_key(2)).unwrap();
        audit.remove(common::audit_key(6)).unwrap();
        db.flush().unwrap();
    }
    let verified = one_chain(TestStore::open_in(dir).verify_audit().unwrap());
    assert_eq!((verified.first_broken, verified.checked), (Some(2), 1));
}
