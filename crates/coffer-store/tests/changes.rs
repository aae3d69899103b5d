//! The changes feed (API.md, "Changes feed"): the secret changes of the audit chain from
//! a position on, oldest first, scoped to an app or some of its environments, and a
//! future that the write moving the feed wakes.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use coffer_store::{
    ChainPositions, Change, ChangeAction, ChangeScope, ChangesPage, ChangesQuery, SecretRead,
    SecretUpdate, StoreError, MAX_SCANNED,
};
use common::{me, secret, update, TestStore};
use uuid::Uuid;

fn read(s: &TestStore, scope: &ChangeScope, since: &ChainPositions) -> ChangesPage {
    s.read_changes(&ChangesQuery {
        scope: scope.clone(),
        since: since.clone(),
    })
    .unwrap()
}

/// `position`, `by` entries further on in the store's one chain.
fn moved(position: &ChainPositions, by: i64) -> ChainPositions {
    let mut moved = position.clone();
    moved.set(0, position.of(0).checked_add_signed(by).unwrap());
    moved
}

/// What a change says, without its time.
fn said(change: &Change) -> (ChangeAction, Uuid, Vec<Uuid>, Option<u64>) {
    (
        change.action,
        change.env_id,
        change.secret_ids.clone(),
        change.version,
    )
}

fn reads(app_id: Uuid, env_id: Uuid, n: usize) -> Vec<SecretRead> {
    (0..n)
        .map(|_| SecretRead {
            actor: me(),
            app_id,
            env_id,
            secret_ids: vec![],
        })
        .collect()
}

/// Whether a future is ready when polled once now.
fn ready_now(future: impl Future<Output = ()>) -> bool {
    let future = pin!(future);
    future
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
}

#[test]
fn the_feed_lists_creates_updates_and_deletes_oldest_first_and_skips_everything_else() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let dev = envs[0].id;
    let scope = ChangeScope::App(app);
    let start = s.feed_position();

    let created = s
        .create_secrets(&me(), dev, vec![secret("A", "a"), secret("B", "b")])
        .unwrap();
    s.record_read(&me(), app, dev, vec![created[0].id]).unwrap();
    let updated = s
        .update_secrets(
            &me(),
            dev,
            vec![SecretUpdate {
                value: Some("a2".into()),
                ..update(created[0].id)
            }],
        )
        .unwrap();
    s.create_environment(&me(), app, "qa").unwrap();
    s.delete_secrets(&me(), dev, &[created[1].id]).unwrap();

    let page = read(&s, &scope, &start);
    let ids = |i: usize| created[i].id;
    assert_eq!(
        page.changes.iter().map(said).collect::<Vec<_>>(),
        vec![
            (ChangeAction::Create, dev, vec![ids(0), ids(1)], None),
            (
                ChangeAction::Update,
                dev,
                vec![ids(0)],
                Some(updated[0].version)
            ),
            (ChangeAction::Delete, dev, vec![ids(1)], None),
        ]
    );
    let seqs: Vec<u64> = page.changes.iter().map(|c| c.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    assert_eq!(page.next, s.feed_position());
    assert!(page.caught_up);

    // `next` passed back returns what came after the last change returned.
    let after_first = read(
        &s,
        &scope,
        &moved(&start, (seqs[0] + 1 - start.of(0)) as i64),
    );
    assert_eq!(after_first.changes, page.changes[1..]);
    let at_the_end = read(&s, &scope, &page.next);
    assert_eq!((at_the_end.changes, at_the_end.next), (vec![], page.next));
}

#[test]
fn a_scope_of_environments_sees_only_them_and_an_app_scope_only_its_app() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let (_, others) = s.app("other");
    let start = s.feed_position();
    for env in envs.iter().chain(&others) {
        s.create_secrets(&me(), env.id, vec![secret("K", "v")])
            .unwrap();
    }
    let env_ids =
        |page: ChangesPage| -> Vec<Uuid> { page.changes.iter().map(|c| c.env_id).collect() };
    let whole_app = read(&s, &ChangeScope::App(app), &start);
    assert_eq!(
        env_ids(whole_app),
        envs.iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let two = ChangeScope::Environments {
        app_id: app,
        env_ids: vec![envs[0].id, envs[2].id],
    };
    assert_eq!(
        env_ids(read(&s, &two, &start)),
        vec![envs[0].id, envs[2].id]
    );
    // An environment of another app named under this app is not this app's.
    let foreign = ChangeScope::Environments {
        app_id: app,
        env_ids: vec![others[0].id],
    };
    assert_eq!(env_ids(read(&s, &foreign, &start)), Vec::<Uuid>::new());
}

#[test]
fn deleting_an_environment_or_an_app_feeds_one_delete_per_environment_naming_its_secrets() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let in_env = |env: Uuid, keys: &[&str]| -> Vec<Uuid> {
        let batch = keys.iter().map(|k| secret(k, "v")).collect();
        s.create_secrets(&me(), env, batch)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect()
    };
    let mut dev = in_env(envs[0].id, &["A", "B"]);
    // An environment's secrets are named in no particular order.
    dev.sort();
    let staging = in_env(envs[1].id, &["C"]);
    let gone_before = in_env(envs[2].id, &["D"]);
    s.delete_secrets(&me(), envs[2].id, &gone_before).unwrap();
    let scope = ChangeScope::App(app);

    let start = s.feed_position();
    s.delete_environment(&me(), envs[1].id).unwrap();
    let page = read(&s, &scope, &start);
    assert_eq!(
        page.changes.iter().map(said).collect::<Vec<_>>(),
        vec![(ChangeAction::Delete, envs[1].id, staging, None)]
    );

    s.delete_app(&me(), app).unwrap();
    let page = read(&s, &scope, &page.next);
    let sorted = |change: &Change| {
        let (action, env, mut ids, version) = said(change);
        ids.sort();
        (action, env, ids, version)
    };
    assert_eq!(
        page.changes.iter().map(sorted).collect::<Vec<_>>(),
        vec![
            (ChangeAction::Delete, envs[0].id, dev, None),
            (ChangeAction::Delete, envs[2].id, vec![], None),
        ]
    );
}

#[test]
fn a_read_of_the_store_passes_over_a_bounded_number_of_entries_and_skips_them() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let dev = envs[0].id;
    let start = s.feed_position();
    // Reads are audited too: more of them than one page passes over, then a change.
    s.record_reads(reads(app, dev, 2 * MAX_SCANNED + 5))
        .unwrap();
    let created = s
        .create_secrets(&me(), dev, vec![secret("A", "a")])
        .unwrap();
    // Memory holds only what was fed since the store opened: after a reopen, the cursor
    // is read from the store.
    let s = s.reopen();
    let scope = ChangeScope::App(app);

    let first = read(&s, &scope, &start);
    assert_eq!(first.changes, vec![]);
    assert_eq!(first.next, moved(&start, MAX_SCANNED as i64));
    assert!(!first.caught_up);
    let second = read(&s, &scope, &first.next);
    assert_eq!(second.changes, vec![]);
    assert_eq!(second.next, moved(&first.next, MAX_SCANNED as i64));
    let third = read(&s, &scope, &second.next);
    assert_eq!(
        third.changes.iter().map(said).collect::<Vec<_>>(),
        vec![(ChangeAction::Create, dev, vec![created[0].id], Some(1))]
    );
    assert_eq!(third.next, s.feed_position());
    assert!(third.caught_up);
}

#[test]
fn memory_and_the_store_give_the_same_pages() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let start = s.feed_position();
    for (i, env) in envs.iter().enumerate() {
        s.create_secrets(&me(), env.id, vec![secret(&format!("K{i}"), "v")])
            .unwrap();
        s.record_reads(reads(app, env.id, 3)).unwrap();
    }
    let query = ChangesQuery {
        scope: ChangeScope::App(app),
        since: start,
    };
    let from_memory = s.recent_changes(&query).expect("in memory").unwrap();
    let s = s.reopen();
    assert!(
        s.recent_changes(&query).is_none(),
        "not in memory after a reopen"
    );
    let from_store = s.read_changes(&query).unwrap();
    assert_eq!(from_memory.changes, from_store.changes);
    assert_eq!(from_memory.changes.len(), 3);
}

#[test]
fn a_cursor_the_feed_has_not_reached_or_before_the_oldest_entry_is_refused() {
    let s = TestStore::new();
    let (app, _) = s.app("shop");
    let scope = ChangeScope::App(app);
    let ahead = moved(&s.feed_position(), 1);
    let query = |since| ChangesQuery {
        scope: scope.clone(),
        since,
    };
    assert!(matches!(
        s.read_changes(&query(ahead.clone())),
        Err(StoreError::FeedCursorUnknown)
    ));
    // The chain starts at 1: nothing was ever before it. Once old entries are trimmed,
    // the oldest entry kept moves, and so does this answer.
    let s = s.reopen();
    assert!(matches!(
        s.read_changes(&query(ChainPositions::every_chain_from(0))),
        Err(StoreError::FeedCursorExpired { oldest: 1 })
    ));
    assert_eq!(
        read(&s, &scope, &ChainPositions::every_chain_from(1)).changes,
        vec![]
    );
}

#[test]
fn a_waiter_is_woken_by_the_write_that_moves_the_feed_and_not_by_reads() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let dev = envs[0].id;
    let position = s.feed_position();
    assert!(!ready_now(s.fed_beyond(&position)), "nothing new yet");
    assert!(
        ready_now(s.fed_beyond(&moved(&position, -1))),
        "already past"
    );

    // A read is audited but changes nothing: the feed does not move for it.
    s.record_reads(reads(app, dev, 1)).unwrap();
    assert!(!ready_now(s.fed_beyond(&position)));

    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            pollster::block_on(s.fed_beyond(&position));
            s.feed_position()
        });
        let writer = scope.spawn(|| {
            s.create_secrets(&me(), dev, vec![secret("A", "a")])
                .unwrap()
        });
        let created = writer.join().unwrap();
        let fed_to = waiter.join().unwrap();
        assert!(fed_to.of(0) > position.of(0));
        let page = read(&s, &ChangeScope::App(app), &position);
        assert_eq!(page.changes.last().unwrap().secret_ids, vec![created[0].id]);
    });
}

#[test]
fn the_feed_position_survives_a_reopen() {
    let s = TestStore::new();
    let dev = s.dev_env("shop");
    s.create_secrets(&me(), dev, vec![secret("A", "a")])
        .unwrap();
    let position = s.feed_position();
    let s = s.reopen();
    assert_eq!(s.feed_position(), position);
}
