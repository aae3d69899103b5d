//! The changes feed: the `secret.create`, `secret.update` and `secret.delete` entries
//! of the audit chain, read from a position on, and a way to await new ones.
//!
//! A position is the sequence number of the next entry to read. The feed only ever
//! reaches as far as what is durable: it moves when a write's fsync has returned, so a
//! change is never fed before it is acknowledged. Waiting for the feed to move is a
//! future ([`Store::fed_beyond`]) that any executor can poll; nothing is polled meanwhile,
//! the write that moves the feed wakes it.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use event_listener::Event;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::audit::{AuditAction, AuditEntry, AuditEvent};
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
    /// The audit entry's sequence number.
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
    pub since: u64,
}

/// A page of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangesPage {
    /// Changes, oldest first, at most [`MAX_CHANGES`].
    pub changes: Vec<Change>,
    /// Where the next page starts: past the last change returned and past every entry
    /// passed over.
    pub next: u64,
    /// Whether `next` is the feed's position: there was nothing more to read.
    pub caught_up: bool,
}

/// The feed's position, its recent changes and the event that announces a move.
pub(crate) struct Feed {
    /// The next entry to feed: every entry before it is durable.
    position: AtomicU64,
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
    /// A feed whose position is `position` (a store just opened: all it holds is durable).
    pub(crate) fn at(position: u64) -> Self {
        Feed {
            position: AtomicU64::new(position),
            recent: Mutex::new(Recent {
                start: position,
                end: position,
                changes: VecDeque::new(),
            }),
            moved: Event::new(),
        }
    }

    fn position(&self) -> u64 {
        self.position.load(Ordering::SeqCst)
    }
}

impl<B: KvBackend> Store<B> {
    /// Moves the feed to `position` once every entry before it is durable, and wakes
    /// whoever awaits it. Called by the write path after its fsync; never moves back.
    /// Callers are serialised (the group commit's flush lock): the scan runs without
    /// holding readers of `recent` up.
    pub(crate) fn feed_durable_to(&self, position: u64) {
        let feed = &self.feed;
        let end = feed.recent.lock().end;
        if position <= end {
            return;
        }
        let scanned = self.scan_changes(end, position, usize::MAX);
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
        feed.position.store(position, Ordering::SeqCst);
        drop(recent);
        feed.moved.notify(usize::MAX);
    }

    /// The feed's position: a page read from it holds nothing, and its `next` is it.
    pub fn feed_position(&self) -> u64 {
        self.feed.position()
    }

    /// Resolves once the feed's position is past `position`: an entry there or after it
    /// is durable (a change, or any other entry). Runtime-agnostic; costs nothing while
    /// pending.
    pub fn fed_beyond(&self, position: u64) -> impl Future<Output = ()> + Send + '_ {
        let feed = &self.feed;
        async move {
            while feed.position() <= position {
                let listener = feed.moved.listen();
                // A move between the check and the listener's creation is not missed.
                if feed.position() > position {
                    break;
                }
                listener.await;
            }
        }
    }

    /// The page at `query.since` if memory holds it; `None` if only the store does (then
    /// [`Store::read_changes`] reads it). Never touches storage.
    pub fn recent_changes(&self, query: &ChangesQuery) -> Option<Result<ChangesPage, StoreError>> {
        let recent = self.feed.recent.lock();
        if query.since > recent.end {
            return Some(Err(StoreError::FeedCursorUnknown(query.since)));
        }
        if query.since < recent.start {
            return None;
        }
        let mut changes = Vec::new();
        for change in recent.changes.iter().filter(|c| c.seq >= query.since) {
            if !query.scope.covers(change) {
                continue;
            }
            changes.push(change.clone());
            if changes.len() == MAX_CHANGES {
                let next = change.seq + 1;
                return Some(Ok(ChangesPage {
                    changes,
                    next,
                    caught_up: next == recent.end,
                }));
            }
        }
        Some(Ok(ChangesPage {
            changes,
            next: recent.end,
            caught_up: true,
        }))
    }

    /// The page at `query.since`: from memory, or read from the store, passing over at
    /// most [`MAX_SCANNED`] entries. A position before the oldest entry the store keeps is
    /// [`StoreError::FeedCursorExpired`]; one the feed has not reached,
    /// [`StoreError::FeedCursorUnknown`].
    pub fn read_changes(&self, query: &ChangesQuery) -> Result<ChangesPage, StoreError> {
        if let Some(page) = self.recent_changes(query) {
            return page;
        }
        let oldest = self.oldest_audit_seq()?;
        if query.since < oldest {
            return Err(StoreError::FeedCursorExpired { oldest });
        }
        let end = self.feed_position();
        let (changes, next) = self.scan_changes(query.since, end, MAX_SCANNED)?;
        let changes: Vec<Change> = changes
            .into_iter()
            .filter(|c| query.scope.covers(c))
            .collect();
        Ok(ChangesPage {
            changes,
            next,
            caught_up: next == end,
        })
    }

    /// The changes among entries `from..end`, passing over at most `max_scanned` entries
    /// and stopping after [`MAX_CHANGES`] changes, with the position after the last
    /// entry passed over.
    fn scan_changes(
        &self,
        from: u64,
        end: u64,
        max_scanned: usize,
    ) -> Result<(Vec<Change>, u64), StoreError> {
        let mut changes = Vec::new();
        let mut next = from;
        let mut scanned = 0;
        for entry in self.audit_entries_from(from)? {
            let entry = entry?;
            if entry.seq < from {
                continue;
            }
            if entry.seq >= end || scanned == max_scanned || changes.len() == MAX_CHANGES {
                break;
            }
            scanned += 1;
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
