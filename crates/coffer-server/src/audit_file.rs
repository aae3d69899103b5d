//! `--audit-file`: every audit entry as one JSON line, the fields of a `GET /v1/audit/`
//! entry (never a value or a token), appended as the store stores it and fsynced with
//! the store's group commit: an acknowledged write's entries are in the file. The file
//! is reopened by its path on SIGHUP, so `mv audit.log audit.log.1; kill -HUP` rotates it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_store::{AuditEntry, AuditSink};
use parking_lot::Mutex;

use crate::views::AuditEntryView;

/// The audit file of a running server.
#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
    /// Whether [`AuditSink::sync`] fsyncs (strict durability) or only writes.
    fsync: bool,
    state: Mutex<Open>,
}

#[derive(Debug)]
struct Open {
    /// Shared so that a sync runs without holding appends up.
    file: Arc<File>,
    /// Lines not yet written (a failed write keeps them here, in order).
    pending: Vec<u8>,
}

impl Open {
    /// Writes what is pending; on an error, keeps what was not written.
    fn write_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            match (&*self.file).write(&self.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

impl AuditFile {
    /// Opens (creating if needed, private to the owner) the file at `path` for appending.
    pub fn open(path: &Path, fsync: bool) -> io::Result<Self> {
        Ok(AuditFile {
            path: path.to_owned(),
            fsync,
            state: Mutex::new(Open {
                file: Arc::new(open_for_append(path)?),
                pending: Vec::new(),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Finishes the file open now (everything pending written and synced), then opens
    /// the path again: after a rename, a new file there.
    pub fn reopen(&self) -> io::Result<()> {
        let mut open = self.state.lock();
        open.write_pending()?;
        open.file.sync_data()?;
        open.file = Arc::new(open_for_append(&self.path)?);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            coffer_store::kv::sync_dir(dir)?;
        }
        Ok(())
    }
}

impl AuditSink for AuditFile {
    fn append(&self, entries: &[AuditEntry]) {
        let mut open = self.state.lock();
        for entry in entries {
            // Plain structs of strings and numbers always serialise.
            serde_json::to_writer(&mut open.pending, &AuditEntryView::from(entry))
                .expect("an audit entry serialises");
            open.pending.push(b'\n');
        }
        // In the file at once (a crash of the process keeps it); durable at the sync.
        if let Err(err) = open.write_pending() {
            tracing::error!(error = %err, path = %self.path.display(), "writing the audit file failed");
        }
    }

    fn sync(&self) -> io::Result<()> {
        let file = {
            let mut open = self.state.lock();
            open.write_pending()?;
            Arc::clone(&open.file)
        };
        // Outside the lock: writers append meanwhile, and the next sync covers them.
        if self.fsync {
            file.sync_data()?;
        }
        Ok(())
    }
}
