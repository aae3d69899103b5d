//! Making sled's writes durable from outside sled.
//!
//! sled 0.34 writes its log with `pwrite` then `sync_file_range` (on Linux), which
//! flushes neither the file's metadata nor the device's cache; a real `fsync` of the log
//! happens only in its background flusher. A page too large for a log message (over a
//! quarter of a segment, serialized) goes to a file of its own under `blobs/`, written
//! and never fsynced, nor is the directory. So after sled's flush, [`LogSync`] fsyncs
//! every blob file not yet known durable and the `blobs` directory, then `fdatasync`s
//! the log through a descriptor of its own (any descriptor of the inode will do).
//!
//! Which blobs a flush covers: sled names a blob after the log position it reserved
//! and writes it while it holds that reservation; its flush returns only once every
//! reservation made before it started is written out. So every blob listed before
//! sled's flush is complete once it returns, and is remembered as durable once synced.
//! Blobs that appear during the flush belong to writers not covered by it; they are
//! synced too (the log just synced may point at them) but not remembered, since they
//! may have been half-written, and are synced again by the next flush.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// The log file and blob directory of one sled database.
#[derive(Debug)]
pub(crate) struct LogSync {
    log: File,
    blobs: PathBuf,
    /// Blob files known to be complete and on disk (pruned of removed ones).
    durable_blobs: Mutex<HashSet<OsString>>,
}

impl LogSync {
    /// Opens `<db_dir>/db` (sled's log: `Config::db_path`) for syncing.
    pub(crate) fn open(db_dir: &Path) -> io::Result<Self> {
        Ok(LogSync {
            log: File::open(db_dir.join("db"))?,
            blobs: db_dir.join("blobs"),
            durable_blobs: Mutex::new(HashSet::new()),
        })
    }

    /// Blob files not known to be durable. Call before the backend's flush.
    pub(crate) fn unsynced_blobs(&self) -> io::Result<Vec<OsString>> {
        let mut present = HashSet::new();
        for entry in std::fs::read_dir(&self.blobs)? {
            present.insert(entry?.file_name());
        }
        let mut durable = self.durable_blobs.lock();
        durable.retain(|name| present.contains(name));
        Ok(present
            .into_iter()
            .filter(|name| !durable.contains(name))
            .collect())
    }

    /// Makes durable, after the backend's flush: the blobs listed before it, the
    /// `blobs` directory, the log, then any blob that appeared meanwhile.
    pub(crate) fn sync(&self, listed: Vec<OsString>) -> io::Result<()> {
        let synced = self.sync_blobs(&listed)?;
        self.durable_blobs.lock().extend(synced);
        self.log.sync_data()?;
        let late = self.unsynced_blobs()?;
        self.sync_blobs(&late)?;
        Ok(())
    }

    /// Fsyncs the named blob files, then (if there were any) the directory. Returns
    /// the names synced (a blob removed meanwhile is skipped).
    fn sync_blobs(&self, names: &[OsString]) -> io::Result<Vec<OsString>> {
        let mut synced = Vec::with_capacity(names.len());
        for name in names {
            match File::open(self.blobs.join(name)) {
                Ok(file) => file.sync_all()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            synced.push(name.clone());
        }
        if !names.is_empty() {
            sync_dir(&self.blobs)?;
        }
        Ok(synced)
    }
}

/// Fsyncs a directory, making the entries created or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fsyncs a file or directory and the directory that holds its entry.
pub fn sync_with_parent(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// `create_dir_all`, then fsyncs the parent of every directory it created, so the new
/// directories survive a power loss.
pub fn create_dir_all_durably(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut probe = Some(dir);
    while let Some(p) = probe {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p);
        probe = p.parent();
    }
    std::fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        sync_with_parent(created)?;
    }
    Ok(())
}
