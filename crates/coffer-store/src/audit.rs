//! The audit log: an append-only hash chain of who did what, from where. Entries never
//! hold a secret value, key name or token.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit_chains::{self, Chain, ChainPositions};
use crate::audit_retention::{checkpoint_key, AuditCheckpoint};
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
/// creates and updates records each action apart), all in the write's transaction; none
/// for a write that found nothing to do (its commit changes nothing).
pub(crate) trait AuditEvents {
    /// The events, in order.
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
        self.into_iter()
    }
}

/// One entry of a node's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The chain's number (not stored in the entry: its key names it).
    #[serde(skip)]
    pub chain: u32,
    /// The node whose chain holds it (not stored in the entry either).
    #[serde(skip)]
    pub node_id: Arc<str>,
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
    pub(crate) fn key(&self) -> [u8; 12] {
        keys::audit(self.chain, self.seq)
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

/// The end of a chain: the next sequence number and the last hash.
#[derive(Debug)]
pub(crate) struct AuditHead {
    chain: Chain,
    next_seq: u64,
    last_hash: [u8; 32],
}

impl AuditHead {
    pub(crate) fn load(kv: &impl KvBackend, chain: Chain) -> Result<Self, StoreError> {
        let last = match kv.floor(Tree::Audit, &keys::audit(chain.number, u64::MAX))? {
            Some((key, bytes)) if key.starts_with(&keys::audit_chain(chain.number)) => {
                decode_record(&bytes)?.pop()
            }
            _ => None,
        };
        // A chain trimmed to nothing goes on from its checkpoint, never from 1 again.
        let checkpoint = || -> Result<Option<AuditCheckpoint>, StoreError> {
            kv.get(Tree::Meta, &checkpoint_key(chain.number))?
                .map(|bytes| codec::decode(Tree::Meta.name(), &bytes))
                .transpose()
        };
        let (next_seq, last_hash) = match last {
            Some(last) => (last.seq + 1, last.hash),
            None => match checkpoint()? {
                Some(cp) => (cp.seq + 1, cp.hash),
                None => (1, [0; 32]),
            },
        };
        Ok(AuditHead {
            chain,
            next_seq,
            last_hash,
        })
    }

    /// The head of the same chain as stored now (another process claiming this node's
    /// id may have appended).
    pub(crate) fn reload(&mut self, kv: &impl KvBackend) -> Result<(), StoreError> {
        *self = AuditHead::load(kv, self.chain.clone())?;
        Ok(())
    }

    /// The chain this head ends.
    pub(crate) fn chain(&self) -> &Chain {
        &self.chain
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
                    chain: self.chain.number,
                    node_id: self.chain.node_id.clone(),
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
    /// holds a stale head (another process claiming this node's id appended), reloads
    /// it and tries again, so two writers never chain onto the same entry.
    pub(crate) fn next_key(&self) -> [u8; 12] {
        keys::audit(self.chain.number, self.next_seq)
    }

    /// The sequence number the next entry will have.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
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
    /// Where to start in each chain.
    pub since: ChainPositions,
    /// At most this many entries.
    pub limit: usize,
}

impl AuditQuery {
    fn wants(&self, entry: &AuditEntry) -> bool {
        self.app_id.is_none_or(|id| entry.app_id == Some(id))
            && self.env_id.is_none_or(|id| entry.env_id == Some(id))
            && self
                .secret_id
                .is_none_or(|id| entry.secret_ids.contains(&id))
            && self.action.is_none_or(|action| entry.action == action)
    }
}

/// A page of audit entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    /// Entries, oldest first (the chains merged by time).
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts, if there may be more.
    pub next: Option<ChainPositions>,
}

/// The outcome of checking every chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerification {
    /// Each chain's, in chain order.
    pub chains: Vec<ChainVerification>,
}

impl AuditVerification {
    /// Entries checked, over all chains.
    pub fn checked(&self) -> u64 {
        self.chains.iter().map(|chain| chain.checked).sum()
    }

    /// Whether every chain is whole.
    pub fn intact(&self) -> bool {
        self.chains
            .iter()
            .all(|chain| chain.first_broken.is_none() && !chain.broken_checkpoint)
    }

    /// The first chain that is not whole.
    pub fn first_broken_chain(&self) -> Option<&ChainVerification> {
        self.chains
            .iter()
            .find(|chain| chain.first_broken.is_some() || chain.broken_checkpoint)
    }
}

/// The outcome of checking one node's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainVerification {
    /// The node whose chain it is.
    pub node_id: String,
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

    /// Every chain of the store, in chain order (nodes that never appended included).
    pub fn audit_chains(&self) -> Result<Vec<Chain>, StoreError> {
        audit_chains::chains(&self.kv)
    }

    /// The node id this store appends audit entries as.
    pub fn node_id(&self) -> Arc<str> {
        self.audit_head.lock().chain().node_id.clone()
    }

    /// Lists audit entries, oldest first: every chain from its position in
    /// `query.since`, merged by time (ties in chain order).
    pub fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        struct Reader<I> {
            chain: u32,
            entries: I,
            /// The next entry the query wants, read but not listed yet.
            pending: Option<AuditEntry>,
            /// The sequence number after the last entry read.
            read_to: u64,
        }
        let mut readers = Vec::new();
        for chain in self.audit_chains()? {
            let since = query.since.of(chain.number);
            readers.push(Reader {
                chain: chain.number,
                entries: self.chain_entries_from(&chain, since)?,
                pending: None,
                read_to: since,
            });
        }
        let mut entries = Vec::new();
        loop {
            for reader in readers.iter_mut().filter(|r| r.pending.is_none()) {
                for entry in reader.entries.by_ref() {
                    let entry = entry?;
                    reader.read_to = entry.seq + 1;
                    if query.wants(&entry) {
                        reader.pending = Some(entry);
                        break;
                    }
                }
            }
            let earliest = readers
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.pending.as_ref().map(|e| ((e.time, e.chain), i)))
                .min();
            let Some((_, earliest)) = earliest else {
                return Ok(AuditPage {
                    entries,
                    next: None,
                });
            };
            if entries.len() == query.limit {
                let mut next = ChainPositions::default();
                for reader in &readers {
                    let seq = reader.pending.as_ref().map_or(reader.read_to, |e| e.seq);
                    next.set(reader.chain, seq);
                }
                return Ok(AuditPage {
                    entries,
                    next: Some(next),
                });
            }
            entries.extend(readers[earliest].pending.take());
        }
    }

    /// The entries of `chain` from `since` on, in order.
    pub(crate) fn chain_entries_from<'s>(
        &'s self,
        chain: &Chain,
        since: u64,
    ) -> Result<impl Iterator<Item = Result<AuditEntry, StoreError>> + 's, StoreError> {
        let prefix = keys::audit_chain(chain.number);
        // The record holding `since` may start before it.
        let start = match self
            .kv
            .floor(Tree::Audit, &keys::audit(chain.number, since))?
        {
            Some((key, _)) if key.starts_with(&prefix) => key,
            _ => keys::audit(chain.number, since).to_vec(),
        };
        let chain = chain.clone();
        Ok(self
            .kv
            .scan_from(Tree::Audit, &start)
            .take_while(move |pair| {
                pair.as_ref()
                    .map_or(true, |(key, _)| key.starts_with(&prefix))
            })
            .flat_map(move |pair| {
                let entries = pair
                    .map_err(StoreError::from)
                    .and_then(|(_, bytes)| decode_record(&bytes));
                match entries {
                    Ok(entries) => entries
                        .into_iter()
                        .filter(|entry| entry.seq >= since)
                        .map(|mut entry| {
                            entry.chain = chain.number;
                            entry.node_id = chain.node_id.clone();
                            Ok(entry)
                        })
                        .collect::<Vec<_>>(),
                    Err(e) => vec![Err(e)],
                }
            }))
    }

    /// The sequence number of the oldest entry `chain` keeps: entries before it are gone
    /// (or never were). Its head's next one when it keeps none.
    pub(crate) fn oldest_audit_seq(&self, chain: &Chain) -> Result<u64, StoreError> {
        match self
            .kv
            .scan_prefix(Tree::Audit, &keys::audit_chain(chain.number))
            .next()
        {
            Some(pair) => {
                let (_, bytes) = pair?;
                Ok(decode_record(&bytes)?[0].seq)
            }
            None => Ok(AuditHead::load(&self.kv, chain.clone())?.next_seq()),
        }
    }

    /// Walks every chain, each from its checkpoint if it was trimmed, and reports the
    /// first broken link of each.
    pub fn verify_audit(&self) -> Result<AuditVerification, StoreError> {
        let chains = self
            .audit_chains()?
            .iter()
            .map(|chain| self.verify_chain(chain))
            .collect::<Result<_, _>>()?;
        Ok(AuditVerification { chains })
    }

    fn verify_chain(&self, chain: &Chain) -> Result<ChainVerification, StoreError> {
        let node_id = chain.node_id.to_string();
        let checkpoint = match self.audit_checkpoint(chain.number) {
            Ok(checkpoint) => checkpoint,
            Err(StoreError::Internal(InternalError::Unauthentic { .. })) => {
                return Ok(ChainVerification {
                    node_id,
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
        let verified = |seq: u64, first_broken| ChainVerification {
            node_id: node_id.clone(),
            checked: seq - first_seq,
            first_broken,
            from_checkpoint,
            broken_checkpoint: false,
        };
        let prefix = keys::audit_chain(chain.number);
        for pair in self.kv.scan_prefix(Tree::Audit, &prefix) {
            let (key, bytes) = match pair.map_err(StoreError::from) {
                Ok(pair) => pair,
                // Edited or moved on disk: the record's own tag names it.
                Err(StoreError::Internal(InternalError::Unauthentic { .. })) => {
                    return Ok(verified(expected_seq, Some(expected_seq)));
                }
                Err(other) => return Err(other),
            };
            let Ok(entries) = decode_record(&bytes) else {
                return Ok(verified(expected_seq, Some(expected_seq)));
            };
            if key != keys::audit(chain.number, entries[0].seq) {
                return Ok(verified(expected_seq, Some(expected_seq)));
            }
            for entry in entries {
                let intact = entry.seq == expected_seq
                    && entry.prev_hash == prev_hash
                    && entry.hash == entry.compute_hash();
                if !intact {
                    return Ok(verified(expected_seq, Some(expected_seq)));
                }
                expected_seq += 1;
                prev_hash = entry.hash;
            }
        }
        Ok(verified(expected_seq, None))
    }
}
