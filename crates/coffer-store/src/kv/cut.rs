//! Consistent cuts of a backend whose scans are not snapshots (sled's are not).
//!
//! Every write — each transaction, each single insert — holds a shared hold on one gate
//! for as long as it runs; [`Cut::frozen`] takes the gate exclusively. While a caller
//! holds the frozen guard no write is in flight and none can start, so what it reads is
//! the state after some set of whole transactions and before all the others: a point in
//! time across every tree, never part of a batch (a batch is one transaction). Writers
//! are paused for as long as the guard is held, so the holder copies and lets go; it
//! does not do I/O of its own meanwhile.
//!
//! The gate is below the authentication layer and above the backend, so no write path of
//! the store can pass it by. A writer holds it only inside one backend call and never
//! takes it twice, so the exclusive hold cannot deadlock with a writer; it is fair, so a
//! stream of writers cannot keep a cut waiting forever. One write passes a waiting cut:
//! [`KvBackend::insert_new`] (see there), which the store runs one at a time.

use parking_lot::{RwLock, RwLockWriteGuard};

use super::{KvBackend, KvError, KvIter, KvPair, KvTx, Tree, TxAbort, TxError};

/// `inner`, with every write behind a gate that [`Cut::frozen`] closes.
#[derive(Debug)]
pub(crate) struct Cut<B> {
    inner: B,
    gate: RwLock<()>,
}

impl<B> Cut<B> {
    pub(crate) fn new(inner: B) -> Self {
        Cut {
            inner,
            gate: RwLock::new(()),
        }
    }

    /// Waits for the writes in flight, then holds off every other until dropped.
    pub(crate) fn frozen(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write()
    }

    /// The backend below.
    pub(crate) fn inner(&self) -> &B {
        &self.inner
    }

    /// The backend below, let go of.
    pub(crate) fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: KvBackend> KvBackend for Cut<B> {
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
        let _open = self.gate.read();
        self.inner.transaction(trees, work)
    }

    fn transaction_in_steps<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
        last: impl Fn(&dyn KvTx, &T) -> Result<(), TxAbort<E>>,
        last_applied: &dyn Fn(),
    ) -> Result<T, TxError<E>> {
        let _open = self.gate.read();
        self.inner
            .transaction_in_steps(trees, work, last, last_applied)
    }

    /// Not behind the gate: a view writes nothing.
    fn read_view<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        self.inner.read_view(trees, work)
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        let _open = self.gate.read();
        self.inner.insert(tree, key, value)
    }

    /// Passes a cut that is waiting for the gate (never one that holds it): the store
    /// appends with this while holding its audit chain's head, which a transaction that
    /// already holds the gate may be waiting for, and that cut waits for that
    /// transaction.
    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        let _open = self.gate.read_recursive();
        self.inner.insert_new(tree, key, value)
    }

    fn flush(&self) -> Result<(), KvError> {
        self.inner.flush()
    }

    fn len(&self, tree: Tree) -> usize {
        self.inner.len(tree)
    }

    fn size_on_disk(&self) -> Result<u64, KvError> {
        self.inner.size_on_disk()
    }

    /// With the gate closed: no write is in flight while the backend below is swapped.
    fn reopen(&self) -> Result<(), KvError> {
        let _frozen = self.gate.write();
        self.inner.reopen()
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn check_reachable(&self) -> Result<(), KvError> {
        self.inner.check_reachable()
    }

    fn watch(&self, watched: &[(Tree, &[u8])]) -> Option<std::sync::Arc<super::ChangeSignal>> {
        self.inner.watch(watched)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::kv::SledBackend;

    #[test]
    fn no_write_lands_while_frozen() {
        let kv = Arc::new(Cut::new(SledBackend::temporary().unwrap()));
        let landed = Arc::new(AtomicBool::new(false));
        let frozen = kv.frozen();
        let writer = {
            let (kv, landed) = (Arc::clone(&kv), Arc::clone(&landed));
            std::thread::spawn(move || {
                kv.transaction(&[Tree::Apps, Tree::AppNames], |tx| {
                    tx.insert(Tree::Apps, b"a", b"1")?;
                    tx.insert(Tree::AppNames, b"a", b"1")?;
                    Ok::<_, TxAbort<()>>(())
                })
                .unwrap();
                landed.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!landed.load(Ordering::SeqCst));
        assert!(kv.get(Tree::Apps, b"a").unwrap().is_none());
        drop(frozen);
        writer.join().unwrap();
        assert_eq!(kv.get(Tree::AppNames, b"a").unwrap().unwrap(), b"1");
    }
}
