//! The audit log: an append-only hash chain of who did what, from where. Entries never
//! hold a secret value, key name or token.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::codec;
use crate::error::StoreError;
use crate::keys;
use crate::kv::{KvBackend, Tree};
use crate::model::{Timestamp, TokenKind};
use crate::store::Store;

/// Who performs an operation, and from where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The token used (none for an embedding program).
    pub token_id: Option<Uuid>,
    /// The token's kind (none for an embedding program).
    pub kind: Option<TokenKind>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

impl Actor {
    /// The program embedding the store, acting on its own behalf.
    pub fn embedded() -> Self {
        Actor::default()
    }
}

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    /// `secret.read`
    SecretRead,
    /// `secret.create`
    SecretCreate,
    /// `secret.update`
    SecretUpdate,
    /// `secret.delete`
    SecretDelete,
    /// `app.create`
    AppCreate,
    /// `app.update`
    AppUpdate,
    /// `app.delete`
    AppDelete,
    /// `env.create`
    EnvCreate,
    /// `env.update`
    EnvUpdate,
    /// `env.delete`
    EnvDelete,
    /// `token.create`
    TokenCreate,
    /// `token.revoke`
    TokenRevoke,
}

impl AuditAction {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SecretRead => "secret.read",
            AuditAction::SecretCreate => "secret.create",
            AuditAction::SecretUpdate => "secret.update",
            AuditAction::SecretDelete => "secret.delete",
            AuditAction::AppCreate => "app.create",
            AuditAction::AppUpdate => "app.update",
            AuditAction::AppDelete => "app.delete",
            AuditAction::EnvCreate => "env.create",
            AuditAction::EnvUpdate => "env.update",
            AuditAction::EnvDelete => "env.delete",
            AuditAction::TokenCreate => "token.create",
            AuditAction::TokenRevoke => "token.revoke",
        }
    }
}

/// The subject of an audit entry, filled by the operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    /// What was done.
    pub action: AuditAction,
    /// App concerned.
    pub app_id: Option<Uuid>,
    /// Environment concerned.
    pub env_id: Option<Uuid>,
    /// Secrets concerned (for token events: the token id).
    pub secret_ids: Vec<Uuid>,
    /// The version written, when one secret is concerned.
    pub version: Option<u64>,
}

impl AuditEvent {
    /// An event with no subject ids yet.
    pub fn new(action: AuditAction) -> Self {
        AuditEvent {
            action,
            app_id: None,
            env_id: None,
            secret_ids: Vec::new(),
            version: None,
        }
    }
}

/// One entry of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When.
    pub time: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: AuditAction,
    /// App concerned.
    pub app_id: Option<Uuid>,
    /// Environment concerned.
    pub env_id: Option<Uuid>,
    /// Secrets concerned (token events: the token id).
    pub secret_ids: Vec<Uuid>,
    /// Version written, when one secret is concerned.
    pub version: Option<u64>,
    /// Hash of the previous entry (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 over `prev_hash` and this entry's canonical encoding.
    pub hash: [u8; 32],
}

impl AuditEntry {
    pub(crate) fn key(&self) -> [u8; 8] {
        keys::audit(self.seq)
    }

    /// The hash this entry must carry: SHA-256 of the canonical (bincode) encoding of
    /// every field but `hash` itself, `prev_hash` included.
    pub fn compute_hash(&self) -> [u8; 32] {
        let body = (
            self.seq,
            self.time,
            &self.actor,
            self.action,
            self.app_id,
            self.env_id,
            &self.secret_ids,
            self.version,
            self.prev_hash,
        );
        let encoded = bincode::serialize(&body).expect("bincode encodes plain tuples");
        Sha256::digest(encoded).into()
    }
}

/// The end of the chain: the next sequence number and the last hash.
#[derive(Debug)]
pub(crate) struct AuditHead {
    next_seq: u64,
    last_hash: [u8; 32],
}

impl AuditHead {
    pub(crate) fn load(kv: &impl KvBackend) -> Result<Self, StoreError> {
        Ok(match kv.last(Tree::Audit)? {
            Some((_, bytes)) => {
                let last: AuditEntry = codec::decode(Tree::Audit.name(), &bytes)?;
                AuditHead {
                    next_seq: last.seq + 1,
                    last_hash: last.hash,
                }
            }
            None => AuditHead {
                next_seq: 1,
                last_hash: [0; 32],
            },
        })
    }

    pub(crate) fn next_entry(&self, actor: &Actor, event: AuditEvent) -> AuditEntry {
        let mut entry = AuditEntry {
            seq: self.next_seq,
            time: Timestamp::now(),
            actor: actor.clone(),
            action: event.action,
            app_id: event.app_id,
            env_id: event.env_id,
            secret_ids: event.secret_ids,
            version: event.version,
            prev_hash: self.last_hash,
            hash: [0; 32],
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// Entries in the chain.
    pub(crate) fn len(&self) -> u64 {
        self.next_seq - 1
    }

    pub(crate) fn advance(&mut self, entry: &AuditEntry) {
        self.next_seq = entry.seq + 1;
        self.last_hash = entry.hash;
    }
}

/// Which audit entries to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries of this app.
    pub app_id: Option<Uuid>,
    /// Only entries of this environment.
    pub env_id: Option<Uuid>,
    /// Only entries naming this secret.
    pub secret_id: Option<Uuid>,
    /// First sequence number to consider.
    pub since: u64,
    /// At most this many entries.
    pub limit: usize,
}

/// A page of audit entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    /// Entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts, if there may be more.
    pub next: Option<u64>,
}

/// The outcome of checking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    /// Entries checked.
    pub checked: u64,
    /// The first entry that does not decode, does not match its hash, or does not
    /// follow the one before.
    pub first_broken: Option<u64>,
}

impl<B: KvBackend> Store<B> {
    /// Records that `actor` read secrets (appended before the caller answers).
    pub fn record_read(
        &self,
        actor: &Actor,
        app_id: Uuid,
        env_id: Uuid,
        secret_ids: Vec<Uuid>,
    ) -> Result<(), StoreError> {
        self.append_audit(
            actor,
            AuditEvent {
                action: AuditAction::SecretRead,
                app_id: Some(app_id),
                env_id: Some(env_id),
                secret_ids,
                version: None,
            },
        )
    }

    /// Lists audit entries, oldest first.
    pub fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut entries = Vec::new();
        for pair in self.kv.scan_from(Tree::Audit, &keys::audit(query.since)) {
            let (_, bytes) = pair?;
            let entry: AuditEntry = codec::decode(Tree::Audit.name(), &bytes)?;
            let wanted = query.app_id.is_none_or(|id| entry.app_id == Some(id))
                && query.env_id.is_none_or(|id| entry.env_id == Some(id))
                && query
                    .secret_id
                    .is_none_or(|id| entry.secret_ids.contains(&id));
            if !wanted {
                continue;
            }
            if entries.len() == query.limit {
                return Ok(AuditPage {
                    next: Some(entry.seq),
                    entries,
                });
            }
            entries.push(entry);
        }
        Ok(AuditPage {
            entries,
            next: None,
        })
    }

    /// Walks the whole chain and reports the first broken link.
    pub fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let mut prev_hash = [0u8; 32];
        let mut checked = 0;
        for (expected_seq, pair) in (1..).zip(self.kv.scan_from(Tree::Audit, &[])) {
            let (key, bytes) = pair?;
            let entry: Option<AuditEntry> = codec::decode(Tree::Audit.name(), &bytes).ok();
            let intact = entry.as_ref().is_some_and(|e| {
                e.seq == expected_seq
                    && key == keys::audit(e.seq)
                    && e.prev_hash == prev_hash
                    && e.hash == e.compute_hash()
            });
            if !intact {
                return Ok(AuditVerification {
                    checked,
                    first_broken: Some(expected_seq),
                });
            }
            let entry = entry.expect("checked above");
            checked += 1;
            prev_hash = entry.hash;
        }
        Ok(AuditVerification {
            checked,
            first_broken: None,
        })
    }
}
