//! Kept answers of idempotent requests: per (token, `Idempotency-Key`), the status and
//! body of the first answer, sealed like a secret value, for 24 hours. An answer to a
//! write is kept in the write's own transaction, so a write that committed always has
//! its answer kept, even if the process dies before answering.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::codec;
use crate::error::{InternalError, StoreError};
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::Timestamp;
use crate::store::{tx_error, Store};

/// How long an answer is kept: 24 hours, in microseconds.
pub const KEPT_ANSWER_LIFETIME_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

/// Kept answers a sweep removes per transaction.
const SWEEP_BATCH: usize = 512;

/// A request whose answer is kept: who sent it, under which key, and what it asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// The token that sent it: one token never sees another's answers.
    pub token_id: Uuid,
    /// The `Idempotency-Key` (stored only as its SHA-256).
    pub key: String,
    /// A digest of the request (method, route, query, body): a repeat must match it.
    pub fingerprint: [u8; 32],
}

/// An answer as kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptAnswer {
    /// The fingerprint of the request it answered.
    pub fingerprint: [u8; 32],
    /// HTTP status.
    pub status: u16,
    /// The body as sent.
    pub body: Vec<u8>,
}

/// An answer to keep with a write, rendered from the write's result inside its
/// transaction. A transaction may run more than once: `render` must be pure.
pub struct AnswerToKeep<'a, T> {
    /// The request answered.
    pub request: &'a IdempotentRequest,
    /// The status and body the write's result is answered with.
    pub render: &'a (dyn Fn(&T) -> (u16, Vec<u8>) + Sync),
}

impl<T> std::fmt::Debug for AnswerToKeep<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerToKeep")
            .field("token_id", &self.request.token_id)
            .finish_non_exhaustive()
    }
}

/// The stored record: when it was kept (in clear, for the sweep), and the sealed answer.
#[derive(Serialize, Deserialize)]
struct KeptRecord {
    kept_at: Timestamp,
    sealed: Vec<u8>,
}

/// `token id ‖ SHA-256(key)`
fn record_key(token_id: Uuid, key: &str) -> [u8; 48] {
    let mut out = [0u8; 48];
    out[..16].copy_from_slice(token_id.as_bytes());
    out[16..].copy_from_slice(&Sha256::digest(key.as_bytes()));
    out
}

/// The location an answer is sealed to: its token and key, so that a sealed answer moved
/// to another token's record does not open.
fn sealed_location(record_key: &[u8; 48]) -> [u8; 58] {
    let mut loc = [0u8; 58];
    loc[..10].copy_from_slice(b"idempotent");
    loc[10..].copy_from_slice(record_key);
    loc
}

fn expired(kept_at: Timestamp, now: Timestamp) -> bool {
    kept_at
        .as_micros()
        .saturating_add(KEPT_ANSWER_LIFETIME_MICROS)
        <= now.as_micros()
}

/// The trees of a write, with the kept answers' when it keeps one.
pub(crate) fn trees_keeping(trees: &[Tree], keeping: bool) -> Vec<Tree> {
    let mut spanned = trees.to_vec();
    if keeping {
        spanned.push(Tree::IdempotentAnswers);
    }
    spanned
}

impl<B: KvBackend> Store<B> {
    fn kept_record(&self, request: &IdempotentRequest, status: u16, body: Vec<u8>) -> Vec<u8> {
        let key = record_key(request.token_id, &request.key);
        let answer = KeptAnswer {
            fingerprint: request.fingerprint,
            status,
            body,
        };
        codec::encode(&KeptRecord {
            kept_at: Timestamp::now(),
            sealed: self
                .keys
                .seal(&sealed_location(&key), &codec::encode(&answer)),
        })
    }

    /// Inside a write's transaction: keeps the answer to `value`, if asked to.
    pub(crate) fn tx_keep<T>(
        &self,
        tx: &dyn KvTx,
        keep: Option<&AnswerToKeep<'_, T>>,
        value: &T,
    ) -> Result<(), TxAbort<StoreError>> {
        let Some(keep) = keep else {
            return Ok(());
        };
        let (status, body) = (keep.render)(value);
        let key = record_key(keep.request.token_id, &keep.request.key);
        let record = self.kept_record(keep.request, status, body);
        Ok(tx.insert(Tree::IdempotentAnswers, &key, &record)?)
    }

    /// The answer kept for `key` of `token_id`, unless there is none or it expired.
    pub fn kept_answer(&self, token_id: Uuid, key: &str) -> Result<Option<KeptAnswer>, StoreError> {
        let slot = record_key(token_id, key);
        let Some(bytes) = self.kv.get(Tree::IdempotentAnswers, &slot)? else {
            return Ok(None);
        };
        let record: KeptRecord = codec::decode(Tree::IdempotentAnswers.name(), &bytes)?;
        if expired(record.kept_at, Timestamp::now()) {
            return Ok(None);
        }
        let plain = self
            .keys
            .open(&sealed_location(&slot), &record.sealed)
            .map_err(|_| StoreError::Internal(InternalError::Crypto))?;
        codec::decode(Tree::IdempotentAnswers.name(), &plain).map(Some)
    }

    /// Keeps the answer of a request that wrote nothing else (a refusal), durably.
    pub fn keep_answer(
        &self,
        request: &IdempotentRequest,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), StoreError> {
        let key = record_key(request.token_id, &request.key);
        let record = self.kept_record(request, status, body);
        self.kv
            .transaction(&[Tree::IdempotentAnswers], |tx| {
                tx.insert(Tree::IdempotentAnswers, &key, &record)?;
                Ok::<_, TxAbort<StoreError>>(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    /// Deletes every answer kept 24 hours or more before `now`; returns how many. Each
    /// is checked again inside the transaction that deletes it, so an answer kept anew
    /// under the same key meanwhile stays.
    pub fn sweep_kept_answers(&self, now: Timestamp) -> Result<usize, StoreError> {
        let tree = Tree::IdempotentAnswers;
        let mut doomed = Vec::new();
        for pair in self.kv.scan_prefix(tree, &[]) {
            let (key, bytes) = pair?;
            let record: KeptRecord = codec::decode(tree.name(), &bytes)?;
            if expired(record.kept_at, now) {
                doomed.push(key);
            }
        }
        let mut swept = 0;
        for chunk in doomed.chunks(SWEEP_BATCH) {
            swept += self
                .kv
                .transaction(&[tree], |tx| {
                    let mut removed = 0;
                    for key in chunk {
                        let Some(bytes) = tx.get(tree, key)? else {
                            continue;
                        };
                        let record: KeptRecord =
                            codec::decode(tree.name(), &bytes).map_err(TxAbort::Abort)?;
                        if expired(record.kept_at, now) {
                            tx.remove(tree, key)?;
                            removed += 1;
                        }
                    }
                    Ok::<_, TxAbort<StoreError>>(removed)
                })
                .map_err(tx_error)?;
        }
        Ok(swept)
    }
}
