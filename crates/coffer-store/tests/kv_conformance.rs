//! The conformance suite of the storage seam: what every [`KvBackend`] must do, written
//! against the trait only. Each backend is checked by one `conformance!` line at the
//! bottom; a second backend (etcd, ...) adds a line, not a suite.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use coffer_store::kv::{KvBackend, KvError, KvTx, Tree, TxAbort, TxError, TxFault};
use coffer_store::StoreError;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn put(kv: &impl KvBackend, tree: Tree, pairs: &[(&[u8], &[u8])]) {
    kv.transaction(&Tree::ALL, |tx| {
        for (k, v) in pairs {
            tx.insert(tree, k, v)?;
        }
        Ok::<_, TxAbort<()>>(())
    })
    .unwrap();
}

fn collect(iter: coffer_store::kv::KvIter<'_>) -> Pairs {
    iter.collect::<Result<Vec<_>, _>>().unwrap()
}

fn owned(pairs: &[(&[u8], &[u8])]) -> Pairs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

// --- the suite -------------------------------------------------------------------------

pub fn get_insert_remove(kv: &impl KvBackend) {
    assert_eq!(kv.get(Tree::Apps, b"k").unwrap(), None);
    put(kv, Tree::Apps, &[(b"k", b"v1")]);
    assert_eq!(
        kv.get(Tree::Apps, b"k").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    put(kv, Tree::Apps, &[(b"k", b"v2")]);
    assert_eq!(
        kv.get(Tree::Apps, b"k").unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    kv.transaction(&Tree::ALL, |tx| {
        tx.remove(Tree::Apps, b"k")?;
        // Removing an absent key is not an error.
        tx.remove(Tree::Apps, b"never there")?;
        Ok::<_, TxAbort<()>>(())
    })
    .unwrap();
    assert_eq!(kv.get(Tree::Apps, b"k").unwrap(), None);
    // Empty keys and values are ordinary.
    put(kv, Tree::Apps, &[(b"", b"")]);
    assert_eq!(kv.get(Tree::Apps, b"").unwrap().as_deref(), Some(&b""[..]));
}

pub fn insert_outside_a_transaction(kv: &impl KvBackend) {
    kv.insert(Tree::Tokens, b"t", b"1").unwrap();
    assert_eq!(
        kv.get(Tree::Tokens, b"t").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    kv.insert(Tree::Tokens, b"t", b"2").unwrap();
    assert_eq!(
        kv.get(Tree::Tokens, b"t").unwrap().as_deref(),
        Some(&b"2"[..])
    );
}

pub fn insert_new_writes_only_an_absent_key(kv: &impl KvBackend) {
    assert!(kv.insert_new(Tree::Audit, b"a", b"1").unwrap());
    assert!(!kv.insert_new(Tree::Audit, b"a", b"2").unwrap());
    assert_eq!(
        kv.get(Tree::Audit, b"a").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

/// The store appends a read's audit entry with `insert_new` while a batch's transaction
/// may be doing its work (which waits for that append to let go of the chain's head).
pub fn insert_new_does_not_wait_for_a_transaction_in_progress(kv: &impl KvBackend) {
    let (working, appended) = (
        std::sync::Barrier::new(2),
        std::sync::mpsc::channel::<bool>(),
    );
    let (appended_tx, appended_rx) = (appended.0, std::sync::Mutex::new(appended.1));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            kv.transaction(&[Tree::Apps], |tx| {
                tx.insert(Tree::Apps, b"batch", b"1")?;
                working.wait();
                // Held until the append has returned, or for long enough to tell.
                let returned =
                    (appended_rx.lock().unwrap()).recv_timeout(std::time::Duration::from_secs(5));
                assert_eq!(returned, Ok(true), "insert_new waited for the transaction");
                Ok::<_, TxAbort<()>>(())
            })
            .unwrap();
        });
        working.wait();
        let appended = kv.insert_new(Tree::Audit, b"entry", b"1").unwrap();
        appended_tx.send(appended).unwrap();
    });
    assert_eq!(
        kv.get(Tree::Apps, b"batch").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

pub fn trees_are_separate(kv: &impl KvBackend) {
    for (i, tree) in Tree::ALL.iter().enumerate() {
        put(kv, *tree, &[(b"same key", &[i as u8])]);
    }
    for (i, tree) in Tree::ALL.iter().enumerate() {
        assert_eq!(
            kv.get(*tree, b"same key").unwrap(),
            Some(vec![i as u8]),
            "{tree:?}"
        );
        assert_eq!(kv.len(*tree), 1, "{tree:?}");
    }
    let names: std::collections::HashSet<&str> = Tree::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(names.len(), Tree::ALL.len());
    for (i, tree) in Tree::ALL.iter().enumerate() {
        assert_eq!(tree.position(), i);
    }
}

pub fn prefix_scans_are_in_key_order(kv: &impl KvBackend) {
    put(
        kv,
        Tree::Secrets,
        &[
            (b"b\x02", b"4"),
            (b"a", b"0"),
            (b"b\xff", b"5"),
            (b"b", b"1"),
            (b"c", b"6"),
            (b"b\x00", b"2"),
            (b"b\x01\xff", b"3"),
        ],
    );
    put(kv, Tree::History, &[(b"b\x00", b"other tree")]);
    assert_eq!(
        collect(kv.scan_prefix(Tree::Secrets, b"b")),
        owned(&[
            (b"b", b"1"),
            (b"b\x00", b"2"),
            (b"b\x01\xff", b"3"),
            (b"b\x02", b"4"),
            (b"b\xff", b"5"),
        ])
    );
    assert_eq!(
        collect(kv.scan_prefix(Tree::Secrets, b"b\x01")),
        owned(&[(b"b\x01\xff", b"3")])
    );
    assert!(collect(kv.scan_prefix(Tree::Secrets, b"d")).is_empty());
    assert!(collect(kv.scan_prefix(Tree::Envs, b"")).is_empty());
    let everything: Vec<Vec<u8>> = collect(kv.scan_prefix(Tree::Secrets, b""))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut sorted = everything.clone();
    sorted.sort();
    assert_eq!((everything.len(), &everything), (7, &sorted));
}

pub fn big_endian_numbers_scan_in_numeric_order(kv: &impl KvBackend) {
    let numbers = [300u64, 2, 1 << 40, 256, 1, 255];
    for n in numbers {
        put(kv, Tree::Audit, &[(&n.to_be_bytes(), b"")]);
    }
    let scanned: Vec<u64> = collect(kv.scan_prefix(Tree::Audit, b""))
        .into_iter()
        .map(|(k, _)| u64::from_be_bytes(k.try_into().unwrap()))
        .collect();
    assert_eq!(scanned, [1, 2, 255, 256, 300, 1 << 40]);
}

pub fn scan_from_starts_at_or_after_the_key(kv: &impl KvBackend) {
    put(
        kv,
        Tree::Audit,
        &[(b"10", b"a"), (b"30", b"c"), (b"20", b"b")],
    );
    let keys = |start: &[u8]| -> Vec<Vec<u8>> {
        collect(kv.scan_from(Tree::Audit, start))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(keys(b"20"), [b"20".to_vec(), b"30".to_vec()]);
    assert_eq!(keys(b"15"), [b"20".to_vec(), b"30".to_vec()]);
    assert_eq!(keys(b""), [b"10".to_vec(), b"20".to_vec(), b"30".to_vec()]);
    assert!(keys(b"31").is_empty());
    assert!(collect(kv.scan_from(Tree::Apps, b"")).is_empty());
}

pub fn last_is_the_greatest_key(kv: &impl KvBackend) {
    assert_eq!(kv.last(Tree::Audit).unwrap(), None);
    for n in [5u64, 300, 7] {
        put(kv, Tree::Audit, &[(&n.to_be_bytes(), &[n as u8])]);
    }
    assert_eq!(
        kv.last(Tree::Audit).unwrap(),
        Some((300u64.to_be_bytes().to_vec(), vec![300u64 as u8]))
    );
    kv.transaction(&Tree::ALL, |tx| {
        tx.remove(Tree::Audit, &300u64.to_be_bytes())?;
        Ok::<_, TxAbort<()>>(())
    })
    .unwrap();
    assert_eq!(kv.last(Tree::Audit).unwrap().unwrap().0, 7u64.to_be_bytes());
    assert_eq!(kv.last(Tree::Apps).unwrap(), None);
}

pub fn floor_is_the_greatest_key_at_or_before(kv: &impl KvBackend) {
    assert_eq!(kv.floor(Tree::Audit, b"50").unwrap(), None);
    put(
        kv,
        Tree::Audit,
        &[(b"10", b"a"), (b"30", b"c"), (b"20", b"b")],
    );
    let floor = |key: &[u8]| kv.floor(Tree::Audit, key).unwrap().map(|(k, _)| k);
    assert_eq!(floor(b"20"), Some(b"20".to_vec()));
    assert_eq!(floor(b"25"), Some(b"20".to_vec()));
    assert_eq!(floor(b"99"), Some(b"30".to_vec()));
    assert_eq!(floor(b"09"), None);
    assert_eq!(
        kv.floor(Tree::Audit, b"30").unwrap(),
        Some((b"30".to_vec(), b"c".to_vec()))
    );
    assert_eq!(kv.floor(Tree::Apps, b"99").unwrap(), None);
}

pub fn an_aborted_transaction_writes_nothing(kv: &impl KvBackend) {
    put(
        kv,
        Tree::Secrets,
        &[(b"kept", b"old"), (b"doomed", b"still here")],
    );
    let result = kv.transaction(&Tree::ALL, |tx| {
        tx.insert(Tree::Secrets, b"kept", b"new")?;
        tx.insert(Tree::Secrets, b"fresh", b"x")?;
        tx.remove(Tree::Secrets, b"doomed")?;
        tx.insert(Tree::SecretIndex, b"slot", b"id")?;
        tx.insert(Tree::Audit, b"entry", b"e")?;
        Err::<(), _>(TxAbort::Abort("refused"))
    });
    assert!(matches!(result, Err(TxError::Abort("refused"))));
    assert_eq!(
        kv.get(Tree::Secrets, b"kept").unwrap(),
        Some(b"old".to_vec())
    );
    assert_eq!(kv.get(Tree::Secrets, b"fresh").unwrap(), None);
    assert_eq!(
        kv.get(Tree::Secrets, b"doomed").unwrap(),
        Some(b"still here".to_vec())
    );
    assert_eq!(kv.get(Tree::SecretIndex, b"slot").unwrap(), None);
    assert_eq!(kv.get(Tree::Audit, b"entry").unwrap(), None);
    assert_eq!(kv.len(Tree::Secrets), 2);
}

pub fn a_committed_transaction_writes_every_tree(kv: &impl KvBackend) {
    let out = kv
        .transaction(&Tree::ALL, |tx| {
            tx.insert(Tree::Secrets, b"s", b"1")?;
            tx.insert(Tree::SecretIndex, b"i", b"2")?;
            tx.insert(Tree::History, b"h", b"3")?;
            Ok::<_, TxAbort<()>>(42)
        })
        .unwrap();
    assert_eq!(out, 42);
    assert_eq!(kv.get(Tree::Secrets, b"s").unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        kv.get(Tree::SecretIndex, b"i").unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(kv.get(Tree::History, b"h").unwrap(), Some(b"3".to_vec()));
}

pub fn a_transaction_reads_its_own_writes(kv: &impl KvBackend) {
    put(
        kv,
        Tree::Envs,
        &[(b"before", b"committed"), (b"gone", b"x")],
    );
    kv.transaction(&Tree::ALL, |tx: &dyn KvTx| {
        assert_eq!(tx.get(Tree::Envs, b"before")?, Some(b"committed".to_vec()));
        tx.insert(Tree::Envs, b"new", b"mine")?;
        assert_eq!(tx.get(Tree::Envs, b"new")?, Some(b"mine".to_vec()));
        tx.insert(Tree::Envs, b"before", b"overwritten")?;
        assert_eq!(
            tx.get(Tree::Envs, b"before")?,
            Some(b"overwritten".to_vec())
        );
        tx.remove(Tree::Envs, b"gone")?;
        assert_eq!(tx.get(Tree::Envs, b"gone")?, None);
        // A write to one tree is not visible under the same key in another.
        assert_eq!(tx.get(Tree::Apps, b"new")?, None);
        Ok::<_, TxAbort<()>>(())
    })
    .unwrap();
    assert_eq!(
        kv.get(Tree::Envs, b"before").unwrap(),
        Some(b"overwritten".to_vec())
    );
    assert_eq!(kv.get(Tree::Envs, b"gone").unwrap(), None);
}

pub fn a_storage_fault_fails_the_transaction_as_storage(kv: &impl KvBackend) {
    let result = kv.transaction(&Tree::ALL, |tx| {
        tx.insert(Tree::Meta, b"half", b"written")?;
        let io = std::io::Error::other("disk on fire");
        Err::<(), TxAbort<()>>(TxAbort::Fault(TxFault::Storage(KvError::new(io))))
    });
    let Err(TxError::Storage(err)) = result else {
        panic!("expected a storage error, got {result:?}");
    };
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert_eq!(kv.get(Tree::Meta, b"half").unwrap(), None);
    // Above the seam, a storage failure is an internal error, never the caller's fault.
    let store_err = StoreError::from(err);
    assert!(store_err.is_internal());
}

pub fn a_conflict_runs_the_transaction_again(kv: &impl KvBackend) {
    let runs = AtomicUsize::new(0);
    let out = kv
        .transaction(&Tree::ALL, |tx| {
            tx.insert(Tree::Meta, b"attempt", &[runs.load(Ordering::SeqCst) as u8])?;
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(TxAbort::Fault(TxFault::Conflict));
            }
            Ok::<_, TxAbort<()>>("second run")
        })
        .unwrap();
    assert_eq!((out, runs.load(Ordering::SeqCst)), ("second run", 2));
    assert_eq!(kv.get(Tree::Meta, b"attempt").unwrap(), Some(vec![1]));
}

pub fn concurrent_transactions_are_serialisable(kv: &impl KvBackend) {
    const THREADS: usize = 4;
    const EACH: usize = 50;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..EACH {
                    kv.transaction(&Tree::ALL, |tx| {
                        let n = tx
                            .get(Tree::Meta, b"counter")?
                            .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
                        tx.insert(Tree::Meta, b"counter", &(n + 1).to_be_bytes())?;
                        Ok::<_, TxAbort<()>>(())
                    })
                    .unwrap();
                }
            });
        }
    });
    let n = kv.get(Tree::Meta, b"counter").unwrap().unwrap();
    assert_eq!(
        u64::from_be_bytes(n.try_into().unwrap()),
        (THREADS * EACH) as u64
    );
}

pub fn a_range_read_in_a_transaction_sees_its_own_writes(kv: &impl KvBackend) {
    put(
        kv,
        Tree::Secrets,
        &[(b"e1/a", b"1"), (b"e1/b", b"2"), (b"e2/a", b"3")],
    );
    let seen = kv
        .transaction(&[Tree::Secrets], |tx| {
            tx.remove(Tree::Secrets, b"e1/a")?;
            tx.insert(Tree::Secrets, b"e1/b", b"2'")?;
            tx.insert(Tree::Secrets, b"e1/c", b"new")?;
            tx.insert(Tree::Secrets, b"e2/b", b"other prefix")?;
            Ok::<_, TxAbort<()>>(tx.scan_prefix(Tree::Secrets, b"e1/")?)
        })
        .unwrap();
    assert_eq!(seen, owned(&[(b"e1/b", b"2'"), (b"e1/c", b"new")]));
    // An empty prefix is the whole tree; another tree is not part of the transaction.
    let all = kv
        .transaction(&[Tree::Secrets], |tx| {
            Ok::<_, TxAbort<()>>(tx.scan_prefix(Tree::Secrets, b"")?)
        })
        .unwrap();
    assert_eq!(all.len(), 4);
    let outside = kv.transaction(&[Tree::Secrets], |tx| {
        tx.scan_prefix(Tree::Apps, b"")?;
        Ok::<_, TxAbort<()>>(())
    });
    assert!(matches!(outside, Err(TxError::Storage(_))), "{outside:?}");
}

/// The write-skew a range read must prevent: each transaction adds a key under a prefix
/// only if the range is empty; run at once, exactly one may succeed in adding.
pub fn range_reads_in_transactions_are_serialisable(kv: &impl KvBackend) {
    const THREADS: usize = 4;
    const ROUNDS: usize = 25;
    for round in 0..ROUNDS {
        let prefix = format!("round{round:02}/");
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let prefix = prefix.clone();
                scope.spawn(move || {
                    kv.transaction(&[Tree::Envs], |tx| {
                        if tx.scan_prefix(Tree::Envs, prefix.as_bytes())?.is_empty() {
                            let key = format!("{prefix}{thread}");
                            tx.insert(Tree::Envs, key.as_bytes(), b"first")?;
                        }
                        Ok::<_, TxAbort<()>>(())
                    })
                    .unwrap();
                });
            }
        });
        let added = collect(kv.scan_prefix(Tree::Envs, prefix.as_bytes()));
        assert_eq!(added.len(), 1, "round {round}: {added:?}");
    }
}

/// A batch's secrets (`work`) and its audit entry (`last`), as the store writes one, of
/// `count` secrets: checks what `last` and `last_applied` see, and returns how many
/// times `last_applied` ran.
fn batch_in_steps(kv: &impl KvBackend, count: usize) -> usize {
    let keys: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("s{i:04}").into_bytes())
        .collect();
    let applied = std::cell::Cell::new(0);
    let value = kv
        .transaction_in_steps(
            &[Tree::Secrets, Tree::SecretIndex, Tree::Audit],
            |tx| {
                for key in &keys {
                    tx.insert(Tree::Secrets, key, b"record")?;
                    tx.insert(Tree::SecretIndex, key, b"slot")?;
                }
                Ok::<_, TxAbort<()>>(count)
            },
            |tx, made| {
                assert_eq!(*made, count);
                // The work's writes are seen, in the view and by a range read.
                assert_eq!(tx.get(Tree::Secrets, &keys[0])?, Some(b"record".to_vec()));
                assert_eq!(tx.scan_prefix(Tree::SecretIndex, b"s")?.len(), count);
                tx.insert(Tree::Audit, b"entry", b"batch")?;
                Ok(())
            },
            &|| {
                applied.set(applied.get() + 1);
                assert_eq!(
                    kv.get(Tree::Audit, b"entry").unwrap().as_deref(),
                    Some(&b"batch"[..]),
                    "last_applied ran before the last writes were applied"
                );
            },
        )
        .unwrap();
    assert_eq!(value, count);
    assert_eq!(kv.len(Tree::Secrets), count);
    assert_eq!(kv.len(Tree::SecretIndex), count);
    applied.get()
}

pub fn a_transaction_in_steps_applies_every_write_and_its_last_ones_first(kv: &impl KvBackend) {
    assert_eq!(batch_in_steps(kv, 3), 1);
    kv.transaction(&[Tree::Secrets, Tree::SecretIndex, Tree::Audit], |tx| {
        for (key, _) in tx.scan_prefix(Tree::Secrets, b"s")? {
            tx.remove(Tree::Secrets, &key)?;
            tx.remove(Tree::SecretIndex, &key)?;
        }
        tx.remove(Tree::Audit, b"entry")?;
        Ok::<_, TxAbort<()>>(())
    })
    .unwrap();
    assert_eq!(batch_in_steps(kv, 500), 1);
}

pub fn a_transaction_in_steps_whose_last_step_aborts_writes_nothing(kv: &impl KvBackend) {
    put(kv, Tree::Secrets, &[(b"kept", b"old")]);
    for count in [2, 500] {
        let result = kv.transaction_in_steps(
            &[Tree::Secrets, Tree::Audit],
            |tx| {
                tx.insert(Tree::Secrets, b"kept", b"new")?;
                for i in 0..count {
                    tx.insert(Tree::Secrets, format!("s{i:04}").as_bytes(), b"record")?;
                }
                Ok(())
            },
            |tx, _| {
                tx.insert(Tree::Audit, b"entry", b"batch")?;
                Err(TxAbort::Abort("the head moved"))
            },
            &|| panic!("nothing was applied"),
        );
        assert!(matches!(result, Err(TxError::Abort("the head moved"))));
        assert_eq!(kv.len(Tree::Secrets), 1);
        assert_eq!(
            kv.get(Tree::Secrets, b"kept").unwrap(),
            Some(b"old".to_vec())
        );
        assert_eq!(kv.get(Tree::Audit, b"entry").unwrap(), None);
    }
}

pub fn len_counts_the_keys_of_one_tree(kv: &impl KvBackend) {
    assert_eq!(kv.len(Tree::Tokens), 0);
    put(kv, Tree::Tokens, &[(b"a", b""), (b"b", b""), (b"c", b"")]);
    put(kv, Tree::TokenHashes, &[(b"a", b"")]);
    assert_eq!((kv.len(Tree::Tokens), kv.len(Tree::TokenHashes)), (3, 1));
    put(kv, Tree::Tokens, &[(b"a", b"overwrite")]);
    assert_eq!(kv.len(Tree::Tokens), 3);
    kv.transaction(&Tree::ALL, |tx| {
        tx.remove(Tree::Tokens, b"b")?;
        Ok::<_, TxAbort<()>>(())
    })
    .unwrap();
    assert_eq!(kv.len(Tree::Tokens), 2);
}

pub fn flushed_writes_survive_a_reopen<B: KvBackend>(open: impl Fn(&Path) -> B) {
    let dir = tempfile::tempdir().unwrap();
    {
        let kv = open(dir.path());
        put(&kv, Tree::Secrets, &[(b"durable", b"yes")]);
        kv.insert(Tree::Meta, b"plain", b"too").unwrap();
        kv.flush().unwrap();
        assert!(kv.size_on_disk().unwrap() > 0);
    }
    let kv = open(dir.path());
    assert_eq!(
        kv.get(Tree::Secrets, b"durable").unwrap(),
        Some(b"yes".to_vec())
    );
    assert_eq!(kv.get(Tree::Meta, b"plain").unwrap(), Some(b"too".to_vec()));
    assert_eq!(kv.len(Tree::Secrets), 1);
}

/// One `#[test]` per check of the suite, for one backend. `$open` opens (or reopens)
/// the backend on a directory.
macro_rules! conformance {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;

            fn open(dir: &Path) -> impl KvBackend {
                ($open)(dir)
            }

            /// A fresh, empty backend (the directory lives as long as it).
            fn fresh() -> (tempfile::TempDir, impl KvBackend) {
                let dir = tempfile::tempdir().unwrap();
                let kv = open(dir.path());
                (dir, kv)
            }

            conformance!(@tests
                get_insert_remove,
                insert_outside_a_transaction,
                insert_new_writes_only_an_absent_key,
                insert_new_does_not_wait_for_a_transaction_in_progress,
                trees_are_separate,
                prefix_scans_are_in_key_order,
                big_endian_numbers_scan_in_numeric_order,
                scan_from_starts_at_or_after_the_key,
                last_is_the_greatest_key,
                floor_is_the_greatest_key_at_or_before,
                an_aborted_transaction_writes_nothing,
                a_committed_transaction_writes_every_tree,
                a_transaction_reads_its_own_writes,
                a_storage_fault_fails_the_transaction_as_storage,
                a_conflict_runs_the_transaction_again,
                concurrent_transactions_are_serialisable,
                a_range_read_in_a_transaction_sees_its_own_writes,
                range_reads_in_transactions_are_serialisable,
                len_counts_the_keys_of_one_tree,
                a_transaction_in_steps_applies_every_write_and_its_last_ones_first,
                a_transaction_in_steps_whose_last_step_aborts_writes_nothing,
            );

            #[test]
            fn flushed_writes_survive_a_reopen() {
                super::flushed_writes_survive_a_reopen(open);
            }
        }
    };
    (@tests $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let (_dir, kv) = fresh();
                super::$check(&kv);
            }
        )*
    };
}

conformance!(sled, |dir: &Path| coffer_store::kv::SledBackend::open(
    dir,
    1 << 20
)
.unwrap());

// The in-memory backend of the power-loss tests: a faithful backend, so that what those
// tests find is the store's doing, not the test backend's.
conformance!(power_loss, common::power_loss::PowerLoss::on_disk);

// --- sled specifics --------------------------------------------------------------------

/// sled applies a large set key by key, outside a sled transaction (which would hold
/// every reader and writer of the process off until the last key): its last writes are
/// seen, and readers and writers of other keys go on, before the work's are applied.
#[test]
fn sled_applies_a_large_set_in_steps_and_holds_no_reader_off_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let kv = coffer_store::kv::SledBackend::open(dir.path(), 1 << 20).unwrap();
    put(&kv, Tree::Apps, &[(b"other", b"app")]);
    kv.transaction_in_steps(
        &[Tree::Secrets, Tree::Audit],
        |tx| {
            for i in 0..500 {
                tx.insert(Tree::Secrets, format!("s{i:04}").as_bytes(), b"record")?;
            }
            Ok::<_, TxAbort<()>>(())
        },
        |tx, _| Ok(tx.insert(Tree::Audit, b"entry", b"batch")?),
        &|| {
            assert_eq!(kv.get(Tree::Secrets, b"s0000").unwrap(), None);
            std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    let read = kv.get(Tree::Apps, b"other").unwrap();
                    let appended = kv.insert_new(Tree::Audit, b"read", b"entry").unwrap();
                    (read, appended)
                });
                assert_eq!(other.join().unwrap(), (Some(b"app".to_vec()), true));
            });
        },
    )
    .unwrap();
    assert_eq!(kv.len(Tree::Secrets), 500);
    kv.flush().unwrap();
    drop(kv);
    let kv = coffer_store::kv::SledBackend::open(dir.path(), 1 << 20).unwrap();
    assert_eq!(kv.len(Tree::Secrets), 500);
    assert_eq!(kv.len(Tree::Audit), 2);
}

#[test]
fn sled_open_failures_are_typed() {
    use coffer_store::kv::{SledBackend, SledOpenError};
    let dir = tempfile::tempdir().unwrap();
    let first = SledBackend::open(dir.path(), 1 << 20).unwrap();
    assert!(matches!(
        SledBackend::open(dir.path(), 1 << 20),
        Err(SledOpenError::Locked)
    ));
    drop(first);
    SledBackend::open(dir.path(), 1 << 20).unwrap();

    let file = dir.path().join("not a directory");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        SledBackend::open(&file, 1 << 20),
        Err(SledOpenError::Other(_))
    ));
}

#[test]
fn sled_puts_large_pages_in_blob_files_and_a_strict_flush_keeps_them() {
    use coffer_store::kv::SledBackend;
    // sled writes a page to a file of its own under `blobs/` once its serialized size
    // passes a quarter of a segment (512 KiB by default): a leaf of 17 values of 64 KiB
    // does. Such files are fsynced by the flush (tests/e2e/reliability/durability.rs
    // shows it with strace); here: that they occur and survive a reopen.
    let dir = tempfile::tempdir().unwrap();
    let value = vec![7u8; 64 * 1024];
    {
        let kv = SledBackend::open(dir.path(), 1 << 20).unwrap();
        for i in 0..40u32 {
            kv.transaction(&[Tree::Secrets], |tx| {
                tx.insert(Tree::Secrets, &i.to_be_bytes(), &value)?;
                Ok::<_, TxAbort<()>>(())
            })
            .unwrap();
            kv.flush().unwrap();
        }
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blobs > 0, "no blob file written");
    }
    let kv = SledBackend::open(dir.path(), 1 << 20).unwrap();
    for i in 0..40u32 {
        assert_eq!(
            kv.get(Tree::Secrets, &i.to_be_bytes()).unwrap(),
            Some(value.clone())
        );
    }
}

// --- etcd ------------------------------------------------------------------------------

/// The etcd cluster the suite runs against: `COFFER_TEST_ETCD_ENDPOINTS` (comma-separated
/// URLs). Without it the suite fails: a missing cluster is never a pass.
#[cfg(feature = "etcd")]
fn etcd_endpoints() -> Vec<String> {
    let endpoints = std::env::var("COFFER_TEST_ETCD_ENDPOINTS")
        .expect("COFFER_TEST_ETCD_ENDPOINTS names the etcd cluster to test against");
    endpoints.split(',').map(str::to_owned).collect()
}

// Each test directory is its own key prefix, so tests run side by side on one cluster
// and a reopen finds what was written before.
#[cfg(feature = "etcd")]
conformance!(etcd, |dir: &Path| coffer_store::kv::EtcdBackend::connect(
    &etcd_endpoints(),
    &format!("coffer-test{}/", dir.display())
)
.unwrap());
