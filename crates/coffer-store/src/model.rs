//! The records the store hands out and takes in.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Microseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_micros() as i64)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(self) -> i64 {
        self.0
    }
}

/// An application: the top of the hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    /// Id (UUID v4).
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What kind of environment: the three an app gets by default are dev, staging and
/// prod; any other is custom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvType {
    /// `Development`.
    Dev,
    /// `Staging`.
    Staging,
    /// `Production`.
    Prod,
    /// Any other name.
    Custom,
}

impl EnvType {
    /// The type of a default environment of this name (custom for any other name).
    pub fn for_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "development" => EnvType::Dev,
            "staging" => EnvType::Staging,
            "production" => EnvType::Prod,
            _ => EnvType::Custom,
        }
    }

    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvType::Dev => "dev",
            EnvType::Staging => "staging",
            EnvType::Prod => "prod",
            EnvType::Custom => "custom",
        }
    }
}

/// An environment of an app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Id (UUID v4).
    pub id: Uuid,
    /// The app it belongs to.
    pub app_id: Uuid,
    /// Name, unique in the app case-insensitively.
    pub name: String,
    /// Kind, from the name at creation.
    pub env_type: EnvType,
    /// Position in the app's list.
    pub index: u32,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// How a secret is meant to be used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SecretType {
    /// A secret (the default).
    #[default]
    Secret,
    /// A secret whose type can never change back.
    Sealed,
    /// Plain configuration.
    Config,
}

impl SecretType {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Secret => "secret",
            SecretType::Sealed => "sealed",
            SecretType::Config => "config",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "secret" => Some(SecretType::Secret),
            "sealed" => Some(SecretType::Sealed),
            "config" => Some(SecretType::Config),
            _ => None,
        }
    }
}

/// A live secret, decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// Id (UUID v4).
    pub id: Uuid,
    /// Its environment.
    pub env_id: Uuid,
    /// Normalised path.
    pub path: String,
    /// Upper-cased key.
    pub key: String,
    /// Value.
    pub value: String,
    /// Comment.
    pub comment: String,
    /// Tags, in the order given.
    pub tags: Vec<String>,
    /// Type.
    pub secret_type: SecretType,
    /// Keyed digest of the key (the uniqueness index never holds the key in clear).
    pub key_digest: [u8; 32],
    /// Starts at 1, grows by 1 on every update.
    pub version: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// The reading User token's personal override of the value, when it has one (never
    /// another token's; `value` stays the shared value).
    pub personal_override: Option<PersonalOverride>,
}

/// A User token's own value for a secret, kept beside the shared value and shown to
/// that token alone. An inactive one is kept and shown, but a client does not apply it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalOverride {
    /// Id (UUID v4), kept across changes of the override.
    pub id: Uuid,
    /// The token's value.
    pub value: String,
    /// Whether the token's clients use it instead of the shared value.
    pub is_active: bool,
    /// When the token first set it.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A personal override as a write gives it. Only a User token's is stored (for that
/// token); any other actor's is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverrideInput {
    /// The token's value (at most the size of a secret value).
    pub value: String,
    /// Whether it is applied.
    pub is_active: bool,
}

/// What an update does to the calling User token's override of the secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OverrideChange {
    /// Leaves it as it is (or absent).
    #[default]
    Keep,
    /// Removes it, if there is one.
    Remove,
    /// Sets it (creating it, or replacing value and flag and keeping id and creation time).
    Set(OverrideInput),
}

/// A secret to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewSecret {
    /// Key (any case; stored upper-cased).
    pub key: String,
    /// Value.
    pub value: String,
    /// Comment.
    pub comment: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Path (normalised by the store); empty means `/`.
    pub path: String,
    /// Type.
    pub secret_type: SecretType,
    /// The creating User token's personal override.
    pub personal_override: Option<OverrideInput>,
}

/// A change to one secret; `None` fields keep their value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretUpdate {
    /// The secret.
    pub id: Uuid,
    /// New key (a rename).
    pub key: Option<String>,
    /// New value.
    pub value: Option<String>,
    /// New comment.
    pub comment: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New path (a move).
    pub path: Option<String>,
    /// New type.
    pub secret_type: Option<SecretType>,
    /// Check-and-set: the update applies only if this is the current version.
    pub expected_version: Option<u64>,
    /// The updating User token's personal override.
    pub personal_override: OverrideChange,
}

/// Which secrets of an environment to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretFilter {
    /// Exact path (normalised by the store).
    pub path: Option<String>,
    /// Key, case-insensitive.
    pub key: Option<String>,
    /// Any of these tags.
    pub tags: Vec<String>,
}

/// Where a page of a listing starts: after this (path, key), in listing order.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListPosition {
    /// Normalised path.
    pub path: String,
    /// Upper-cased key.
    pub key: String,
}

/// A page of a listing: what comes after `after` (everything when `None`), at most
/// `limit` secrets (all when `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The last position of the previous page.
    pub after: Option<ListPosition>,
    /// Most secrets to return.
    pub limit: Option<usize>,
}

/// One entry of a secret's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretVersion {
    /// Version number.
    pub version: u64,
    /// What this version did.
    pub action: VersionAction,
    /// The secret as of this version; for the deletion, the content it deleted (its
    /// `version` is that of the content, the one before the deletion).
    pub secret: Secret,
    /// Who wrote this version; `None` for versions written before versions named their
    /// writer.
    pub actor: Option<VersionActor>,
    /// When this version was written.
    pub at: Timestamp,
}

/// What a version of a secret did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionAction {
    /// Made the secret (version 1, or a rollback that brought a deleted secret back).
    Create,
    /// Changed it.
    Update,
    /// Deleted it.
    Delete,
}

impl VersionAction {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionAction::Create => "create",
            VersionAction::Update => "update",
            VersionAction::Delete => "delete",
        }
    }
}

/// The token that wrote a version of a secret (both `None` for an embedding program).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionActor {
    /// The token's id.
    pub token_id: Option<Uuid>,
    /// The token's kind.
    pub kind: Option<TokenKind>,
}

/// A rollback: write a new version of a secret with the content of an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rollback {
    /// The secret (live, or deleted: a rollback brings it back).
    pub id: Uuid,
    /// The version whose key, path, value, comment, tags and type the new one takes.
    pub version: u64,
    /// Check-and-set: applies only if this is the current version (the deletion's, for a
    /// deleted secret).
    pub expected_version: Option<u64>,
    /// Whether the caller may bring a deleted secret back (it is a create): when false,
    /// rolling back a deleted secret fails with [`crate::StoreError::RestoreNotAllowed`].
    pub may_restore: bool,
}

/// What a rollback wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolledBack {
    /// The secret as it is now.
    pub secret: Secret,
    /// Whether it was deleted and is live again.
    pub restored: bool,
}

/// An entry of an upsert: a secret matched by (path, key), created if no live secret
/// holds that place, else updated; fields left `None` keep their stored values (or take
/// their defaults on a create).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpsertSecret {
    /// Key (any case; stored upper-cased).
    pub key: String,
    /// Path (normalised by the store); empty means `/`.
    pub path: String,
    /// Value.
    pub value: String,
    /// Comment.
    pub comment: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Type.
    pub secret_type: Option<SecretType>,
    /// The writing User token's personal override (on a create, `Remove` is as `Keep`).
    pub personal_override: OverrideChange,
}

/// Kind of an API token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    /// Administrator.
    User,
    /// Scoped to one app.
    Service,
}

impl TokenKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::User => "user",
            TokenKind::Service => "service",
        }
    }
}

/// What a service token may do to secrets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// List and read.
    pub read: bool,
    /// Create.
    pub create: bool,
    /// Update.
    pub update: bool,
    /// Delete.
    pub delete: bool,
}

impl Permissions {
    /// Every permission.
    pub const ALL: Permissions = Permissions {
        read: true,
        create: true,
        update: true,
        delete: true,
    };

    /// Whether `action` is allowed.
    pub fn allows(self, action: SecretAction) -> bool {
        match action {
            SecretAction::Read => self.read,
            SecretAction::Create => self.create,
            SecretAction::Update => self.update,
            SecretAction::Delete => self.delete,
        }
    }
}

/// The four things one can do to secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretAction {
    /// List/read.
    Read,
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

impl SecretAction {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretAction::Read => "read",
            SecretAction::Create => "create",
            SecretAction::Update => "update",
            SecretAction::Delete => "delete",
        }
    }
}

/// A stored token. The token itself is never stored, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Id (UUID v4).
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: TokenKind,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// App scope (service tokens).
    pub app_id: Option<Uuid>,
    /// Environment scope (service tokens).
    pub env_ids: Vec<Uuid>,
    /// Permissions (service tokens; user tokens may do everything).
    pub permissions: Permissions,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// IPs and CIDR ranges the token may be used from (empty: no restriction of its own).
    pub allowed_ips: Vec<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last successful authentication (updated lazily, at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// Revoked tokens never authenticate again.
    pub revoked: bool,
}

impl Token {
    /// Whether the token authenticates at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        !self.revoked && self.expires_at.is_none_or(|at| at > now)
    }
}

/// A token to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// Name, 1–64 characters.
    pub name: String,
    /// Kind.
    pub kind: TokenKind,
    /// App scope (required for service tokens).
    pub app_id: Option<Uuid>,
    /// Environments, by name (case-insensitive) or id (required for service tokens).
    pub environments: Vec<String>,
    /// Permissions (service tokens).
    pub permissions: Permissions,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// IPs and CIDR ranges, already validated by the caller.
    pub allowed_ips: Vec<String>,
}
