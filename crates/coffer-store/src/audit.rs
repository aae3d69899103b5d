//! The audit log: an append-only hash chain of who did what, from where. Entries never
//! hold a secret value, key name or token.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit_retention::{AuditCheckpoint, CHECKPOINT_KEY};
use crate::codec;
use crate::error::{InternalError, StoreError};
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

    /// The token whose personal overrides this actor writes and sees: a User token's
    /// own id; none for a Service token or an embedding program.
    pub fn override_owner(&self) -> Option<Uuid> {
        match self.kind {
            Some(TokenKind::User) => self.token_id,
            _ => None,
        }
    }
}

impl From<&Actor> for crate::model::VersionActor {
    fn from(actor: &Actor) -> Self {
        crate::model::VersionActor {
            token_id: actor.token_id,
            kind: actor.kind,
        }
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
    // Last: audit records store the variant's position.
    /// `store.rekey`: the master key was rotated.
    StoreRekey,
    /// `store.backup`: a snapshot of the store was taken.
    StoreBackup,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 14] = [
        AuditAction::SecretRead,
        AuditAction::SecretCreate,
        AuditAction::SecretUpdate,
        AuditAction::SecretDelete,
        AuditAction::AppCreate,
        AuditAction::AppUpdate,
        AuditAction::AppDelete,
        AuditAction::EnvCreate,
        AuditAction::EnvUpdate,
        AuditAction::EnvDelete,
        AuditAction::TokenCreate,
        AuditAction::TokenRevoke,
        AuditAction::StoreRekey,
        AuditAction::StoreBackup,
    ];

    /// The action the API spells `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == name)
    }

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
            AuditAction::StoreRekey => "store.rekey",
            AuditAction::StoreBackup => "store.backup",
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

/// What one write records in the audit chain: one event, or several (a batch that both
/// creates and updates records each action apart), all in the write's transaction.
pub(crate) trait AuditEvents {
    /// The events, in order; never none.
    fn into_events(self) -> impl Iterator<Item = AuditEvent>;
}

impl AuditEvents for AuditEvent {
    fn into_events(self) -> impl Iterator<Item = AuditEvent> {
        std::iter::once(self)
    }
}

/// A write's own event and those that follow from it (an environment's deleted secrets).
impl AuditEvents for (AuditEvent, Vec<AuditEvent>) {
    fn into_events(self) -> impl Iterator<Item = AuditEvent> {
        std::iter::once(self.0).chain(self.1)
    }
}

impl AuditEvents for Vec<AuditEvent> {
    fn into_events(self) -> impl Iterator<Item = AuditEvent> {
        debug_assert!(!self.is_empty(), "a write records at least one event");
        self.into_iter()
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

/// The kind byte of a record holding one entry: a change's, committed in the change's
/// own transaction. A record is its kind byte, then the entry or run as a record of
/// [`codec::RECORD_LAYOUT`]. The kind bytes differ from every layout and format byte, so
/// a record of one can never be read as the other.
const ONE_ENTRY: u8 = 0x10;
/// The kind byte of a record holding a run of consecutive entries: reads, appended in
/// groups so that concurrent reads share one write. Keyed by the first entry's seq.
const RUN_OF_ENTRIES: u8 = 0x11;
/// The kind byte of a compact record of a run of entries: reads, what they share stored
/// once ([`crate::audit_compact`]). Keyed by the first entry's seq. Since format 4.
const COMPACT_RUN: u8 = 0x12;
/// Format 1 had no kind byte: the layout byte told the kinds apart.
const V1_ONE_ENTRY: u8 = 1;
const V1_RUN_OF_ENTRIES: u8 = 2;

/// Encodes the entries of one record (at least one, consecutive).
pub(crate) fn encode_record(entries: &[AuditEntry]) -> Vec<u8> {
    let (kind, body) = match entries {
        [entry] => (ONE_ENTRY, codec::encode(entry)),
        run => (RUN_OF_ENTRIES, codec::encode(&run)),
    };
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(kind);
    out.extend_from_slice(&body);
    out
}

/// Encodes the entries of one record of reads (at least one, consecutive) compactly.
pub(crate) fn encode_compact_record(entries: &[AuditEntry]) -> Vec<u8> {
    let body = crate::audit_compact::encode(entries);
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(COMPACT_RUN);
    out.extend_from_slice(&body);
    out
}

/// Decodes a record of any kind into its entries (never none).
pub(crate) fn decode_record(bytes: &[u8]) -> Result<Vec<AuditEntry>, StoreError> {
    let tree = Tree::Audit.name();
    let broken = |reason: String| StoreError::Internal(InternalError::Codec { tree, reason });
    match bytes.split_first() {
        Some((&RUN_OF_ENTRIES, body)) => {
            let run: Vec<AuditEntry> = codec::decode(tree, body)?;
            if run.is_empty() {
                return Err(broken("empty run of audit entries".into()));
            }
            Ok(run)
        }
        Some((&ONE_ENTRY, body)) => codec::decode(tree, body).map(|entry| vec![entry]),
        Some((&COMPACT_RUN, body)) => crate::audit_compact::decode(body).map_err(broken),
        Some((kind, _)) => Err(broken(format!("unknown audit record kind {kind}"))),
        None => Err(broken("empty record".into())),
    }
}

/// A record of format 1 in the layout of format 2: the body is unchanged, the layout
/// byte that told the kinds apart becomes a kind byte ahead of a record layout byte.
pub(crate) fn upgrade_v1_record(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    let kind = match bytes.split_first() {
        Some((&V1_ONE_ENTRY, _)) => ONE_ENTRY,
        Some((&V1_RUN_OF_ENTRIES, _)) => RUN_OF_ENTRIES,
        _ => {
            return Err(StoreError::Internal(InternalError::Codec {
                tree: Tree::Audit.name(),
                reason: "unknown format 1 audit record".into(),
            }))
        }
    };
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.extend_from_slice(&[kind, codec::RECORD_LAYOUT]);
    out.extend_from_slice(&bytes[1..]);
    Ok(out)
}

/// The end of the chain: the next sequence number and the last hash.
#[derive(Debug)]
pub(crate) struct AuditHead {
    next_seq: u64,
    last_hash: [u8; 32],
}

impl AuditHead {
    pub(crate) fn load(kv: &impl KvBackend) -> Result<Self, StoreError> {
        let last = match kv.last(Tree::Audit)? {
            Some((_, bytes)) => decode_record(&bytes)?.pop(),
            None => None,
        };
        // A chain trimmed to nothing goes on from its checkpoint, never from 1 again.
        let checkpoint = || -> Result<Option<AuditCheckpoint>, StoreError> {
            kv.get(Tree::Meta, CHECKPOINT_KEY)?
                .map(|bytes| codec::decode(Tree::Meta.name(), &bytes))
                .transpose()
        };
        Ok(match last {
            Some(last) => AuditHead {
                next_seq: last.seq + 1,
                last_hash: last.hash,
            },
            None => match checkpoint()? {
                Some(cp) => AuditHead {
                    next_seq: cp.seq + 1,
                    last_hash: cp.hash,
                },
                None => AuditHead {
                    next_seq: 1,
                    last_hash: [0; 32],
                },
            },
        })
    }

    /// The entries that would follow the head, chained in order (the head itself moves
    /// only with [`AuditHead::advance`], once they are stored).
    pub(crate) fn next_entries(
        &self,
        events: impl IntoIterator<Item = (Actor, AuditEvent)>,
    ) -> Vec<AuditEntry> {
        let time = Timestamp::now();
        let (mut seq, mut prev_hash) = (self.next_seq, self.last_hash);
        events
            .into_iter()
            .map(|(actor, event)| {
                let mut entry = AuditEntry {
                    seq,
                    time,
                    actor,
                    action: event.action,
                    app_id: event.app_id,
                    env_id: event.env_id,
                    secret_ids: event.secret_ids,
                    version: event.version,
                    prev_hash,
                    hash: [0; 32],
                };
                entry.hash = entry.compute_hash();
                (seq, prev_hash) = (seq + 1, entry.hash);
                entry
            })
            .collect()
    }

    /// The key the next record of the chain is stored at: a writer that finds it taken
    /// holds a stale head (another node sharing the backend appended), reloads it and
    /// tries again, so two writers never chain onto the same entry.
    pub(crate) fn next_key(&self) -> [u8; 8] {
        keys::audit(self.next_seq)
    }

    /// Entries in the chain.
    pub(crate) fn len(&self) -> u64 {
        self.next_seq - 1
    }

    pub(crate) fn advance(&mut self, last: &AuditEntry) {
        self.next_seq = last.seq + 1;
        self.last_hash = last.hash;
    }
}

/// A read to record: who read which secrets of which environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRead {
    /// Who read.
    pub actor: Actor,
    /// The app read from.
    pub app_id: Uuid,
    /// The environment read from.
    pub env_id: Uuid,
    /// The secrets returned.
    pub secret_ids: Vec<Uuid>,
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
    /// Only entries of this action.
    pub action: Option<AuditAction>,
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
    /// follow the one before (the checkpoint, when there is one).
    pub first_broken: Option<u64>,
    /// The checkpoint the check started from (the last entry trimmed), if the chain was
    /// trimmed.
    pub from_checkpoint: Option<u64>,
    /// The checkpoint record itself failed authentication: nothing after it was checked.
    pub broken_checkpoint: bool,
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
        self.record_reads(vec![SecretRead {
            actor: actor.clone(),
            app_id,
            env_id,
            secret_ids,
        }])
    }

    /// Records several reads with one write: consecutive entries of the chain, stored
    /// as one record. For servers that gather the reads of concurrent requests.
    pub fn record_reads(&self, reads: Vec<SecretRead>) -> Result<(), StoreError> {
        self.append_audit(reads.into_iter().map(|read| {
            let event = AuditEvent {
                action: AuditAction::SecretRead,
                app_id: Some(read.app_id),
                env_id: Some(read.env_id),
                secret_ids: read.secret_ids,
                version: None,
            };
            (read.actor, event)
        }))
    }

    /// Lists audit entries, oldest first.
    pub fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut entries = Vec::new();
        for entry in self.audit_entries_from(query.since)? {
            let entry = entry?;
            let wanted = entry.seq >= query.since
                && query.app_id.is_none_or(|id| entry.app_id == Some(id))
                && query.env_id.is_none_or(|id| entry.env_id == Some(id))
                && query
                    .secret_id
                    .is_none_or(|id| entry.secret_ids.contains(&id))
                && query.action.is_none_or(|action| entry.action == action);
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

    /// Entries from the record holding `since` on (some may come before `since`).
    pub(crate) fn audit_entries_from(
        &self,
        since: u64,
    ) -> Result<impl Iterator<Item = Result<AuditEntry, StoreError>> + '_, StoreError> {
        let start = match self.kv.floor(Tree::Audit, &keys::audit(since))? {
            Some((key, _)) => key,
            None => keys::audit(since).to_vec(),
        };
        Ok(self.kv.scan_from(Tree::Audit, &start).flat_map(|pair| {
            let entries = pair
                .map_err(StoreError::from)
                .and_then(|(_, bytes)| decode_record(&bytes));
            match entries {
                Ok(entries) => entries.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            }
        }))
    }

    /// The sequence number of the oldest entry kept: entries before it are gone (or
    /// never were). The feed's position when the chain keeps none.
    pub(crate) fn oldest_audit_seq(&self) -> Result<u64, StoreError> {
        match self.kv.scan_from(Tree::Audit, &[]).next() {
            Some(pair) => {
                let (_, bytes) = pair?;
                Ok(decode_record(&bytes)?[0].seq)
            }
            None => Ok(self.feed_position()),
        }
    }

    /// Walks the whole chain, from the checkpoint if it was trimmed, and reports the
    /// first broken link.
    pub fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let checkpoint = match self.audit_checkpoint() {
            Ok(checkpoint) => checkpoint,
            Err(StoreError::Internal(InternalError::Unauthentic { .. })) => {
                return Ok(AuditVerification {
                    checked: 0,
                    first_broken: None,
                    from_checkpoint: None,
                    broken_checkpoint: true,
                });
            }
            Err(other) => return Err(other),
        };
        let from_checkpoint = checkpoint.map(|cp| cp.seq);
        let (mut expected_seq, mut prev_hash) = match checkpoint {
            Some(cp) => (cp.seq + 1, cp.hash),
            None => (1, [0u8; 32]),
        };
        let first_seq = expected_seq;
        let broken_at = |seq: u64| AuditVerification {
            checked: seq - first_seq,
            first_broken: Some(seq),
            from_checkpoint,
            broken_checkpoint: false,
        };
        for pair in self.kv.scan_from(Tree::Audit, &[]) {
            let (key, bytes) = match pair.map_err(StoreError::from) {
                Ok(pair) => pair,
                // Edited or moved on disk: the record's own tag names it.
                Err(StoreError::Internal(InternalError::Unauthentic { .. })) => {
                    return Ok(broken_at(expected_seq));
                }
                Err(other) => return Err(other),
            };
            let Ok(entries) = decode_record(&bytes) else {
                return Ok(broken_at(expected_seq));
            };
            if key != keys::audit(entries[0].seq) {
                return Ok(broken_at(expected_seq));
            }
            for entry in entries {
                let intact = entry.seq == expected_seq
                    && entry.prev_hash == prev_hash
                    && entry.hash == entry.compute_hash();
                if !intact {
                    return Ok(broken_at(expected_seq));
                }
                expected_seq += 1;
                prev_hash = entry.hash;
            }
        }
        Ok(AuditVerification {
            checked: expected_seq - first_seq,
            first_broken: None,
            from_checkpoint,
            broken_checkpoint: false,
        })
    }
}
