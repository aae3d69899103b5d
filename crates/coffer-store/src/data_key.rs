//! Which data key a master key opens (DESIGN.md, "Encryption at rest").
//!
//! The meta tree holds the data key wrapped by the master key at [`DATA_KEY`]. While a
//! rotation is under way it also holds it wrapped by the next master key at
//! [`NEXT_DATA_KEY`], so that either key opens the store until the rotation commits
//! (`rekey.rs`). A store made before data keys holds neither record until its first
//! rotation: its data key is its master key itself.
//!
//! The wrapped keys are read from the backend below the authentication layer (the
//! record tags are made with a subkey of the very data key they hold); the wrapping is
//! itself authenticated, and the tags are checked once the store is open.

use crate::crypto::{DataKey, MasterKey, Unwrapped, TAG_LEN};
use crate::error::StoreError;
use crate::kv::{KvBackend, Tree};

/// Meta key of the data key wrapped by the master key.
pub(crate) const DATA_KEY: &[u8] = b"data key";
/// Meta key of the data key wrapped by the next master key, during a rotation.
pub(crate) const NEXT_DATA_KEY: &[u8] = b"next data key";

/// How a master key opened a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlocked {
    /// It wraps the data key.
    Current,
    /// It is the next key of an unfinished rotation.
    Next,
    /// The store has no data key of its own: the master key is the data key (whether
    /// it is the right one, the check record tells).
    Unwrapped,
}

/// The data key that `master` opens in `kv` (a backend that stores `value ‖ tag`), or
/// `None` when the store has a data key that `master` wraps neither way. A wrapped key
/// that `master` wrapped but that was edited since is refused as unauthentic.
pub(crate) fn unlock(
    kv: &impl KvBackend,
    master: &MasterKey,
) -> Result<Option<(DataKey, Unlocked)>, StoreError> {
    let mut found_any = false;
    for (key, how) in [
        (DATA_KEY, Unlocked::Current),
        (NEXT_DATA_KEY, Unlocked::Next),
    ] {
        let Some(mut stored) = kv.get(Tree::Meta, key)? else {
            continue;
        };
        found_any |= key == DATA_KEY;
        stored.truncate(stored.len().saturating_sub(TAG_LEN));
        match master.unwrap(key, &stored) {
            Unwrapped::Opened(data_key) => return Ok(Some((data_key, how))),
            Unwrapped::Damaged => return Err(StoreError::unauthentic(Tree::Meta)),
            Unwrapped::NotThisKey => {}
        }
    }
    Ok((!found_any).then(|| (DataKey::of_unwrapped_store(master), Unlocked::Unwrapped)))
}
