//! The storage seam: a narrow transactional key-value interface.
//!
//! Everything above this module speaks only these types. A backend provides a fixed
//! set of named trees, point reads, ordered scans, an all-or-nothing transaction over
//! every tree, and a durable flush. [`sled`](sled_backend) is the first backend; the
//! conformance suite in `tests/kv_conformance.rs` is written against the trait so a
//! second one (a distributed store shared by several nodes) can be checked the same way.

mod authenticated;
mod backend;
mod change_signal;
mod cut;
#[cfg(feature = "etcd")]
mod etcd_backend;
mod fsync;
mod sled_backend;
mod sled_journal;

pub(crate) use authenticated::{tagged, verified, Authenticated, RecordRefused};
pub use backend::{Backend, Storage};
pub use change_signal::ChangeSignal;
pub(crate) use cut::Cut;
#[cfg(feature = "etcd")]
pub use etcd_backend::EtcdBackend;
pub use fsync::{create_dir_all_durably, sync_dir, sync_with_parent};
pub use sled_backend::{SledBackend, SledOpenError};

/// What [`KvBackend::flush`] promises, and so when a write is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// A flush returns once everything committed before it is on disk (`fsync`ed:
    /// it survives a power loss). The default.
    #[default]
    Strict,
    /// A flush returns once everything committed before it is written to the
    /// operating system: it survives a crash of the process, not of the machine, until
    /// the backend syncs in the background (sled: its log every 500 ms, its blob files
    /// only when the kernel writes them back).
    Relaxed,
}

impl Durability {
    /// The setting's name: `strict` or `relaxed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Strict => "strict",
            Durability::Relaxed => "relaxed",
        }
    }
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(Durability::Strict),
            "relaxed" => Ok(Durability::Relaxed),
            other => Err(format!(
                "unknown durability '{other}' (expected strict or relaxed)"
            )),
        }
    }
}

/// The trees of a Coffer store. Every backend holds exactly these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tree {
    /// Store-wide records: format version, master-key check record.
    Meta,
    /// App id → app record.
    Apps,
    /// Lower-cased app name → app id (name uniqueness).
    AppNames,
    /// Environment id → environment record.
    Envs,
    /// App id + lower-cased environment name → environment id.
    EnvNames,
    /// Environment id + secret id → current secret record.
    Secrets,
    /// Environment id + key digest + path → secret id ‖ current version (the uniqueness
    /// index; the version catches a secret record put back from an older copy).
    SecretIndex,
    /// Environment id + secret id + big-endian version → version record.
    History,
    /// Token id → token record.
    Tokens,
    /// SHA-256 of a token → token id ‖ revoked flag (the flag catches a revoked token
    /// record put back from the copy before its revocation).
    TokenHashes,
    /// Big-endian sequence number → audit entry.
    Audit,
    /// Environment id + token id + secret id → a User token's personal override of that
    /// secret (the token before the secret: one prefix scan finds a token's overrides in
    /// an environment).
    Overrides,
    /// `e` + environment id → its sealed seed and salt; `t` + token id → the token's
    /// public key and wrapped key share (the Phase clients' key material).
    ClientKeys,
    /// Token id + SHA-256 of an `Idempotency-Key` → the answer kept for it, sealed, with
    /// the time it was kept (swept 24 hours later).
    IdempotentAnswers,
}

impl Tree {
    /// All trees, in a fixed order (backends index them by position).
    pub const ALL: [Tree; 14] = [
        Tree::Meta,
        Tree::Apps,
        Tree::AppNames,
        Tree::Envs,
        Tree::EnvNames,
        Tree::Secrets,
        Tree::SecretIndex,
        Tree::History,
        Tree::Tokens,
        Tree::TokenHashes,
        Tree::Audit,
        // Last: backends index trees by position, and earlier positions never move.
        Tree::Overrides,
        Tree::ClientKeys,
        Tree::IdempotentAnswers,
    ];

    /// The tree's stable on-disk name.
    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Apps => "apps",
            Tree::AppNames => "app_names",
            Tree::Envs => "envs",
            Tree::EnvNames => "env_names",
            Tree::Secrets => "secrets",
            Tree::SecretIndex => "secret_index",
            Tree::History => "history",
            Tree::Tokens => "tokens",
            Tree::TokenHashes => "token_hashes",
            Tree::Audit => "audit",
            Tree::Overrides => "overrides",
            Tree::ClientKeys => "client_keys",
            Tree::IdempotentAnswers => "idempotent_answers",
        }
    }

    /// Position of the tree in [`Tree::ALL`].
    pub fn position(self) -> usize {
        self as usize
    }
}

/// A failure of the storage backend itself (I/O, corruption, unsupported operation).
#[derive(Debug, thiserror::Error)]
#[error("storage backend: {0}")]
pub struct KvError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl KvError {
    /// Wraps any backend error.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        KvError(Box::new(err))
    }

    /// Whether the backend failed because its disk (or quota) is full: writing may
    /// succeed again once space is freed.
    pub fn is_storage_full(&self) -> bool {
        sled_backend::is_storage_full(&*self.0)
    }

    /// Whether the backend could not be reached (an etcd cluster without quorum): the
    /// operation may or may not have happened, and may succeed later.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.0.downcast_ref::<BackendFault>(),
            Some(BackendFault::Unreachable(_))
        )
    }

    /// The backend limit a transaction exceeded, if that is why it failed.
    pub fn exceeded_limit(&self) -> Option<&'static str> {
        match self.0.downcast_ref::<BackendFault>() {
            Some(BackendFault::TooLarge(limit)) => Some(limit),
            _ => None,
        }
    }
}

/// Failures a backend names precisely, so that the store can answer them apart.
#[derive(Debug, thiserror::Error)]
pub enum BackendFault {
    /// The backend cannot be reached now.
    #[error("the storage backend cannot be reached: {0}")]
    Unreachable(String),
    /// A transaction is larger than the backend takes in one; nothing of it was written.
    /// Names the setting that bounds it.
    #[error("the transaction exceeds the storage backend's {0}")]
    TooLarge(&'static str),
}

/// Why an operation inside a transaction could not go on. Backends use `Conflict`
/// to ask for the closure to be run again; it never reaches the caller.
#[derive(Debug)]
pub enum TxFault {
    /// A concurrent transaction touched the same keys; the backend retries.
    Conflict,
    /// The backend failed.
    Storage(KvError),
}

/// How a transaction closure stops early: with the caller's own error, or with a fault
/// raised by the backend (propagated with `?` from [`KvTx`] calls).
#[derive(Debug)]
pub enum TxAbort<E> {
    /// The caller's error: the transaction is rolled back and `E` returned.
    Abort(E),
    /// A backend fault.
    Fault(TxFault),
}

impl<E> From<TxFault> for TxAbort<E> {
    fn from(fault: TxFault) -> Self {
        TxAbort::Fault(fault)
    }
}

/// The outcome of a failed transaction.
#[derive(Debug)]
pub enum TxError<E> {
    /// The closure aborted with the caller's error; nothing was written.
    Abort(E),
    /// The backend failed; nothing was written.
    Storage(KvError),
}

/// The view a transaction closure works on. Reads see the transaction's own writes.
pub trait KvTx {
    /// Reads one key.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxFault>;
    /// Writes one key.
    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), TxFault>;
    /// Removes one key (absent keys are not an error).
    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxFault>;
    /// Every pair whose key starts with `prefix`, in key order, as this transaction sees
    /// them (its own writes included). The whole range is read: a transaction that
    /// commits a key in it (added, changed or removed) after the read and before this
    /// transaction's commit makes this one conflict, so an invariant decided from a
    /// range ("the last index", "everything to delete") holds when it commits.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<KvPair>, TxFault>;
}

/// A `(key, value)` pair.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// An ordered iterator over `(key, value)` pairs.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a>;

/// A transactional key-value backend.
pub trait KvBackend: Send + Sync + 'static {
    /// Reads one key outside any transaction.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// All pairs whose key starts with `prefix`, in key order. Not a snapshot: callers
    /// that need a consistent view hold the lock that writers of that range take.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_>;

    /// All pairs with key `>= start`, in key order.
    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_>;

    /// The pair with the greatest key.
    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError>;

    /// The pair with the greatest key `<= key`.
    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError>;

    /// Runs `work` as one all-or-nothing transaction over `trees` (the transaction
    /// costs in proportion to how many it spans; touching another tree is a storage
    /// error). `work` may be run more than once (on conflicts), so it must not have
    /// effects outside the view.
    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>>;

    /// [`KvBackend::transaction`] of `work` then `last` on one view, for a write set
    /// that may be large (a batch of one environment's secrets): all-or-nothing across a
    /// crash, but a backend may make the writes visible one by one while it applies
    /// them, so that applying a large set holds no other reader or writer off. Callers
    /// hold off the readers of what `work` writes (the environment locks). A backend may
    /// store `work`'s writes before it runs `last`, and applies `last`'s writes before
    /// `work`'s; `last_applied` runs once they are, before the rest. (The store takes its
    /// audit chain's head in `last` and lets go of it in `last_applied`: it holds it for
    /// a moment, whatever the size of the set.) After a storage error once
    /// `last_applied` has run, the set may be completed when the backend is opened
    /// again. By default one [`KvBackend::transaction`] of both, then `last_applied`.
    fn transaction_in_steps<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
        last: impl Fn(&dyn KvTx, &T) -> Result<(), TxAbort<E>>,
        last_applied: &dyn Fn(),
    ) -> Result<T, TxError<E>> {
        let value = self.transaction(trees, |tx| {
            let value = work(tx)?;
            last(tx, &value)?;
            Ok(value)
        })?;
        last_applied();
        Ok(value)
    }

    /// Runs `work` on a view of `trees` that reads one state of the backend: what one
    /// transaction committed is seen whole or not at all, across every read of the view.
    /// The view takes no writes. By default a transaction that writes nothing; a backend
    /// whose callers already hold writers off (sled, under the environment locks) reads
    /// straight through.
    fn read_view<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        self.transaction(trees, work)
    }

    /// Writes one key outside a transaction (atomic, not waited for on disk).
    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError>;

    /// Writes one key outside a transaction if it is absent (atomic: of two callers,
    /// at most one writes); `false` if it was there. It must not wait for the work of a
    /// transaction in progress: the store appends an audit entry with it while holding
    /// its chain's head, which a transaction's work takes once it is done (a backend that
    /// runs one transaction at a time must not run this as one of them).
    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError>;

    /// Returns once everything committed before the call is durable, as the backend's
    /// [`Durability`] defines it (by default: on disk, surviving a power loss).
    fn flush(&self) -> Result<(), KvError>;

    /// Number of keys in a tree (for metrics; may be O(n)).
    fn len(&self, tree: Tree) -> usize;

    /// Bytes used on disk.
    fn size_on_disk(&self) -> Result<u64, KvError>;

    /// Closes the backend and opens it again from what is durable: a backend that stops
    /// writing after an I/O error (sled on a full disk) writes again once reopened.
    /// Whatever was not durable may be gone afterwards. A backend that cannot be
    /// reopened says so.
    fn reopen(&self) -> Result<(), KvError> {
        Err(KvError::new(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this backend cannot be reopened",
        )))
    }

    /// Whether other processes write the same state (other nodes on one cluster): what
    /// this process keeps in memory may then go stale without a local write.
    fn is_shared(&self) -> bool {
        false
    }

    /// Fails if the backend cannot be reached now (for health checks); a local backend
    /// always can.
    fn check_reachable(&self) -> Result<(), KvError> {
        Ok(())
    }

    /// Starts watching the keys of `tree` that start with each of `prefixes` for commits
    /// of other processes, and returns what it signals them on; `None` if the backend has
    /// no such watch (no other process writes it). A signal is a hint, never the only way
    /// a change is seen: a lost watch signals too, and is made again.
    fn watch(&self, _watched: &[(Tree, &[u8])]) -> Option<std::sync::Arc<ChangeSignal>> {
        None
    }
}
