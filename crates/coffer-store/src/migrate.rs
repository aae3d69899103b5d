//! Migrations of older stores, at open: format 1 to format 4, from which
//! [`crate::audit_chains::migrate_from_one_chain`] goes on (as it does for formats 2 to 4).
//!
//! Format 1 stored records in clear but for sealed fields. Format 2 appends to every
//! value a tag over its tree, key and value ([`crate::kv::Authenticated`]); index entries
//! name the secret's current version and the token's revocation state; audit records
//! carry their own kind byte; the check record seals a new plaintext. Record bodies are
//! otherwise unchanged.
//!
//! The whole rewrite is one transaction over every tree, format byte included: a crash
//! leaves either the format-1 store, migrated again at the next open, or the format-2
//! one, never a mix. (The records are read before the transaction and sled holds its
//! writes in memory until it commits: the cost is about two copies of the store in
//! memory, once.)

use crate::audit;
use crate::crypto::{Keyring, RecordMac};
use crate::error::{InternalError, OpenError, StoreError};
use crate::kv::{tagged, verified, KvBackend, Tree, TxAbort};
use crate::secrets;
use crate::store::{tx_error, CHECK_KEY, CHECK_PLAINTEXT, FORMAT_KEY};
use crate::tokens;

/// Rewrites a format-1 store in format 2, under `mac`. The caller has checked the master
/// key against the format-1 check record.
pub(crate) fn from_v1<B: KvBackend>(
    kv: &B,
    keys: &Keyring,
    mac: &RecordMac,
) -> Result<(), OpenError> {
    let check = keys.seal(CHECK_KEY, CHECK_PLAINTEXT);
    // Read first, written after: a sled transaction holds a lock that reads outside it
    // wait for.
    let mut rewritten = Vec::new();
    for tree in Tree::ALL {
        for pair in kv.scan_prefix(tree, &[]) {
            let (key, value) = pair.map_err(StoreError::from)?;
            // A format-1 value cannot carry a valid tag. One that does was written by
            // format 2: a store whose format byte was put back, whose clear records a
            // migration would authenticate. Refused.
            if verified(mac, tree, &key, value.clone()).is_ok() {
                return Err(StoreError::unauthentic(Tree::Meta).into());
            }
            let upgraded = upgrade(kv, tree, &key, value, &check)?;
            let stored = tagged(mac, tree, &key, &upgraded);
            rewritten.push((tree, key, stored));
        }
    }
    kv.transaction(&Tree::ALL, |tx| {
        for (tree, key, stored) in &rewritten {
            tx.insert(*tree, key, stored)?;
        }
        Ok::<_, TxAbort<StoreError>>(())
    })
    .map_err(tx_error)?;
    kv.flush().map_err(StoreError::from)?;
    Ok(())
}

/// The format-2 value of one format-1 record (before its tag).
fn upgrade<B: KvBackend>(
    kv: &B,
    tree: Tree,
    key: &[u8],
    value: Vec<u8>,
    check: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let missing = |what: &str| {
        StoreError::Internal(InternalError::Codec {
            tree: tree.name(),
            reason: format!("format 1 entry names a missing {what}"),
        })
    };
    let uuid = |bytes: &[u8]| {
        uuid::Uuid::from_slice(bytes).map_err(|e| {
            StoreError::Internal(InternalError::Codec {
                tree: tree.name(),
                reason: e.to_string(),
            })
        })
    };
    Ok(match tree {
        // The format of one audit chain, which the next step moves to per-node chains.
        Tree::Meta if key == FORMAT_KEY => vec![4],
        Tree::Meta if key == CHECK_KEY => check.to_vec(),
        Tree::SecretIndex => {
            // env id ‖ digest ‖ path → secret id; the record is at env id ‖ secret id.
            let id = uuid(&value)?;
            let mut record_key = key[..16].to_vec();
            record_key.extend_from_slice(id.as_bytes());
            let record = kv
                .get(Tree::Secrets, &record_key)?
                .ok_or_else(|| missing("secret"))?;
            secrets::index_entry(id, secrets::stored_version(&record)?).to_vec()
        }
        Tree::TokenHashes => {
            let id = uuid(&value)?;
            let record = kv
                .get(Tree::Tokens, id.as_bytes())?
                .ok_or_else(|| missing("token"))?;
            tokens::hash_entry(id, tokens::stored_revoked(&record)?).to_vec()
        }
        Tree::Audit => audit::upgrade_v1_record(&value)?,
        _ => value,
    })
}
