//! What the store does when its disk fails it. A full disk (`ENOSPC`) is passing:
//! writes are refused with [`StoreError::DiskFull`] until space returns, then the
//! backend is reopened in-process (sled 0.34 refuses every write after one I/O error)
//! and writing resumes by itself. Any other failed flush (a failed fsync) is not: what
//! the disk holds is no longer known, so the store refuses writes until it is restarted,
//! and a write that was waiting on the disk is answered [`StoreError::WritesStopped`]
//! even if a flush after the failed one succeeds (the group commit remembers it).
//! Reads go on in both cases.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{InternalError, StoreError};
use crate::kv::{KvBackend, KvError, Tree, TxAbort};
use crate::store::{tx_error, Store};

/// Space the disk must have before a reopen is tried: a few of sled's log segments.
const MIN_FREE_BYTES: u64 = 4 << 20;
/// The meta key a recovery writes (and removes) to learn that writes go through again.
const PROBE_KEY: &[u8] = b"space_probe";

/// Whether the store takes writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageState {
    /// Writes go through.
    Writable,
    /// The disk was full at the last write: writes are refused until space returns.
    Full,
    /// A flush failed for another reason: writes are refused until a restart.
    Failed,
}

/// The state, shared by every writer.
#[derive(Debug, Default)]
pub(crate) struct StorageHealth(AtomicU8);

impl StorageHealth {
    pub(crate) fn get(&self) -> StorageState {
        match self.0.load(Ordering::SeqCst) {
            0 => StorageState::Writable,
            1 => StorageState::Full,
            _ => StorageState::Failed,
        }
    }

    /// Moves to `to`, never out of `Failed`; true if the state changed.
    fn set(&self, to: StorageState) -> bool {
        let code = match to {
            StorageState::Writable => 0,
            StorageState::Full => 1,
            StorageState::Failed => 2,
        };
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                (now != 2 && now != code).then_some(code)
            })
            .is_ok()
    }
}

impl<B: KvBackend> Store<B> {
    /// Whether the store takes writes now.
    pub fn storage_state(&self) -> StorageState {
        self.storage.get()
    }

    /// Why the store stopped taking writes, once a flush failed (never secret material:
    /// an I/O error's words).
    pub fn storage_failure(&self) -> Option<String> {
        self.storage_failure.lock().clone()
    }

    /// Refuses a write at once while the store cannot take it.
    pub(crate) fn check_writable(&self) -> Result<(), StoreError> {
        match self.storage.get() {
            StorageState::Writable => Ok(()),
            StorageState::Full => Err(StoreError::DiskFull),
            StorageState::Failed => Err(StoreError::WritesStopped),
        }
    }

    /// Notes what a failed write tells about the disk, and returns the error to answer.
    /// `flushing`: the write had committed and its flush failed.
    pub(crate) fn note_write_error(&self, err: StoreError, flushing: bool) -> StoreError {
        match err {
            StoreError::DiskFull => {
                self.storage.set(StorageState::Full);
                StoreError::DiskFull
            }
            StoreError::Internal(InternalError::Storage(e)) if flushing => {
                if self.storage.set(StorageState::Failed) {
                    *self.storage_failure.lock() = Some(e.to_string());
                }
                StoreError::WritesStopped
            }
            other => other,
        }
    }

    /// While the disk is full: once it has room again, reopens the backend, reloads
    /// the end of the audit chain from what is durable, and tries a write; true once the
    /// store takes writes again. Every writer is held back meanwhile; commits that were
    /// not durable before the reopen are answered as failed.
    pub fn recover_storage(&self) -> Result<bool, StoreError> {
        match self.storage.get() {
            StorageState::Writable => return Ok(true),
            StorageState::Failed => return Ok(false),
            StorageState::Full => {}
        }
        if let Some(dir) = self.data_dir.as_deref() {
            if fs2::available_space(dir).map_err(|e| StoreError::from(KvError::new(e)))?
                < MIN_FREE_BYTES
            {
                return Ok(false);
            }
        }
        let _structure = self.structure.lock();
        let reopened = self.group_commit.reopening(|| {
            let mut head = self.audit_head.lock();
            self.kv.reopen()?;
            head.reload(&self.kv)?;
            Ok::<_, StoreError>(())
        });
        self.token_cache.write().clear();
        self.env_cache.write().clear();
        reopened?;
        let probe = self
            .kv
            .insert(Tree::Meta, PROBE_KEY, &[])
            .and_then(|()| self.kv.flush());
        match probe {
            Ok(()) => {
                self.kv
                    .transaction(&[Tree::Meta], |tx| {
                        tx.remove(Tree::Meta, PROBE_KEY)?;
                        Ok::<_, TxAbort<StoreError>>(())
                    })
                    .map_err(tx_error)?;
                self.storage.set(StorageState::Writable);
                Ok(true)
            }
            Err(e) if e.is_storage_full() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
