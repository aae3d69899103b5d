//! The token cache: token hash → record, filled by lookups that read the backend
//! without holding the cache's lock.
//!
//! A lookup notes the cache's generation before it reads, and fills the cache only if
//! the generation is still the same: every removal (a revocation, a deleted app, caches
//! emptied for another node's writes) moves it. So a record read before a revocation
//! committed can never be put back into the cache after the revocation removed it.
//!
//! Last use is recorded at most once per token per resolution (a minute), by the first
//! authentication that finds it due, outside the cache's lock; concurrent ones skip it
//! ([`LastUseWrites`]) instead of each running a transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

use crate::model::Token;

/// The cached tokens, and the generation that every removal moves.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    by_hash: HashMap<[u8; 32], Arc<Token>>,
    generation: u64,
}

/// The generation a lookup read the backend at; see [`TokenCache::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation(u64);

impl TokenCache {
    /// The record cached for a token hash.
    pub(crate) fn get(&self, hash: &[u8; 32]) -> Option<&Arc<Token>> {
        self.by_hash.get(hash)
    }

    /// The generation to note before reading the backend.
    pub(crate) fn generation(&self) -> Generation {
        Generation(self.generation)
    }

    /// Caches `token`, read from the backend after `read_at` was noted, unless something
    /// was removed since: what was read may be what the removal took out.
    pub(crate) fn fill(&mut self, read_at: Generation, token: Arc<Token>) {
        if read_at.0 == self.generation {
            self.by_hash.insert(token.hash, token);
        }
    }

    /// Removes a token (revoked or deleted); fills from earlier reads are refused.
    pub(crate) fn remove(&mut self, hash: &[u8; 32]) {
        self.generation += 1;
        self.by_hash.remove(hash);
    }

    /// Empties the cache; fills from earlier reads are refused.
    pub(crate) fn clear(&mut self) {
        self.generation += 1;
        self.by_hash.clear();
    }
}

/// The tokens whose last use is being written: one write per token at a time, the
/// other authentications that find it due meanwhile leave it to that one.
#[derive(Debug, Default)]
pub(crate) struct LastUseWrites(Mutex<HashSet<Uuid>>);

/// A claim on writing a token's last use, given up when dropped.
pub(crate) struct LastUseClaim<'a> {
    writes: &'a LastUseWrites,
    id: Uuid,
}

impl LastUseWrites {
    /// Claims writing `id`'s last use; `None` if another authentication is writing it.
    pub(crate) fn claim(&self, id: Uuid) -> Option<LastUseClaim<'_>> {
        let claimed = self.0.lock().insert(id);
        // Made only when claimed: dropping one gives the claim up.
        claimed.then(|| LastUseClaim { writes: self, id })
    }
}

impl Drop for LastUseClaim<'_> {
    fn drop(&mut self) {
        self.writes.0.lock().remove(&self.id);
    }
}
