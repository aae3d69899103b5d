//! The changes feed: the `secret.create`, `secret.update` and `secret.delete` entries
//! of the audit chain, read from a position on, and a way to await new ones.
//!
//! A position is, for each node's audit chain, the sequence number of the next entry to
//! read. The feed only ever reaches as far as what is durable: it moves when a write's
//! fsync has returned, so a change is never fed before it is acknowledged; other
//! nodes' chains (a shared backend, whose every write is durable) are looked at by
//! [`Store::refresh_feed`], which a server runs every fraction of a second. Waiting for the feed to move is a
//! future ([`Store::fed_beyond`]) that any executor can poll; nothing is polled meanwhile,
//! the write that moves the feed wakes it.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use event_listener::Event;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::audit::{AuditAction, AuditEntry, AuditEvent, AuditHead};
use crate::audit_chains::{Chain, ChainPositions};
use crate::error::StoreError;
use crate::kv::KvBackend;
use crate::model::Timestamp;
use crate::store::Store;

/// Most changes one page holds.
pub const MAX_CHANGES: usize = 1000;
/// Most audit entries one read of the store passes over. Most entries are reads, not
/// changes: past this many the page ends early, with a position that skips them.
pub const MAX_SCANNED: usize = 10_000;
/// Changes kept in memory for readers close behind the feed (most waiting clients are),
/// so that they are answered without reading the store.
const RECENT_CHANGES: usize = 1024;

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeAction {
    /// `secret.create`
    Create,
    /// `secret.update`
    Update,
    /// `secret.delete`
    Delete,
}

impl ChangeAction {
    /// The API spelling, the audit action's.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Create => AuditAction::SecretCreate.as_str(),
            ChangeAction::Update => AuditAction::SecretUpdate.as_str(),
            ChangeAction::Delete => AuditAction::SecretDelete.as_str(),
        }
    }
}

/// One change of secrets: which secrets of which environment, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The node whose audit chain recorded it.
    pub node_id: Arc<str>,
    /// The chain's number.
    pub chain: u32,
    /// The audit entry's sequence number in that chain.
    pub seq: u64,
    /// What was done.
    pub action: ChangeAction,
    /// The app.
    pub app_id: Uuid,
    /// The environment.
    pub env_id: Uuid,
    /// The secrets changed.
    pub secret_ids: Vec<Uuid>,
    /// The version written, when one secret was changed.
    pub version: Option<u64>,
    /// When.
    pub time: Timestamp,
}

impl Change {
    /// The change an audit entry records, if it records one.
    fn of(entry: &AuditEntry) -> Option<Change> {
        let action = match entry.action {
            AuditAction::SecretCreate => ChangeAction::Create,
            AuditAction::SecretUpdate => ChangeAction::Update,
            AuditAction::SecretDelete => ChangeAction::Delete,
            _ => return None,
        };
        Some(Change {
            node_id: entry.node_id.clone(),
            chain: entry.chain,
            seq: entry.seq,
            action,
            app_id: entry.app_id?,
            env_id: entry.env_id?,
            secret_ids: entry.secret_ids.clone(),
            version: entry.version,
            time: entry.time,
        })
    }
}

/// The environments a feed reader sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeScope {
    /// Every environment of an app, deleted ones included.
    App(Uuid),
    /// These environments of an app.
    Environments {
        /// The app.
        app_id: Uuid,
        /// The environments.
        env_ids: Vec<Uuid>,
    },
}

impl ChangeScope {
    fn covers(&self, change: &Change) -> bool {
        match self {
            ChangeScope::App(app_id) => change.app_id == *app_id,
            ChangeScope::Environments { app_id, env_ids } => {
                change.app_id == *app_id && env_ids.contains(&change.env_id)
            }
        }
    }
}

/// A read of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangesQuery {
    /// Whose changes.
    pub scope: ChangeScope,
    /// The position to read from (a `next` of an earlier page).
    pub since: ChainPositions,
}

/// A page of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangesPage {
    /// Changes, oldest first (the chains merged by time), at most [`MAX_CHANGES`].
    pub changes: Vec<Change>,
    /// Where the next page starts: past the last change returned and past every entry
    /// passed over, in each chain.
    pub next: ChainPositions,
    /// Whether `next` is the feed's position: there was nothing more to read.
    pub caught_up: bool,
}

/// The feed's position, its recent changes and the event that announces a move.
pub(crate) struct Feed {
    /// For each chain, the next entry to feed: every entry before it is durable. This
    /// node's moves with its flushes; other nodes' (a shared backend), when
    /// [`Store::refresh_feed`] finds their chains longer.
    position: Mutex<ChainPositions>,
    /// This node's chain.
    own: Chain,
    /// Recent changes of this node's chain.
    recent: Mutex<Recent>,
    moved: Event,
}

/// Every change from `start` up to `end` (the feed's position when last filled).
struct Recent {
    start: u64,
    end: u64,
    changes: VecDeque<Change>,
}

impl Feed {
    /// A feed at `position` (a store just opened: all it holds is durable), whose own
    /// chain is `own`.
    pub(crate) fn at(position: ChainPositions, own: Chain) -> Self {
        let end = position.of(own.number);
        Feed {
            position: Mutex::new(position),
            own,
            recent: Mutex::new(Recent {
                start: end,
                end,
                changes: VecDeque::new(),
            }),
            moved: Event::new(),
        }
    }

    fn position(&self) -> ChainPositions {
        self.position.lock().clone()
    }
}

impl<B: KvBackend> Store<B> {
    /// Moves the feed to `position` in this node's chain once every entry before it is
    /// durable, and wakes whoever awaits it. Called by the write path after its fsync;
    /// never moves back. Callers are serialised (the group commit's flush lock): the
    /// scan runs without holding readers of `recent` up.
    pub(crate) fn feed_durable_to(&self, position: u64) {
        let feed = &self.feed;
        let end = feed.recent.lock().end;
        if position <= end {
            return;
        }
        let scanned = self.scan_changes(&feed.own, end, position, usize::MAX);
        let mut recent = feed.recent.lock();
        match scanned {
            Ok((changes, _)) => {
                recent.changes.extend(changes);
                while recent.changes.len() > RECENT_CHANGES {
                    let dropped = recent.changes.pop_front().expect("over capacity");
                    recent.start = dropped.seq + 1;
                }
            }
            // Readers behind `position` read the store instead, which reports the error.
            Err(_) => {
                recent.changes.clear();
                recent.start = position;
            }
        }
        recent.end = position;
        feed.position.lock().set(feed.own.number, position);
        drop(recent);
        feed.moved.notify(usize::MAX);
    }

    /// Moves the feed over what other nodes appended to their chains (on a shared
    /// backend, where everything stored is durable), and wakes whoever awaits it.
    pub fn refresh_feed(&self) -> Result<(), StoreError> {
        let own = self.feed.own.number;
        let mut heads = Vec::new();
        for chain in self.audit_chains()?.into_iter().filter(|c| c.number != own) {
            let number = chain.number;
            heads.push((number, AuditHead::load(&self.kv, chain)?.next_seq()));
        }
        let mut moved = false;
        {
            let mut position = self.feed.position.lock();
            for (chain, next) in heads {
                if next > position.of(chain) {
                    position.set(chain, next);
                    moved = true;
                }
            }
        }
        if moved {
            self.feed.moved.notify(usize::MAX);
        }
        Ok(())
    }

    /// The feed's position: a page read from it holds nothing, and its `next` is it.
    pub fn feed_position(&self) -> ChainPositions {
        self.feed.position()
    }

    /// Resolves once the feed is past `position` in some chain: an entry there or after
    /// it is durable (a change, or any other entry). Runtime-agnostic; costs nothing
    /// while pending.
    pub fn fed_beyond<'s>(
        &'s self,
        position: &'s ChainPositions,
    ) -> impl Future<Output = ()> + Send + 's {
        let feed = &self.feed;
        async move {
            while !feed.position().any_beyond(position) {
                let listener = feed.moved.listen();
                // A move between the check and the listener's creation is not missed.
                if feed.position().any_beyond(position) {
                    break;
                }
                listener.await;
            }
        }
    }

    /// The page at `query.since` if memory holds it; `None` if only the store does (then
    /// [`Store::read_changes`] reads it). Never touches storage.
    pub fn recent_changes(&self, query: &ChangesQuery) -> Option<Result<ChangesPage, StoreError>> {
        let position = self.feed.position();
        if let Err(e) = self.check_reached(&position, &query.since) {
            return Some(Err(e));
        }
        let own = self.feed.own.number;
        // Memory holds this node's chain only: the other chains must have nothing new.
        if position.any_beyond_except(&query.since, own) {
            return None;
        }
        let recent = self.feed.recent.lock();
        let since = query.since.of(own);
        if since < recent.start || since > recent.end {
            return None;
        }
        let mut next = position;
        let mut changes = Vec::new();
        for change in recent.changes.iter().filter(|c| c.seq >= since) {
            if !query.scope.covers(change) {
                continue;
            }
            changes.push(change.clone());
            if changes.len() == MAX_CHANGES {
                next.set(own, change.seq + 1);
                let caught_up = change.seq + 1 == recent.end;
                return Some(Ok(ChangesPage {
                    changes,
                    next,
                    caught_up,
                }));
            }
        }
        next.set(own, recent.end);
        Some(Ok(ChangesPage {
            changes,
            next,
            caught_up: true,
        }))
    }

    /// A position the feed has not reached in some chain (or of a chain it does not
    /// know) was never handed out.
    fn check_reached(
        &self,
        position: &ChainPositions,
        since: &ChainPositions,
    ) -> Result<(), StoreError> {
        if since.any_beyond(position)
            || !since.chains_within(position)
            || since.rest_beyond_all(position)
        {
            return Err(StoreError::FeedCursorUnknown);
        }
        Ok(())
    }

    /// The page at `query.since`: from memory, or read from the store, passing over at
    /// most [`MAX_SCANNED`] entries of each chain. A position before the oldest entry a
    /// chain keeps is [`StoreError::FeedCursorExpired`]; one the feed has not reached,
    /// [`StoreError::FeedCursorUnknown`].
    pub fn read_changes(&self, query: &ChangesQuery) -> Result<ChangesPage, StoreError> {
        if let Some(page) = self.recent_changes(query) {
            return page;
        }
        let end = self.feed_position();
        let mut next = end.clone();
        let mut changes = Vec::new();
        let mut caught_up = true;
        for chain in self.audit_chains()? {
            let Some(chain_end) = end.named(chain.number) else {
                // Listed after the feed last looked: read at the next refresh.
                continue;
            };
            let since = query.since.of(chain.number);
            let oldest = self.oldest_audit_seq(&chain)?;
            if since < oldest {
                return Err(StoreError::FeedCursorExpired { oldest });
            }
            let (found, chain_next) = self.scan_changes(&chain, since, chain_end, MAX_SCANNED)?;
            changes.extend(found.into_iter().filter(|c| query.scope.covers(c)));
            // A bare position past this chain's end reads it from its end next time.
            let chain_next = chain_next.min(chain_end);
            next.set(chain.number, chain_next);
            caught_up &= chain_next == chain_end;
        }
        changes.sort_by_key(|c| (c.time, c.chain, c.seq));
        if changes.len() > MAX_CHANGES {
            // What is cut off is read again from the next page on.
            for change in changes.drain(MAX_CHANGES..) {
                if change.seq < next.of(change.chain) {
                    next.set(change.chain, change.seq);
                }
            }
            caught_up = false;
        }
        Ok(ChangesPage {
            changes,
            next,
            caught_up,
        })
    }

    /// The changes among entries `from..end` of `chain`, passing over at most
    /// `max_scanned` entries and stopping after [`MAX_CHANGES`] changes, with the
    /// position after the last entry passed over.
    fn scan_changes(
        &self,
        chain: &Chain,
        from: u64,
        end: u64,
        max_scanned: usize,
    ) -> Result<(Vec<Change>, u64), StoreError> {
        let mut changes = Vec::new();
        let mut next = from;
        for (scanned, entry) in self.chain_entries_from(chain, from)?.enumerate() {
            let entry = entry?;
            if entry.seq >= end || scanned == max_scanned || changes.len() == MAX_CHANGES {
                break;
            }
            next = entry.seq + 1;
            changes.extend(Change::of(&entry));
        }
        Ok((changes, next))
    }
}

/// The `secret.delete` entry of an environment deleted with its secrets (by deleting it
/// or its app): the feed names them, the way a delete of those secrets would.
pub(crate) fn env_secrets_deleted(app_id: Uuid, env_id: Uuid, secret_ids: Vec<Uuid>) -> AuditEvent {
    AuditEvent {
        app_id: Some(app_id),
        env_id: Some(env_id),
        secret_ids,
        ..AuditEvent::new(AuditAction::SecretDelete)
    }
}
