//! A [`KvBackend`] that can lose power. It lives in memory and keeps every commit, in
//! commit order, with how many of them a flush made durable. A power cut leaves the
//! durable commits and a random prefix of the others, never part of one: a disk that
//! wrote some of its queue, in order, as sled's log does. A SIGKILL cannot show that an
//! acknowledged write never depended on an unflushed one (the page cache outlives the
//! process); this can.
//!
//! Transactions are serialised (one at a time, as sled's are here), read their own
//! writes, and apply all of their writes or none. A flush makes durable what was
//! committed before it was called, and nothing committed while it runs; it can be made
//! slow, held back, or made to fail with an I/O error.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};
use rand::Rng;

use coffer_store::kv::{KvBackend, KvError, KvIter, KvPair, KvTx, Tree, TxAbort, TxError, TxFault};

/// Every tree's pairs, by the tree's position in [`Tree::ALL`]: what a disk holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image(Vec<BTreeMap<Vec<u8>, Vec<u8>>>);

impl Default for Image {
    fn default() -> Self {
        Image(vec![BTreeMap::new(); Tree::ALL.len()])
    }
}

impl Image {
    fn apply(&mut self, commit: &Commit) {
        for ((position, key), value) in commit {
            let tree = &mut self.0[*position];
            match value {
                Some(value) => tree.insert(key.clone(), value.clone()),
                None => tree.remove(key),
            };
        }
    }

    fn tree(&self, tree: Tree) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.0[tree.position()]
    }

    fn bytes(&self) -> u64 {
        let pairs = self.0.iter().flat_map(BTreeMap::iter);
        pairs.map(|(k, v)| (k.len() + v.len()) as u64).sum()
    }
}

/// One commit's writes, by tree position and key (`None`: removed).
type Commit = BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>;

/// What a power cut left.
#[derive(Debug)]
pub struct PowerCut {
    /// The disk after the cut.
    pub image: Image,
    /// Commits made before the cut.
    pub committed: usize,
    /// Of those, the ones a flush had made durable.
    pub durable: usize,
    /// Of those, the ones the disk held (`durable..=committed`).
    pub kept: usize,
}

/// The disk and the commits made on it.
#[derive(Debug, Default)]
struct Disk {
    /// What the backend was opened on.
    base: Image,
    /// Every commit since, in commit order.
    log: Vec<Commit>,
    /// `log[..durable]` is durable.
    durable: usize,
    /// `base` with all of `log` applied: what reads see.
    live: Image,
    /// How many of the next flushes fail.
    failing: usize,
    /// How long a flush takes (commits go on meanwhile, and stay unflushed).
    flush_time: Duration,
    /// Flushes wait while this is set.
    held: bool,
    /// Flushes waiting because `held` is set.
    waiting: usize,
    /// Flushes called so far.
    flushes: usize,
}

impl Disk {
    fn image_of_first(&self, commits: usize) -> Image {
        let mut image = self.base.clone();
        for commit in &self.log[..commits] {
            image.apply(commit);
        }
        image
    }

    fn commit(&mut self, commit: Commit) {
        if commit.is_empty() {
            return;
        }
        self.live.apply(&commit);
        self.log.push(commit);
    }
}

#[derive(Debug, Default)]
struct Shared {
    disk: Mutex<Disk>,
    /// Wakes flushes held back.
    released: Condvar,
    /// Held by every transaction and single insert: one write at a time.
    writing: Mutex<()>,
}

/// The backend; clones share the same disk (a test keeps one to cut the power).
#[derive(Clone, Debug, Default)]
pub struct PowerLoss(Arc<Shared>);

impl PowerLoss {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// A disk holding `image`, all of it durable.
    pub fn from_image(image: Image) -> Self {
        let disk = Disk {
            live: image.clone(),
            base: image,
            ..Disk::default()
        };
        PowerLoss(Arc::new(Shared {
            disk: Mutex::new(disk),
            ..Shared::default()
        }))
    }

    /// The backend on the "disk" named by `dir`, for tests that open a backend on a
    /// directory: opening the same directory again finds what was durable on it, as after
    /// a power cut that kept nothing unflushed.
    pub fn on_disk(dir: &Path) -> Self {
        static DISKS: std::sync::Mutex<Option<HashMap<PathBuf, PowerLoss>>> =
            std::sync::Mutex::new(None);
        let mut disks = DISKS.lock().unwrap();
        let disks = disks.get_or_insert_with(HashMap::new);
        let backend = match disks.get(dir) {
            Some(before) => PowerLoss::from_image(before.durable_image()),
            None => PowerLoss::new(),
        };
        disks.insert(dir.to_owned(), backend.clone());
        backend
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.0.disk.lock()
    }

    /// Makes every flush take `time`.
    pub fn set_flush_time(&self, time: Duration) {
        self.disk().flush_time = time;
    }

    /// Makes the next `flushes` flushes fail with an I/O error (`EIO`, as a failed
    /// `fsync`). What they were to make durable stays unflushed: a power cut may keep a
    /// prefix of it, or nothing.
    pub fn fail_next_flushes(&self, flushes: usize) {
        self.disk().failing = flushes;
    }

    /// Holds every flush back (before it succeeds or fails) until
    /// [`PowerLoss::release_flushes`].
    pub fn hold_flushes(&self) {
        self.disk().held = true;
    }

    /// Lets held flushes go on.
    pub fn release_flushes(&self) {
        self.disk().held = false;
        self.0.released.notify_all();
    }

    /// Flushes waiting because they are held.
    pub fn flushes_waiting(&self) -> usize {
        self.disk().waiting
    }

    /// Flushes called so far (finished or not).
    pub fn flushes(&self) -> usize {
        self.disk().flushes
    }

    /// Commits made so far.
    pub fn commits(&self) -> usize {
        self.disk().log.len()
    }

    /// Commits made durable so far.
    pub fn durable_commits(&self) -> usize {
        self.disk().durable
    }

    /// The disk as it holds the first `commits` commits: for `commits` under
    /// [`PowerLoss::durable_commits`], a disk that lost what it said it had flushed.
    pub fn image_of_first(&self, commits: usize) -> Image {
        self.disk().image_of_first(commits)
    }

    /// What is durable now.
    pub fn durable_image(&self) -> Image {
        let disk = self.disk();
        disk.image_of_first(disk.durable)
    }

    /// Cuts the power now: the durable commits and a random prefix of the others.
    pub fn power_cut(&self, rng: &mut impl Rng) -> PowerCut {
        let disk = self.disk();
        let (durable, committed) = (disk.durable, disk.log.len());
        let kept = rng.gen_range(durable..=committed);
        PowerCut {
            image: disk.image_of_first(kept),
            committed,
            durable,
            kept,
        }
    }

    /// Applies one commit: every transaction and single insert ends here.
    fn commit(&self, commit: Commit) {
        self.disk().commit(commit);
    }

    fn read<T>(&self, tree: Tree, read: impl FnOnce(&BTreeMap<Vec<u8>, Vec<u8>>) -> T) -> T {
        read(self.disk().live.tree(tree))
    }
}

fn pairs(pairs: Vec<KvPair>) -> KvIter<'static> {
    Box::new(pairs.into_iter().map(Ok))
}

fn with_prefix(tree: &BTreeMap<Vec<u8>, Vec<u8>>, prefix: &[u8]) -> Vec<KvPair> {
    tree.range(prefix.to_vec()..)
        .take_while(|(key, _)| key.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The view of one transaction: what is committed (nothing else commits while it runs)
/// with its own writes laid over it.
struct PowerLossTx<'a> {
    backend: &'a PowerLoss,
    trees: &'a [Tree],
    written: RefCell<Commit>,
}

impl PowerLossTx<'_> {
    fn position(&self, tree: Tree) -> Result<usize, TxFault> {
        match self.trees.contains(&tree) {
            true => Ok(tree.position()),
            false => Err(TxFault::Storage(KvError::new(std::io::Error::other(
                format!("tree '{}' is not part of this transaction", tree.name()),
            )))),
        }
    }

    fn write(&self, tree: Tree, key: &[u8], value: Option<&[u8]>) -> Result<(), TxFault> {
        let position = self.position(tree)?;
        self.written
            .borrow_mut()
            .insert((position, key.to_vec()), value.map(<[u8]>::to_vec));
        Ok(())
    }
}

impl KvTx for PowerLossTx<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxFault> {
        let position = self.position(tree)?;
        if let Some(own) = self.written.borrow().get(&(position, key.to_vec())) {
            return Ok(own.clone());
        }
        Ok(self.backend.read(tree, |pairs| pairs.get(key).cloned()))
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), TxFault> {
        self.write(tree, key, Some(value))
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxFault> {
        self.write(tree, key, None)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<KvPair>, TxFault> {
        let position = self.position(tree)?;
        let mut range: BTreeMap<Vec<u8>, Vec<u8>> = self
            .backend
            .read(tree, |pairs| with_prefix(pairs, prefix))
            .into_iter()
            .collect();
        let written = self.written.borrow();
        let own = written
            .range((position, prefix.to_vec())..)
            .take_while(|((p, key), _)| *p == position && key.starts_with(prefix));
        for ((_, key), value) in own {
            match value {
                Some(value) => range.insert(key.clone(), value.clone()),
                None => range.remove(key),
            };
        }
        Ok(range.into_iter().collect())
    }
}

fn io_error() -> KvError {
    KvError::new(std::io::Error::from_raw_os_error(libc::EIO))
}

impl KvBackend for PowerLoss {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.read(tree, |pairs| pairs.get(key).cloned()))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_> {
        pairs(self.read(tree, |pairs| with_prefix(pairs, prefix)))
    }

    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_> {
        pairs(self.read(tree, |pairs| {
            let from = pairs.range(start.to_vec()..);
            from.map(|(k, v)| (k.clone(), v.clone())).collect()
        }))
    }

    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError> {
        Ok(self.read(tree, |pairs| {
            pairs.last_key_value().map(|(k, v)| (k.clone(), v.clone()))
        }))
    }

    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError> {
        Ok(self.read(tree, |pairs| {
            let before = pairs.range(..=key.to_vec()).next_back();
            before.map(|(k, v)| (k.clone(), v.clone()))
        }))
    }

    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        let _writing = self.0.writing.lock();
        loop {
            let tx = PowerLossTx {
                backend: self,
                trees,
                written: RefCell::default(),
            };
            match work(&tx) {
                Ok(value) => {
                    self.commit(tx.written.into_inner());
                    return Ok(value);
                }
                Err(TxAbort::Abort(e)) => return Err(TxError::Abort(e)),
                Err(TxAbort::Fault(TxFault::Conflict)) => continue,
                Err(TxAbort::Fault(TxFault::Storage(e))) => return Err(TxError::Storage(e)),
            }
        }
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let _writing = self.0.writing.lock();
        let write = ((tree.position(), key.to_vec()), Some(value.to_vec()));
        self.commit(Commit::from([write]));
        Ok(())
    }

    /// As sled's: atomic on its own, without waiting for a transaction in progress.
    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        let mut disk = self.disk();
        if disk.live.tree(tree).contains_key(key) {
            return Ok(false);
        }
        let write = ((tree.position(), key.to_vec()), Some(value.to_vec()));
        disk.commit(Commit::from([write]));
        Ok(true)
    }

    /// Covers what was committed when it was called; commits made while it takes its
    /// time (or is held back) are left for the next flush.
    fn flush(&self) -> Result<(), KvError> {
        let mut disk = self.disk();
        disk.flushes += 1;
        let covers = disk.log.len();
        let flush_time = disk.flush_time;
        if !flush_time.is_zero() {
            MutexGuard::unlocked(&mut disk, || std::thread::sleep(flush_time));
        }
        if disk.held {
            disk.waiting += 1;
            while disk.held {
                self.0.released.wait(&mut disk);
            }
            disk.waiting -= 1;
        }
        if disk.failing > 0 {
            disk.failing -= 1;
            return Err(io_error());
        }
        disk.durable = disk.durable.max(covers);
        Ok(())
    }

    fn len(&self, tree: Tree) -> usize {
        self.read(tree, BTreeMap::len)
    }

    fn size_on_disk(&self) -> Result<u64, KvError> {
        Ok(self.durable_image().bytes())
    }

    /// Drops what was not durable, as a restart after a power cut that kept none of it.
    fn reopen(&self) -> Result<(), KvError> {
        let _writing = self.0.writing.lock();
        let mut disk = self.disk();
        let durable = disk.durable;
        disk.live = disk.image_of_first(durable);
        disk.log.truncate(durable);
        Ok(())
    }
}
