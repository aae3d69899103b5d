//! [`KvBackend`] on an etcd cluster (v3 API), for several Coffer nodes sharing one state.
//!
//! Keys are `prefix ‖ tree name ‖ '/' ‖ key`. A transaction runs its closure against one
//! revision of the cluster (every read of an attempt is made at the revision of its first
//! read, so the attempt sees one consistent state), records what it read, and commits its
//! writes in one etcd `Txn` guarded by compares on what it read:
//! - a key read (present or absent): its `mod_revision` is still the one seen (0 for
//!   absent);
//! - a range read: no key in the range has a `mod_revision` above the attempt's revision
//!   (nothing added or changed), and every key seen is still at its revision (nothing
//!   removed).
//!
//! A failed compare means another node committed in between: the closure runs again on
//! a newer revision, after a short randomised pause. Reads are linearizable. etcd makes a
//! write durable on a quorum before it answers, so [`KvBackend::flush`] has nothing left
//! to do.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, KvClient, SortOrder, SortTarget, Txn,
    TxnOp, WatchOptions,
};
use parking_lot::Mutex;
use tonic::Code;

use super::{
    BackendFault, ChangeSignal, KvBackend, KvError, KvIter, KvPair, KvTx, Tree, TxAbort, TxError,
    TxFault,
};

/// Keys fetched per request while scanning.
const SCAN_PAGE: i64 = 512;
/// Attempts of a transaction that keeps meeting concurrent commits before it fails.
const MAX_ATTEMPTS: u32 = 64;
/// How long one request may take before the cluster counts as unreachable: a cluster
/// without quorum answers nothing, and a caller is better told so than kept waiting.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts of a read that finds the cluster out of reach.
const READ_ATTEMPTS: u32 = 3;
/// How long connecting to a member may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The key [`KvBackend::check_reachable`] reads (linearizably: only a member that is
/// part of a quorum answers).
const PROBE_KEY: &[u8] = b"probe";
/// The first pause before a lost watch is made again, and the longest.
const WATCH_RETRY_FIRST: Duration = Duration::from_millis(100);
const WATCH_RETRY_MOST: Duration = Duration::from_secs(2);
/// How often a watch with no events looks whether anyone still listens.
const WATCH_ALIVE_EVERY: Duration = Duration::from_secs(1);

/// `(key without the tree prefix, value, mod_revision)`.
type Versioned = (Vec<u8>, Vec<u8>, i64);
/// The pairs of a range and the revision they were read at.
type Scanned = (Vec<Versioned>, i64);

/// An etcd cluster as a [`KvBackend`].
pub struct EtcdBackend {
    runtime: tokio::runtime::Runtime,
    /// For the watches, which run on connections of their own.
    endpoints: Vec<String>,
    client: Mutex<KvClient>,
    /// For the cluster's status (its size on disk).
    maintenance: Mutex<Client>,
    prefix: Vec<u8>,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish_non_exhaustive()
    }
}

/// What an etcd client error means for the store: the cluster out of reach (no quorum,
/// no member answering), a transaction over one of the cluster's limits, or a failure.
fn kv_error(err: etcd_client::Error) -> KvError {
    use etcd_client::Error as E;
    let fault = match &err {
        E::TransportError(_) | E::IoError(_) => Some(BackendFault::Unreachable(err.to_string())),
        E::GRpcStatus(status) => match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
                Some(BackendFault::Unreachable(status.message().to_owned()))
            }
            // A connection to a member that went away (reset, broken pipe), which tonic
            // reports with no code of its own.
            Code::Unknown if status.message().contains("transport error") => {
                Some(BackendFault::Unreachable(status.message().to_owned()))
            }
            // The server's own words for its two transaction limits (etcd's
            // `ErrGRPCTooManyOps` and `ErrGRPCRequestTooLarge`), and gRPC's for a message
            // over the server's receive limit (which etcd derives from the same flag).
            Code::InvalidArgument if status.message().contains("too many operations") => {
                Some(BackendFault::TooLarge("--max-txn-ops"))
            }
            Code::InvalidArgument if status.message().contains("request is too large") => {
                Some(BackendFault::TooLarge("--max-request-bytes"))
            }
            Code::ResourceExhausted => Some(BackendFault::TooLarge("--max-request-bytes")),
            _ => None,
        },
        _ => None,
    };
    match fault {
        Some(fault) => KvError::new(fault),
        None => KvError::new(err),
    }
}

/// How every connection is made. A request's own time limit is set on the store's
/// connection only: a watch is one request that lasts.
fn connect_options() -> ConnectOptions {
    ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        // A member cut off from the leader refuses at once instead of waiting.
        .with_require_leader(true)
}

/// Watches the key ranges `[start, end)` for as long as anyone holds the signal, and
/// makes the watch again (after a pause, longer each time it fails) whenever it is lost:
/// its stream broken, the member gone, or the watch cancelled by a compaction.
async fn keep_watching(
    endpoints: Vec<String>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    signal: Weak<ChangeSignal>,
) {
    let mut pause = WATCH_RETRY_FIRST;
    while signal.strong_count() > 0 {
        match watch_until_lost(&endpoints, &ranges, &signal).await {
            Ok(()) => pause = WATCH_RETRY_FIRST,
            Err(_) => pause = (pause * 2).min(WATCH_RETRY_MOST),
        }
        // What happened while no watch was made is seen by the next round of the
        // waiter, which this wakes.
        match signal.upgrade() {
            Some(signal) => signal.notify(),
            None => return,
        }
        tokio::time::sleep(pause).await;
    }
}

/// One watch over `ranges`, signalling every response with events, until it is lost
/// (`Ok` if it ended without an error) or no one listens any more.
async fn watch_until_lost(
    endpoints: &[String],
    ranges: &[(Vec<u8>, Vec<u8>)],
    signal: &Weak<ChangeSignal>,
) -> Result<(), etcd_client::Error> {
    let mut client = Client::connect(endpoints, Some(connect_options())).await?;
    let mut stream = None;
    for (start, end) in ranges {
        let options = WatchOptions::new().with_range(end.clone());
        match &mut stream {
            None => stream = Some(client.watch(start.clone(), Some(options)).await?),
            Some(stream) => stream.watch(start.clone(), Some(options)).await?,
        }
    }
    let Some(mut stream) = stream else {
        return Ok(());
    };
    loop {
        let Ok(message) = tokio::time::timeout(WATCH_ALIVE_EVERY, stream.message()).await else {
            if signal.strong_count() == 0 {
                return Ok(());
            }
            continue;
        };
        let Some(response) = message? else {
            return Ok(());
        };
        if response.canceled() {
            return Ok(());
        }
        if !response.events().is_empty() {
            match signal.upgrade() {
                Some(signal) => signal.notify(),
                None => return Ok(()),
            }
        }
    }
}

/// The first key after every key that starts with `prefix` (etcd's `range_end`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range runs to the end of the key space.
    vec![0]
}

impl EtcdBackend {
    /// Connects to the cluster at `endpoints`; every key lives under `prefix`.
    pub fn connect(endpoints: &[String], prefix: &str) -> Result<Self, KvError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(KvError::new)?;
        let options = connect_options().with_timeout(REQUEST_TIMEOUT);
        let client = runtime
            .block_on(Client::connect(endpoints, Some(options)))
            .map_err(kv_error)?;
        // A page of a scan holds up to SCAN_PAGE records of any size the API takes: more
        // than the client's default answer limit (4 MiB). etcd bounds what it sends.
        let kv = client.kv_client().max_decoding_message_size(usize::MAX);
        Ok(EtcdBackend {
            runtime,
            endpoints: endpoints.to_vec(),
            client: Mutex::new(kv),
            maintenance: Mutex::new(client),
            prefix: prefix.as_bytes().to_vec(),
        })
    }

    /// Whether nothing `tx` read has changed since: its compares, sent alone.
    fn still_current(&self, tx: &EtcdTx<'_>) -> Result<bool, KvError> {
        let compares = tx.compares();
        if compares.is_empty() {
            return Ok(true);
        }
        let txn = Txn::new().when(compares);
        Ok(self.call(async |client| client.txn(txn).await)?.succeeded())
    }

    fn tree_prefix(&self, tree: Tree) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(tree.name().as_bytes());
        key.push(b'/');
        key
    }

    fn full_key(&self, tree: Tree, key: &[u8]) -> Vec<u8> {
        let mut full = self.tree_prefix(tree);
        full.extend_from_slice(key);
        full
    }

    /// [`EtcdBackend::call`] for a request that changes nothing, sent again (after a
    /// short pause) when the cluster could not be reached: a member restarting leaves
    /// the client a stale connection or two, which the next attempt does not use.
    fn read<T>(
        &self,
        request: impl AsyncFn(&mut KvClient) -> Result<T, etcd_client::Error>,
    ) -> Result<T, KvError> {
        let mut pause = Duration::from_millis(50);
        for _ in 1..READ_ATTEMPTS {
            match self.call(&request) {
                Err(e) if e.is_unreachable() => std::thread::sleep(pause),
                answered => return answered,
            }
            pause *= 2;
        }
        self.call(&request)
    }

    /// Runs one request on the backend's runtime (store calls run on blocking threads,
    /// never on an async worker).
    fn call<T>(
        &self,
        request: impl AsyncFnOnce(&mut KvClient) -> Result<T, etcd_client::Error>,
    ) -> Result<T, KvError> {
        let mut client = self.client.lock().clone();
        self.runtime
            .block_on(request(&mut client))
            .map_err(kv_error)
    }

    /// `(key without the tree prefix, value, mod_revision)` of `[start, end)` at
    /// `revision` (0: the newest), at most `limit` (0: all), and the revision read at.
    fn range(
        &self,
        tree: Tree,
        start: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
        limit: i64,
    ) -> Result<Scanned, KvError> {
        let strip = self.tree_prefix(tree).len();
        let answer = self.read(async |client| {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_revision(revision)
                .with_limit(limit);
            client.get(start.clone(), Some(options)).await
        })?;
        let read_at = answer.header().map_or(revision, |h| h.revision());
        let pairs = answer
            .kvs()
            .iter()
            .map(|kv| {
                (
                    kv.key()[strip..].to_vec(),
                    kv.value().to_vec(),
                    kv.mod_revision(),
                )
            })
            .collect();
        Ok((pairs, read_at))
    }

    /// The whole of `[start, end)` of `tree`, page by page, at one revision.
    fn range_all(
        &self,
        tree: Tree,
        start: Vec<u8>,
        end: Vec<u8>,
        mut revision: i64,
    ) -> Result<Scanned, KvError> {
        let mut all = Vec::new();
        let mut from = start;
        loop {
            let (page, read_at) =
                self.range(tree, from.clone(), end.clone(), revision, SCAN_PAGE)?;
            revision = read_at;
            let full = page.len() as i64 == SCAN_PAGE;
            if let Some((last, _, _)) = page.last() {
                from = self.full_key(tree, last);
                from.push(0);
            }
            all.extend(page);
            if !full {
                return Ok((all, revision));
            }
        }
    }

    fn one_sorted(
        &self,
        tree: Tree,
        end: Vec<u8>,
        order: SortOrder,
    ) -> Result<Option<KvPair>, KvError> {
        let strip = self.tree_prefix(tree).len();
        let start = self.tree_prefix(tree);
        let answer = self.read(async |client| {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_sort(SortTarget::Key, order)
                .with_limit(1);
            client.get(start.clone(), Some(options)).await
        })?;
        Ok(answer
            .kvs()
            .first()
            .map(|kv| (kv.key()[strip..].to_vec(), kv.value().to_vec())))
    }
}

/// What an attempt read, for the compares of its commit.
#[derive(Default)]
struct ReadSet {
    /// The revision every read of the attempt is made at (0 until the first read).
    revision: i64,
    /// Full key → the `mod_revision` seen (0: absent).
    keys: BTreeMap<Vec<u8>, i64>,
    /// `[start, end)` of each range read.
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One attempt of a transaction.
struct EtcdTx<'a> {
    backend: &'a EtcdBackend,
    trees: &'a [Tree],
    read: RefCell<ReadSet>,
    /// Full key → the value written (`None`: removed).
    written: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
}

fn storage(err: KvError) -> TxFault {
    TxFault::Storage(err)
}

impl EtcdTx<'_> {
    fn check(&self, tree: Tree) -> Result<(), TxFault> {
        match self.trees.contains(&tree) {
            true => Ok(()),
            false => Err(storage(KvError::new(std::io::Error::other(format!(
                "tree '{}' is not part of this transaction",
                tree.name()
            ))))),
        }
    }

    /// Reads `[start, end)` at the attempt's revision.
    fn read_range(
        &self,
        tree: Tree,
        start: Vec<u8>,
        end: Vec<u8>,
    ) -> Result<Vec<Versioned>, TxFault> {
        let revision = self.read.borrow().revision;
        let (pairs, read_at) = self
            .backend
            .range_all(tree, start, end, revision)
            .map_err(storage)?;
        self.read.borrow_mut().revision = read_at;
        Ok(pairs)
    }

    /// The compares that hold only if nothing this attempt read has changed.
    fn compares(&self) -> Vec<Compare> {
        let read = self.read.borrow();
        let mut compares: Vec<Compare> = read
            .keys
            .iter()
            .map(|(key, seen)| Compare::mod_revision(key.clone(), CompareOp::Equal, *seen))
            .collect();
        for (start, end) in &read.ranges {
            compares.push(
                Compare::mod_revision(start.clone(), CompareOp::Less, read.revision + 1)
                    .with_range(end.clone()),
            );
        }
        compares
    }
}

impl KvTx for EtcdTx<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxFault> {
        self.check(tree)?;
        let full = self.backend.full_key(tree, key);
        if let Some(own) = self.written.borrow().get(&full) {
            return Ok(own.clone());
        }
        let mut end = full.clone();
        end.push(0);
        let found = self.read_range(tree, full.clone(), end)?.pop();
        let seen = found.as_ref().map_or(0, |(_, _, revision)| *revision);
        self.read.borrow_mut().keys.entry(full).or_insert(seen);
        Ok(found.map(|(_, value, _)| value))
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), TxFault> {
        self.check(tree)?;
        let full = self.backend.full_key(tree, key);
        self.written.borrow_mut().insert(full, Some(value.to_vec()));
        Ok(())
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxFault> {
        self.check(tree)?;
        let full = self.backend.full_key(tree, key);
        self.written.borrow_mut().insert(full, None);
        Ok(())
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<KvPair>, TxFault> {
        self.check(tree)?;
        let start = self.backend.full_key(tree, prefix);
        let end = prefix_end(&start);
        let pairs = self.read_range(tree, start.clone(), end.clone())?;
        let mut range = BTreeMap::new();
        {
            let mut read = self.read.borrow_mut();
            read.ranges.push((start.clone(), end));
            for (key, value, revision) in pairs {
                read.keys
                    .entry(self.backend.full_key(tree, &key))
                    .or_insert(revision);
                range.insert(key, value);
            }
        }
        let strip = self.backend.tree_prefix(tree).len();
        let written = self.written.borrow();
        for (full, value) in written.range(start.clone()..) {
            if !full.starts_with(&start) {
                break;
            }
            let key = full[strip..].to_vec();
            match value {
                Some(value) => range.insert(key, value.clone()),
                None => range.remove(&key),
            };
        }
        Ok(range.into_iter().collect())
    }
}

impl KvBackend for EtcdBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let full = self.full_key(tree, key);
        let answer = self.read(async |client| client.get(full.clone(), None).await)?;
        Ok(answer.kvs().first().map(|kv| kv.value().to_vec()))
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_> {
        let start = self.full_key(tree, prefix);
        let end = prefix_end(&start);
        pairs(self.range_all(tree, start, end, 0))
    }

    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_> {
        let end = prefix_end(&self.tree_prefix(tree));
        pairs(self.range_all(tree, self.full_key(tree, start), end, 0))
    }

    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError> {
        self.one_sorted(
            tree,
            prefix_end(&self.tree_prefix(tree)),
            SortOrder::Descend,
        )
    }

    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError> {
        let mut end = self.full_key(tree, key);
        end.push(0);
        self.one_sorted(tree, end, SortOrder::Descend)
    }

    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        let mut pause = Duration::from_millis(1);
        for _ in 0..MAX_ATTEMPTS {
            let tx = EtcdTx {
                backend: self,
                trees,
                read: RefCell::default(),
                written: RefCell::default(),
            };
            let value = match work(&tx) {
                Ok(value) => value,
                // Each read is of the newest state, not of one snapshot: an answer decided
                // on reads another commit changed meanwhile (a record and its index entry
                // of two different versions, say) is a conflict, not the answer.
                Err(TxAbort::Abort(e)) => match self.still_current(&tx) {
                    Ok(true) => return Err(TxError::Abort(e)),
                    Ok(false) => {
                        pause = backoff(pause);
                        continue;
                    }
                    Err(e) => return Err(TxError::Storage(e)),
                },
                Err(TxAbort::Fault(TxFault::Storage(e))) => return Err(TxError::Storage(e)),
                Err(TxAbort::Fault(TxFault::Conflict)) => continue,
            };
            let operations: Vec<TxnOp> = tx
                .written
                .borrow()
                .iter()
                .map(|(key, value)| match value {
                    Some(value) => TxnOp::put(key.clone(), value.clone(), None),
                    None => TxnOp::delete(key.clone(), None),
                })
                .collect();
            if operations.is_empty() {
                return Ok(value);
            }
            let txn = Txn::new().when(tx.compares()).and_then(operations);
            let answer = self
                .call(async |client| client.txn(txn).await)
                .map_err(TxError::Storage)?;
            if answer.succeeded() {
                return Ok(value);
            }
            // Another node committed over what this attempt read.
            pause = backoff(pause);
        }
        Err(TxError::Storage(KvError::new(std::io::Error::other(
            "transaction kept conflicting with concurrent commits",
        ))))
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let (full, value) = (self.full_key(tree, key), value.to_vec());
        self.call(async |client| client.put(full, value, None).await)
            .map(drop)
    }

    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        let (full, value) = (self.full_key(tree, key), value.to_vec());
        let txn = Txn::new()
            .when([Compare::version(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full, value, None)]);
        let answer = self.call(async |client| client.txn(txn).await)?;
        Ok(answer.succeeded())
    }

    /// etcd answers a write once a quorum has it on disk.
    fn flush(&self) -> Result<(), KvError> {
        Ok(())
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn check_reachable(&self) -> Result<(), KvError> {
        self.get(Tree::Meta, PROBE_KEY).map(drop)
    }

    fn len(&self, tree: Tree) -> usize {
        let start = self.tree_prefix(tree);
        let end = prefix_end(&start);
        self.read(async |client| {
            let options = GetOptions::new().with_range(end.clone()).with_count_only();
            client.get(start.clone(), Some(options)).await
        })
        .map_or(0, |answer| answer.count() as usize)
    }

    /// A watch of its own, on a connection and a thread of their own, so that it never
    /// waits behind the store's requests nor they behind it.
    fn watch(&self, watched: &[(Tree, &[u8])]) -> Option<Arc<ChangeSignal>> {
        let signal = Arc::new(ChangeSignal::default());
        let ranges: Vec<(Vec<u8>, Vec<u8>)> = watched
            .iter()
            .map(|(tree, prefix)| {
                let start = self.full_key(*tree, prefix);
                let end = prefix_end(&start);
                (start, end)
            })
            .collect();
        let (endpoints, listener) = (self.endpoints.clone(), Arc::downgrade(&signal));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        std::thread::Builder::new()
            .name("etcd-watch".into())
            .spawn(move || runtime.block_on(keep_watching(endpoints, ranges, listener)))
            .ok()?;
        Some(signal)
    }

    fn size_on_disk(&self) -> Result<u64, KvError> {
        let mut client = self.maintenance.lock().clone();
        let status = self.runtime.block_on(client.status()).map_err(kv_error)?;
        Ok(status.db_size().max(0) as u64)
    }
}

fn pairs(scanned: Result<Scanned, KvError>) -> KvIter<'static> {
    match scanned {
        Ok((pairs, _)) => Box::new(pairs.into_iter().map(|(k, v, _)| Ok((k, v)))),
        Err(e) => Box::new(std::iter::once(Err(e))),
    }
}

/// Waits a little before a transaction runs again after a conflict, longer each time and
/// randomised, so that two nodes do not collide again; the next pause.
fn backoff(pause: Duration) -> Duration {
    let jitter = rand::random::<u32>() % (pause.as_micros() as u32 + 1);
    std::thread::sleep(pause + Duration::from_micros(u64::from(jitter)));
    (pause * 2).min(Duration::from_millis(100))
}
