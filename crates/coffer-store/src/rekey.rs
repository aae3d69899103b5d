//! Rotating the master key of a stopped store: the data key is wrapped anew under the
//! new master key, so no record, key digest, token hash or record tag changes.
//!
//! The steps, in this order, each durable before the next starts:
//!
//! 1. **Stage**: store the data key wrapped by the new key at `next data key`, beside
//!    the one wrapped by the old key. From here either key opens the store.
//! 2. **Key file** (only when the master key is the data directory's own `master.key`):
//!    write the new key to `master.key.new`, fsync it, rename it over `master.key`,
//!    fsync the directory. The file holds the old key or the new one, whole, at every
//!    instant, and both open the store.
//! 3. **Commit**: in one transaction, store the data key wrapped by the new key at
//!    `data key`, remove `next data key`, and append the `store.rekey` audit entry. From
//!    here only the new key opens the store.
//!
//! A crash (SIGKILL, power loss) at any point leaves a store that opens with the old key
//! or with the new one, and `master.key` (if used) opens it too. Running the rotation
//! again finishes it: with the old key it starts over from step 1 (overwriting a staged
//! key), with the new key it redoes steps 1–3 from whatever was done (each is idempotent),
//! and once step 3 is done it reports that there is nothing left to do.

use std::path::{Path, PathBuf};

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::crypto::{DataKey, MasterKey};
use crate::data_key::{Unlocked, DATA_KEY, NEXT_DATA_KEY};
use crate::error::{OpenError, StoreError};
use crate::kv::{self, KvBackend, Tree, TxAbort};
use crate::store::{tx_error, Store, StoreConfig};

/// The environment variable naming a step after which `rekey` stops and waits to be
/// killed (builds with the `fault-injection` feature only, which only the test suite
/// turns on): `staged`, `key-file-written`, `key-file-replaced` or `committed`.
#[cfg(feature = "fault-injection")]
pub const PAUSE_AT_VAR: &str = "COFFER_FAULT_REKEY_PAUSE_AT";

/// What to rotate.
#[derive(Clone, Debug)]
pub struct RekeyRequest {
    /// The data directory (of a stopped server).
    pub data_dir: PathBuf,
    /// The current master key file; `None` means `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// The new master key file.
    pub new_master_key_file: PathBuf,
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RekeyOutcome {
    /// The store now opens with the new key only. `key_file_replaced` names the data
    /// directory's `master.key` when it now holds the new key.
    Rotated {
        /// The replaced key file.
        key_file_replaced: Option<PathBuf>,
    },
    /// The store already opened with the new key only: nothing was changed.
    AlreadyDone,
}

/// Why a rotation could not be done (the store is left as it was, or as a crash would
/// leave it: see the module documentation).
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    /// The data directory holds no store.
    #[error("{0} holds no Coffer store")]
    NoStore(String),
    /// A server holds the data directory.
    #[error("data directory {0} is in use by a running server: stop it first (rekey works on a stopped server)")]
    Locked(String),
    /// Neither key opens the store.
    #[error("neither the current master key nor the new one opens {0}")]
    WrongMasterKey(String),
    /// A key file cannot be read, or the store cannot be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file could not be replaced.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// Rotates the master key of the stopped store in `request.data_dir`.
pub fn rekey(request: &RekeyRequest) -> Result<RekeyOutcome, RekeyError> {
    let dir = &request.data_dir;
    let shown = dir.display().to_string();
    if !dir.join("db").is_dir() {
        return Err(RekeyError::NoStore(shown));
    }
    let own_key_file = dir.join("master.key");
    let old_file = request
        .master_key_file
        .clone()
        .unwrap_or_else(|| own_key_file.clone());
    let key_in_data_dir = same_file(&old_file, &own_key_file);
    let new = MasterKey::read(&request.new_master_key_file)?;
    let open = |key_file: &Path| {
        let mut config = StoreConfig::new(dir);
        config.master_key_file = Some(key_file.to_path_buf());
        match Store::open_unlocked(&config) {
            Err(OpenError::Locked(_)) => Err(RekeyError::Locked(shown.clone())),
            other => other.map_err(RekeyError::from),
        }
    };
    let (store, data_key, opened_with) = match open(&old_file) {
        Err(RekeyError::Open(OpenError::WrongMasterKey)) => {
            match open(&request.new_master_key_file) {
                Err(RekeyError::Open(OpenError::WrongMasterKey)) => {
                    return Err(RekeyError::WrongMasterKey(shown))
                }
                other => {
                    let (store, data_key) = other?;
                    (
                        store,
                        data_key,
                        MasterKey::read(&request.new_master_key_file)?,
                    )
                }
            }
        }
        other => {
            let (store, data_key) = other?;
            (store, data_key, MasterKey::read(&old_file)?)
        }
    };
    if opened_with.same_as(&new) && !store.rotation_pending()? {
        if key_in_data_dir {
            replace_key_file(dir, &own_key_file, &new)?;
        }
        return Ok(RekeyOutcome::AlreadyDone);
    }
    if store.unlocked == Unlocked::Next && !opened_with.same_as(&new) {
        // An earlier rotation to the key that opened the store stopped before its
        // commit, and that key may be in `master.key` already: finish that rotation
        // first, so that no step below leaves a key file that does not open the store.
        store.commit_master_key(&data_key, &opened_with)?;
    }
    fault_point("opened");
    store.stage_master_key(&data_key, &new)?;
    fault_point("staged");
    let key_file_replaced = if key_in_data_dir {
        replace_key_file(dir, &own_key_file, &new)?;
        Some(own_key_file)
    } else {
        None
    };
    fault_point("key-file-replaced");
    store.commit_master_key(&data_key, &new)?;
    fault_point("committed");
    Ok(RekeyOutcome::Rotated { key_file_replaced })
}

/// Whether two paths name the same file (either may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Makes `<data dir>/master.key` hold `new`: a new file written and synced beside it,
/// renamed over it, and the directory synced, so the file is whole at every instant.
fn replace_key_file(dir: &Path, key_file: &Path, new: &MasterKey) -> Result<(), RekeyError> {
    if MasterKey::read(key_file).is_ok_and(|current| current.same_as(new)) {
        return Ok(());
    }
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |source| RekeyError::KeyFile { path, source }
    };
    let staged = dir.join("master.key.new");
    // Left by a rotation that stopped before its rename.
    match std::fs::remove_file(&staged) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(&staged)(e)),
    }
    new.write_new(&staged)?;
    fault_point("key-file-written");
    std::fs::rename(&staged, key_file).map_err(failed(key_file))?;
    kv::sync_dir(dir).map_err(failed(dir))?;
    Ok(())
}

impl<B: KvBackend> Store<B> {
    /// Step 1: the data key wrapped by `new` beside the current one, durably.
    fn stage_master_key(&self, data_key: &DataKey, new: &MasterKey) -> Result<(), StoreError> {
        let wrapped = new.wrap(NEXT_DATA_KEY, data_key);
        self.kv
            .transaction(&[Tree::Meta], |tx| {
                tx.insert(Tree::Meta, NEXT_DATA_KEY, &wrapped)?;
                Ok::<_, TxAbort<StoreError>>(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    /// Step 3: `new` becomes the only key, with its audit entry, in one transaction.
    fn commit_master_key(&self, data_key: &DataKey, new: &MasterKey) -> Result<(), StoreError> {
        let wrapped = new.wrap(DATA_KEY, data_key);
        let actor = Actor {
            user_agent: Some("coffer rekey".into()),
            ..Actor::embedded()
        };
        self.write(&actor, &[Tree::Meta], |tx| {
            tx.insert(Tree::Meta, DATA_KEY, &wrapped)?;
            tx.remove(Tree::Meta, NEXT_DATA_KEY)?;
            Ok(((), AuditEvent::new(AuditAction::StoreRekey)))
        })
    }
}

/// Stops the process at a named step when the test suite asks for it (see
/// [`PAUSE_AT_VAR`]): it says so on stderr and waits to be killed.
#[cfg(feature = "fault-injection")]
fn fault_point(step: &str) {
    if std::env::var(PAUSE_AT_VAR).is_ok_and(|at| at == step) {
        eprintln!("FAULT INJECTION: rekey paused at {step}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
fn fault_point(_step: &str) {}
