//! [`Backend`]: the one backend value a store holds, whichever engine is below it.
//! Nothing above `kv/` names an engine; the server and the commands choose one through
//! [`Storage`].

use std::path::Path;

#[cfg(feature = "etcd")]
use super::EtcdBackend;
use super::{
    Durability, KvBackend, KvError, KvIter, KvPair, KvTx, SledBackend, SledOpenError, Tree,
    TxAbort, TxError,
};

/// Which engine holds a store's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// sled in the data directory: one node, the default.
    #[default]
    Embedded,
    /// An etcd cluster (v3 API), shared by every node that names it.
    Etcd {
        /// Client URLs of the cluster's members.
        endpoints: Vec<String>,
        /// Every key of this store starts with it (several stores may share a cluster).
        prefix: String,
    },
}

impl Storage {
    /// Whether this build can open the storage (etcd support is a cargo feature).
    pub fn supported(&self) -> bool {
        match self {
            Storage::Embedded => true,
            Storage::Etcd { .. } => cfg!(feature = "etcd"),
        }
    }
}

/// The backend of a store: an embedded sled database or an etcd cluster.
#[derive(Debug)]
pub enum Backend {
    /// sled on this machine.
    Embedded(SledBackend),
    /// An etcd cluster (boxed: its client is much larger than sled's handle).
    #[cfg(feature = "etcd")]
    Etcd(Box<EtcdBackend>),
}

impl Backend {
    /// Opens (or creates) the embedded database in `dir`.
    pub fn embedded(
        dir: &Path,
        cache_bytes: u64,
        durability: Durability,
    ) -> Result<Self, SledOpenError> {
        SledBackend::open_with(dir, cache_bytes, durability).map(Backend::Embedded)
    }

    /// An embedded database in a temporary directory, gone when dropped.
    pub fn temporary() -> Result<Self, SledOpenError> {
        SledBackend::temporary().map(Backend::Embedded)
    }

    /// Connects to an etcd cluster; every key of the store lives under `prefix`.
    #[cfg(feature = "etcd")]
    pub fn etcd(endpoints: &[String], prefix: &str) -> Result<Self, KvError> {
        EtcdBackend::connect(endpoints, prefix).map(|etcd| Backend::Etcd(Box::new(etcd)))
    }
}

/// Runs `$body` with `$b` bound to the engine below.
macro_rules! each {
    ($self:expr, $b:ident => $body:expr) => {
        match $self {
            Backend::Embedded($b) => $body,
            #[cfg(feature = "etcd")]
            Backend::Etcd($b) => $body,
        }
    };
}

impl KvBackend for Backend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        each!(self, b => b.get(tree, key))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_> {
        each!(self, b => b.scan_prefix(tree, prefix))
    }

    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_> {
        each!(self, b => b.scan_from(tree, start))
    }

    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError> {
        each!(self, b => b.last(tree))
    }

    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError> {
        each!(self, b => b.floor(tree, key))
    }

    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        each!(self, b => b.transaction(trees, work))
    }

    fn transaction_in_steps<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
        last: impl Fn(&dyn KvTx, &T) -> Result<(), TxAbort<E>>,
        last_applied: &dyn Fn(),
    ) -> Result<T, TxError<E>> {
        each!(self, b => b.transaction_in_steps(trees, work, last, last_applied))
    }

    fn read_view<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        each!(self, b => b.read_view(trees, work))
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        each!(self, b => b.insert(tree, key, value))
    }

    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        each!(self, b => b.insert_new(tree, key, value))
    }

    fn flush(&self) -> Result<(), KvError> {
        each!(self, b => b.flush())
    }

    fn len(&self, tree: Tree) -> usize {
        each!(self, b => b.len(tree))
    }

    fn size_on_disk(&self) -> Result<u64, KvError> {
        each!(self, b => b.size_on_disk())
    }

    fn reopen(&self) -> Result<(), KvError> {
        each!(self, b => b.reopen())
    }

    fn is_shared(&self) -> bool {
        each!(self, b => b.is_shared())
    }

    fn check_reachable(&self) -> Result<(), KvError> {
        each!(self, b => b.check_reachable())
    }

    fn watch(&self, watched: &[(Tree, &[u8])]) -> Option<std::sync::Arc<super::ChangeSignal>> {
        each!(self, b => b.watch(watched))
    }
}
