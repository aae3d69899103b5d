//! Audit retention: entries older than a cutoff are removed from the front of the chain,
//! a bounded batch of records per transaction, and the chain stays verifiable from a
//! checkpoint written in the same transaction: the sequence number and hash of the last
//! entry removed. The checkpoint is a record of the meta tree, authenticated like every
//! record, so it cannot be edited, and an older copy put back does not meet the entries
//! that follow the newer one.

use serde::{Deserialize, Serialize};

use crate::audit::decode_record;
use crate::audit_chains::ChainPositions;
use crate::codec;
use crate::error::StoreError;
use crate::keys;
use crate::kv::{KvBackend, Tree, TxAbort};
use crate::model::Timestamp;
use crate::store::{tx_error, Store};

/// The meta key of a chain's checkpoint.
pub(crate) fn checkpoint_key(chain: u32) -> Vec<u8> {
    let mut key = b"audit_checkpoint/".to_vec();
    key.extend_from_slice(&keys::audit_chain(chain));
    key
}

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
    /// Entries removed, over all chains.
    pub entries: u64,
    /// The checkpoint of this node's chain after it, if anything was ever removed.
    pub checkpoint: Option<AuditCheckpoint>,
}

impl<B: KvBackend> Store<B> {
    /// The checkpoint trimming left in `chain`, if it was ever trimmed.
    pub fn audit_checkpoint(&self, chain: u32) -> Result<Option<AuditCheckpoint>, StoreError> {
        self.get_record(Tree::Meta, &checkpoint_key(chain))
    }

    /// Whether retention removed entries `since` asks for, in some chain.
    pub fn audit_trimmed_past(&self, since: &ChainPositions) -> Result<bool, StoreError> {
        for chain in self.audit_chains()? {
            if let Some(cp) = self.audit_checkpoint(chain.number)? {
                if since.of(chain.number) <= cp.seq {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Removes, oldest first, every record whose entries are all older than `cutoff`,
    /// from every chain (a node that left keeps none past the retention either),
    /// [`TRIM_BATCH`] records per transaction, each moving its chain's checkpoint with it.
    /// Stops at the first record with an entry at or after `cutoff`, so what each chain
    /// keeps is always a contiguous end of it.
    pub fn trim_audit(&self, cutoff: Timestamp) -> Result<AuditTrim, StoreError> {
        let own = self.audit_head.lock().chain().number;
        let mut trim = AuditTrim::default();
        for chain in self.audit_chains()? {
            trim.entries += self.trim_chain(chain.number, cutoff)?;
        }
        trim.checkpoint = self.audit_checkpoint(own)?;
        if trim.entries > 0 {
            self.flush()?;
        }
        Ok(trim)
    }

    /// [`Store::trim_audit`] of one chain; the entries removed.
    fn trim_chain(&self, chain: u32, cutoff: Timestamp) -> Result<u64, StoreError> {
        let checkpoint_key = checkpoint_key(chain);
        let mut removed_in_all = 0;
        loop {
            // What it starts from, compared inside the transaction: another node trimming
            // the same chain meanwhile makes this round start again, instead of putting
            // an older checkpoint back.
            let before = self.kv.get(Tree::Meta, &checkpoint_key)?;
            let mut doomed = Vec::with_capacity(TRIM_BATCH);
            let mut removed = 0;
            let mut last = None;
            for pair in self.kv.scan_prefix(Tree::Audit, &keys::audit_chain(chain)) {
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
                return Ok(removed_in_all);
            };
            let record = codec::encode(&checkpoint);
            let trimmed = self
                .kv
                .transaction(&[Tree::Meta, Tree::Audit], |tx| {
                    if tx.get(Tree::Meta, &checkpoint_key)? != before {
                        return Ok(false);
                    }
                    for key in &doomed {
                        tx.remove(Tree::Audit, key)?;
                    }
                    tx.insert(Tree::Meta, &checkpoint_key, &record)?;
                    Ok::<_, TxAbort<StoreError>>(true)
                })
                .map_err(tx_error)?;
            if !trimmed {
                continue;
            }
            removed_in_all += removed;
            if doomed.len() < TRIM_BATCH {
                return Ok(removed_in_all);
            }
        }
    }
}
