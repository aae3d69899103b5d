//! Typed errors of the store. User errors carry the data a front end needs to print its
//! exact message; internal errors (storage, codec, crypto) are kept apart and never
//! describe secret material.

use uuid::Uuid;

use crate::kv::KvError;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // --- not found -------------------------------------------------------------------
    /// No app with this id.
    #[error("app {0} not found")]
    AppNotFound(Uuid),
    /// No environment with this name or id in the app.
    #[error("environment '{name}' not found in app {app_id}")]
    EnvironmentNotFound {
        /// The app searched.
        app_id: Uuid,
        /// The name or id as given.
        name: String,
    },
    /// No environment with this id.
    #[error("environment {0} not found")]
    EnvironmentIdNotFound(Uuid),
    /// A secret id of an update is not in the environment.
    #[error("secret {0} not found")]
    SecretNotFound(Uuid),
    /// Secret ids of a delete are not in the environment (nothing was deleted).
    #[error("{} secret(s) not found", .0.len())]
    SecretsNotFound(Vec<Uuid>),
    /// A secret has no such version.
    #[error("version {version} of secret {id} not found")]
    VersionNotFound {
        /// The secret.
        id: Uuid,
        /// The version asked for.
        version: u64,
    },
    /// No token with this id.
    #[error("token {0} not found")]
    TokenNotFound(Uuid),

    // --- invalid input ---------------------------------------------------------------
    /// A batch with no entries.
    #[error("empty batch")]
    EmptyBatch,
    /// A batch over [`crate::limits::MAX_BATCH`] entries.
    #[error("batch holds more than {max} entries")]
    BatchTooLarge {
        /// The limit.
        max: usize,
    },
    /// A secret without a key, or with a blank one.
    #[error("missing secret key")]
    MissingKey,
    /// A key that does not match the key grammar.
    #[error("invalid secret key")]
    InvalidKey(String),
    /// A path that cannot be normalised.
    #[error("invalid path")]
    InvalidPath(String),
    /// A tag over the length limit; carries the tag's first characters.
    #[error("tag too long")]
    TagTooLong(String),
    /// More tags than allowed.
    #[error("more than {max} tags")]
    TooManyTags {
        /// The limit.
        max: usize,
    },
    /// A field over its size limit.
    #[error("'{field}' exceeds {limit} bytes")]
    FieldTooLarge {
        /// Field name as the API spells it.
        field: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// A change of a sealed secret to another type.
    #[error("sealed secrets cannot be unsealed")]
    SealedCannotBeUnsealed,
    /// An app description over [`crate::validate::limits::MAX_APP_DESCRIPTION_CHARS`].
    #[error("app description too long")]
    DescriptionTooLong,
    /// An app name outside 1–64 characters.
    #[error("invalid app name")]
    InvalidAppName(String),
    /// An environment name outside `^[a-zA-Z0-9\-_]{1,64}$`.
    #[error("invalid environment name")]
    InvalidEnvironmentName(String),
    /// A service token needs an app and at least one environment.
    #[error("a service token needs an app and at least one environment")]
    ServiceTokenScopeMissing,
    /// A token name outside 1–64 characters.
    #[error("invalid token name")]
    InvalidTokenName,
    /// A changes feed position the feed has not reached (never handed out).
    #[error("feed position not reached")]
    FeedCursorUnknown,
    /// A changes feed position before the oldest audit entry kept.
    #[error("feed position before the oldest entry kept ({oldest})")]
    FeedCursorExpired {
        /// The oldest entry kept.
        oldest: u64,
    },

    /// A rollback would bring a deleted secret back, which is a create, and the caller
    /// may not create (see [`crate::Rollback::may_restore`]).
    #[error("restoring secret {0} needs the create permission")]
    RestoreNotAllowed(Uuid),

    // --- conflicts -------------------------------------------------------------------
    /// A live secret with this (environment, path, key) exists, or the batch holds it twice.
    #[error("duplicate secret")]
    DuplicateSecret,
    /// Check-and-set failed.
    #[error("secret version conflict: expected {expected}, current {current}")]
    VersionConflict {
        /// The version the caller expected.
        expected: u64,
        /// The version stored.
        current: u64,
    },
    /// App names are unique, case-insensitively.
    #[error("app name taken")]
    AppNameTaken(String),
    /// Environment names are unique within an app, case-insensitively.
    #[error("environment name taken")]
    EnvironmentNameTaken(String),

    // --- storage unavailable ---------------------------------------------------------
    /// The disk is full: nothing was written (or what was is not acknowledged); writes
    /// are taken again once space is freed.
    #[error("the disk is full")]
    DiskFull,
    /// A flush failed: what the disk holds is not known, and writes are refused until
    /// the store is restarted.
    #[error("writes are stopped after a failed flush")]
    WritesStopped,
    /// The storage backend cannot be reached (an etcd cluster without quorum). A write
    /// that met this is not acknowledged; it may or may not have been stored.
    #[error("the storage backend cannot be reached")]
    Unavailable,

    // --- too large for the backend ---------------------------------------------------
    /// The write does not fit one transaction of the backend; nothing was written.
    /// Names the backend's setting that bounds it.
    #[error("batch too large for the storage backend: {0}")]
    BackendLimit(&'static str),

    // --- internal --------------------------------------------------------------------
    /// The store failed; the request changed nothing.
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// Failures that are the server's fault, never the caller's.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] KvError),
    /// A stored record could not be decoded.
    #[error("record in tree '{tree}' could not be decoded: {reason}")]
    Codec {
        /// Tree of the record.
        tree: &'static str,
        /// What went wrong (never record contents).
        reason: String,
    },
    /// A sealed field failed authentication: tampering, or a record moved elsewhere.
    #[error("sealed record failed to open (tampered or moved)")]
    Crypto,
    /// A stored record does not carry its tag, or another authenticated record names a
    /// different state of it: edited, moved, put back from an older copy, or written
    /// without the master key.
    #[error("record in tree '{tree}' failed authentication (edited, moved or rolled back)")]
    Unauthentic {
        /// Tree of the record.
        tree: &'static str,
    },
}

impl StoreError {
    /// True for failures that are not the caller's fault.
    pub fn is_internal(&self) -> bool {
        matches!(self, StoreError::Internal(_))
    }
}

impl From<KvError> for StoreError {
    fn from(err: KvError) -> Self {
        if err.is_storage_full() {
            return StoreError::DiskFull;
        }
        if err.is_unreachable() {
            return StoreError::Unavailable;
        }
        if let Some(limit) = err.exceeded_limit() {
            return StoreError::BackendLimit(limit);
        }
        match err.0.downcast_ref::<crate::kv::RecordRefused>() {
            Some(refused) => {
                StoreError::Internal(InternalError::Unauthentic { tree: refused.tree })
            }
            None => StoreError::Internal(InternalError::Storage(err)),
        }
    }
}

impl StoreError {
    /// A record refused because another authenticated record disagrees with it.
    pub(crate) fn unauthentic(tree: crate::kv::Tree) -> Self {
        StoreError::Internal(InternalError::Unauthentic { tree: tree.name() })
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another Coffer process")]
    Locked(String),
    /// The data directory cannot be created or read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The master key file cannot be read or written.
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        /// The file.
        path: String,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The master key file may be read or written by its group or others.
    #[error("master key file {path} is accessible by group or others (mode {mode:04o}); run chmod 600 {path}")]
    MasterKeyExposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The master key file does not hold 32 bytes (raw, or 64 hex characters).
    #[error("master key file {0} must hold 32 bytes (raw) or 64 hex characters")]
    MasterKeyFormat(String),
    /// The data directory holds data but its master key is missing.
    #[error("data directory holds encrypted data but the master key file {0} is missing")]
    MasterKeyMissing(String),
    /// The master key does not open this store.
    #[error("wrong master key: it does not open this data directory")]
    WrongMasterKey,
    /// The data was written by a newer, unknown format.
    #[error("unsupported store format version {0}")]
    UnsupportedFormat(u8),
    /// A shared store needs its master key given: every node must use the same one.
    #[error(
        "--master-key-file is required with --storage {0}: every node must use the same master key"
    )]
    MasterKeyRequired(&'static str),
    /// The node id is not 1 to 64 letters, digits, `.`, `_` or `-`.
    #[error("invalid node id {0:?}: use 1 to 64 letters, digits, '.', '_' or '-'")]
    InvalidNodeId(String),
    /// This build cannot open the storage asked for.
    #[error("this build of Coffer has no {0} support (build it with `--features {0}`)")]
    StorageNotBuilt(&'static str),
    /// The store itself failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
