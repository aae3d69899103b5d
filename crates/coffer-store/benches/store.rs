//! What the store costs over raw sled doing the same work. Each group holds a Coffer
//! measurement and a raw-sled measurement side by side:
//!
//! - `create_durable`: one secret created and on disk before returning, vs. sled
//!   `insert` + `flush` (`sled`), and vs. the sled part of a create on its own: one
//!   transaction over three trees (a uniqueness read, record, index and audit
//!   inserts) + `flush` (`sled_tx`).
//! - `create_16_writers`: 16 threads each creating secrets (throughput), vs. 16 threads
//!   each doing the same raw sled work.
//! - `get_by_id`: one secret read and decrypted, vs. sled `get`.
//! - `list_1000`: every secret of a 1,000-secret environment, decrypted and ordered,
//!   vs. a sled prefix scan over 1,000 entries.
//! - `commit`: durable batches of 1 and 100 entries, created and updated (Coffer only:
//!   the write path's cost per batch size).
//! - `update_16_writers`: 16 threads each updating its own secret of one environment
//!   (the group commit with updates, whose sealing needs a decrypt and an encrypt).
//! - `resolve_references`: every value of a 100-secret environment whose values each
//!   name two others, resolved through one [`Resolver`].
//!
//! Run with `cargo bench -p coffer-store --bench store`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_store::{
    Actor, NewApp, NewSecret, Resolver, SecretFilter, SecretUpdate, Store, StoreConfig,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sled::Transactional;
use uuid::Uuid;

const WRITERS: usize = 16;
const LISTED: usize = 1_000;
/// Value size of every record, Coffer's and raw sled's alike.
const VALUE: &str = "postgres://shop:correct-horse-battery-staple@db.internal:5432/shop";

/// A Coffer store in a temporary directory with one app; returns the development env.
fn coffer() -> (tempfile::TempDir, Store, Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
    let (_, envs) = store
        .create_app(
            &Actor::embedded(),
            NewApp {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .unwrap();
    (dir, store, envs[0].id)
}

/// A raw sled database configured like Coffer's.
fn raw_sled() -> (tempfile::TempDir, sled::Db, sled::Tree) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(2 * 1024 * 1024)
        .flush_every_ms(Some(500))
        .open()
        .unwrap();
    let tree = db.open_tree("secrets").unwrap();
    (dir, db, tree)
}

/// The trees a create touches, on raw sled.
struct RawTrees {
    secrets: sled::Tree,
    index: sled::Tree,
    audit: sled::Tree,
}

impl RawTrees {
    fn open(db: &sled::Db) -> Self {
        RawTrees {
            secrets: db.open_tree("secrets").unwrap(),
            index: db.open_tree("secret_index").unwrap(),
            audit: db.open_tree("audit").unwrap(),
        }
    }

    /// What a create does to sled, without Coffer: one transaction that checks the
    /// index slot and writes record, index and audit entry (a new secret has no
    /// older version to move to history).
    fn create(&self, prefix: &[u8; 16], n: u64) {
        let key = raw_key(prefix, n);
        (&self.secrets, &self.index, &self.audit)
            .transaction(|(secrets, index, audit)| {
                if index.get(&key)?.is_none() {
                    index.insert(key.as_slice(), &key[16..])?;
                }
                secrets.insert(key.as_slice(), VALUE.as_bytes())?;
                audit.insert(&n.to_be_bytes(), VALUE.as_bytes())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
    }
}

fn new_secret(n: u64) -> NewSecret {
    NewSecret {
        key: format!("KEY_{n}"),
        value: VALUE.into(),
        ..Default::default()
    }
}

/// A 32-byte key, like Coffer's `env id ‖ secret id`.
fn raw_key(prefix: &[u8; 16], n: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&[0; 8]);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

fn create_durable(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_durable");
    group.throughput(Throughput::Elements(1));

    let (_dir, store, env) = coffer();
    let next = AtomicU64::new(0);
    group.bench_function("coffer", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            black_box(
                store
                    .create_secrets(&Actor::embedded(), env, vec![new_secret(n)])
                    .unwrap(),
            );
        })
    });

    let (_raw_dir, db, tree) = raw_sled();
    let prefix = *Uuid::new_v4().as_bytes();
    group.bench_function("sled", |b| {
        b.iter(|| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            tree.insert(raw_key(&prefix, n), VALUE.as_bytes()).unwrap();
            db.flush().unwrap();
        })
    });

    let trees = RawTrees::open(&db);
    group.bench_function("sled_tx", |b| {
        b.iter(|| {
            trees.create(&prefix, next.fetch_add(1, Ordering::Relaxed));
            db.flush().unwrap();
        })
    });
    group.finish();
}

/// Runs `op(thread, n)` `iters` times on each of [`WRITERS`] threads at once; returns the
/// wall time. One criterion iteration is one operation per thread.
fn parallel(iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..WRITERS {
            let op = &op;
            scope.spawn(move || {
                for i in 0..iters {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}

fn create_16_writers(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_16_writers");
    group.throughput(Throughput::Elements(WRITERS as u64));

    let (_dir, store, env) = coffer();
    let round = AtomicU64::new(0);
    group.bench_function("coffer", |b| {
        b.iter_custom(|iters| {
            let base = round.fetch_add(1, Ordering::Relaxed) * 1_000_000_000;
            parallel(iters, |t, i| {
                let n = base + (t as u64) * 10_000_000 + i;
                store
                    .create_secrets(&Actor::embedded(), env, vec![new_secret(n)])
                    .unwrap();
            })
        })
    });

    let (_raw_dir, db, tree) = raw_sled();
    let prefix = *Uuid::new_v4().as_bytes();
    group.bench_function("sled", |b| {
        b.iter_custom(|iters| {
            let base = round.fetch_add(1, Ordering::Relaxed) * 1_000_000_000;
            parallel(iters, |t, i| {
                let n = base + (t as u64) * 10_000_000 + i;
                tree.insert(raw_key(&prefix, n), VALUE.as_bytes()).unwrap();
                db.flush().unwrap();
            })
        })
    });

    let trees = RawTrees::open(&db);
    group.bench_function("sled_tx", |b| {
        b.iter_custom(|iters| {
            let base = round.fetch_add(1, Ordering::Relaxed) * 1_000_000_000;
            parallel(iters, |t, i| {
                trees.create(&prefix, base + (t as u64) * 10_000_000 + i);
                db.flush().unwrap();
            })
        })
    });
    group.finish();
}

fn get_by_id(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_by_id");
    let (_dir, store, env) = coffer();
    let batch = (0..LISTED as u64).map(new_secret).collect();
    let ids: Vec<Uuid> = store
        .create_secrets(&Actor::embedded(), env, batch)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut i = 0;
    group.bench_function("coffer", |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            black_box(store.get_secret(env, ids[i]).unwrap());
        })
    });

    let (_raw_dir, _db, tree) = raw_sled();
    let prefix = *Uuid::new_v4().as_bytes();
    for n in 0..LISTED as u64 {
        tree.insert(raw_key(&prefix, n), VALUE.as_bytes()).unwrap();
    }
    let mut n = 0;
    group.bench_function("sled", |b| {
        b.iter(|| {
            n = (n + 1) % LISTED as u64;
            black_box(tree.get(raw_key(&prefix, n)).unwrap().unwrap());
        })
    });
    group.finish();
}

fn list_1000(c: &mut Criterion) {
    let mut group = c.benchmark_group("list_1000");
    group.throughput(Throughput::Elements(LISTED as u64));
    let (_dir, store, env) = coffer();
    let batch = (0..LISTED as u64).map(new_secret).collect();
    store
        .create_secrets(&Actor::embedded(), env, batch)
        .unwrap();
    group.bench_function(BenchmarkId::new("coffer", LISTED), |b| {
        b.iter(|| {
            let listed = store.list_secrets(env, &SecretFilter::default()).unwrap();
            assert_eq!(listed.len(), LISTED);
            black_box(listed);
        })
    });

    let (_raw_dir, _db, tree) = raw_sled();
    let prefix = *Uuid::new_v4().as_bytes();
    for n in 0..LISTED as u64 {
        tree.insert(raw_key(&prefix, n), VALUE.as_bytes()).unwrap();
    }
    group.bench_function(BenchmarkId::new("sled", LISTED), |b| {
        b.iter(|| {
            let listed: Vec<_> = tree.scan_prefix(prefix).collect::<Result<_, _>>().unwrap();
            assert_eq!(listed.len(), LISTED);
            black_box(listed);
        })
    });
    group.finish();
}

/// Batch sizes of the `commit` group.
const BATCHES: [usize; 2] = [1, 100];

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    let (_dir, store, env) = coffer();
    let next = AtomicU64::new(0);
    for size in BATCHES {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(BenchmarkId::new("create", size), |b| {
            b.iter(|| {
                let batch = (0..size)
                    .map(|_| new_secret(next.fetch_add(1, Ordering::Relaxed)))
                    .collect();
                black_box(
                    store
                        .create_secrets(&Actor::embedded(), env, batch)
                        .unwrap(),
                );
            })
        });
        let batch = (0..size)
            .map(|_| new_secret(next.fetch_add(1, Ordering::Relaxed)))
            .collect();
        let ids: Vec<Uuid> = store
            .create_secrets(&Actor::embedded(), env, batch)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        group.bench_function(BenchmarkId::new("update", size), |b| {
            b.iter(|| {
                let n = next.fetch_add(1, Ordering::Relaxed);
                black_box(
                    store
                        .update_secrets(&Actor::embedded(), env, new_values(&ids, n))
                        .unwrap(),
                );
            })
        });
    }
    group.finish();
}

/// Updates giving each of `ids` a new value (numbered `n`).
fn new_values(ids: &[Uuid], n: u64) -> Vec<SecretUpdate> {
    ids.iter()
        .map(|id| SecretUpdate {
            id: *id,
            value: Some(format!("{VALUE}?v={n}")),
            ..Default::default()
        })
        .collect()
}

fn update_16_writers(c: &mut Criterion) {
    let mut group = c.benchmark_group("update_16_writers");
    group.throughput(Throughput::Elements(WRITERS as u64));
    let (_dir, store, env) = coffer();
    let batch = (0..WRITERS as u64).map(new_secret).collect();
    let ids: Vec<Uuid> = store
        .create_secrets(&Actor::embedded(), env, batch)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    group.bench_function("coffer", |b| {
        b.iter_custom(|iters| {
            parallel(iters, |t, i| {
                store
                    .update_secrets(&Actor::embedded(), env, new_values(&ids[t..=t], i))
                    .unwrap();
            })
        })
    });
    group.finish();
}

/// Secrets of the `resolve_references` environment.
const REFERENCING: u64 = 100;

fn resolve_references(c: &mut Criterion) {
    let mut group = c.benchmark_group("resolve_references");
    group.throughput(Throughput::Elements(REFERENCING));
    let (_dir, store, env) = coffer();
    // Each value names the next two secrets (the last ones name plain values).
    let batch = (0..REFERENCING)
        .map(|n| NewSecret {
            value: match n + 2 < REFERENCING {
                true => format!("{VALUE}/${{KEY_{}}}/${{KEY_{}}}", n + 1, n + 2),
                false => VALUE.into(),
            },
            ..new_secret(n)
        })
        .collect();
    store
        .create_secrets(&Actor::embedded(), env, batch)
        .unwrap();
    let store = Arc::new(store);
    let listed = store.list_secrets(env, &SecretFilter::default()).unwrap();
    group.bench_function(BenchmarkId::new("coffer", REFERENCING), |b| {
        b.iter(|| {
            let mut resolver = Resolver::new(store.clone(), Box::new(|_, _| true));
            for secret in &listed {
                black_box(resolver.resolve(secret).unwrap());
            }
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = create_durable, create_16_writers, get_by_id, list_1000, commit,
        update_16_writers, resolve_references
}
criterion_main!(benches);
