//! # coffer-store
//!
//! The embedded, encrypted secrets engine of Coffer: apps → environments → paths →
//! keys, on sled, with one live secret per (environment, path, key), atomic batches,
//! durable writes with group commit, version history, an audit hash chain and
//! encryption at rest (XChaCha20-Poly1305, keys derived with HKDF from one master key).
//!
//! ```
//! use coffer_store::{Actor, NewApp, NewSecret, SecretFilter, Store, StoreConfig, StoreError};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(&StoreConfig::new(dir.path()))?;
//! let me = Actor::embedded();
//!
//! let (app, envs) = store.create_app(&me, NewApp { name: "shop".into(), ..Default::default() })?;
//! let dev = store.find_environment(app.id, "development")?;
//! assert_eq!(dev.id, envs[0].id);
//!
//! let created = store.create_secrets(&me, dev.id, vec![NewSecret {
//!     key: "db_url".into(),
//!     value: "postgres://shop@db/shop".into(),
//!     path: "/backend".into(),
//!     ..Default::default()
//! }])?;
//! assert_eq!(created[0].key, "DB_URL");
//!
//! // One live secret per (environment, path, key):
//! let again = store.create_secrets(&me, dev.id, vec![NewSecret {
//!     key: "DB_URL".into(),
//!     value: "other".into(),
//!     path: "backend/".into(),
//!     ..Default::default()
//! }]);
//! assert!(matches!(again, Err(StoreError::DuplicateSecret)));
//!
//! let listed = store.list_secrets(dev.id, &SecretFilter { key: Some("db_url".into()), ..Default::default() })?;
//! assert_eq!(listed[0].value, "postgres://shop@db/shop");
//! # Ok(())
//! # }
//! ```

mod apps;
mod audit;
mod audit_chains;
mod audit_compact;
mod audit_retention;
mod audit_sink;
mod backup;
mod cache_epoch;
mod changes;
mod client_keys;
mod codec;
mod crypto;
mod data_dir;
mod data_key;
mod envs;
mod error;
mod history;
mod idempotency;
mod keys;
pub mod kv;
mod migrate;
mod model;
mod overrides;
pub mod phase_crypto;
pub mod references;
pub mod rekey;
pub mod restore;
mod secrets;
mod storage_state;
mod store;
mod token_cache;
mod tokens;
mod upsert;
mod validate;

pub use apps::{AppUpdate, NewApp, DEFAULT_ENVIRONMENTS};
pub use audit::{
    Actor, AuditAction, AuditEntry, AuditPage, AuditQuery, AuditVerification, ChainVerification,
    SecretRead,
};
pub use audit_chains::{valid_node_id, Chain, ChainPositions, MAX_NODE_ID_LEN};
pub use audit_retention::{AuditCheckpoint, AuditTrim};
pub use audit_sink::AuditSink;
pub use backup::{
    BackupError, BackupStats, BackupStream, Manifest as BackupManifest,
    HEADER_LEN as BACKUP_HEADER_LEN,
};
pub use changes::{
    Change, ChangeAction, ChangeScope, ChangesPage, ChangesQuery, MAX_CHANGES, MAX_SCANNED,
};
pub use client_keys::{EnvironmentKeys, IssuedToken, TokenKeys};
pub use crypto::MasterKey;
pub use error::{InternalError, OpenError, StoreError};
pub use idempotency::{AnswerToKeep, IdempotentRequest, KeptAnswer, KEPT_ANSWER_LIFETIME_MICROS};
pub use kv::{Durability, Storage};
pub use model::{
    App, EnvType, Environment, ListPage, ListPosition, NewSecret, NewToken, OverrideChange,
    OverrideInput, Permissions, PersonalOverride, Rollback, RolledBack, Secret, SecretAction,
    SecretFilter, SecretType, SecretUpdate, SecretVersion, Timestamp, Token, TokenKind,
    UpsertSecret, VersionAction, VersionActor,
};
pub use references::{ReferencedReads, Resolver};
pub use secrets::{ListedPage, ListedSecret};
pub use storage_state::StorageState;
pub use store::{Store, StoreConfig, StoreCounts, DEFAULT_CACHE_MIB};
pub use tokens::token_hash;
pub use validate::{limits, normalize_key, normalize_path};
