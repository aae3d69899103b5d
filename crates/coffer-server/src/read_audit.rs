//! Audit entries of reads, written in groups. A read is answered only once its entry
//! is stored (a failure is a 500), and every write to the audit tree has a fixed cost.
//! A read queues its entry and waits; the first read to find the queue empty schedules
//! a task on its worker that runs after the requests already in hand there, and stores
//! every entry queued by then as one record. Concurrent reads share one write instead
//! of queueing for one each, and no thread is woken for it.

use std::sync::Arc;

use coffer_store::{SecretRead, Store};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// A read waiting for its entry to be stored.
struct Waiting {
    read: SecretRead,
    stored: oneshot::Sender<bool>,
}

/// Gathers the audit entries of reads and stores them in groups.
pub struct ReadAuditor {
    store: Arc<Store>,
    /// Entries not yet taken by a store task; empty when none is scheduled.
    queue: Mutex<Vec<Waiting>>,
}

impl std::fmt::Debug for ReadAuditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAuditor").finish_non_exhaustive()
    }
}

impl ReadAuditor {
    /// An auditor writing to `store`.
    pub fn new(store: Arc<Store>) -> Arc<Self> {
        Arc::new(ReadAuditor {
            store,
            queue: Mutex::new(Vec::new()),
        })
    }

    /// Appends the audit entry of a read; returns once it is stored. Must run on an
    /// actix (tokio local) runtime, as every handler does.
    pub async fn record(self: &Arc<Self>, read: SecretRead) -> Result<(), ApiError> {
        let (stored, done) = oneshot::channel();
        let first = {
            let mut queue = self.queue.lock();
            queue.push(Waiting { read, stored });
            queue.len() == 1
        };
        if first {
            let auditor = Arc::clone(self);
            actix_web::rt::spawn(async move { auditor.store_queued() });
        }
        match done.await {
            Ok(true) => Ok(()),
            _ => Err(ApiError::internal()),
        }
    }

    /// Stores everything queued as one record and answers every waiter.
    fn store_queued(&self) {
        let group = std::mem::take(&mut *self.queue.lock());
        let (reads, answers): (Vec<SecretRead>, Vec<_>) =
            group.into_iter().map(|w| (w.read, w.stored)).unzip();
        // Converting the error logs it, once for the whole group.
        let stored = self
            .store
            .record_reads(reads)
            .map_err(ApiError::from)
            .is_ok();
        for answer in answers {
            // A client that went away is no longer waiting.
            let _ = answer.send(stored);
        }
    }
}
