//! Audit retention: entries older than a cutoff are removed from the front of the chain,
//! a bounded batch of records per transaction, and the chain stays verifiable from a
//! checkpoint written in the same transaction: the sequence number and hash of the last
//! entry removed. The checkpoint is a record of the meta tree, authenticated like every
//! record, so it cannot be edited, and an older copy put back does not meet the entries
//! that follow the newer one.

use serde::{Deserialize, Serialize};

use crate::audit::decode_record;
use crate::codec;
use crate::error::StoreError;
use crate::kv::{KvBackend, Tree, TxAbort};
use crate::model::Timestamp;
use crate::store::{tx_error, Store};

/// The meta key of the checkpoint.
pub(crate) const CHECKPOINT_KEY: &[u8] = b"audit_checkpoint";

/// Records one trimming transaction removes at most: writers wait for a transaction over
/// the audit tree only this long.
const TRIM_BATCH: usize = 256;

/// Where trimming stopped: the last entry removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// Sequence number of the last entry removed; the chain goes on at `seq + 1`.
    pub seq: u64,
    /// That entry's hash: the `prev_hash` of the entry after it.
    pub hash: [u8; 32],
}

/// What one trim removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditTrim {
    /// Entries removed.
    pub entries: u64,
    /// The checkpoint after it, if anything was ever removed.
    pub checkpoint: Option<AuditCheckpoint>,
}

impl<B: KvBackend> Store<B> {
    /// The checkpoint trimming left, if the chain was ever trimmed.
    pub fn audit_checkpoint(&self) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.get_record(Tree::Meta, CHECKPOINT_KEY)
    }

    /// Removes, oldest first, every record whose entries are all older than `cutoff`,
    /// [`TRIM_BATCH`] records per transaction, each moving the checkpoint with it. Stops
    /// at the first record with an entry at or after `cutoff`, so what is kept is always
    /// a contiguous end of the chain.
    pub fn trim_audit(&self, cutoff: Timestamp) -> Result<AuditTrim, StoreError> {
        let mut trim = AuditTrim {
            entries: 0,
            checkpoint: self.audit_checkpoint()?,
        };
        loop {
            let mut doomed = Vec::with_capacity(TRIM_BATCH);
            let mut removed = 0;
            let mut last = None;
            for pair in self.kv.scan_from(Tree::Audit, &[]) {
                let (key, bytes) = pair?;
                let entries = decode_record(&bytes)?;
                let newest = entries.last().expect("a record holds at least one entry");
                if newest.time >= cutoff || doomed.len() == TRIM_BATCH {
                    break;
                }
                removed += entries.len() as u64;
                last = Some(AuditCheckpoint {
                    seq: newest.seq,
                    hash: newest.hash,
                });
                doomed.push(key);
            }
            let Some(checkpoint) = last else {
                break;
            };
            let record = codec::encode(&checkpoint);
            self.kv
                .transaction(&[Tree::Meta, Tree::Audit], |tx| {
                    for key in &doomed {
                        tx.remove(Tree::Audit, key)?;
                    }
                    tx.insert(Tree::Meta, CHECKPOINT_KEY, &record)?;
                    Ok::<_, TxAbort<StoreError>>(())
                })
                .map_err(tx_error)?;
            trim.entries += removed;
            trim.checkpoint = Some(checkpoint);
            if doomed.len() < TRIM_BATCH {
                break;
            }
        }
        if trim.entries > 0 {
            self.flush()?;
        }
        Ok(trim)
    }
}
