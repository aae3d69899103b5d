//! Every record authenticated at rest: a [`KvBackend`] over another that appends to each
//! value a MAC over its tree, key and value (DESIGN.md, "Encryption at rest"), and refuses
//! on every read path — point reads, reads inside transactions, scans, `last`, `floor` — a
//! value whose tag does not verify. Whoever can write the data files but does not hold the
//! master key can delete records or put back older copies of them, but cannot edit one or
//! move one to another key or tree unnoticed.
//!
//! The store speaks only to this layer, so no record kind can be forgotten; the layer
//! below sees `value ‖ tag`. The tag comes last so that stripping it is a truncation.

use crate::crypto::{RecordMac, TAG_LEN};

use super::{KvBackend, KvError, KvIter, KvPair, KvTx, Tree, TxAbort, TxError, TxFault};

/// A stored value whose tag does not verify at its tree and key. Reaches callers as a
/// [`KvError`]; the store turns it into `InternalError::Unauthentic`.
#[derive(Debug, thiserror::Error)]
#[error("record in tree '{tree}' failed authentication")]
pub(crate) struct RecordRefused {
    /// Tree of the record (never its key or contents).
    pub(crate) tree: &'static str,
}

/// `inner`, with every value authenticated under `mac`.
#[derive(Debug)]
pub(crate) struct Authenticated<B> {
    inner: B,
    mac: RecordMac,
}

impl<B> Authenticated<B> {
    pub(crate) fn new(inner: B, mac: RecordMac) -> Self {
        Authenticated { inner, mac }
    }

    /// The backend below, which stores `value ‖ tag`.
    pub(crate) fn inner(&self) -> &B {
        &self.inner
    }
}

/// `value ‖ tag`.
pub(crate) fn tagged(mac: &RecordMac, tree: Tree, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + TAG_LEN);
    out.extend_from_slice(value);
    out.extend_from_slice(&mac.tag(tree.name(), key, value));
    out
}

/// The value of `stored` if its tag verifies at (`tree`, `key`).
pub(crate) fn verified(
    mac: &RecordMac,
    tree: Tree,
    key: &[u8],
    mut stored: Vec<u8>,
) -> Result<Vec<u8>, RecordRefused> {
    let refused = RecordRefused { tree: tree.name() };
    let Some(split) = stored.len().checked_sub(TAG_LEN) else {
        return Err(refused);
    };
    let (value, tag) = stored.split_at(split);
    if !mac.verify(tree.name(), key, value, tag) {
        return Err(refused);
    }
    stored.truncate(split);
    Ok(stored)
}

impl<B> Authenticated<B> {
    fn open(&self, tree: Tree, key: &[u8], stored: Vec<u8>) -> Result<Vec<u8>, KvError> {
        verified(&self.mac, tree, key, stored).map_err(KvError::new)
    }

    fn open_pair(&self, tree: Tree, (key, stored): KvPair) -> Result<KvPair, KvError> {
        let value = self.open(tree, &key, stored)?;
        Ok((key, value))
    }
}

/// A transaction's view with the same checks.
struct AuthenticatedTx<'a> {
    inner: &'a dyn KvTx,
    mac: &'a RecordMac,
}

impl KvTx for AuthenticatedTx<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, TxFault> {
        match self.inner.get(tree, key)? {
            Some(stored) => verified(self.mac, tree, key, stored)
                .map(Some)
                .map_err(|refused| TxFault::Storage(KvError::new(refused))),
            None => Ok(None),
        }
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), TxFault> {
        self.inner
            .insert(tree, key, &tagged(self.mac, tree, key, value))
    }

    fn remove(&self, tree: Tree, key: &[u8]) -> Result<(), TxFault> {
        self.inner.remove(tree, key)
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<KvPair>, TxFault> {
        self.inner
            .scan_prefix(tree, prefix)?
            .into_iter()
            .map(
                |(key, stored)| match verified(self.mac, tree, &key, stored) {
                    Ok(value) => Ok((key, value)),
                    Err(refused) => Err(TxFault::Storage(KvError::new(refused))),
                },
            )
            .collect()
    }
}

impl<B: KvBackend> KvBackend for Authenticated<B> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.inner
            .get(tree, key)?
            .map(|stored| self.open(tree, key, stored))
            .transpose()
    }

    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> KvIter<'_> {
        Box::new(
            self.inner
                .scan_prefix(tree, prefix)
                .map(move |pair| self.open_pair(tree, pair?)),
        )
    }

    fn scan_from(&self, tree: Tree, start: &[u8]) -> KvIter<'_> {
        Box::new(
            self.inner
                .scan_from(tree, start)
                .map(move |pair| self.open_pair(tree, pair?)),
        )
    }

    fn last(&self, tree: Tree) -> Result<Option<KvPair>, KvError> {
        self.inner
            .last(tree)?
            .map(|pair| self.open_pair(tree, pair))
            .transpose()
    }

    fn floor(&self, tree: Tree, key: &[u8]) -> Result<Option<KvPair>, KvError> {
        self.inner
            .floor(tree, key)?
            .map(|pair| self.open_pair(tree, pair))
            .transpose()
    }

    fn transaction<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        self.inner.transaction(trees, |tx| {
            work(&AuthenticatedTx {
                inner: tx,
                mac: &self.mac,
            })
        })
    }

    fn transaction_in_steps<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
        last: impl Fn(&dyn KvTx, &T) -> Result<(), TxAbort<E>>,
        last_applied: &dyn Fn(),
    ) -> Result<T, TxError<E>> {
        let mac = &self.mac;
        self.inner.transaction_in_steps(
            trees,
            |inner| work(&AuthenticatedTx { inner, mac }),
            |inner, value| last(&AuthenticatedTx { inner, mac }, value),
            last_applied,
        )
    }

    fn read_view<T, E>(
        &self,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<T, TxAbort<E>>,
    ) -> Result<T, TxError<E>> {
        self.inner.read_view(trees, |tx| {
            work(&AuthenticatedTx {
                inner: tx,
                mac: &self.mac,
            })
        })
    }

    fn insert(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<(), KvError> {
        self.inner
            .insert(tree, key, &tagged(&self.mac, tree, key, value))
    }

    fn insert_new(&self, tree: Tree, key: &[u8], value: &[u8]) -> Result<bool, KvError> {
        self.inner
            .insert_new(tree, key, &tagged(&self.mac, tree, key, value))
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

    fn reopen(&self) -> Result<(), KvError> {
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
    use super::*;
    use crate::crypto::DataKey;
    use crate::kv::SledBackend;

    fn store() -> Authenticated<SledBackend> {
        Authenticated::new(
            SledBackend::temporary().unwrap(),
            RecordMac::derive(&DataKey::generate()),
        )
    }

    fn refused<T: std::fmt::Debug>(result: Result<T, KvError>) -> bool {
        matches!(result, Err(e) if e.0.downcast_ref::<RecordRefused>().is_some())
    }

    #[test]
    fn values_round_trip_and_edits_are_refused_on_every_read_path() {
        let kv = store();
        kv.insert(Tree::Apps, b"a", b"one").unwrap();
        kv.insert(Tree::Apps, b"b", b"two").unwrap();
        assert_eq!(kv.get(Tree::Apps, b"a").unwrap().unwrap(), b"one");
        let mut stored = kv.inner().get(Tree::Apps, b"b").unwrap().unwrap();
        stored[0] ^= 1;
        kv.inner().insert(Tree::Apps, b"b", &stored).unwrap();
        assert!(refused(kv.get(Tree::Apps, b"b")));
        assert!(refused(kv.last(Tree::Apps)));
        assert!(refused(kv.floor(Tree::Apps, b"c")));
        assert_eq!(kv.floor(Tree::Apps, b"a").unwrap().unwrap().1, b"one");
        let scanned: Vec<_> = kv.scan_prefix(Tree::Apps, b"").collect();
        assert_eq!(scanned[0].as_ref().unwrap().1, b"one");
        assert!(refused(scanned.into_iter().nth(1).unwrap()));
        assert!(refused(kv.scan_from(Tree::Apps, b"b").next().unwrap()));
        let in_tx = kv.transaction(&[Tree::Apps], |tx| {
            tx.get(Tree::Apps, b"b")?;
            Ok::<_, TxAbort<()>>(())
        });
        assert!(
            matches!(in_tx, Err(TxError::Storage(e)) if e.0.downcast_ref::<RecordRefused>().is_some())
        );
        let scanned_in_tx = kv.transaction(&[Tree::Apps], |tx| {
            tx.scan_prefix(Tree::Apps, b"")?;
            Ok::<_, TxAbort<()>>(())
        });
        assert!(
            matches!(scanned_in_tx, Err(TxError::Storage(e)) if e.0.downcast_ref::<RecordRefused>().is_some())
        );
    }

    #[test]
    fn a_value_moved_to_another_key_or_tree_is_refused() {
        let kv = store();
        kv.transaction(&[Tree::Tokens], |tx| {
            tx.insert(Tree::Tokens, b"t1", b"record")?;
            Ok::<_, TxAbort<()>>(())
        })
        .unwrap();
        let stored = kv.inner().get(Tree::Tokens, b"t1").unwrap().unwrap();
        kv.inner().insert(Tree::Tokens, b"t2", &stored).unwrap();
        kv.inner().insert(Tree::Apps, b"t1", &stored).unwrap();
        assert_eq!(kv.get(Tree::Tokens, b"t1").unwrap().unwrap(), b"record");
        assert!(refused(kv.get(Tree::Tokens, b"t2")));
        assert!(refused(kv.get(Tree::Apps, b"t1")));
    }
}
