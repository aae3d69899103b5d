//! Keeping the token and environment caches right when other nodes write the same
//! backend (DESIGN.md, "Caches are correct across nodes").
//!
//! Every write that changes what the caches hold (tokens, apps, environments) also
//! writes a new random value at the epoch key, in the same transaction. A node reads the
//! epoch (linearizably) several times a second, and at once when the backend's watch says
//! another node committed; when it changed, the caches are emptied.
//! A cache answers only while its node confirmed the epoch within [`TRUSTED_FOR`]: a
//! write committed before a confirmation began is seen by it, so no cache answers from
//! before a revocation later than [`TRUSTED_FOR`] after it committed. Without fresh
//! confirmations (the cluster out of reach, no confirming thread) every lookup reads
//! through. Nothing rests on a watch delivering every event.
//!
//! A backend that no other process writes needs none of this: its caches change with
//! its own writes, under their locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::StoreError;
use crate::kv::{KvBackend, KvTx, Tree, TxFault};
use crate::store::Store;

/// The meta key whose value changes with every write that makes a cache stale.
const EPOCH_KEY: &[u8] = b"cache_epoch";
/// How long after a confirmation began the caches may answer.
const TRUSTED_FOR: Duration = Duration::from_millis(750);
/// How often the confirming thread reads the epoch, if no watch wakes it sooner.
const CONFIRM_EVERY: Duration = Duration::from_millis(200);
/// The shortest time between two rounds woken by the watch: a burst of commits on other
/// nodes is one round, not one each.
const WOKEN_ROUNDS_APART: Duration = Duration::from_millis(20);

/// The trees whose changes the caches hold.
const CACHED_TREES: [Tree; 5] = [
    Tree::Tokens,
    Tree::TokenHashes,
    Tree::Apps,
    Tree::Envs,
    Tree::EnvNames,
];

/// What a node last confirmed of the epoch.
#[derive(Debug)]
pub(crate) struct CacheEpoch {
    /// When the backend is written by other processes too.
    shared: bool,
    /// The clock confirmations are measured on.
    origin: Instant,
    /// Microseconds after `origin` at which the last confirmation began (0: never).
    confirmed_at: AtomicU64,
    /// The epoch value last read; held while confirming (one confirmation at a time).
    seen: Mutex<Option<Vec<u8>>>,
}

impl CacheEpoch {
    pub(crate) fn new(shared: bool) -> Self {
        CacheEpoch {
            shared,
            origin: Instant::now(),
            confirmed_at: AtomicU64::new(0),
            seen: Mutex::new(None),
        }
    }

    /// Whether a write to `trees` must move the epoch.
    pub(crate) fn moved_by(&self, trees: &[Tree]) -> bool {
        self.shared && trees.iter().any(|t| CACHED_TREES.contains(t))
    }

    /// Moves the epoch inside a write's transaction (which spans [`Tree::Meta`]).
    pub(crate) fn move_in(&self, tx: &dyn KvTx) -> Result<(), TxFault> {
        tx.insert(Tree::Meta, EPOCH_KEY, &rand::random::<[u8; 16]>())
    }

    /// Whether the caches may answer now.
    pub(crate) fn trusted(&self) -> bool {
        if !self.shared {
            return true;
        }
        let confirmed_at = self.confirmed_at.load(Ordering::SeqCst);
        let now = self.origin.elapsed().as_micros() as u64;
        confirmed_at != 0 && now.saturating_sub(confirmed_at) < TRUSTED_FOR.as_micros() as u64
    }
}

impl<B: KvBackend> Store<B> {
    /// Whether the backend answered lately: always for a store no other process writes;
    /// for a shared one, whether a confirmation (made several times a second by
    /// [`Store::follow_other_nodes`]) succeeded within the last moment. Costs no
    /// request of its own, so a health check can ask it as often as it likes.
    pub fn storage_reachable(&self) -> bool {
        self.cache_epoch.trusted()
    }

    /// Whether other processes write the same backend (nodes on one cluster): its
    /// reads may then wait on a network.
    pub fn is_shared(&self) -> bool {
        self.cache_epoch.shared
    }

    /// Reads the epoch and empties the caches if another node moved it; the caches
    /// may then answer for a short while. A store no other process writes has nothing
    /// to confirm.
    pub fn confirm_caches(&self) -> Result<(), StoreError> {
        let epoch = &self.cache_epoch;
        if !epoch.shared {
            return Ok(());
        }
        let mut seen = epoch.seen.lock();
        let began = (epoch.origin.elapsed().as_micros() as u64).max(1);
        let now = self.kv.get(Tree::Meta, EPOCH_KEY)?;
        if *seen != now {
            // A token lookup that read before this one is refused when it fills the
            // cache (clearing moves its generation); an environment lookup fills under
            // the write lock, so it waits for this, or is emptied by it.
            self.token_cache.write().clear();
            self.env_cache.write().clear();
            *seen = now;
        }
        epoch.confirmed_at.fetch_max(began, Ordering::SeqCst);
        Ok(())
    }
}

impl<B: KvBackend> Store<B>
where
    Store<B>: Send + Sync + 'static,
{
    /// Confirms the caches, and moves the changes feed over what other nodes appended,
    /// from a thread of its own, several times a second, for as long as the store is
    /// alive (nothing to do for a store no other process writes).
    pub fn follow_other_nodes(self: &Arc<Self>) {
        if !self.cache_epoch.shared {
            return;
        }
        // Once before returning: a server that has just started answers from its
        // caches, and reports its storage reachable, at once.
        let _ = self.confirm_caches();
        // Woken by the backend's watch of what the rounds read (the epoch, and the audit
        // chains the feed follows), so that a change on another node is seen at once;
        // and on a timer, which is what the caches' trust rests on.
        let watch = self
            .kv
            .watch(&[(Tree::Meta, EPOCH_KEY), (Tree::Audit, b"")]);
        let store: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("cache-epoch".into())
            .spawn(move || {
                let mut seen = watch.as_ref().map_or(0, |watch| watch.seen());
                while let Some(store) = store.upgrade() {
                    let round = Instant::now();
                    // A failed round needs no report of its own: lookups read through
                    // meanwhile and meet the same failure, where it is answered.
                    let _ = store.confirm_caches();
                    let _ = store.refresh_feed();
                    drop(store);
                    match &watch {
                        Some(watch) => {
                            let before = seen;
                            seen = watch.wait(seen, CONFIRM_EVERY);
                            if seen != before {
                                std::thread::sleep(
                                    WOKEN_ROUNDS_APART.saturating_sub(round.elapsed()),
                                );
                            }
                        }
                        None => std::thread::sleep(CONFIRM_EVERY),
                    }
                }
            })
            .expect("a thread can be started");
    }
}
