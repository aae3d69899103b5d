//! The journal of a sled transaction applied in steps
//! ([`KvBackend::transaction_in_steps`](super::KvBackend::transaction_in_steps)).
//!
//! A sled transaction holds a lock of the whole process while it applies its writes:
//! every read and write of any tree waits for it (sled 0.34's concurrency control), and a
//! 1,000-secret batch takes tens of milliseconds to apply. A large write set is applied
//! key by key instead, without that lock, and made all-or-nothing across a crash by this
//! journal. The work's writes are stored under one key, then the last writes (the audit
//! entry, made under the chain's head) under another, which seals the set; only then is
//! any of it applied, and both keys are removed once all of it is. sled recovers a prefix
//! of its log, so any applied write that survives a crash implies the sealed journal,
//! written before it, survived too. A database opened with a sealed journal applies it
//! again (its writes are final values: applying them twice is applying them once) before
//! anything reads it; an unsealed one was never applied, and is dropped.

use serde::{Deserialize, Serialize};

use super::{KvError, Tree};

/// The sled tree of the journal; not a [`Tree`]: nothing above the backend reads it.
pub(super) const JOURNAL_TREE: &str = "journal";
/// The work's writes, stored first.
const WRITES: &[u8] = b"writes";
/// The last writes, stored second: the set is complete, and is being applied.
const SEALED: &[u8] = b"sealed";

/// One write of the set as stored: the tree's name, the key, the value (`None`:
/// removed).
#[derive(Serialize)]
struct WriteRef<'a> {
    tree: &'a str,
    #[serde(with = "serde_bytes")]
    key: &'a [u8],
    #[serde(with = "serde_bytes")]
    value: Option<&'a [u8]>,
}

/// [`WriteRef`] as read back.
#[derive(Deserialize)]
struct Write {
    tree: String,
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    value: Option<Vec<u8>>,
}

/// A write to apply: its tree, key and value (`None`: removed).
pub(super) type Step<'a> = (Tree, &'a [u8], Option<&'a [u8]>);

/// Stores the work's `writes` (one atomic sled write).
pub(super) fn begin(journal: &sled::Tree, writes: &[Step<'_>]) -> Result<(), KvError> {
    store(journal, WRITES, writes)
}

/// Stores the last writes, sealing the set: from here on a recovery applies it.
pub(super) fn seal(journal: &sled::Tree, writes: &[Step<'_>]) -> Result<(), KvError> {
    store(journal, SEALED, writes)
}

fn store(journal: &sled::Tree, key: &[u8], writes: &[Step<'_>]) -> Result<(), KvError> {
    let set: Vec<WriteRef<'_>> = writes
        .iter()
        .map(|&(tree, key, value)| WriteRef {
            tree: tree.name(),
            key,
            value,
        })
        .collect();
    let bytes = bincode::serialize(&set).map_err(KvError::new)?;
    journal.insert(key, bytes).map_err(KvError::new)?;
    Ok(())
}

/// Applies one write with sled's plain (unlocked) write.
pub(super) fn apply_one(trees: &[sled::Tree], (tree, key, value): Step<'_>) -> Result<(), KvError> {
    let tree = &trees[tree.position()];
    match value {
        Some(value) => tree.insert(key, value).map(drop),
        None => tree.remove(key).map(drop),
    }
    .map_err(KvError::new)
}

/// The set is applied whole, or was never sealed: forgets it (the seal first).
pub(super) fn end(journal: &sled::Tree) -> Result<(), KvError> {
    for key in [SEALED, WRITES] {
        journal.remove(key).map_err(KvError::new)?;
    }
    Ok(())
}

/// At open: applies a sealed set that a crash left in progress (its last writes first,
/// as when it was made), then forgets it; an unsealed one is dropped. `trees` are the
/// database's trees by [`Tree::position`]. Returns how many writes it applied.
pub(super) fn recover(journal: &sled::Tree, trees: &[sled::Tree]) -> Result<usize, KvError> {
    if journal.get(SEALED).map_err(KvError::new)?.is_none() {
        if !journal.is_empty() {
            end(journal)?;
        }
        return Ok(0);
    }
    let mut applied = 0;
    for key in [SEALED, WRITES] {
        applied += apply_stored(journal, key, trees)?;
    }
    end(journal)?;
    Ok(applied)
}

fn apply_stored(journal: &sled::Tree, key: &[u8], trees: &[sled::Tree]) -> Result<usize, KvError> {
    let Some(bytes) = journal.get(key).map_err(KvError::new)? else {
        return Ok(0);
    };
    let set: Vec<Write> = bincode::deserialize(&bytes).map_err(|e| {
        KvError::new(std::io::Error::other(format!(
            "the journal of a write in progress cannot be read: {e}"
        )))
    })?;
    for write in &set {
        let tree = Tree::ALL
            .into_iter()
            .find(|t| t.name() == write.tree)
            .ok_or_else(|| {
                KvError::new(std::io::Error::other(format!(
                    "the journal of a write in progress names an unknown tree '{}'",
                    write.tree
                )))
            })?;
        apply_one(trees, (tree, &write.key, write.value.as_deref()))?;
    }
    Ok(set.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> (sled::Db, Vec<sled::Tree>, sled::Tree) {
        let db = sled::Config::new().path(dir).open().unwrap();
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).unwrap())
            .collect();
        let journal = db.open_tree(JOURNAL_TREE).unwrap();
        (db, trees, journal)
    }

    fn get(trees: &[sled::Tree], tree: Tree, key: &[u8]) -> Option<Vec<u8>> {
        trees[tree.position()].get(key).unwrap().map(|v| v.to_vec())
    }

    #[test]
    fn a_sealed_set_left_half_applied_is_applied_whole_at_the_next_open_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, trees, journal) = open(dir.path());
            trees[Tree::Secrets.position()]
                .insert(b"gone", b"old")
                .unwrap();
            let writes: Vec<Step<'_>> = vec![
                (Tree::Secrets, b"s1", Some(b"v1")),
                (Tree::Secrets, b"gone", None),
                (Tree::SecretIndex, b"i1", Some(b"s1")),
            ];
            let last: Vec<Step<'_>> = vec![(Tree::Audit, b"a1", Some(b"entry"))];
            begin(&journal, &writes).unwrap();
            seal(&journal, &last).unwrap();
            // The crash came after the last writes and one of the work's were applied.
            apply_one(&trees, last[0]).unwrap();
            apply_one(&trees, writes[0]).unwrap();
            db.flush().unwrap();
        }
        let (_db, trees, journal) = open(dir.path());
        assert_eq!(recover(&journal, &trees).unwrap(), 4);
        assert_eq!(
            get(&trees, Tree::Audit, b"a1").as_deref(),
            Some(&b"entry"[..])
        );
        assert_eq!(
            get(&trees, Tree::Secrets, b"s1").as_deref(),
            Some(&b"v1"[..])
        );
        assert_eq!(get(&trees, Tree::Secrets, b"gone"), None);
        assert_eq!(
            get(&trees, Tree::SecretIndex, b"i1").as_deref(),
            Some(&b"s1"[..])
        );
        assert!(journal.is_empty());
        assert_eq!(recover(&journal, &trees).unwrap(), 0);
    }

    #[test]
    fn a_set_never_sealed_is_dropped_and_nothing_of_it_applied() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, trees, journal) = open(dir.path());
        begin(&journal, &[(Tree::Secrets, b"s1", Some(b"v1"))]).unwrap();
        assert_eq!(recover(&journal, &trees).unwrap(), 0);
        assert_eq!(get(&trees, Tree::Secrets, b"s1"), None);
        assert!(journal.is_empty());
    }

    #[test]
    fn a_journal_naming_an_unknown_tree_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, trees, journal) = open(dir.path());
        let set = vec![WriteRef {
            tree: "no_such_tree",
            key: b"k",
            value: None,
        }];
        journal
            .insert(SEALED, bincode::serialize(&set).unwrap())
            .unwrap();
        let err = recover(&journal, &trees).unwrap_err();
        assert!(
            err.to_string().contains("unknown tree 'no_such_tree'"),
            "{err}"
        );
        assert!(!journal.is_empty());
    }
}
