//! Audit entries of reads, written in groups. A read is answered only once its entry
//! is stored (a failure is a 500), and every write to the audit tree has a fixed cost.
//! A read queues its entry and waits; the first read to find the queue empty schedules
//! a task on its worker that runs after the requests already in hand there, and stores
//! every entry queued by then as one record. Concurrent reads share one write instead
//! of queueing for one each, and no thread is woken for it.
//!
//! While the disk is full, reads still answer: their entries are held in memory, in
//! order, up to a bound, and written by [`ReadAuditor::write_held`] once the store takes
//! writes again. Past the bound a read answers 503: no read goes unaudited.

use std::collections::VecDeque;
use std::sync::Arc;

use coffer_store::{SecretRead, StorageState, Store, StoreError};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Reads whose entries are held by default while the disk is full.
pub const DEFAULT_HELD_READS: usize = 10_000;
/// Held entries written per record when space returns.
const HELD_PER_RECORD: usize = 1000;

/// A read waiting for its entry to be stored (or held).
struct Waiting {
    read: SecretRead,
    stored: oneshot::Sender<Result<(), ApiError>>,
}

/// Entries of reads answered while the disk was full, oldest first.
#[derive(Default)]
struct Held {
    reads: VecDeque<SecretRead>,
    /// Held entries are being written: new ones queue behind them, to keep the order.
    writing: bool,
}

/// How the server is doing, for `/health`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// Everything is written as it happens.
    Ok,
    /// Writes are refused (the disk is full) but reads answer, their audit entries held.
    Degraded,
    /// Reads cannot be audited any more (the held entries reached their bound), or
    /// writes stopped after a failed flush.
    Unavailable,
}

/// Gathers the audit entries of reads and stores them in groups.
pub struct ReadAuditor {
    store: Arc<Store>,
    /// Entries not yet taken by a store task; empty when none is scheduled.
    queue: Mutex<Vec<Waiting>>,
    held: Mutex<Held>,
    /// Most entries held.
    held_bound: usize,
}

impl std::fmt::Debug for ReadAuditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAuditor").finish_non_exhaustive()
    }
}

impl ReadAuditor {
    /// An auditor writing to `store`, holding at most `held_bound` entries while the
    /// disk is full.
    pub fn new(store: Arc<Store>, held_bound: usize) -> Arc<Self> {
        Arc::new(ReadAuditor {
            store,
            queue: Mutex::new(Vec::new()),
            held: Mutex::new(Held::default()),
            held_bound,
        })
    }

    /// Appends the audit entry of a read; returns once it is stored (or held). Must run
    /// on an actix (tokio local) runtime, as every handler does.
    pub async fn record(self: &Arc<Self>, read: SecretRead) -> Result<(), ApiError> {
        let (stored, done) = oneshot::channel();
        let first = {
            let mut queue = self.queue.lock();
            queue.push(Waiting { read, stored });
            queue.len() == 1
        };
        if first {
            let auditor = Arc::clone(self);
            if self.store.is_shared() {
                // A shared backend's write waits on the network: off the worker.
                actix_web::rt::task::spawn_blocking(move || auditor.store_queued());
            } else {
                // sled's append is a write to memory (its flush comes later): queued
                // behind the running task rather than handed to another thread, which
                // costs more than the write itself.
                actix_web::rt::spawn(async move { auditor.store_queued() });
            }
        }
        done.await.unwrap_or_else(|_| Err(ApiError::internal()))
    }

    /// Stores everything queued as one record (or holds it) and answers every waiter.
    fn store_queued(&self) {
        let group = std::mem::take(&mut *self.queue.lock());
        {
            let mut held = self.held.lock();
            if !held.reads.is_empty() || held.writing {
                self.hold(&mut held, group);
                return;
            }
        }
        let reads: Vec<SecretRead> = group.iter().map(|w| w.read.clone()).collect();
        match self.store.record_reads(reads) {
            Ok(()) => answer_all(group, || Ok(())),
            Err(StoreError::DiskFull) => self.hold(&mut self.held.lock(), group),
            // Converting the error logs it, once for the whole group.
            Err(err) => {
                let answer = ApiError::from(err);
                answer_all(group, || Err(answer.clone()));
            }
        }
    }

    /// Holds the entries of `group` behind those held already, as far as the bound
    /// allows; the reads past it answer 503.
    fn hold(&self, held: &mut Held, group: Vec<Waiting>) {
        for waiting in group {
            let answer = if held.reads.len() < self.held_bound {
                held.reads.push_back(waiting.read);
                Ok(())
            } else {
                Err(ApiError::unavailable())
            };
            // A client that went away is no longer waiting.
            let _ = waiting.stored.send(answer);
        }
    }

    /// Entries held now.
    pub fn held(&self) -> usize {
        self.held.lock().reads.len()
    }

    /// Writes the held entries, oldest first, while the store takes them; returns how
    /// many were written. Entries of reads made meanwhile queue behind them.
    pub fn write_held(&self) -> Result<usize, StoreError> {
        let mut written = 0;
        loop {
            let chunk: Vec<SecretRead> = {
                let mut held = self.held.lock();
                if held.reads.is_empty() {
                    held.writing = false;
                    return Ok(written);
                }
                held.writing = true;
                let n = held.reads.len().min(HELD_PER_RECORD);
                held.reads.drain(..n).collect()
            };
            if let Err(err) = self.store.record_reads(chunk.clone()) {
                let mut held = self.held.lock();
                for read in chunk.into_iter().rev() {
                    held.reads.push_front(read);
                }
                held.writing = false;
                return Err(err);
            }
            written += chunk.len();
        }
    }

    /// How the server is doing: whether writes are taken and reads audited.
    pub fn serving(&self) -> Serving {
        let held = self.held();
        match self.store.storage_state() {
            StorageState::Failed => Serving::Unavailable,
            _ if held >= self.held_bound => Serving::Unavailable,
            StorageState::Full => Serving::Degraded,
            StorageState::Writable if held > 0 => Serving::Degraded,
            StorageState::Writable => Serving::Ok,
        }
    }
}

fn answer_all(group: Vec<Waiting>, answer: impl Fn() -> Result<(), ApiError>) {
    for waiting in group {
        // A client that went away is no longer waiting.
        let _ = waiting.stored.send(answer());
    }
}
