//! [`KvBackend`] on sled 0.34.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use super::fsync::{create_dir_all_durably, sync_dir, LogSync};
use super::sled_journal;
use super::{
    Durability, KvBackend, KvError, KvIter, KvPair, KvTx, Tree, TxAbort, TxError, TxFault,
};

/// sled holds an exclusive file lock on its database; a second process gets this error
/// (sled reports it only as an `Other` I/O error with this message).
fn is_lock_error(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock"))
}

/// How long [`SledBackend::open`] keeps trying a locked database. sled 0.34 releases its
/// file lock a moment *after* a drop returns (spacejam/sled#1289), so a database this
/// process closed just before looks locked for a few milliseconds.
const LOCKED_RETRY: Duration = Duration::from_secs(1);

/// Why a sled database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SledOpenError {
    /// Another process holds the database.
    #[error("the data directory is in use by another process")]
    Locked,
    /// Any other failure.
    #[error(transparent)]
    Other(#[from] KvError),
}

/// A sled database with one sled tree per [`Tree`], which can be closed and opened again
/// in-process ([`KvBackend::reopen`]): sled 0.34 fails every write after one I/O error
/// (its log keeps the first error and reports it forever), so a database that hit a full
/// disk writes again only once reopened.
#[derive(Debug)]
pub struct SledBackend {
    /// The database open now; `None` between a close and a successful open.
    open: RwLock<Option<Arc<OpenDb>>>,
    /// How to open it again; `None` for a temporary database.
    reopen_with: Option<(PathBuf, u64, Durability)>,
    /// Held by every transaction and every write but [`KvBackend::insert_new`]: sled's
    /// transactions read single keys only, so a range read inside one is made safe by
    /// letting no other write commit meanwhile (sled is one process's: its file lock
    /// keeps others out).
    writing: Mutex<()>,
}

/// A [`KvBackend::transaction_in_steps`] whose work writes fewer keys than this is applied
/// as one sled transaction, which every other read and write of the process waits for
/// (about a millisecond here); a larger one in steps.
const ATOMIC_MOST: usize = 64;

/// One opening of the database.
#[derive(Debug)]
struct OpenDb {
    db: sled::Db,
    trees: Vec<sled::Tree>,
    /// The write set being applied in steps, if any (see [`sled_journal`]).
    journal: sled::Tree,
    /// What [`KvBackend::flush`] fsyncs after sled's own flush; `None` when relaxed
    /// (and for a temporary database).
    log_sync: Option<LogSync>,
}

/// The error of an operation between a failed reopen and the next.
fn closed() -> KvError {
    KvError::new(std::io::Error::other(
        "the database is closed, being reopened",
    ))
}

impl SledBackend {
    /// Opens (or creates) the database in `dir` with [`Durability::Strict`].
    /// `cache_bytes` bounds sled's page cache. A database that stays locked for
    /// [`LOCKED_RETRY`] is [`SledOpenError::Locked`].
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, SledOpenError> {
        Self::open_with(dir, cache_bytes, Durability::Strict)
    }

    /// [`SledBackend::open`] with the given durability.
    pub fn open_with(
        dir: &Path,
        cache_bytes: u64,
        durability: Durability,
    ) -> Result<Self, SledOpenError> {
        let open = OpenDb::open(dir, cache_bytes, durability)?;
        Ok(SledBackend {
            open: RwLock::new(Some(Arc::new(open))),
            reopen_with: Some((dir.to_owned(), cache_bytes, durability)),
            writing: Mutex::new(()),
        })
    }

    /// A database that lives in a temporary directory and disappears on drop. Its
    /// flush is sled's own (nothing to keep across a power loss).
    pub fn temporary() -> Result<Self, SledOpenError> {
        let open = OpenDb::from_config(sled::Config::new().temporary(true))?;
        Ok(SledBackend {
            open: RwLock::new(Some(Arc::new(open))),
            reopen_with: None,
            writing: Mutex::new(()),
        })
    }

    fn current(&self) -> Result<Arc<OpenDb>, KvError> {
        self.open.read().clone().ok_or_else(closed)
    }

    fn tree(&self, tree: Tree) -> Result<sled::Tree, KvError> {
        Ok(self.current()?.trees[tree.position()].clone())
    }

    /// The sled trees of `trees`, in that order, of the database open now.
    fn spanned(&self, trees: &[Tree]) -> Result<Vec<sled::Tree>, KvError> {
        let open = self.current()?;
        Ok(trees
            .iter()
            .map(|t| open.trees[t.position()].clone())
            .collect())
    }
}

impl OpenDb {
    fn open(dir: &Path, cache_bytes: u64, durability: Durability) -> Result<Self, SledOpenError> {
        let io = |e: std::io::Error| SledOpenError::Other(KvError::new(e));
        create_dir_all_durably(dir).map_err(io)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500));
        let deadline = Instant::now() + LOCKED_RETRY;
        let mut backend = loop {
            match Self::from_config(config.clone()) {
                Err(SledOpenError::Locked) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                opened => break opened?,
            }
        };
        // sled creates its files and `blobs/` without syncing them or the directory
        // (its `conf` is written and never fsynced): make the layout durable, once per
        // open, whatever the durability.
        for file in ["db", "conf"] {
            std::fs::File::open(dir.join(file))
                .and_then(|f| f.sync_all())
                .map_err(io)?;
        }
        sync_dir(&dir.join("blobs")).map_err(io)?;
        sync_dir(dir).map_err(io)?;
        if durability == Durability::Strict {
            backend.log_sync = Some(LogSync::open(dir).map_err(io)?);
        }
        Ok(backend)
    }

    fn from_config(config: sled::Config) -> Result<Self, SledOpenError> {
        let db = config.open().map_err(|e| {
            if is_lock_error(&e) {
                SledOpenError::Locked
            } else {
                SledOpenError::Other(KvError::new(e))
            }
        })?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SledOpenError::Other(KvError::new(e)))?;
        let journal = db
            .open_tree(sled_journal::JOURNAL_TREE)
            .map_err(|e| SledOpenError::Other(KvError::new(e)))?;
        if sled_journal::recover(&journal, &trees)? > 0 {
            db.flush()
                .map_err(|e| SledOpenError::Other(KvError::new(e)))?;
        }
        Ok(OpenDb {
            db,
            trees,
            journal,
            log_sync: None,
        })
    }
}

fn pairs(iter: sled::Iter) -> KvIter<'static> {
    Box::new(iter.map(|r| {
        r.map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(KvError::new)
    }))
}

/// Writes of a transaction, by position of the tree in its list and key (`None`:
/// removed).
type WriteSet = BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>;

/// The view of a transaction over some trees: reads see what is committed (no other
/// write commits while it runs: see [`SledBackend::writing`]) with this attempt's own
/// writes laid over it; the writes are applied together at the end.
struct SledTx<'a> {
    trees: &'a [Tree],
    /// `trees[i]` of the database open now is `base[i]`.
    base: &'a [sled::Tree],
    /// Writes made before this view's own, not yet applied, laid between the two.
    below: Option<&'a WriteSet>,
    written: RefCell<WriteSet>,
    /// A view that refuses writes ([`KvBackend::read_view`]).
    read_only: bool,
}

impl SledTx<'_> {
    fn position(&self, tree: Tree) -> Result<usize, TxFault> {
        self.trees.iter().position(|t| *t == tree).ok_or_else(|| {
            TxFault::Storage(KvError::new(std::io::Error::other(format!(
                "tree '{}' is not part of this transaction",
                tree.name()
            ))))
        })
    }

    fn write(&self, tree: Tree, key: &[u8], value: Option<&[u8]>) -> Result<(), TxFault> {
        if self.read_only {
            return Err(TxFault::Storage(KvError::new(std::io::Error::other(
                "a read view takes no writes",
            ))));
        }
        let position = self.position(tree)?;
        self.written
            .borrow_mut()
            .insert((position, key.to_vec()), value.map(<[u8]>::to_vec));
        Ok(())
    }
}

fn storage(err: sled::Error) -> TxFault {
    TxFault::Storage(KvError::new(err))
}

impl KvTx for SledTx<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxFault> {
        let position = self.position(tree)?;
        let at = (position, key.to_vec());
        if let Some(own) = self.written.borrow().get(&at) {
            return Ok(own.clone());
        }
        if let Some(earlier) = self.below.and_then(|below| below.get(&at)) {
            return Ok(earlier.clone());
        }
        let committed = self.base[position].get(key).map_err(storage)?;
        Ok(committed.map(|v| v.to_vec()))
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), TxFault> {
        self.write(tree, key, Some(value))
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxFault> {
        self.write(tree, key, None)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<KvPair>, TxFault> {
        let position = self.position(tree)?;
        let mut range = BTreeMap::new();
        for pair in self.base[position].scan_prefix(prefix) {
            let (key, value) = pair.map_err(storage)?;
            range.insert(key.to_vec(), value.to_vec());
        }
        if let Some(below) = self.below {
            lay_over(&mut range, below, position, prefix);
        }
        lay_over(&mut range, &self.written.borrow(), position, prefix);
        Ok(range.into_iter().collect())
    }
}

/// The writes of `set`, by tree, for the journal.
fn steps<'a>(trees: &[Tree], set: &'a WriteSet) -> Vec<sled_journal::Step<'a>> {
    set.iter()
        .map(|((position, key), value)| (trees[*position], key.as_slice(), value.as_deref()))
        .collect()
}

/// Lays the writes of `written` to keys of tree `position` starting with `prefix` over
/// `range`.
fn lay_over(
    range: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    written: &WriteSet,
    position: usize,
    prefix: &[u8],
) {
    let own = written
        .range((position, prefix.to_vec())..)
        .take_while(|((p, key), _)| *p == position && key.starts_with(prefix));
    for ((_, key), value) in own {
        match value {
            Some(value) => range.insert(key.clone(), value.clone()),
            None => range.remove(key),
        };
    }
}

/// Runs a transaction's work (again after a conflict) on `spanned`, with the writes
/// `below` (not yet applied) laid over it; returns its value and its own writes, not
/// yet applied. Callers hold [`SledBackend::writing`].
fn run<T, E>(
    trees: &[Tree],
    spanned: &[sled::Tree],
    below: Option<&WriteSet>,
    work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
) -> Result<(T, WriteSet), TxError<E>> {
    loop {
        let tx = SledTx {
            trees,
            base: spanned,
            below,
            written: RefCell::default(),
            read_only: false,
        };
        match work(&tx) {
            Ok(value) => return Ok((value, tx.written.into_inner())),
            Err(TxAbort::Abort(e)) => return Err(TxError::Abort(e)),
            Err(TxAbort::Fault(TxFault::Conflict)) => continue,
            Err(TxAbort::Fault(TxFault::Storage(e))) => return Err(TxError::Storage(e)),
        }
    }
}

/// Applies a transaction's writes at once: one sled transaction over the trees of
/// `spanned` (it only writes, so nothing can make it conflict).
fn apply(spanned: &[sled::Tree], written: WriteSet) -> Result<(), KvError> {
    if written.is_empty() {
        return Ok(());
    }
    spanned
        .transaction(|view| {
            for ((position, key), value) in &written {
                let tree: &TransactionalTree = &view[*position];
                match value {
                    Some(value) => tree.insert(key.as_slice(), value.as_slice())?,
                    None => tree.remove(key.as_slice())?,
                };
            }
            Ok::<_, ConflictableTransactionError<()>>(())
        })
        .map_err(|err| match err {
            TransactionError::Storage(e) => KvError::new(e),
            TransactionError::Abort(()) => unreachable!("the writes never abort"),
        })
}

fn failed_iter(err: KvError) -> KvIter<'static> {
    Box::new(std::iter::once(Err(err)))
}

impl KvBackend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.tree(tree)?
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(KvError::new)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_> {
        match self.tree(tree) {
            Ok(tree) => pairs(tree.scan_prefix(prefix)),
            Err(e) => failed_iter(e),
        }
    }

    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_> {
        match self.tree(tree) {
            Ok(tree) => pairs(tree.range(start..)),
            Err(e) => failed_iter(e),
        }
    }

    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError> {
        self.tree(tree)?
            .last()
            .map(|p| p.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(KvError::new)
    }

    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError> {
        self.tree(tree)?
            .range(..=key)
            .next_back()
            .transpose()
            .map(|p| p.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .map_err(KvError::new)
    }

    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        let _writing = self.writing.lock();
        let spanned = self.spanned(trees).map_err(TxError::Storage)?;
        let (value, written) = run(trees, &spanned, None, work)?;
        apply(&spanned, written).map_err(TxError::Storage)?;
        Ok(value)
    }

    /// A set of more than [`ATOMIC_MOST`] writes is applied key by key with sled's plain
    /// writes, made all-or-nothing across a crash by the [`sled_journal`]: no sled
    /// transaction holds every other reader and writer of the process off meanwhile.
    /// `work`'s writes are journaled before `last` runs.
    fn transaction_in_steps<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
        last: impl Fn(&dyn KvTx, &T) -> Result<(), TxAbort<E>>,
        last_applied: &dyn Fn(),
    ) -> Result<T, TxError<E>> {
        let _writing = self.writing.lock();
        let open = self.current().map_err(TxError::Storage)?;
        let spanned = self.spanned(trees).map_err(TxError::Storage)?;
        let (value, written) = run(trees, &spanned, None, &work)?;
        if written.len() < ATOMIC_MOST {
            let (_, lasts) = run(trees, &spanned, Some(&written), |tx| last(tx, &value))?;
            let mut written = written;
            written.extend(lasts);
            apply(&spanned, written).map_err(TxError::Storage)?;
            last_applied();
            return Ok(value);
        }
        let steps = |set| steps(trees, set);
        let journal = &open.journal;
        let storage = TxError::Storage;
        sled_journal::begin(journal, &steps(&written)).map_err(storage)?;
        let lasts = match run(trees, &spanned, Some(&written), |tx| last(tx, &value)) {
            Ok((_, lasts)) => lasts,
            Err(e) => {
                sled_journal::end(journal).map_err(storage)?;
                return Err(e);
            }
        };
        sled_journal::seal(journal, &steps(&lasts)).map_err(storage)?;
        for step in steps(&lasts) {
            sled_journal::apply_one(&open.trees, step).map_err(storage)?;
        }
        last_applied();
        for step in steps(&written) {
            sled_journal::apply_one(&open.trees, step).map_err(storage)?;
        }
        sled_journal::end(journal).map_err(storage)?;
        Ok(value)
    }

    /// Straight through, without the writers' lock: callers hold the writers of what
    /// they read off (the environment locks).
    fn read_view<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        let spanned = self.spanned(trees).map_err(TxError::Storage)?;
        let view = SledTx {
            trees,
            base: &spanned,
            below: None,
            written: RefCell::default(),
            read_only: true,
        };
        match work(&view) {
            Ok(value) => Ok(value),
            Err(TxAbort::Abort(e)) => Err(TxError::Abort(e)),
            Err(TxAbort::Fault(TxFault::Storage(e))) => Err(TxError::Storage(e)),
            Err(TxAbort::Fault(TxFault::Conflict)) => Err(TxError::Storage(KvError::new(
                std::io::Error::other("a read view cannot conflict"),
            ))),
        }
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let _writing = self.writing.lock();
        self.tree(tree)?
            .insert(key, value)
            .map(drop)
            .map_err(KvError::new)
    }

    /// Without the writers' lock: sled's compare-and-swap is atomic on its own, and the
    /// one caller (an audit append at its chain's next key, under the chain's head)
    /// writes no key a transaction reads in a range. A read's audit entry then never
    /// waits for a batch's work.
    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        let swapped = self
            .tree(tree)?
            .compare_and_swap(key, None::<&[u8]>, Some(value))
            .map_err(KvError::new)?;
        Ok(swapped.is_ok())
    }

    /// sled's flush writes the log to the OS; when strict, the blob files and the log
    /// are then fsynced (see [`LogSync`]).
    fn flush(&self) -> Result<(), KvError> {
        let open = self.current()?;
        let Some(log_sync) = &open.log_sync else {
            return open.db.flush().map(drop).map_err(KvError::new);
        };
        let listed = log_sync.unsynced_blobs().map_err(KvError::new)?;
        open.db.flush().map_err(KvError::new)?;
        log_sync.sync(listed).map_err(KvError::new)
    }

    fn len(&self, tree: Tree) -> usize {
        self.tree(tree).map_or(0, |tree| tree.len())
    }

    fn size_on_disk(&self) -> Result<u64, KvError> {
        self.current()?.db.size_on_disk().map_err(KvError::new)
    }

    /// Closes the database (once every operation in flight has let go of it) and opens
    /// it again from what is on disk. Callers hold every writer back meanwhile.
    fn reopen(&self) -> Result<(), KvError> {
        let Some((dir, cache_bytes, durability)) = &self.reopen_with else {
            return Err(KvError::new(std::io::Error::other(
                "a temporary database cannot be reopened",
            )));
        };
        let mut slot = self.open.write();
        // Dropped here; sled lets go of its file lock once the last clone is gone,
        // which the open below waits for (`LOCKED_RETRY`).
        *slot = None;
        let open = OpenDb::open(dir, *cache_bytes, *durability).map_err(|e| match e {
            SledOpenError::Locked => KvError::new(std::io::Error::other(
                "the database is still held by an operation in flight",
            )),
            SledOpenError::Other(e) => e,
        })?;
        *slot = Some(Arc::new(open));
        Ok(())
    }
}

/// Whether a storage error is the disk (or quota) being full: an I/O error of kind
/// `StorageFull` or raw OS error 28 (`ENOSPC`), reported by sled or by our own syncs.
pub(crate) fn is_storage_full(err: &(dyn std::error::Error + 'static)) -> bool {
    let full = |io: &std::io::Error| {
        io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28)
    };
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if full(io) || io.get_ref().is_some_and(|inner| is_storage_full(inner)) {
                return true;
            }
        }
        if let Some(sled::Error::Io(io)) = err.downcast_ref::<sled::Error>() {
            if full(io) {
                return true;
            }
        }
        source = err.source();
    }
    false
}
