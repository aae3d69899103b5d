//! One audit chain per node. Nodes sharing a backend never append to the same chain
//! unless they claim the same node id (and then the chain's head, read inside each
//! commit, keeps them from forking it), so a node's writes and audited reads never wait
//! for another node's. The meta tree lists the chains: a chain's number (the first
//! part of its records' keys) is its node id's place in that list.
//!
//! Listings and the changes feed read every chain; where they stopped is a
//! [`ChainPositions`]: for each chain, the next sequence number to read.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::audit_retention::checkpoint_key;
use crate::codec;
use crate::error::{OpenError, StoreError};
use crate::keys;
use crate::kv::{Authenticated, KvBackend, Tree, TxAbort};
use crate::store::{tx_error, tx_get, FORMAT_KEY};

/// The meta key of the list of chains: node ids, in the order they first appended.
const CHAINS_KEY: &[u8] = b"audit_chains";
/// The meta key of the node id an embedded store made for itself at its first open.
const OWN_NODE_KEY: &[u8] = b"node_id";
/// The meta key of the checkpoint of the one chain of format 4.
const FORMAT_4_CHECKPOINT_KEY: &[u8] = b"audit_checkpoint";
/// Records one step of the move to per-node chains rewrites.
const MIGRATION_BATCH: usize = 256;
/// The longest node id.
pub const MAX_NODE_ID_LEN: usize = 64;

/// One node's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Its place in the list of chains: the first part of its records' keys.
    pub number: u32,
    /// The node that appends to it.
    pub node_id: Arc<str>,
}

/// Whether `id` can name a node: 1 to 64 letters, digits, `.`, `_` or `-` (every
/// hostname can).
pub fn valid_node_id(id: &str) -> bool {
    (1..=MAX_NODE_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Every chain of the store, in number order.
pub(crate) fn chains(kv: &impl KvBackend) -> Result<Vec<Chain>, StoreError> {
    let ids: Vec<String> = match kv.get(Tree::Meta, CHAINS_KEY)? {
        Some(bytes) => codec::decode(Tree::Meta.name(), &bytes)?,
        None => Vec::new(),
    };
    Ok(ids
        .into_iter()
        .enumerate()
        .map(|(number, id)| Chain {
            number: number as u32,
            node_id: id.into(),
        })
        .collect())
}

/// The chain this process appends to: `given`'s, else (a shared backend) the host's
/// name's, else the id the store made for itself at its first open. Listed in the same
/// transaction that first names it.
pub(crate) fn join<B: KvBackend>(
    kv: &Authenticated<B>,
    given: Option<&str>,
) -> Result<Chain, OpenError> {
    let derived = match given {
        Some(id) => Some(id.to_owned()),
        None if kv.is_shared() => Some(host_name()),
        None => None,
    };
    if let Some(id) = &derived {
        if !valid_node_id(id) {
            return Err(OpenError::InvalidNodeId(id.clone()));
        }
    }
    let made = uuid::Uuid::new_v4().to_string();
    kv.transaction(&[Tree::Meta], |tx| {
        let node_id = match &derived {
            Some(id) => id.clone(),
            None => match tx_get::<String>(tx, Tree::Meta, OWN_NODE_KEY)? {
                Some(own) => own,
                None => {
                    tx.insert(Tree::Meta, OWN_NODE_KEY, &codec::encode(&made))?;
                    made.clone()
                }
            },
        };
        let mut ids: Vec<String> = tx_get(tx, Tree::Meta, CHAINS_KEY)?.unwrap_or_default();
        let number = match ids.iter().position(|id| *id == node_id) {
            Some(number) => number,
            None => {
                ids.push(node_id.clone());
                tx.insert(Tree::Meta, CHAINS_KEY, &codec::encode(&ids))?;
                ids.len() - 1
            }
        };
        Ok::<_, TxAbort<StoreError>>(Chain {
            number: number as u32,
            node_id: node_id.into(),
        })
    })
    .map_err(|e| OpenError::Store(tx_error(e)))
}

fn host_name() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    // Only the first label: the rest is the same for every node of a domain.
    let label = name.split('.').next().unwrap_or_default();
    if valid_node_id(label) {
        label.to_owned()
    } else {
        "node".to_owned()
    }
}

/// Moves the one chain of a format-4 store (keyed by sequence number alone) to `chain`,
/// with its checkpoint, and writes the format byte last. Bounded steps, each one
/// transaction: a crash between two leaves some records moved, and the next open (the
/// format byte still says 4) moves the rest.
pub(crate) fn migrate_from_one_chain<B: KvBackend>(
    kv: &Authenticated<B>,
    chain: &Chain,
) -> Result<(), OpenError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let start = after.as_ref().map_or(Vec::new(), |key| {
            let mut next = key.clone();
            next.push(0);
            next
        });
        let mut batch = Vec::with_capacity(MIGRATION_BATCH);
        for pair in kv.scan_from(Tree::Audit, &start) {
            let (key, value) = pair.map_err(StoreError::from)?;
            // Format 4's keys are 8 bytes; those of chains, 12.
            if key.len() == 8 {
                batch.push((key, value));
                if batch.len() == MIGRATION_BATCH {
                    break;
                }
            }
        }
        let Some((last, _)) = batch.last() else {
            break;
        };
        after = Some(last.clone());
        kv.transaction(&[Tree::Audit], |tx| {
            for (key, value) in &batch {
                let seq = u64::from_be_bytes(key[..].try_into().expect("8 bytes"));
                tx.remove(Tree::Audit, key)?;
                tx.insert(Tree::Audit, &keys::audit(chain.number, seq), value)?;
            }
            Ok::<_, TxAbort<StoreError>>(())
        })
        .map_err(tx_error)?;
    }
    kv.transaction(&[Tree::Meta], |tx| {
        if let Some(checkpoint) = tx.get(Tree::Meta, FORMAT_4_CHECKPOINT_KEY)? {
            tx.remove(Tree::Meta, FORMAT_4_CHECKPOINT_KEY)?;
            tx.insert(Tree::Meta, &checkpoint_key(chain.number), &checkpoint)?;
        }
        tx.insert(Tree::Meta, FORMAT_KEY, &[codec::FORMAT_VERSION])?;
        Ok::<_, TxAbort<StoreError>>(())
    })
    .map_err(tx_error)?;
    kv.flush().map_err(StoreError::from)?;
    Ok(())
}

/// Where a reader of the chains is: for each chain, the next sequence number to read;
/// chains it does not name, from `rest` (1 for a cursor the store handed out: a chain
/// it did not name did not exist yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPositions {
    chains: BTreeMap<u32, u64>,
    rest: u64,
}

impl Default for ChainPositions {
    fn default() -> Self {
        ChainPositions::every_chain_from(1)
    }
}

impl ChainPositions {
    /// Every chain from sequence number `seq` on.
    pub fn every_chain_from(seq: u64) -> Self {
        ChainPositions {
            chains: BTreeMap::new(),
            rest: seq,
        }
    }

    /// The next sequence number to read of `chain`.
    pub fn of(&self, chain: u32) -> u64 {
        self.chains.get(&chain).copied().unwrap_or(self.rest)
    }

    /// Sets where `chain` is read from next.
    pub fn set(&mut self, chain: u32, seq: u64) {
        self.chains.insert(chain, seq);
    }

    /// Whether some chain this names is further on here than in `other`.
    pub fn any_beyond(&self, other: &ChainPositions) -> bool {
        self.chains
            .iter()
            .any(|(chain, seq)| *seq > other.of(*chain))
    }

    /// [`ChainPositions::any_beyond`], leaving `chain` out.
    pub fn any_beyond_except(&self, other: &ChainPositions, chain: u32) -> bool {
        self.chains
            .iter()
            .any(|(c, seq)| *c != chain && *seq > other.of(*c))
    }

    /// Whether this is a bare sequence number past every chain of `other`.
    pub fn rest_beyond_all(&self, other: &ChainPositions) -> bool {
        self.chains.is_empty() && other.chains.values().all(|seq| self.rest > *seq)
    }

    /// Whether every chain this names, `other` names too.
    pub fn chains_within(&self, other: &ChainPositions) -> bool {
        self.chains
            .keys()
            .all(|chain| other.chains.contains_key(chain))
    }

    /// Where `chain` is, if this names it.
    pub fn named(&self, chain: u32) -> Option<u64> {
        self.chains.get(&chain).copied()
    }
}

/// `chain:seq`, comma-separated, in chain order (what cursors look like), or the bare
/// sequence number of a position on every chain.
impl fmt::Display for ChainPositions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.chains.is_empty() {
            return write!(f, "{}", self.rest);
        }
        let mut first = true;
        for (chain, seq) in &self.chains {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{chain}:{seq}")?;
        }
        Ok(())
    }
}

/// A position written by [`ChainPositions`]' `Display`, or a bare sequence number (every
/// chain from it). Anything else is refused.
impl std::str::FromStr for ChainPositions {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        // Decimal digits only, within `i64` (what the API's schema says a number is).
        let number = |digits: &str| -> Result<u64, ()> {
            if !(1..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            digits.parse().map_err(|_| ())
        };
        if !text.contains(':') {
            return Ok(ChainPositions::every_chain_from(number(text)?));
        }
        let mut positions = ChainPositions::every_chain_from(1);
        for pair in text.split(',') {
            let (chain, seq) = pair.split_once(':').ok_or(())?;
            let chain = u32::try_from(number(chain)?).map_err(|_| ())?;
            if positions.chains.insert(chain, number(seq)?).is_some() {
                return Err(());
            }
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_through_their_text() {
        let mut positions = ChainPositions::default();
        positions.set(0, 17);
        positions.set(2, 5);
        assert_eq!(positions.to_string(), "0:17,2:5");
        assert_eq!("0:17,2:5".parse(), Ok(positions.clone()));
        assert_eq!(positions.of(1), 1);
        assert_eq!("42".parse(), Ok(ChainPositions::every_chain_from(42)));
        for bad in [
            "",
            "x",
            "1:",
            ":1",
            "1:2,1:3",
            "1:2,",
            "-1",
            "1:+2",
            "99999999999:1",
        ] {
            assert_eq!(bad.parse::<ChainPositions>(), Err(()), "{bad:?}");
        }
    }

    #[test]
    fn node_ids_are_short_plain_names() {
        for good in ["a", "node-1", "web_2.eu", &"x".repeat(64)] {
            assert!(valid_node_id(good), "{good}");
        }
        for bad in ["", "a b", "a:b", "a,b", "é", &"x".repeat(65)] {
            assert!(!valid_node_id(bad), "{bad}");
        }
    }
}
