//! The request bodies of the Phase clients' route (`PHASE-CLIENTS.md` §2.3–2.5): camelCase,
//! with keys, values, comments and overrides sealed to the environment's key. Unknown
//! fields (`keyDigest` among them: uniqueness rests on Coffer's own index of the opened
//! key, never on the client's digest) are ignored, as Phase does.

use coffer_store::phase_crypto::{self, KxKeyPair};
use coffer_store::{NewSecret, OverrideChange, OverrideInput, SecretType, SecretUpdate};
use serde::Deserialize;
use uuid::Uuid;

use crate::codes::{quote, Code};
use crate::error::ApiError;

/// `{"secrets": [...]}`.
#[derive(Debug, Deserialize)]
pub struct SealedBatch<T> {
    /// The entries.
    pub secrets: Vec<T>,
}

/// An entry whose sealed fields open into a store input.
pub trait SealedEntry {
    /// What the store takes.
    type Opened;
    /// The entry with its fields opened under the environment's key.
    fn open(self, env: &KxKeyPair) -> Result<Self::Opened, ApiError>;
}

impl<T: SealedEntry> SealedBatch<T> {
    /// Every entry opened, or the first refusal.
    pub fn open(self, env: &KxKeyPair) -> Result<Vec<T::Opened>, ApiError> {
        self.secrets
            .into_iter()
            .map(|entry| entry.open(env))
            .collect()
    }
}

/// A secret to create.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedCreate {
    key: String,
    value: String,
    #[serde(default)]
    comment: String,
    path: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(rename = "type")]
    secret_type: Option<String>,
    #[serde(rename = "override")]
    personal_override: Option<SealedOverride>,
}

/// A change to a secret; absent fields keep their value, except `tags`, which a client
/// always sends whole (absent clears them, as Phase does).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedUpdate {
    id: Uuid,
    key: Option<String>,
    value: Option<String>,
    comment: Option<String>,
    path: Option<String>,
    tags: Option<Vec<String>>,
    #[serde(rename = "type")]
    secret_type: Option<String>,
    #[serde(rename = "override")]
    personal_override: Option<SealedOverride>,
}

/// A personal override (kept for a User token only).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedOverride {
    value: String,
    is_active: Option<bool>,
}

/// `DELETE` body: ids, of which those not in the environment are ignored.
#[derive(Debug, Deserialize)]
pub struct SealedDelete {
    /// The ids as sent.
    pub secrets: Vec<String>,
}

/// Opens one sealed field: empty stays empty (the Python clients send comments in
/// clear, and only when empty), anything else must be a `ph:v1` text sealed to `env`.
fn open(text: &str, env: &KxKeyPair) -> Result<String, ApiError> {
    if text.is_empty() {
        return Ok(String::new());
    }
    if !phase_crypto::is_envelope(text) {
        return Err(Code::InvalidCiphertext.into());
    }
    phase_crypto::open_envelope(text, env)
        .map(|plain| plain.to_string())
        .map_err(|_| Code::InvalidCiphertext.into())
}

fn open_optional(text: Option<&str>, env: &KxKeyPair) -> Result<Option<String>, ApiError> {
    text.map(|t| open(t, env)).transpose()
}

fn secret_type(name: Option<&str>) -> Result<Option<SecretType>, ApiError> {
    name.map(|n| SecretType::parse(n).ok_or_else(|| Code::InvalidType.with(&[&quote(n)])))
        .transpose()
}

impl SealedEntry for SealedCreate {
    type Opened = NewSecret;

    fn open(self, env: &KxKeyPair) -> Result<NewSecret, ApiError> {
        Ok(NewSecret {
            key: open(&self.key, env)?,
            value: open(&self.value, env)?,
            comment: open(&self.comment, env)?,
            tags: self.tags.unwrap_or_default(),
            path: self.path.unwrap_or_default(),
            secret_type: secret_type(self.secret_type.as_deref())?.unwrap_or_default(),
            personal_override: match self.personal_override {
                // A new override is active, whatever the client says (as Phase).
                Some(o) => Some(OverrideInput {
                    value: open(&o.value, env)?,
                    is_active: true,
                }),
                None => None,
            },
        })
    }
}

impl SealedEntry for SealedUpdate {
    type Opened = SecretUpdate;

    fn open(self, env: &KxKeyPair) -> Result<SecretUpdate, ApiError> {
        Ok(SecretUpdate {
            id: self.id,
            key: open_optional(self.key.as_deref(), env)?,
            value: open_optional(self.value.as_deref(), env)?,
            comment: open_optional(self.comment.as_deref(), env)?,
            tags: Some(self.tags.unwrap_or_default()),
            path: self.path,
            secret_type: secret_type(self.secret_type.as_deref())?,
            expected_version: None,
            personal_override: match self.personal_override {
                Some(o) => OverrideChange::Set(OverrideInput {
                    value: open(&o.value, env)?,
                    is_active: o.is_active.unwrap_or(true),
                }),
                None => OverrideChange::Keep,
            },
        })
    }
}
