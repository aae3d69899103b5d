//! A thread that watches the store's disk: says when writes stop and start again, and
//! while the disk is full, reopens the store once space returns and writes the audit
//! entries of the reads answered meanwhile.

use std::sync::Arc;
use std::time::Duration;

use coffer_store::{StorageState, Store};

use crate::read_audit::ReadAuditor;

/// How often the thread looks.
const INTERVAL: Duration = Duration::from_millis(250);

/// Starts the thread.
pub fn spawn(store: Arc<Store>, read_audit: Arc<ReadAuditor>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("storage-recovery".into())
        .spawn(move || {
            let mut seen = StorageState::Writable;
            loop {
                if store.storage_state() == StorageState::Full {
                    if let Err(err) = store.recover_storage() {
                        tracing::error!(error = %err, "reopening the store failed");
                    }
                }
                let now = store.storage_state();
                if now != seen {
                    announce(&store, now, read_audit.held());
                    seen = now;
                }
                if now == StorageState::Writable && read_audit.held() > 0 {
                    match read_audit.write_held() {
                        Ok(written) => tracing::info!(written, "held read audit entries written"),
                        Err(err) => {
                            tracing::warn!(error = %err, "writing held read audit entries failed")
                        }
                    }
                }
                std::thread::sleep(INTERVAL);
            }
        })
        .map(|_| ())
}

fn announce(store: &Store, state: StorageState, held: usize) {
    match state {
        StorageState::Full => tracing::warn!(
            "the disk is full: writes answer 503 until space is freed; the audit entries of \
             reads are held in memory meanwhile"
        ),
        StorageState::Failed => tracing::error!(
            failure = store.storage_failure().as_deref().unwrap_or("unknown"),
            "a flush to disk failed: writes answer 503 until the server is restarted"
        ),
        StorageState::Writable => tracing::info!(held, "space is back: writes are taken again"),
    }
}
