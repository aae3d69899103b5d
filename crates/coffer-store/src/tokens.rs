//! API tokens: create, list, revoke, authenticate. Only the SHA-256 of a token is
//! stored; lookups go through a cache that every change removes the token from once
//! committed (see [`crate::token_cache`]: no lock is held across a commit or a flush).

use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::client_keys::{self, put_token_keys, token_keys_key, IssuedToken, TokenKeys};
use crate::codec;
use crate::error::{InternalError, StoreError};
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::{NewToken, Permissions, Timestamp, Token, TokenKind};
use crate::store::{abort, tx_error, tx_get, Store};
use crate::validate::is_valid_display_name;

const INITIALIZED_KEY: &[u8] = b"initialized";
/// `last_used_at` is written back at most this often per token (it is bookkeeping,
/// not worth a write per request).
const LAST_USED_RESOLUTION_MICROS: i64 = 60_000_000;

/// SHA-256 of a token as presented.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The value of a token-hash index entry: the token's id and whether it is revoked. The
/// flag is what catches a revoked token record put back from the copy before its
/// revocation (both records are authenticated, so they must agree).
pub(crate) fn hash_entry(id: Uuid, revoked: bool) -> [u8; 17] {
    let mut entry = [0u8; 17];
    entry[..16].copy_from_slice(id.as_bytes());
    entry[16] = u8::from(revoked);
    entry
}

/// The (id, revoked) of a token-hash index entry.
fn parse_hash_entry(bytes: &[u8]) -> Result<(Uuid, bool), StoreError> {
    match <[u8; 17]>::try_from(bytes) {
        Ok(entry) if entry[16] <= 1 => Ok((
            Uuid::from_slice(&entry[..16]).expect("16 bytes make a UUID"),
            entry[16] == 1,
        )),
        _ => Err(StoreError::Internal(InternalError::Codec {
            tree: Tree::TokenHashes.name(),
            reason: "malformed token-hash entry".into(),
        })),
    }
}

/// Refuses a token record that its hash entry does not name in its revocation state.
fn check_hashed(token: &Token, entry: Option<&[u8]>) -> Result<(), StoreError> {
    match entry.map(parse_hash_entry).transpose()? {
        Some((id, revoked)) if id == token.id && revoked == token.revoked => Ok(()),
        _ => Err(StoreError::unauthentic(Tree::Tokens)),
    }
}

/// Whether a stored token record is revoked (format 1 → 2 migration fills the hash index
/// with it).
pub(crate) fn stored_revoked(bytes: &[u8]) -> Result<bool, StoreError> {
    codec::decode::<Token>(Tree::Tokens.name(), bytes).map(|t| t.revoked)
}

fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Stores a new token: its record, its hash index entry and its key material.
fn put_token(tx: &dyn KvTx, token: &Token, keys: &TokenKeys) -> Result<(), TxAbort<StoreError>> {
    tx.insert(Tree::Tokens, token.id.as_bytes(), &codec::encode(token))?;
    tx.insert(Tree::TokenHashes, &token.hash, &hash_entry(token.id, false))?;
    put_token_keys(tx, token.id, keys)
}

fn token_event(action: AuditAction, token: &Token) -> AuditEvent {
    AuditEvent {
        app_id: token.app_id,
        secret_ids: vec![token.id],
        ..AuditEvent::new(action)
    }
}

impl<B: KvBackend> Store<B> {
    /// On a store that has never been initialised, creates the first User token and
    /// returns it; afterwards returns `None` forever.
    pub fn initialize(&self) -> Result<Option<IssuedToken>, StoreError> {
        if self.kv.get(Tree::Meta, INITIALIZED_KEY)?.is_some() {
            return Ok(None);
        }
        let _structure = self.structure.lock();
        // Checked again under the lock: a concurrent call may have initialised the store
        // meanwhile, and a write that changes nothing must not leave an audit entry.
        if self.kv.get(Tree::Meta, INITIALIZED_KEY)?.is_some() {
            return Ok(None);
        }
        let (token, keys, issued) = self.new_token_record(NewToken {
            name: "admin".into(),
            kind: TokenKind::User,
            app_id: None,
            environments: Vec::new(),
            permissions: Permissions::ALL,
            expires_at: None,
            allowed_ips: Vec::new(),
        })?;
        let created = self.write(
            &Actor::embedded(),
            &[
                Tree::Meta,
                Tree::Tokens,
                Tree::TokenHashes,
                Tree::ClientKeys,
            ],
            |tx| {
                // Another node initialised the shared store first: nothing to record.
                if tx.get(Tree::Meta, INITIALIZED_KEY)?.is_some() {
                    return Ok((false, Vec::new()));
                }
                tx.insert(Tree::Meta, INITIALIZED_KEY, &[1])?;
                put_token(tx, &token, &keys)?;
                Ok((true, vec![token_event(AuditAction::TokenCreate, &token)]))
            },
        )?;
        Ok(created.then_some(issued))
    }

    fn new_token_record(
        &self,
        new: NewToken,
    ) -> Result<(Token, TokenKeys, IssuedToken), StoreError> {
        let name = new.name.as_str();
        if !is_valid_display_name(name) {
            return Err(StoreError::InvalidTokenName);
        }
        let (app_id, env_ids, permissions) = match new.kind {
            TokenKind::User => (None, Vec::new(), Permissions::ALL),
            TokenKind::Service => {
                let app_id = new.app_id.ok_or(StoreError::ServiceTokenScopeMissing)?;
                if new.environments.is_empty() {
                    return Err(StoreError::ServiceTokenScopeMissing);
                }
                let mut env_ids = Vec::new();
                for name in &new.environments {
                    let env = self.find_environment(app_id, name)?;
                    if !env_ids.contains(&env.id) {
                        env_ids.push(env.id);
                    }
                }
                (Some(app_id), env_ids, new.permissions)
            }
        };
        let secret = generate_token();
        let token = Token {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            kind: new.kind,
            hash: token_hash(&secret),
            app_id,
            env_ids,
            permissions,
            expires_at: new.expires_at,
            allowed_ips: new.allowed_ips,
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked: false,
        };
        let (keys, issued) = client_keys::issue(token.kind, secret);
        Ok((token, keys, issued))
    }

    /// Creates a token; returns its record and the token itself, in both its forms
    /// (shown once).
    pub fn create_token(
        &self,
        actor: &Actor,
        new: NewToken,
    ) -> Result<(Token, IssuedToken), StoreError> {
        let _structure = self.structure.lock();
        let (token, keys, issued) = self.new_token_record(new)?;
        self.write(
            actor,
            &[
                Tree::Apps,
                Tree::Tokens,
                Tree::TokenHashes,
                Tree::ClientKeys,
            ],
            |tx| {
                if let Some(app_id) = token.app_id {
                    if tx.get(Tree::Apps, app_id.as_bytes())?.is_none() {
                        return abort(StoreError::AppNotFound(app_id));
                    }
                }
                put_token(tx, &token, &keys)?;
                Ok(((), token_event(AuditAction::TokenCreate, &token)))
            },
        )?;
        Ok((token, issued))
    }

    /// Every token, revoked ones included, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<Token>, StoreError> {
        // The two scans must see one state: a token created, revoked or deleted between
        // them would look tampered with. One view gives it on a shared backend; on sled,
        // the locks its writers take (creates and revokes the structure lock, app
        // deletes the cache's write lock).
        let _structure = self.structure.lock();
        let _unchanged = self.token_cache.read();
        let mut tokens = self
            .kv
            .read_view(&[Tree::TokenHashes, Tree::Tokens], |view| {
                let hashed: std::collections::HashMap<_, _> = view
                    .scan_prefix(Tree::TokenHashes, &[])?
                    .into_iter()
                    .collect();
                view.scan_prefix(Tree::Tokens, &[])?
                    .into_iter()
                    .map(|(_, bytes)| {
                        let token = codec::decode::<Token>(Tree::Tokens.name(), &bytes)?;
                        check_hashed(&token, hashed.get(token.hash.as_slice()).map(Vec::as_slice))?;
                        Ok(token)
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
                    .map_err(TxAbort::Abort)
            })
            .map_err(tx_error)?;
        tokens.sort_by_key(|t| (t.created_at, t.id));
        Ok(tokens)
    }

    /// One token.
    pub fn get_token(&self, id: Uuid) -> Result<Token, StoreError> {
        // The record and its hash entry are read as one: in one view, and on sled under
        // the cache's read lock (app deletes hold its write lock), read again if a
        // revocation committed between the two reads (see [`Store::stored_token`]).
        let _unchanged = self.token_cache.read();
        self.kv
            .read_view(&[Tree::Tokens, Tree::TokenHashes], |view| {
                let mut stored = view.get(Tree::Tokens, id.as_bytes())?;
                loop {
                    let Some(bytes) = stored else {
                        return abort(StoreError::TokenNotFound(id));
                    };
                    let token = codec::decode::<Token>(Tree::Tokens.name(), &bytes)
                        .map_err(TxAbort::Abort)?;
                    let entry = view.get(Tree::TokenHashes, &token.hash)?;
                    if check_hashed(&token, entry.as_deref()).is_ok() {
                        return Ok(token);
                    }
                    let again = view.get(Tree::Tokens, id.as_bytes())?;
                    if again.as_deref() == Some(bytes.as_slice()) {
                        return abort(StoreError::unauthentic(Tree::Tokens));
                    }
                    stored = again;
                }
            })
            .map_err(tx_error)
    }

    /// Revokes a token: from the moment this returns, it no longer authenticates. Its
    /// personal overrides are deleted in the same transaction.
    pub fn revoke_token(&self, actor: &Actor, id: Uuid) -> Result<(), StoreError> {
        let _structure = self.structure.lock();
        // No secret write commits meanwhile: a write of this token's, authenticated
        // before the revocation, cannot add an override after the scan below. Held
        // until the commit only, not through the flush.
        let every_env = self.write_all_envs();
        let overrides = self.override_keys_of_token(id)?;
        let trees = [
            Tree::Tokens,
            Tree::TokenHashes,
            Tree::Overrides,
            Tree::ClientKeys,
        ];
        let revoked = self.write_releasing(actor, &trees, every_env, |tx| {
            let Some(mut token) = tx_get::<Token>(tx, Tree::Tokens, id.as_bytes())? else {
                return abort(StoreError::TokenNotFound(id));
            };
            let entry = tx.get(Tree::TokenHashes, &token.hash)?;
            check_hashed(&token, entry.as_deref()).map_err(TxAbort::Abort)?;
            token.revoked = true;
            tx.insert(Tree::Tokens, id.as_bytes(), &codec::encode(&token))?;
            tx.insert(Tree::TokenHashes, &token.hash, &hash_entry(id, true))?;
            for key in &overrides {
                tx.remove(Tree::Overrides, key)?;
            }
            // Its wrapped key share is of no use to anyone any more.
            tx.remove(Tree::ClientKeys, &token_keys_key(id))?;
            let event = token_event(AuditAction::TokenRevoke, &token);
            Ok((token.hash, event))
        });
        // Removed once committed; lookups that read the token before the commit cannot
        // put it back (the removal moves the cache's generation). A write that failed
        // after its commit may have revoked it: then nothing stays cached.
        let mut cache = self.token_cache.write();
        match &revoked {
            Ok(hash) => cache.remove(hash),
            Err(StoreError::TokenNotFound(_)) => {}
            Err(_) => cache.clear(),
        }
        revoked.map(drop)
    }

    /// [`Store::authenticate`] answered from memory alone, when it can be: the token is
    /// cached, the cache may answer, and its last use need not be recorded. `None`
    /// means the answer needs the backend (which may block on a disk or a network).
    pub fn authenticate_cached(&self, token: &str) -> Option<Option<Arc<Token>>> {
        let record = self.cached_token(&token_hash(token))?;
        let now = Timestamp::now();
        if !record.is_live(now) {
            return Some(None);
        }
        (!last_use_due(&record, now)).then_some(Some(record))
    }

    /// The cached record of a token hash, while the cache may answer.
    fn cached_token(&self, hash: &[u8; 32]) -> Option<Arc<Token>> {
        if !self.cache_epoch.trusted() {
            return None;
        }
        self.token_cache.read().get(hash).cloned()
    }

    /// The live token with this value, if any. Expired and revoked tokens give `None`.
    pub fn authenticate(&self, token: &str) -> Result<Option<Arc<Token>>, StoreError> {
        let hash = token_hash(token);
        let now = Timestamp::now();
        let record = match self.cached_token(&hash) {
            Some(record) => record,
            None => {
                // Read without the cache's lock: the generation noted first makes the
                // fill give way to any revocation that removed the token meanwhile.
                let read_at = self.token_cache.read().generation();
                let Some(record) = self.stored_token(&hash)? else {
                    return Ok(None);
                };
                let record = Arc::new(record);
                self.token_cache.write().fill(read_at, record.clone());
                record
            }
        };
        if !record.is_live(now) {
            return Ok(None);
        }
        if last_use_due(&record, now) {
            self.touch_token(&record, now)?;
        }
        Ok(Some(record))
    }

    /// The record a token hash names, checked against its hash entry. On sled the two
    /// reads are not one snapshot: a revocation committing between them shows as a
    /// disagreement, which the entry read again tells from tampering (it changed).
    fn stored_token(&self, hash: &[u8; 32]) -> Result<Option<Token>, StoreError> {
        self.kv
            .read_view(&[Tree::TokenHashes, Tree::Tokens], |view| {
                let mut entry = view.get(Tree::TokenHashes, hash)?;
                loop {
                    let Some(bytes) = entry else {
                        return Ok(None);
                    };
                    let (id, _) = parse_hash_entry(&bytes).map_err(TxAbort::Abort)?;
                    let Some(record) = tx_get::<Token>(view, Tree::Tokens, id.as_bytes())? else {
                        return Ok(None);
                    };
                    if record.hash != *hash {
                        return abort(StoreError::unauthentic(Tree::Tokens));
                    }
                    if check_hashed(&record, Some(&bytes)).is_ok() {
                        return Ok(Some(record));
                    }
                    let again = view.get(Tree::TokenHashes, hash)?;
                    if again.as_deref() == Some(bytes.as_slice()) {
                        return abort(StoreError::unauthentic(Tree::Tokens));
                    }
                    entry = again;
                }
            })
            .map_err(tx_error)
    }

    /// Records a token's last use: once per [`LAST_USED_RESOLUTION_MICROS`] per token,
    /// by the authentication that finds it due first, with no lock held (the others
    /// meanwhile skip it). It is bookkeeping, not worth a write per request, and not
    /// waited for on disk.
    fn touch_token(&self, token: &Token, now: Timestamp) -> Result<(), StoreError> {
        let Some(_claim) = self.last_use_writes.claim(token.id) else {
            return Ok(());
        };
        let read_at = self.token_cache.read().generation();
        let updated = self
            .kv
            .transaction(&[Tree::Tokens], |tx| {
                let Some(mut current) = tx_get::<Token>(tx, Tree::Tokens, token.id.as_bytes())?
                else {
                    return Ok(None);
                };
                current.last_used_at = Some(now);
                tx.insert(Tree::Tokens, token.id.as_bytes(), &codec::encode(&current))?;
                Ok(Some(current))
            })
            .map_err(tx_error)?;
        let mut cache = self.token_cache.write();
        match updated {
            Some(current) => cache.fill(read_at, Arc::new(current)),
            None => cache.remove(&token.hash),
        }
        Ok(())
    }
}

/// Whether a token's last use is to be recorded now (it is kept to the minute).
fn last_use_due(token: &Token, now: Timestamp) -> bool {
    token
        .last_used_at
        .is_none_or(|at| now.0 - at.0 > LAST_USED_RESOLUTION_MICROS)
}
