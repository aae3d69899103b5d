//! The compact record of a run of audit entries (reads, appended in groups): what the
//! entries share is stored once. Each actor (token, kind, IP, user agent) and each scope
//! (app, environment) appears once in the record and entries name them by position;
//! sequence numbers follow the first; times are deltas; the hashes are not stored but
//! computed again when the record is read, from the first entry's `prev_hash` on. The
//! entries read back are exactly the canonical ones (the chain hash is over them, as
//! before), so listings and verification see no difference.
//!
//! What protects the entries inside a record is its tag (every record is authenticated,
//! [`crate::kv::Authenticated`]); what links records is the stored `prev_hash` of each
//! record's first entry, which must equal the computed hash of the record before.
//! A record is its kind byte, then the run in bincode's varint encoding.

use bincode::Options;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::{Actor, AuditAction, AuditEntry};
use crate::model::Timestamp;

/// A run of consecutive entries, what they share stored once.
#[derive(Serialize, Deserialize)]
struct CompactRun {
    first_seq: u64,
    /// The hash of the entry before the first.
    prev_hash: [u8; 32],
    /// The first entry's time; the others are deltas from the entry before.
    first_time: i64,
    actors: Vec<Actor>,
    scopes: Vec<(Option<Uuid>, Option<Uuid>)>,
    entries: Vec<CompactEntry>,
}

#[derive(Serialize, Deserialize)]
struct CompactEntry {
    /// Microseconds since the entry before (0 for the first).
    time_delta: i64,
    /// Position in `actors`.
    actor: u32,
    /// Position in `scopes`.
    scope: u32,
    action: AuditAction,
    secret_ids: Vec<Uuid>,
    version: Option<u64>,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_varint_encoding()
}

/// The position of `item` in `table`, appended if new. Runs are short and share few
/// actors and scopes: a linear search is the cheap one.
fn intern<T: PartialEq>(table: &mut Vec<T>, item: T) -> u32 {
    let at = table.iter().position(|t| *t == item).unwrap_or_else(|| {
        table.push(item);
        table.len() - 1
    });
    at as u32
}

/// The body of a compact record of `entries` (at least one, consecutive, chained).
pub(crate) fn encode(entries: &[AuditEntry]) -> Vec<u8> {
    let first = entries.first().expect("a run holds at least one entry");
    let mut run = CompactRun {
        first_seq: first.seq,
        prev_hash: first.prev_hash,
        first_time: first.time.as_micros(),
        actors: Vec::new(),
        scopes: Vec::new(),
        entries: Vec::with_capacity(entries.len()),
    };
    let mut time = first.time.as_micros();
    for entry in entries {
        let actor = intern(&mut run.actors, entry.actor.clone());
        let scope = intern(&mut run.scopes, (entry.app_id, entry.env_id));
        run.entries.push(CompactEntry {
            time_delta: entry.time.as_micros() - time,
            actor,
            scope,
            action: entry.action,
            secret_ids: entry.secret_ids.clone(),
            version: entry.version,
        });
        time = entry.time.as_micros();
    }
    options()
        .serialize(&run)
        .expect("bincode encodes plain structs")
}

/// The entries of a compact record's body, hashes computed; an error names what is
/// wrong (never record contents).
pub(crate) fn decode(body: &[u8]) -> Result<Vec<AuditEntry>, String> {
    let run: CompactRun = options().deserialize(body).map_err(|e| e.to_string())?;
    if run.entries.is_empty() {
        return Err("empty run of audit entries".into());
    }
    let mut out = Vec::with_capacity(run.entries.len());
    let (mut prev_hash, mut time) = (run.prev_hash, run.first_time);
    for (offset, entry) in run.entries.into_iter().enumerate() {
        let actor = run
            .actors
            .get(entry.actor as usize)
            .ok_or("an entry names a missing actor")?
            .clone();
        let &(app_id, env_id) = run
            .scopes
            .get(entry.scope as usize)
            .ok_or("an entry names a missing scope")?;
        time = time
            .checked_add(entry.time_delta)
            .ok_or("an entry's time is out of range")?;
        let mut decoded = AuditEntry {
            chain: 0,
            node_id: Default::default(),
            seq: run
                .first_seq
                .checked_add(offset as u64)
                .ok_or("a sequence number is out of range")?,
            time: Timestamp(time),
            actor,
            action: entry.action,
            app_id,
            env_id,
            secret_ids: entry.secret_ids,
            version: entry.version,
            prev_hash,
            hash: [0; 32],
        };
        decoded.hash = decoded.compute_hash();
        prev_hash = decoded.hash;
        out.push(decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{encode_record, AuditEvent, AuditQuery, SecretRead};
    use crate::kv::{KvBackend, Tree};
    use crate::store::Store;

    #[test]
    fn reads_stored_as_plain_runs_before_format_4_still_read_and_verify() {
        let store = Store::open_temporary().unwrap();
        let (app, env) = (Uuid::new_v4(), Uuid::new_v4());
        let event = || AuditEvent {
            app_id: Some(app),
            env_id: Some(env),
            secret_ids: vec![Uuid::new_v4()],
            ..AuditEvent::new(AuditAction::SecretRead)
        };
        // As formats 2 and 3 stored reads: a plain run of whole entries.
        let plain = {
            let mut head = store.audit_head.lock();
            let entries = head.next_entries((0..3).map(|_| (Actor::embedded(), event())));
            store
                .kv
                .insert(Tree::Audit, &entries[0].key(), &encode_record(&entries))
                .unwrap();
            head.advance(entries.last().unwrap());
            entries
        };
        store
            .record_reads(vec![SecretRead {
                actor: Actor::embedded(),
                app_id: app,
                env_id: env,
                secret_ids: vec![Uuid::new_v4()],
            }])
            .unwrap();
        let listed = store
            .list_audit(&AuditQuery {
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .entries;
        assert_eq!(listed[..3], plain[..]);
        assert_eq!(listed[3].prev_hash, plain[2].hash);
        let verified = store.verify_audit().unwrap();
        assert_eq!((verified.checked(), verified.intact()), (4, true));
    }

    #[test]
    fn a_body_that_names_a_missing_actor_is_refused() {
        let run = CompactRun {
            first_seq: 1,
            prev_hash: [0; 32],
            first_time: 0,
            actors: Vec::new(),
            scopes: vec![(None, None)],
            entries: vec![CompactEntry {
                time_delta: 0,
                actor: 0,
                scope: 0,
                action: AuditAction::SecretRead,
                secret_ids: Vec::new(),
                version: None,
            }],
        };
        let body = options().serialize(&run).unwrap();
        assert_eq!(decode(&body).unwrap_err(), "an entry names a missing actor");
    }
}
