//! Restoring a backup (`backup.rs`) as a new data directory, all or nothing.
//!
//! Everything is written into a temporary directory next to the target and renamed onto
//! it at the very end, after the backup has been read to its authenticated last chunk and
//! the restored store has been opened and its audit chain verified. A damaged backup, a
//! wrong key or a crash part-way leaves no target directory (at most a temporary one named
//! `.<target>.restoring-*`, removed on every error this process sees).

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::backup::{BackupError, BackupReader, Manifest};
use crate::crypto::MasterKey;
use crate::data_dir;
use crate::error::{OpenError, StoreError};
use crate::kv::{self, Backend, Durability, KvBackend, SledOpenError};
use crate::store::{Store, StoreConfig};

/// What a restore made.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    /// The backup's manifest (when it was taken, its trees).
    pub manifest: Manifest,
    /// Records restored.
    pub records: u64,
    /// Audit entries in the restored chain (verified).
    pub audit_entries: u64,
    /// Live secrets in the restored store.
    pub secrets: usize,
    /// Tokens in the restored store.
    pub tokens: usize,
    /// Whether the master key was written as the new directory's `master.key` (the
    /// backed-up store kept its key in its data directory).
    pub master_key_in_data_dir: bool,
}

/// Why a restore made nothing.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target exists and is not an empty directory.
    #[error("{0} is not empty: restore makes a new data directory")]
    NotEmpty(String),
    /// The master key file cannot be read.
    #[error(transparent)]
    MasterKey(OpenError),
    /// The backup cannot be read, or does not open with the master key.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The restored records do not open as a store.
    #[error("the restored store does not open: {0}")]
    Open(OpenError),
    /// The restored audit chain does not verify.
    #[error("the restored audit chain of node {node_id} is broken at {}",
        seq.map_or("its checkpoint".to_owned(), |seq| format!("entry {seq}")))]
    AuditBroken {
        /// The node whose chain it is.
        node_id: String,
        /// The first entry that does not verify (none: its checkpoint does not).
        seq: Option<u64>,
    },
    /// Writing the new directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: String,
        /// The failure.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Removes the temporary directory unless the restore got to its rename.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Restores `backup`, taken under the master key in `master_key_file`, as the new data
/// directory `data_dir` (absent, or an empty directory).
pub fn restore(
    backup: impl Read,
    master_key_file: &Path,
    data_dir: &Path,
) -> Result<RestoreReport, RestoreError> {
    let master = MasterKey::read(master_key_file).map_err(RestoreError::MasterKey)?;
    let shown = data_dir.display().to_string();
    match std::fs::read_dir(data_dir) {
        Ok(entries) => {
            if entries.into_iter().next().is_some() {
                return Err(RestoreError::NotEmpty(shown));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(RestoreError::NotEmpty(shown))
        }
        Err(e) => return Err(io_error(data_dir)(e)),
    }
    let name = data_dir
        .file_name()
        .ok_or_else(|| RestoreError::NotEmpty(shown.clone()))?
        .to_string_lossy()
        .into_owned();
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    kv::create_dir_all_durably(&parent).map_err(io_error(&parent))?;
    let mut suffix = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut suffix);
    let temp = parent.join(format!(".{name}.restoring-{}", hex::encode(suffix)));
    data_dir::create_private(&temp).map_err(io_error(&temp))?;
    let mut scratch = Scratch(Some(temp.clone()));

    let db = temp.join("db");
    data_dir::create_private(&db).map_err(io_error(&db))?;
    let backend = Backend::embedded(&db, 8 << 20, Durability::Strict).map_err(|e| match e {
        SledOpenError::Locked => RestoreError::Open(OpenError::Locked(temp.display().to_string())),
        SledOpenError::Other(e) => RestoreError::Open(OpenError::Store(StoreError::from(e))),
    })?;
    let reader = BackupReader::open(BufReader::with_capacity(1 << 20, backup), &master)?;
    let manifest = reader.load_into(&backend)?;
    backend
        .flush()
        .map_err(|e| RestoreError::Open(OpenError::Store(StoreError::from(e))))?;
    drop(backend);

    let mut config = StoreConfig::new(&temp);
    if manifest.key_in_data_dir {
        master
            .write_new(&temp.join("master.key"))
            .map_err(RestoreError::MasterKey)?;
    } else {
        config.master_key_file = Some(master_key_file.to_path_buf());
    }
    let store = Store::open(&config).map_err(RestoreError::Open)?;
    let verified = store
        .verify_audit()
        .map_err(|e| RestoreError::Open(OpenError::Store(e)))?;
    if let Some(broken) = verified.first_broken_chain() {
        return Err(RestoreError::AuditBroken {
            node_id: broken.node_id.clone(),
            seq: broken.first_broken,
        });
    }
    let counts = store.counts();
    store
        .flush()
        .map_err(|e| RestoreError::Open(OpenError::Store(e)))?;
    drop(store);

    if data_dir.exists() {
        std::fs::remove_dir(data_dir).map_err(io_error(data_dir))?;
    }
    std::fs::rename(&temp, data_dir).map_err(io_error(data_dir))?;
    scratch.0 = None;
    kv::sync_dir(&parent).map_err(io_error(&parent))?;
    Ok(RestoreReport {
        records: manifest.trees.iter().map(|(_, n)| n).sum(),
        master_key_in_data_dir: manifest.key_in_data_dir,
        manifest,
        audit_entries: verified.checked(),
        secrets: counts.secrets,
        tokens: counts.tokens,
    })
}
