//! Concurrency (DESIGN.md, "Uniqueness" and "Atomic batches, atomic visibility"):
//! concurrent creators of one key cannot both win, and no reader sees part of a batch.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use coffer_store::kv::{
    KvBackend, KvError, KvIter, KvPair, KvTx, SledBackend, Tree, TxAbort, TxError,
};
use coffer_store::{MasterKey, NewApp, SecretFilter, SecretUpdate, Store, StoreError};
use common::{me, secret, update, TestStore};

#[test]
fn of_16_concurrent_creators_of_one_key_exactly_one_wins() {
    const THREADS: usize = 16;
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let barrier = Barrier::new(THREADS);
    let results: Vec<Result<String, StoreError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    let value = format!("writer {i}");
                    barrier.wait();
                    s.create_secrets(&me(), env, vec![secret("SHARED", &value)])
                        .map(|_| value)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::DuplicateSecret)))
        .count();
    assert_eq!(duplicates, THREADS - 1, "{results:?}");
    let stored = s.list_secrets(env, &SecretFilter::default()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(&stored[0].value, winners[0]);
    assert_eq!(s.counts().secrets, 1);
}

#[test]
fn concurrent_creators_of_one_key_in_any_case_and_path_spelling_collide() {
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let spellings = [("/a", "K"), ("a", "k"), ("//a//", "K"), ("a/", "k")];
    let barrier = Barrier::new(spellings.len() * 2);
    let oks: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = spellings
            .iter()
            .chain(spellings.iter())
            .map(|&(path, key)| {
                let (s, barrier) = (&s, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let new = common::secret_at(path, key, "v");
                    match s.create_secrets(&me(), env, vec![new]) {
                        Ok(_) => 1,
                        Err(StoreError::DuplicateSecret) => 0,
                        Err(other) => panic!("{other:?}"),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(oks, 1);
}

#[test]
fn concurrent_writers_of_distinct_keys_all_succeed_in_one_audit_chain() {
    const THREADS: usize = 16;
    const EACH: usize = 10;
    let s = TestStore::new();
    let env = s.dev_env("shop");
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = &s;
            scope.spawn(move || {
                for i in 0..EACH {
                    s.create_secrets(&me(), env, vec![secret(&format!("K_{t}_{i}"), "v")])
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(
        s.list_secrets(env, &SecretFilter::default()).unwrap().len(),
        THREADS * EACH
    );
    let verified = s.verify_audit().unwrap();
    // One entry for the app, one per create.
    assert_eq!(verified.checked(), 1 + (THREADS * EACH) as u64);
    assert!(verified.intact());
}

#[test]
fn readers_never_see_part_of_a_batch_update() {
    const SECRETS: usize = 50;
    const GENERATIONS: usize = 40;
    const READERS: usize = 3;
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let batch = (0..SECRETS)
        .map(|i| secret(&format!("K{i:02}"), "gen-0"))
        .collect();
    let ids: Vec<_> = s
        .create_secrets(&me(), env, batch)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let done = AtomicBool::new(false);
    let seen: Vec<BTreeSet<String>> = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (s, done) = (&s, &done);
                scope.spawn(move || {
                    let mut seen = BTreeSet::new();
                    let mut last_generation = 0;
                    while !done.load(Ordering::SeqCst) {
                        let listed = s.list_secrets(env, &SecretFilter::default()).unwrap();
                        assert_eq!(listed.len(), SECRETS);
                        let generations: BTreeSet<&str> =
                            listed.iter().map(|s| s.value.as_str()).collect();
                        assert_eq!(generations.len(), 1, "a listing mixed {generations:?}");
                        let value = listed[0].value.clone();
                        let generation: usize = value["gen-".len()..].parse().unwrap();
                        assert!(generation >= last_generation, "went back in time");
                        last_generation = generation;
                        seen.insert(value);
                    }
                    seen
                })
            })
            .collect();
        for generation in 1..=GENERATIONS {
            let updates = ids
                .iter()
                .map(|id| SecretUpdate {
                    value: Some(format!("gen-{generation}")),
                    ..update(*id)
                })
                .collect();
            s.update_secrets(&me(), env, updates).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        readers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The readers did overlap the writer: between them they saw several generations.
    let union: BTreeSet<&String> = seen.iter().flatten().collect();
    assert!(union.len() > 1, "readers saw only {union:?}");
    let last = s.list_secrets(env, &SecretFilter::default()).unwrap();
    assert!(last
        .iter()
        .all(|s| s.value == format!("gen-{GENERATIONS}") && s.version == 1 + GENERATIONS as u64));
}

#[test]
fn readers_never_see_part_of_a_batch_create_or_delete() {
    const SECRETS: usize = 50;
    const ROUNDS: usize = 20;
    let s = TestStore::new();
    let env = s.dev_env("shop");
    let done = AtomicBool::new(false);
    let counts: BTreeSet<usize> = std::thread::scope(|scope| {
        let reader = {
            let (s, done) = (&s, &done);
            scope.spawn(move || {
                let mut counts = BTreeSet::new();
                while !done.load(Ordering::SeqCst) {
                    let n = s.list_secrets(env, &SecretFilter::default()).unwrap().len();
                    assert!(
                        n == 0 || n == SECRETS,
                        "saw {n} of a {SECRETS}-secret batch"
                    );
                    counts.insert(n);
                }
                counts
            })
        };
        for round in 0..ROUNDS {
            let batch = (0..SECRETS)
                .map(|i| secret(&format!("R{round}_{i}"), "v"))
                .collect();
            let ids: Vec<_> = s
                .create_secrets(&me(), env, batch)
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect();
            s.delete_secrets(&me(), env, &ids).unwrap();
        }
        done.store(true, Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(!counts.is_empty());
}

/// Sled on disk, with every flush counted and slowed down like a slow disk, and every
/// commit numbered, so that a writer can tell whether a flush covered its commit.
struct CountedFlushes {
    inner: SledBackend,
    flushes: Arc<AtomicUsize>,
    /// Transactions committed so far.
    commits: AtomicU64,
    /// Commits that a finished flush covered (all those counted before it started).
    durable: Arc<AtomicU64>,
}

thread_local! {
    /// The number of this thread's last commit through a [`CountedFlushes`].
    static LAST_COMMIT: Cell<u64> = const { Cell::new(0) };
}

impl KvBackend for CountedFlushes {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.inner.get(tree, key)
    }
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_> {
        self.inner.scan_prefix(tree, prefix)
    }
    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_> {
        self.inner.scan_from(tree, start)
    }
    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError> {
        self.inner.last(tree)
    }
    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError> {
        self.inner.floor(tree, key)
    }
    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        let committed = self.inner.transaction(trees, work)?;
        LAST_COMMIT.set(self.commits.fetch_add(1, Ordering::SeqCst) + 1);
        Ok(committed)
    }
    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.inner.insert(tree, key, value)
    }
    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        self.inner.insert_new(tree, key, value)
    }
    fn flush(&self) -> Result<(), KvError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        let covered = self.commits.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2));
        self.inner.flush()?;
        self.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
    fn len(&self, tree: Tree) -> usize {
        self.inner.len(tree)
    }
    fn size_on_disk(&self) -> Result<u64, KvError> {
        self.inner.size_on_disk()
    }
}

#[test]
fn concurrent_writers_of_one_environment_share_fsyncs() {
    const THREADS: usize = 16;
    const EACH: usize = 8;
    let flushes = Arc::new(AtomicUsize::new(0));
    let durable = Arc::new(AtomicU64::new(0));
    let dir = tempfile::tempdir().unwrap();
    let backend = CountedFlushes {
        inner: SledBackend::open(dir.path(), 1 << 20).unwrap(),
        flushes: flushes.clone(),
        commits: AtomicU64::new(0),
        durable: durable.clone(),
    };
    let store = Store::with_backend(backend, &MasterKey::generate()).unwrap();
    let (_, envs) = store
        .create_app(
            &me(),
            NewApp {
                name: "shop".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let env = envs[0].id;
    let before = flushes.load(Ordering::SeqCst);
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (store, barrier, durable) = (&store, &barrier, &durable);
            scope.spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    store
                        .create_secrets(&me(), env, vec![secret(&format!("K_{t}_{i}"), "v")])
                        .unwrap();
                    // A flush that started after this write committed had finished
                    // before the write returned.
                    let commit = LAST_COMMIT.get();
                    let durable = durable.load(Ordering::SeqCst);
                    assert!(
                        commit > 0 && commit <= durable,
                        "write {t}/{i} (commit {commit}) returned before it was flushed \
                         (flushes covered {durable} commits)"
                    );
                }
            });
        }
    });
    let writes = THREADS * EACH;
    let used = flushes.load(Ordering::SeqCst) - before;
    // Every write was durable before it returned (checked above), yet writers waiting
    // together shared a flush: far fewer flushes than writes.
    assert!(
        used * 2 <= writes,
        "{used} flushes for {writes} concurrent writes"
    );
    assert_eq!(
        store
            .list_secrets(env, &SecretFilter::default())
            .unwrap()
            .len(),
        writes
    );
}
