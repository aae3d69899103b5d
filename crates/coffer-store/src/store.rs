//! The [`Store`]: opening a data directory, the write path (one transaction with its
//! audit entry, then a shared fsync), and the locks that make batches atomically visible.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

use crate::audit::{
    encode_compact_record, encode_record, Actor, AuditEntry, AuditEvent, AuditEvents, AuditHead,
};
use crate::audit_chains::{self, ChainPositions};
use crate::audit_sink::AuditSink;
use crate::backup::BackupKey;
use crate::cache_epoch::CacheEpoch;
use crate::changes::Feed;
use crate::codec;
use crate::crypto::{DataKey, Keyring, MasterKey, RecordMac, TAG_LEN};
use crate::data_dir;
use crate::data_key::{self, Unlocked, DATA_KEY};
use crate::error::{OpenError, StoreError};
use crate::kv::{self, Backend, Durability, SledOpenError, Storage};
use crate::kv::{tagged, verified, Authenticated, Cut, KvBackend, KvTx, Tree, TxAbort, TxError};
use crate::migrate;
use crate::model::Environment;
use crate::storage_state::StorageHealth;
use crate::token_cache::{LastUseWrites, TokenCache};

pub(crate) const CHECK_KEY: &[u8] = b"check";
/// The check record's plaintext in format 1 stores.
pub(crate) const CHECK_PLAINTEXT_V1: &[u8] = b"coffer master key check v1";
/// The check record's plaintext since format 2: a format-2 check record cannot pass for
/// a format-1 one, so stripping the tags off a store cannot pass it off as unmigrated.
pub(crate) const CHECK_PLAINTEXT: &[u8] = b"coffer master key check v2";
pub(crate) const FORMAT_KEY: &[u8] = b"format";
const ENV_LOCK_STRIPES: usize = 64;
/// How long a flush waits for writers that are committing to join it.
const GROUP_COMMIT_WAIT: Duration = Duration::from_micros(500);

/// Where and how to open a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Which engine holds the state: the data directory's own (the default) or a
    /// shared cluster.
    pub storage: Storage,
    /// The data directory; created if missing (not used with a shared cluster).
    pub data_dir: PathBuf,
    /// The master key file; `None` means `<data_dir>/master.key`, generated on first open.
    pub master_key_file: Option<PathBuf>,
    /// Size of sled's page cache in bytes (sled keeps more than this in memory: it is
    /// a target, not a bound).
    pub cache_bytes: u64,
    /// When a write returns: once fsynced ([`Durability::Strict`], the default) or
    /// once handed to the operating system ([`Durability::Relaxed`]).
    pub durability: Durability,
    /// The node whose audit chain this process appends to; `None`: the host's name on a
    /// shared backend, else the id the store made for itself at its first open.
    pub node_id: Option<String>,
}

/// The default size of sled's page cache, in MiB. Large writes are bound by its misses
/// (a batch's inserts land on random leaves, each read back with `pread` once paged
/// out), and a larger cache costs about twice its size in RSS (sled's nodes take more
/// room in memory than it counts). 4 MiB keeps a server with 100,000 secrets under
/// 64 MB of RSS and one with a million under 128 MiB (the benchmark's goals); 12 MiB
/// imported 100,000 secrets into one environment in 0.7× the time but held 100,000
/// secrets in 74 MiB. README.md, "Performance", has the runs; `--cache-mib` trades one
/// for the other.
pub const DEFAULT_CACHE_MIB: u64 = 4;

impl StoreConfig {
    /// The defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            storage: Storage::Embedded,
            data_dir: data_dir.into(),
            master_key_file: None,
            cache_bytes: DEFAULT_CACHE_MIB << 20,
            durability: Durability::Strict,
            node_id: None,
        }
    }
}

/// The secrets store. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Store<B: KvBackend = Backend> {
    /// Every record read or written passes through the authentication layer; every
    /// write, through the gate that backups close for a consistent cut.
    pub(crate) kv: Authenticated<Cut<B>>,
    pub(crate) keys: Keyring,
    /// Seals backups; derived from the master key the store was opened with.
    pub(crate) backup_key: BackupKey,
    /// How the master key opened the store (the next key of an unfinished rotation?).
    pub(crate) unlocked: Unlocked,
    /// Whether the master key is the data directory's own `master.key`.
    pub(crate) key_in_data_dir: bool,
    /// Writers of an environment hold its stripe exclusively; listings share it, so a
    /// listing never sees part of a batch (sled scans are not snapshots).
    env_locks: Vec<RwLock<()>>,
    /// Serialises changes to apps, environments and tokens, which span several records
    /// that scans read (cascading deletes, name uniqueness).
    pub(crate) structure: Mutex<()>,
    /// The end of this node's audit chain: each commit takes it once its work is done,
    /// and keeps it until applied, so the chain's entries are in commit order.
    pub(crate) audit_head: Mutex<AuditHead>,
    pub(crate) group_commit: GroupCommit,
    /// Token hash → token. Filled on first use, without the lock held while reading
    /// the backend; every change to a token removes it after the commit, and the
    /// cache refuses fills read before a removal (see [`crate::token_cache`]).
    pub(crate) token_cache: RwLock<TokenCache>,
    /// Which tokens' last use is being written.
    pub(crate) last_use_writes: LastUseWrites,
    /// (app id, lower-cased environment name or id as asked) → environment: the lookup
    /// every secrets request starts with. Filled under its write lock and emptied after
    /// every change to apps or environments, so it is never stale.
    pub(crate) env_cache: RwLock<HashMap<(Uuid, String), Environment>>,
    /// When the caches may answer, if other nodes write the same backend.
    pub(crate) cache_epoch: CacheEpoch,
    /// The changes feed: how far the chain is durable, and who awaits it.
    pub(crate) feed: Feed,
    /// Where stored audit entries are copied, if anywhere.
    audit_sink: std::sync::OnceLock<Box<dyn AuditSink>>,
    /// Whether writes are taken (see [`crate::storage_state`]).
    pub(crate) storage: StorageHealth,
    /// The failure that stopped writes, if a flush failed.
    pub(crate) storage_failure: Mutex<Option<String>>,
    /// The data directory, when opened from one (its free space tells when a full disk
    /// has room again).
    pub(crate) data_dir: Option<PathBuf>,
}

impl<B: KvBackend> std::fmt::Debug for Store<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store<Backend> {
    /// Opens (creating if needed) the store `config` names: in `config.data_dir` by
    /// default, whose directory and everything in it are made private to the owner
    /// (0700 directories, 0600 files), whatever the umask.
    pub fn open(config: &StoreConfig) -> Result<Self, OpenError> {
        Self::open_unlocked(config).map(|(store, _)| store)
    }

    /// [`Store::open`], and the data key the master key opened.
    pub(crate) fn open_unlocked(config: &StoreConfig) -> Result<(Self, DataKey), OpenError> {
        match &config.storage {
            Storage::Embedded => Self::open_embedded(config),
            Storage::Etcd { endpoints, prefix } => {
                let key_file = config
                    .master_key_file
                    .as_deref()
                    .ok_or(OpenError::MasterKeyRequired("etcd"))?;
                let master = MasterKey::read(key_file)?;
                let node_id = config.node_id.as_deref();
                Store::assemble(connect_etcd(endpoints, prefix)?, &master, node_id)
            }
        }
    }

    fn open_embedded(config: &StoreConfig) -> Result<(Self, DataKey), OpenError> {
        let dir = &config.data_dir;
        let shown = dir.display().to_string();
        let dir_error = |source| OpenError::DataDir {
            path: shown.clone(),
            source,
        };
        // New directories' entries are fsynced (they must survive a power loss with
        // what is acknowledged in them), and they are private from the start.
        kv::create_dir_all_durably(dir).map_err(dir_error)?;
        data_dir::create_private(dir).map_err(dir_error)?;
        let db_dir = dir.join("db");
        let fresh = !db_dir.exists();
        // Created before sled sees it, so that nothing sled writes in it is ever open to
        // others, even before the files are restricted below.
        data_dir::create_private(&db_dir).map_err(dir_error)?;
        let kv = Backend::embedded(&db_dir, config.cache_bytes, config.durability).map_err(
            |e| match e {
                SledOpenError::Locked => OpenError::Locked(shown.clone()),
                SledOpenError::Other(e) => OpenError::Store(e.into()),
            },
        )?;
        let key_file = config
            .master_key_file
            .clone()
            .unwrap_or_else(|| dir.join("master.key"));
        let master =
            load_or_create_master_key(&key_file, fresh, &kv, config.master_key_file.is_some())?;
        // The entries of `db/` and of a new `master.key` (whose file is synced when
        // written), before anything is answered.
        kv::sync_with_parent(dir).map_err(dir_error)?;
        if let Some(key_dir) = key_file.parent().filter(|p| *p != dir.as_path()) {
            if !key_dir.as_os_str().is_empty() {
                kv::sync_dir(key_dir).map_err(dir_error)?;
            }
        }
        let (mut store, data_key) = Store::assemble(kv, &master, config.node_id.as_deref())?;
        store.key_in_data_dir = config.master_key_file.is_none();
        store.data_dir = Some(dir.clone());
        // sled creates its files under the umask; files it creates later (snapshots,
        // blobs) land in directories only the owner can enter.
        data_dir::restrict(dir).map_err(dir_error)?;
        Ok((store, data_key))
    }

    /// A store in a temporary directory with a random master key, gone when dropped.
    pub fn open_temporary() -> Result<Self, OpenError> {
        let kv = Backend::temporary().map_err(|e| match e {
            SledOpenError::Locked => OpenError::Locked("temporary".into()),
            SledOpenError::Other(e) => OpenError::Store(e.into()),
        })?;
        Store::with_backend(kv, &MasterKey::generate())
    }
}

#[cfg(feature = "etcd")]
fn connect_etcd(endpoints: &[String], prefix: &str) -> Result<Backend, OpenError> {
    Backend::etcd(endpoints, prefix).map_err(|e| OpenError::Store(e.into()))
}

#[cfg(not(feature = "etcd"))]
fn connect_etcd(_: &[String], _: &str) -> Result<Backend, OpenError> {
    Err(OpenError::StorageNotBuilt("etcd"))
}

/// Whether the master key opens a format-2 check record (sealed check ‖ tag); the tag
/// itself is verified afterwards, with every other record.
/// `format` is the stored format record: if its tag holds under this key while the check
/// does not open, the key is right and the check record was edited.
fn check_master_key(
    keys: &Keyring,
    mac: &RecordMac,
    stored: &[u8],
    format: Option<&[u8]>,
) -> Result<(), OpenError> {
    let sealed = &stored[..stored.len().saturating_sub(TAG_LEN)];
    let tag_holds =
        |key: &[u8], value: &[u8]| verified(mac, Tree::Meta, key, value.to_vec()).is_ok();
    match keys.open(CHECK_KEY, sealed) {
        Ok(plain) if plain == CHECK_PLAINTEXT => Ok(()),
        _ if tag_holds(CHECK_KEY, stored) || format.is_some_and(|f| tag_holds(FORMAT_KEY, f)) => {
            Err(StoreError::unauthentic(Tree::Meta).into())
        }
        _ => Err(OpenError::WrongMasterKey),
    }
}

/// Whether the master key opens a format-1 check record. A format-2 check record under a
/// format byte of 1 is a store whose format byte was put back: refused, never migrated
/// (a migration would authenticate whatever was written in clear meanwhile).
fn check_master_key_v1(keys: &Keyring, mac: &RecordMac, stored: &[u8]) -> Result<(), OpenError> {
    match keys.open(CHECK_KEY, stored) {
        Ok(plain) if plain == CHECK_PLAINTEXT_V1 => Ok(()),
        _ if check_master_key(keys, mac, stored, None).is_ok() => {
            Err(StoreError::unauthentic(Tree::Meta).into())
        }
        _ => Err(OpenError::WrongMasterKey),
    }
}

fn load_or_create_master_key(
    path: &Path,
    fresh_db: bool,
    kv: &impl KvBackend,
    given: bool,
) -> Result<MasterKey, OpenError> {
    if path.exists() || given {
        return MasterKey::read(path);
    }
    let has_data = !fresh_db
        && kv
            .get(Tree::Meta, CHECK_KEY)
            .map_err(StoreError::from)?
            .is_some();
    if has_data {
        return Err(OpenError::MasterKeyMissing(path.display().to_string()));
    }
    let key = MasterKey::generate();
    key.write_new(path)?;
    Ok(key)
}

impl<B: KvBackend> Store<B> {
    /// Opens a store on any backend with the given master key. A new backend is
    /// initialised; an existing one must have been written under the same key. A store of
    /// format 1 is migrated first, in one transaction.
    pub fn with_backend(kv: B, master: &MasterKey) -> Result<Self, OpenError> {
        Self::assemble(kv, master, None).map(|(store, _)| store)
    }

    /// [`Store::with_backend`], appending to the audit chain of `node_id`.
    pub fn with_backend_as(kv: B, master: &MasterKey, node_id: &str) -> Result<Self, OpenError> {
        Self::assemble(kv, master, Some(node_id)).map(|(store, _)| store)
    }

    /// [`Store::with_backend`], and the data key the master key opened.
    pub(crate) fn assemble(
        kv: B,
        master: &MasterKey,
        node_id: Option<&str>,
    ) -> Result<(Self, DataKey), OpenError> {
        let kv = Cut::new(kv);
        let stored_check = kv.get(Tree::Meta, CHECK_KEY).map_err(StoreError::from)?;
        let (data_key, unlocked) = match stored_check {
            Some(_) => data_key::unlock(&kv, master)?.ok_or(OpenError::WrongMasterKey)?,
            None => (DataKey::generate(), Unlocked::Current),
        };
        let keys = Keyring::derive(&data_key);
        let mac = RecordMac::derive(&data_key);
        let mut one_chain_to_move = false;
        let kv = match stored_check {
            Some(stored) => {
                let format = kv.get(Tree::Meta, FORMAT_KEY).map_err(StoreError::from)?;
                if format.as_deref() == Some(&[1]) {
                    check_master_key_v1(&keys, &mac, &stored)?;
                    migrate::from_v1(&kv, &keys, &mac)?;
                } else {
                    check_master_key(&keys, &mac, &stored, format.as_deref())?;
                }
                let kv = Authenticated::new(kv, mac);
                // Through the authentication layer: both records must carry their tags.
                kv.get(Tree::Meta, CHECK_KEY).map_err(StoreError::from)?;
                let format = match kv.get(Tree::Meta, FORMAT_KEY) {
                    Ok(format) => format,
                    // Another release's format byte, which need not carry our tag.
                    Err(_) => match kv.inner().get(Tree::Meta, FORMAT_KEY) {
                        Ok(Some(raw)) if raw.len() == 1 && raw[0] != codec::FORMAT_VERSION => {
                            Some(raw)
                        }
                        _ => return Err(StoreError::unauthentic(Tree::Meta).into()),
                    },
                };
                if unlocked != Unlocked::Unwrapped {
                    // Through the authentication layer: the wrapped keys carry tags too.
                    kv.get(Tree::Meta, DATA_KEY).map_err(StoreError::from)?;
                    kv.get(Tree::Meta, data_key::NEXT_DATA_KEY)
                        .map_err(StoreError::from)?;
                }
                match format.as_deref() {
                    Some([codec::FORMAT_VERSION]) => {}
                    // Formats 2 and 3 differ from 4 only in what they never hold.
                    Some([2..=4]) => one_chain_to_move = true,
                    Some([other, ..]) => return Err(OpenError::UnsupportedFormat(*other)),
                    _ => return Err(OpenError::UnsupportedFormat(0)),
                }
                kv
            }
            None => {
                let records = [
                    (FORMAT_KEY, vec![codec::FORMAT_VERSION]),
                    (DATA_KEY, master.wrap(DATA_KEY, &data_key)),
                    (CHECK_KEY, keys.seal(CHECK_KEY, CHECK_PLAINTEXT)),
                ]
                .map(|(key, value)| (key, tagged(&mac, Tree::Meta, key, &value)));
                // Below the authentication layer: a check record found here is another
                // node's, tagged under the data key it made.
                let initialised = kv
                    .transaction(&[Tree::Meta], |tx| {
                        // Another node sharing the backend may have initialised it
                        // since the check above: then this one opens what it wrote.
                        if tx.get(Tree::Meta, CHECK_KEY)?.is_some() {
                            return Ok(false);
                        }
                        for (key, value) in &records {
                            tx.insert(Tree::Meta, key, value)?;
                        }
                        Ok::<_, TxAbort<StoreError>>(true)
                    })
                    .map_err(tx_error)?;
                if !initialised {
                    return Self::assemble(kv.into_inner(), master, node_id);
                }
                kv.flush().map_err(StoreError::from)?;
                Authenticated::new(kv, mac)
            }
        };
        let chain = audit_chains::join(&kv, node_id)?;
        if one_chain_to_move {
            audit_chains::migrate_from_one_chain(&kv, &chain)?;
        }
        let mut fed_to = ChainPositions::default();
        for other in audit_chains::chains(&kv)? {
            let number = other.number;
            fed_to.set(number, AuditHead::load(&kv, other)?.next_seq());
        }
        let feed = Feed::at(fed_to, chain.clone());
        let audit_head = AuditHead::load(&kv, chain)?;
        let cache_epoch = CacheEpoch::new(kv.is_shared());
        let store = Store {
            kv,
            keys,
            backup_key: BackupKey::derive(master),
            unlocked,
            key_in_data_dir: false,
            env_locks: (0..ENV_LOCK_STRIPES).map(|_| RwLock::new(())).collect(),
            structure: Mutex::new(()),
            audit_head: Mutex::new(audit_head),
            group_commit: GroupCommit::default(),
            token_cache: RwLock::new(TokenCache::default()),
            last_use_writes: LastUseWrites::default(),
            env_cache: RwLock::new(HashMap::new()),
            cache_epoch,
            feed,
            audit_sink: std::sync::OnceLock::new(),
            storage: StorageHealth::default(),
            storage_failure: Mutex::new(None),
            data_dir: None,
        };
        store.backfill_environment_keys()?;
        Ok((store, data_key))
    }

    /// Whether the store was opened with the next master key of a rotation that has not
    /// finished (`coffer rekey` run again finishes it).
    pub fn rotation_pending(&self) -> Result<bool, StoreError> {
        Ok(self.unlocked == Unlocked::Next
            || self.kv.get(Tree::Meta, data_key::NEXT_DATA_KEY)?.is_some())
    }

    /// Makes everything acknowledged so far durable (also done by every write).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush()?;
        self.sync_audit_sink()
    }

    /// Copies every audit entry stored from now on to `sink` (once per store: a second
    /// sink is refused and handed back).
    pub fn set_audit_sink(&self, sink: Box<dyn AuditSink>) -> Result<(), Box<dyn AuditSink>> {
        self.audit_sink.set(sink)
    }

    /// Hands entries just stored to the sink. Called with the audit head held.
    fn copy_to_sink(&self, entries: &[AuditEntry]) {
        if let Some(sink) = self.audit_sink.get() {
            sink.append(entries);
        }
    }

    fn sync_audit_sink(&self) -> Result<(), StoreError> {
        match self.audit_sink.get() {
            Some(sink) => sink
                .sync()
                .map_err(|e| StoreError::from(kv::KvError::new(e))),
            None => Ok(()),
        }
    }

    /// Bytes the store uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.kv.size_on_disk()?)
    }

    /// Number of live secrets, apps, environments and tokens (O(n); for metrics), and of
    /// audit entries (O(1): the chain's length, which only grows).
    pub fn counts(&self) -> StoreCounts {
        StoreCounts {
            apps: self.kv.len(Tree::Apps),
            environments: self.kv.len(Tree::Envs),
            secrets: self.kv.len(Tree::Secrets),
            tokens: self.kv.len(Tree::Tokens),
            audit_entries: self.audit_head.lock().len() as usize,
        }
    }

    fn env_stripe(&self, env_id: Uuid) -> usize {
        (env_id.as_u64_pair().1 as usize) % ENV_LOCK_STRIPES
    }

    /// Shared hold on an environment: no batch of it is half-visible meanwhile.
    pub(crate) fn read_env(&self, env_id: Uuid) -> RwLockReadGuard<'_, ()> {
        self.env_locks[self.env_stripe(env_id)].read()
    }

    /// Exclusive hold on several environments, taken in stripe order (no deadlock).
    pub(crate) fn write_envs(&self, env_ids: &[Uuid]) -> Vec<RwLockWriteGuard<'_, ()>> {
        let mut stripes: Vec<usize> = env_ids.iter().map(|id| self.env_stripe(*id)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes.iter().map(|s| self.env_locks[*s].write()).collect()
    }

    /// Exclusive hold on every environment, taken in stripe order (no deadlock): no
    /// secret write of any environment commits meanwhile.
    pub(crate) fn write_all_envs(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.env_locks.iter().map(|stripe| stripe.write()).collect()
    }

    /// Runs one write: `work` and its audit entry in one transaction, then waits until
    /// the commit is durable. The fsync is shared with concurrent writers.
    pub(crate) fn write<T, E: AuditEvents>(
        &self,
        actor: &Actor,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<(T, E), TxAbort<StoreError>>,
    ) -> Result<T, StoreError> {
        self.write_releasing(actor, trees, (), work)
    }

    /// [`Store::write`] that lets go of `held` (locks) once committed, before waiting
    /// for the disk: what they keep out needs keeping out of the commit only.
    pub(crate) fn write_releasing<G, T, E: AuditEvents>(
        &self,
        actor: &Actor,
        trees: &[Tree],
        held: G,
        work: impl Fn(&dyn KvTx) -> Result<(T, E), TxAbort<StoreError>>,
    ) -> Result<T, StoreError> {
        self.check_writable()?;
        let (value, ticket) = {
            let _committing = self.group_commit.committing();
            let committed = self.commit(actor, trees, Applied::AtOnce, work);
            drop(held);
            committed.map_err(|e| self.note_write_error(e, false))?
        };
        if trees.iter().any(|t| matches!(t, Tree::Apps | Tree::Envs)) {
            self.env_cache.write().clear();
        }
        self.wait_durable(ticket)
            .map_err(|e| self.note_write_error(e, true))?;
        Ok(value)
    }

    /// [`Store::write`] to one environment's secrets. The environment is held exclusively
    /// for the commit only, not while waiting for the disk: its other writers commit
    /// meanwhile and share the fsync, instead of queueing for one fsync each.
    pub(crate) fn write_env<T, E: AuditEvents>(
        &self,
        actor: &Actor,
        env_id: Uuid,
        trees: &[Tree],
        work: impl Fn(&dyn KvTx) -> Result<(T, E), TxAbort<StoreError>>,
    ) -> Result<T, StoreError> {
        self.write_env_after_scan(actor, env_id, || Ok(((), trees)), |tx, _| work(tx))
    }

    /// [`Store::write_env`] with a scan first, made while the environment is already
    /// held (so what it finds cannot change before the commit) and outside the
    /// transaction (a transaction has no scans, and a sled transaction holds a lock
    /// that reads outside it wait for). The scan also picks the trees the write spans.
    pub(crate) fn write_env_after_scan<'t, S, T, E: AuditEvents>(
        &self,
        actor: &Actor,
        env_id: Uuid,
        scan: impl FnOnce() -> Result<(S, &'t [Tree]), StoreError>,
        work: impl Fn(&dyn KvTx, &S) -> Result<(T, E), TxAbort<StoreError>>,
    ) -> Result<T, StoreError> {
        self.check_writable()?;
        let (value, ticket) = {
            let _committing = self.group_commit.committing();
            let _exclusive = self.write_envs(&[env_id]);
            let (scanned, trees) = scan()?;
            // Readers of the environment wait for its lock: the batch may be applied
            // in steps, holding no other environment's readers off meanwhile.
            self.commit(actor, trees, Applied::InSteps, |tx| work(tx, &scanned))
                .map_err(|e| self.note_write_error(e, false))?
        };
        self.wait_durable(ticket)
            .map_err(|e| self.note_write_error(e, true))?;
        Ok(value)
    }

    /// The first half of a write: commits, and returns the ticket to wait on with
    /// [`Store::wait_durable`]. `applied` says whether the commit's writes must become
    /// visible at once or may become visible one by one (to callers that hold the
    /// readers of what it writes off).
    fn commit<T, E: AuditEvents>(
        &self,
        actor: &Actor,
        trees: &[Tree],
        applied: Applied,
        work: impl Fn(&dyn KvTx) -> Result<(T, E), TxAbort<StoreError>>,
    ) -> Result<(T, u64), StoreError> {
        let mut spanned = Vec::with_capacity(trees.len() + 2);
        spanned.extend_from_slice(trees);
        spanned.push(Tree::Audit);
        let moves_epoch = self.cache_epoch.moved_by(trees);
        if moves_epoch && !trees.contains(&Tree::Meta) {
            spanned.push(Tree::Meta);
        }
        // The head is taken at the end of the work, not before it: a batch's work (its
        // reads, checks and writes) then never holds up the writers of other
        // environments' chain entries, nor the reads, whose entries take the head too.
        // Once taken it is kept until the commit's audit entries are applied (and across
        // the attempts a backend runs again after a conflict), so they stay next in the
        // chain; a commit applied in steps takes it once its work's writes are stored,
        // and lets go of it before applying them.
        let held: RefCell<Option<MutexGuard<'_, AuditHead>>> = RefCell::new(None);
        let events: RefCell<Option<E>> = RefCell::default();
        let entries: RefCell<Vec<AuditEntry>> = RefCell::default();
        let in_work = |tx: &dyn KvTx| {
            let (value, made) = work(tx).map_err(|abort| match abort {
                TxAbort::Abort(e) => TxAbort::Abort(CommitAbort::Store(e)),
                TxAbort::Fault(fault) => TxAbort::Fault(fault),
            })?;
            *events.borrow_mut() = Some(made);
            Ok(value)
        };
        // The audit entries of the work's events, next in the chain.
        let in_last = |tx: &dyn KvTx, _: &T| {
            let mut held = held.borrow_mut();
            let head = held.get_or_insert_with(|| self.audit_head.lock());
            // Read inside the transaction: if another node appends at this key
            // before the commit, the commit conflicts instead of forking the chain.
            if tx.get(Tree::Audit, &head.next_key())?.is_some() {
                return Err(TxAbort::Abort(CommitAbort::HeadMoved));
            }
            let made = events.take().map(AuditEvents::into_events);
            let made = head.next_entries(made.into_iter().flatten().map(|e| (actor.clone(), e)));
            if let Some(first) = made.first() {
                tx.insert(Tree::Audit, &first.key(), &encode_record(&made))?;
            }
            if moves_epoch {
                self.cache_epoch.move_in(tx)?;
            }
            *entries.borrow_mut() = made;
            Ok(())
        };
        let advance_head = || {
            if let Some(mut head) = held.borrow_mut().take() {
                let entries = entries.take();
                if let Some(last) = entries.last() {
                    head.advance(last);
                    self.copy_to_sink(&entries);
                }
            }
        };
        for attempt in 0..HEAD_RELOADS {
            let committed = match applied {
                Applied::AtOnce => self.kv.transaction(&spanned, |tx| {
                    let value = in_work(tx)?;
                    in_last(tx, &value)?;
                    Ok(value)
                }),
                Applied::InSteps => {
                    self.kv
                        .transaction_in_steps(&spanned, in_work, in_last, &advance_head)
                }
            };
            match committed {
                Ok(value) => {
                    advance_head();
                    return Ok((value, self.group_commit.ticket()));
                }
                Err(TxError::Abort(CommitAbort::HeadMoved)) => {
                    let taken = held.borrow_mut().take();
                    let mut head = taken.unwrap_or_else(|| self.audit_head.lock());
                    head.reload(&self.kv)?;
                    drop(head);
                    self.after_head_moved(attempt);
                }
                Err(TxError::Abort(CommitAbort::Store(e))) => return Err(e),
                Err(TxError::Storage(e)) => return Err(e.into()),
            }
        }
        Err(head_kept_moving())
    }

    /// Returns once the commit of `ticket` is on disk.
    /// The changes feed moves with the flush, so a change is fed once it is durable.
    fn wait_durable(&self, ticket: u64) -> Result<(), StoreError> {
        let position = || self.audit_head.lock().len() + 1;
        let durable_to = |position| self.feed_durable_to(position);
        let flush = || self.flush();
        self.group_commit
            .wait_durable(ticket, flush, position, durable_to)
    }

    /// Appends audit entries on their own (reads) as one record. Not waited for on
    /// disk: a read changes nothing that a crash could lose, and its entries follow
    /// with the next flush.
    pub(crate) fn append_audit(
        &self,
        events: impl IntoIterator<Item = (Actor, AuditEvent)>,
    ) -> Result<(), StoreError> {
        if self.storage_state() == crate::StorageState::Full {
            return Err(StoreError::DiskFull);
        }
        let events: Vec<_> = events.into_iter().collect();
        let mut head = self.audit_head.lock();
        for attempt in 0..HEAD_RELOADS {
            let entries = head.next_entries(events.iter().cloned());
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                return Ok(());
            };
            // One key, written only if no other node took it first.
            let appended = self
                .kv
                .insert_new(Tree::Audit, &first.key(), &encode_compact_record(&entries))
                .map_err(|e| self.note_write_error(e.into(), false))?;
            if !appended {
                head.reload(&self.kv)?;
                self.after_head_moved(attempt);
                continue;
            }
            head.advance(last);
            self.copy_to_sink(&entries);
            return Ok(());
        }
        Err(head_kept_moving())
    }

    /// After another node appended first: a pause, longer with each attempt and
    /// randomised, so that a long write is not starved by the other nodes' short
    /// appends (all nodes append to one chain).
    fn after_head_moved(&self, attempt: usize) {
        let most = 500 * (attempt as u64 + 1).min(20);
        std::thread::sleep(Duration::from_micros(rand::random::<u64>() % most));
    }

    pub(crate) fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        tree: Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.kv
            .get(tree, key)?
            .map(|bytes| codec::decode(tree.name(), &bytes))
            .transpose()
    }
}

/// How often a writer reloads the end of the audit chain, appended to by other nodes,
/// before it gives up.
const HEAD_RELOADS: usize = 256;

/// Whether a commit's writes must become visible at once.
#[derive(Clone, Copy)]
enum Applied {
    /// All together ([`KvBackend::transaction`]).
    AtOnce,
    /// Perhaps one by one, to readers that do not hold the environment's lock
    /// ([`KvBackend::transaction_in_steps`]).
    InSteps,
}

/// Why a commit's transaction stopped.
enum CommitAbort {
    /// The write's own error.
    Store(StoreError),
    /// The audit chain grew past this node's head.
    HeadMoved,
}

fn head_kept_moving() -> StoreError {
    StoreError::from(kv::KvError::new(std::io::Error::other(
        "the audit chain kept growing under this node's writes",
    )))
}

/// Reads and decodes a record inside a transaction.
pub(crate) fn tx_get<T: serde::de::DeserializeOwned>(
    tx: &dyn KvTx,
    tree: Tree,
    key: &[u8],
) -> Result<Option<T>, TxAbort<StoreError>> {
    match tx.get(tree, key)? {
        Some(bytes) => codec::decode(tree.name(), &bytes)
            .map(Some)
            .map_err(TxAbort::Abort),
        None => Ok(None),
    }
}

/// Aborts a transaction with a store error.
pub(crate) fn abort<T>(err: StoreError) -> Result<T, TxAbort<StoreError>> {
    Err(TxAbort::Abort(err))
}

pub(crate) fn tx_error(err: TxError<StoreError>) -> StoreError {
    match err {
        TxError::Abort(e) => e,
        TxError::Storage(e) => StoreError::from(e),
    }
}

/// Record counts, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Apps.
    pub apps: usize,
    /// Environments.
    pub environments: usize,
    /// Live secrets.
    pub secrets: usize,
    /// Tokens (revoked included).
    pub tokens: usize,
    /// Audit entries.
    pub audit_entries: usize,
}

/// Group commit, as a write group: each commit takes a ticket; the first writer to wait
/// while no flush runs leads: it waits (briefly, asleep) for the writers committing at
/// that moment, then flushes once for every commit made so far. The writers that wait
/// meanwhile sleep until a flush covers their ticket or, if it does not, until they
/// must lead the next one. Nothing spins, and no lock is held through the fsync.
#[derive(Default)]
pub(crate) struct GroupCommit {
    committed: AtomicU64,
    /// Writers between the start of their write and its commit.
    committing: AtomicUsize,
    /// Whether a leader sleeps on `settled` (the last committing writer then wakes it).
    leader_waiting: AtomicBool,
    state: Mutex<GroupState>,
    /// Signalled when a flush ends (its waiters are covered, or one of them leads next).
    flushed: Condvar,
    /// Signalled when no writer is committing any more, for a leader waiting for them.
    settled: Condvar,
}

/// The write group's state, under its mutex.
#[derive(Default)]
struct GroupState {
    durable: Durable,
    /// A leader is between taking the lead and publishing its flush's outcome (or a
    /// reopen is under way): no other flush starts.
    flushing: bool,
}

/// How far commits are durable, and which commits a reopen of the backend lost.
#[derive(Default)]
struct Durable {
    /// Every ticket up to this one is durable.
    to: u64,
    /// Tickets committed but not durable when the backend was reopened: `(after, to]`,
    /// one range per reopen. Their writers are answered with a failure.
    lost: Vec<(u64, u64)>,
    /// A flush failed other than for a full disk. No commit past `to` is answered as
    /// durable from then on: what the disk holds is unknown, and a flush tried again can
    /// succeed without the writes the failed one dropped (the kernel reports a failed
    /// writeback once, then forgets the pages).
    failed: bool,
}

/// Counts a writer as committing until dropped.
struct Committing<'a>(&'a GroupCommit);

impl Drop for Committing<'_> {
    fn drop(&mut self) {
        let group = self.0;
        // Both sides use SeqCst: either this sees the leader waiting, or the leader sees
        // this writer gone before it sleeps. The lock orders the wake-up after its sleep.
        if group.committing.fetch_sub(1, Ordering::SeqCst) == 1
            && group.leader_waiting.load(Ordering::SeqCst)
        {
            let _state = group.state.lock();
            group.settled.notify_all();
        }
    }
}

impl GroupCommit {
    /// Runs `reopen` (which reopens the backend) with every flush held back, and marks
    /// the commits not yet durable as lost if it succeeds.
    pub(crate) fn reopening<E>(&self, reopen: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let mut state = self.state.lock();
        while state.flushing {
            self.flushed.wait(&mut state);
        }
        reopen()?;
        let committed = self.committed.load(Ordering::SeqCst);
        if committed > state.durable.to {
            let lost = (state.durable.to, committed);
            state.durable.lost.push(lost);
        }
        Ok(())
    }

    fn committing(&self) -> Committing<'_> {
        self.committing.fetch_add(1, Ordering::SeqCst);
        Committing(self)
    }

    /// Counts a finished commit and returns its ticket.
    fn ticket(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// `position` tells how far the audit chain is stored (read before the flush, so
    /// the flush covers it); `durable_to` hears it once the flush has returned, before
    /// any writer it covers returns.
    fn wait_durable(
        &self,
        ticket: u64,
        flush: impl FnOnce() -> Result<(), StoreError>,
        position: impl FnOnce() -> u64,
        durable_to: impl FnOnce(u64),
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        loop {
            let durable = &state.durable;
            if durable
                .lost
                .iter()
                .any(|&(after, to)| after < ticket && ticket <= to)
            {
                return Err(StoreError::DiskFull);
            }
            if durable.to >= ticket {
                return Ok(());
            }
            if durable.failed {
                return Err(StoreError::WritesStopped);
            }
            if !state.flushing {
                break;
            }
            self.flushed.wait(&mut state);
        }
        state.flushing = true;
        // sled holds commits back while it flushes: let the writers committing right
        // now finish first, so that this flush covers them instead of the next one.
        // Asleep: on few cores, a waiting loop would take the time they need.
        let deadline = Instant::now() + GROUP_COMMIT_WAIT;
        self.leader_waiting.store(true, Ordering::SeqCst);
        while self.committing.load(Ordering::SeqCst) > 0 {
            if self.settled.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        self.leader_waiting.store(false, Ordering::SeqCst);
        let covered = self.committed.load(Ordering::SeqCst);
        let flushed = MutexGuard::unlocked(&mut state, || {
            let stored_to = position();
            flush()?;
            // Still the only flush: the feed hears positions in order, and before
            // the writers covered are let go below.
            durable_to(stored_to);
            Ok(())
        });
        state.flushing = false;
        match &flushed {
            Ok(()) => state.durable.to = state.durable.to.max(covered),
            Err(err) => state.durable.failed |= !matches!(err, StoreError::DiskFull),
        }
        self.flushed.notify_all();
        flushed
    }
}
