//! Record encoding: one layout byte, then bincode 1.3; and the store's format version.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{InternalError, StoreError};

/// The on-disk format of a store, kept in the meta tree and checked at open.
/// 1: records in clear but for sealed fields. 2: every record authenticated with its
/// tree and key; index entries name the current secret version and token revocation;
/// audit records carry their own kind byte. 3: secret and history records of a second
/// layout name the writer and the action of each version (records of the first layout
/// are still read, so the migration from 2 only rewrites the format byte; it keeps a
/// release that cannot read the new layout from opening the store). 4: the meta tree may
/// hold a data key wrapped by the master key, from which the subkeys derive; the audit
/// chain may start after a checkpoint (retention trimmed what came before); reads may be
/// stored as compact runs. A release that knows none of these must not open such a
/// store; stores of format 3 and before hold none of them, so the migration only
/// rewrites the format byte. 5: each node appends to its own audit chain, keyed by the
/// chain's number before the sequence number; the meta tree lists the chains' nodes
/// (the migration from 4 moves the one chain to the migrating node's).
pub const FORMAT_VERSION: u8 = 5;

/// The layout byte every record starts with (the bincode layout of its body).
pub const RECORD_LAYOUT: u8 = 1;

/// Encodes a record with its layout prefix.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    encode_as(RECORD_LAYOUT, record)
}

/// Decodes a record written by [`encode`]; `tree` names the source for the error.
pub fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    decode_as(RECORD_LAYOUT, tree, bytes)
}

/// Encodes a record under another layout byte (a tree whose records come in more
/// than one layout).
pub fn encode_as<T: Serialize>(layout: u8, record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(layout);
    // Serialising plain structs into a Vec cannot fail.
    bincode::serialize_into(&mut out, record).expect("bincode encodes plain structs");
    out
}

/// Decodes a record written by [`encode_as`] with `layout`.
pub fn decode_as<T: DeserializeOwned>(
    layout: u8,
    tree: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let codec_error = |reason: String| StoreError::Internal(InternalError::Codec { tree, reason });
    match bytes.split_first() {
        Some((&found, body)) if found == layout => {
            bincode::deserialize(body).map_err(|e| codec_error(e.to_string()))
        }
        Some((found, _)) => Err(codec_error(format!("unknown record layout {found}"))),
        None => Err(codec_error("empty record".into())),
    }
}
