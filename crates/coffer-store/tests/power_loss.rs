//! Durability tested as a power loss (DESIGN.md, "Durability"): a write is acknowledged
//! only once it is durable, so a power cut at any moment leaves every acknowledged write
//! on the disk, and no acknowledged write depended on one the cut lost. A failed flush
//! stops the store from acknowledging writes (storage unavailable, 503) until it is
//! restarted; reads go on and nothing acknowledged before is lost.
//!
//! The backend is `common/power_loss.rs`: in memory, commits kept in order, and a power
//! cut that keeps what was flushed plus a random prefix of the rest. SIGKILL (`crash.rs`)
//! leaves the page cache to the kernel, so it cannot show this.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coffer_store::{
    MasterKey, NewApp, NewToken, Permissions, SecretFilter, SecretUpdate, StorageState, Store,
    StoreError, TokenKind, VersionAction,
};
use common::power_loss::{Image, PowerLoss};
use common::{me, secret, update};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// A write that returned `Ok`: what the disk must hold after any later power cut.
#[derive(Clone, Debug)]
enum Acked {
    /// A secret created, alone or in a batch: its version 1 holds `value`.
    Created { env: Uuid, id: Uuid, value: String },
    /// A secret updated to `version`, which holds `value`.
    Updated {
        env: Uuid,
        id: Uuid,
        version: u64,
        value: String,
    },
    /// A secret deleted.
    Deleted { env: Uuid, id: Uuid },
    /// A token created.
    TokenCreated { id: Uuid },
    /// A token revoked.
    TokenRevoked { id: Uuid },
}

/// The acknowledged writes that `store` lacks or holds otherwise than acknowledged, each
/// with what is wrong. A write that depended on another (an update or a delete on its
/// create, every version on the ones before) is checked to find that one too.
fn missing_writes(store: &Store<PowerLoss>, acked: &[Acked]) -> Vec<String> {
    acked
        .iter()
        .filter_map(|write| {
            check(store, write)
                .err()
                .map(|why| format!("{write:?}: {why}"))
        })
        .collect()
}

fn check(store: &Store<PowerLoss>, write: &Acked) -> Result<(), String> {
    match write {
        Acked::Created { env, id, value } => holds(store, *env, *id, 1, value),
        Acked::Updated {
            env,
            id,
            version,
            value,
        } => holds(store, *env, *id, *version, value),
        Acked::Deleted { env, id } => {
            match store.get_secret(*env, *id) {
                Err(StoreError::SecretNotFound(_)) => {}
                Ok(_) => return Err("the secret is live".into()),
                Err(err) => return Err(format!("reading it: {err}")),
            }
            let versions = history(store, *env, *id)?;
            let last = versions.last().expect("a history is never empty");
            if last.action != VersionAction::Delete {
                return Err(format!("its history ends with {:?}", last.action));
            }
            let numbers: Vec<u64> = versions.iter().map(|v| v.version).collect();
            if numbers != (1..=last.version).collect::<Vec<_>>() {
                return Err(format!(
                    "the versions before it are not all there: {numbers:?}"
                ));
            }
            Ok(())
        }
        Acked::TokenCreated { id } => match store.get_token(*id) {
            Ok(_) => Ok(()),
            Err(err) => Err(format!("reading it: {err}")),
        },
        Acked::TokenRevoked { id } => match store.get_token(*id) {
            Ok(token) if token.revoked => Ok(()),
            Ok(_) => Err("the token is not revoked".into()),
            Err(err) => Err(format!("reading it: {err}")),
        },
    }
}

/// Whether version `version` of a secret holds `value`, with every version before it
/// (the writes it depended on) there too.
fn holds(
    store: &Store<PowerLoss>,
    env: Uuid,
    id: Uuid,
    version: u64,
    value: &str,
) -> Result<(), String> {
    let versions = history(store, env, id)?;
    for before in 1..version {
        if !versions.iter().any(|v| v.version == before) {
            return Err(format!("version {before}, which it followed, is not there"));
        }
    }
    match versions.iter().find(|v| v.version == version) {
        Some(found) if found.secret.value == value => Ok(()),
        Some(found) => Err(format!("version {version} holds {:?}", found.secret.value)),
        None => Err(format!("version {version} is not there")),
    }
}

fn history(
    store: &Store<PowerLoss>,
    env: Uuid,
    id: Uuid,
) -> Result<Vec<coffer_store::SecretVersion>, String> {
    match store.secret_history(env, id) {
        Ok(versions) => Ok(versions),
        Err(StoreError::SecretNotFound(_)) => Err("the secret is not there at all".into()),
        Err(err) => Err(format!("reading its history: {err}")),
    }
}

/// The store a restart on `image` opens, and that its audit chain verifies.
fn restart_on(image: Image, key: &MasterKey, context: &str) -> Store<PowerLoss> {
    let store = Store::with_backend(PowerLoss::from_image(image), key)
        .unwrap_or_else(|err| panic!("{context}: the store does not open: {err}"));
    let audit = store.verify_audit().unwrap();
    assert!(
        audit.intact(),
        "{context}: the audit chain is broken: {audit:?}"
    );
    store
}

fn user_token(name: &str) -> NewToken {
    NewToken {
        name: name.into(),
        kind: TokenKind::User,
        app_id: None,
        environments: vec![],
        permissions: Permissions::default(),
        expires_at: None,
        allowed_ips: vec![],
    }
}

/// A store on a fresh power-loss disk, with one app; the master key to reopen it with.
fn fresh_store() -> (PowerLoss, MasterKey, Store<PowerLoss>, Vec<Uuid>) {
    let backend = PowerLoss::new();
    let key = MasterKey::generate();
    let store = Store::with_backend(backend.clone(), &key).unwrap();
    let (_, envs) = store
        .create_app(
            &me(),
            NewApp {
                name: "shop".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let envs = envs.iter().map(|env| env.id).collect();
    (backend, key, store, envs)
}

/// Waits (ten seconds at most) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// --- power cuts under concurrent writers --------------------------------------------------

const ROUNDS: u64 = 12;
const CUTS_PER_ROUND: usize = 3;
const WRITERS: u64 = 4;

/// What the writers of one round share.
struct Round<'a> {
    store: &'a Store<PowerLoss>,
    envs: &'a [Uuid],
    /// Every acknowledged write, in the order it was acknowledged.
    acked: Mutex<Vec<Acked>>,
    /// Secrets whose create was acknowledged.
    created: Mutex<HashSet<Uuid>>,
    /// Acknowledged writes to a secret whose create had not been acknowledged when the
    /// writer found it in a listing: writes that depended on one not yet flushed.
    dependent: AtomicUsize,
    stop: AtomicBool,
}

impl Round<'_> {
    fn ack(&self, write: Acked) {
        if let Acked::Created { id, .. } = &write {
            self.created.lock().insert(*id);
        }
        self.acked.lock().push(write);
    }

    /// A secret of `env` found by listing (committed, maybe not yet durable), and
    /// whether its create was already acknowledged.
    fn pick_secret(&self, env: Uuid, rng: &mut StdRng) -> Option<(Uuid, bool)> {
        let listed = self
            .store
            .list_secrets(env, &SecretFilter::default())
            .unwrap();
        if listed.is_empty() {
            return None;
        }
        let id = listed[rng.gen_range(0..listed.len())].id;
        Some((id, self.created.lock().contains(&id)))
    }

    /// Creates, batch creates, updates, deletes, token creates and revocations, and
    /// recorded reads, at random, until told to stop.
    fn write(&self, writer: u64, rng: &mut StdRng) {
        for i in 0.. {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let env = self.envs[rng.gen_range(0..self.envs.len())];
            let value = format!("w{writer}-{i}");
            match rng.gen_range(0..100) {
                0..=24 => {
                    let key = format!("K{writer}_{i}");
                    let made = self
                        .store
                        .create_secrets(&me(), env, vec![secret(&key, &value)]);
                    let id = made.unwrap()[0].id;
                    self.ack(Acked::Created { env, id, value });
                }
                25..=39 => {
                    let batch = (0..rng.gen_range(2..=5))
                        .map(|n| secret(&format!("K{writer}_{i}_{n}"), &format!("{value}-{n}")))
                        .collect();
                    for made in self.store.create_secrets(&me(), env, batch).unwrap() {
                        let (id, value) = (made.id, made.value);
                        self.ack(Acked::Created { env, id, value });
                    }
                }
                40..=64 => {
                    let Some((id, create_acked)) = self.pick_secret(env, rng) else {
                        continue;
                    };
                    let change = SecretUpdate {
                        value: Some(value.clone()),
                        ..update(id)
                    };
                    match self.store.update_secrets(&me(), env, vec![change]) {
                        Ok(updated) => {
                            let version = updated[0].version;
                            self.ack(Acked::Updated {
                                env,
                                id,
                                version,
                                value,
                            });
                            if !create_acked {
                                self.dependent.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        // Deleted meanwhile by another writer.
                        Err(StoreError::SecretNotFound(_)) => {}
                        Err(err) => panic!("update: {err:?}"),
                    }
                }
                65..=74 => {
                    let Some((id, create_acked)) = self.pick_secret(env, rng) else {
                        continue;
                    };
                    match self.store.delete_secrets(&me(), env, &[id]) {
                        Ok(_) => {
                            self.ack(Acked::Deleted { env, id });
                            if !create_acked {
                                self.dependent.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(StoreError::SecretsNotFound(_)) => {}
                        Err(err) => panic!("delete: {err:?}"),
                    }
                }
                75..=82 => {
                    let name = format!("t{writer}-{i}");
                    let (token, _) = self.store.create_token(&me(), user_token(&name)).unwrap();
                    self.ack(Acked::TokenCreated { id: token.id });
                }
                83..=89 => {
                    let tokens = self.store.list_tokens().unwrap();
                    let live: Vec<_> = tokens.iter().filter(|t| !t.revoked).collect();
                    if live.is_empty() {
                        continue;
                    }
                    let id = live[rng.gen_range(0..live.len())].id;
                    self.store.revoke_token(&me(), id).unwrap();
                    self.ack(Acked::TokenRevoked { id });
                }
                _ => {
                    // A read's audit entry is appended without a flush of its own.
                    let Some((id, _)) = self.pick_secret(env, rng) else {
                        continue;
                    };
                    let app = self.store.get_environment(env).unwrap().app_id;
                    self.store.record_read(&me(), app, env, vec![id]).unwrap();
                }
            }
        }
    }
}

/// The run's seed: `COFFER_POWER_LOSS_SEED` or a random one, printed (cargo shows it with
/// a failure). It fixes what the writers do and what each cut keeps; the threads'
/// interleaving is the scheduler's.
fn seed() -> u64 {
    let seed = match std::env::var("COFFER_POWER_LOSS_SEED") {
        Ok(seed) => seed.parse().expect("COFFER_POWER_LOSS_SEED is a number"),
        Err(_) => rand::random(),
    };
    eprintln!("power-loss seed {seed} (COFFER_POWER_LOSS_SEED={seed} runs it again)");
    seed
}

#[test]
fn a_power_cut_at_any_moment_keeps_every_acknowledged_write() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut cuts_checked, mut writes_checked, mut dependent) = (0, 0, 0);
    for round in 0..ROUNDS {
        let (backend, key, store, envs) = fresh_store();
        // A slow disk: more commits land while a flush runs, and wait for the next one.
        backend.set_flush_time(Duration::from_micros(rng.gen_range(0..500)));
        let shared = Round {
            store: &store,
            envs: &envs,
            acked: Mutex::new(Vec::new()),
            created: Mutex::new(HashSet::new()),
            dependent: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        };
        let cuts = std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let mut writer_rng = StdRng::seed_from_u64(seed ^ (round * WRITERS + writer + 1));
                let shared = &shared;
                scope.spawn(move || shared.write(writer, &mut writer_rng));
            }
            let mut cuts = Vec::new();
            for _ in 0..CUTS_PER_ROUND {
                std::thread::sleep(Duration::from_millis(rng.gen_range(2..30)));
                // Counted before the cut: each of these had returned before it.
                let acked_before = shared.acked.lock().len();
                cuts.push((acked_before, backend.power_cut(&mut rng)));
            }
            shared.stop.store(true, Ordering::SeqCst);
            cuts
        });
        let acked = shared.acked.into_inner();
        for (acked_before, cut) in cuts {
            let context = format!(
                "seed {seed}, round {round}: a cut after {} commits ({} durable, {} kept)",
                cut.committed, cut.durable, cut.kept
            );
            let restarted = restart_on(cut.image, &key, &context);
            let missing = missing_writes(&restarted, &acked[..acked_before]);
            assert!(
                missing.is_empty(),
                "{context}: {} of {acked_before} acknowledged writes are lost:\n{}",
                missing.len(),
                missing.join("\n")
            );
            // The disk the cut left is a store that takes writes.
            restarted
                .create_secrets(&me(), envs[0], vec![secret("AFTER_THE_CUT", "v")])
                .unwrap_or_else(|err| panic!("{context}: writing after the restart: {err}"));
            cuts_checked += 1;
            writes_checked += acked_before;
        }
        dependent += shared.dependent.into_inner();
    }
    eprintln!(
        "{cuts_checked} cuts, {writes_checked} acknowledged writes checked; {dependent} \
         acknowledged writes were to a secret found before its create was acknowledged"
    );
    assert!(writes_checked > 0, "no write was acknowledged before a cut");
    assert!(
        dependent > 0,
        "seed {seed}: no write was made on a secret whose create was still unflushed"
    );
}

/// The dependency itself, step by step: a writer that finds a secret committed but not
/// flushed, and updates it, is not answered before the create is durable.
#[test]
fn an_update_of_an_unflushed_create_waits_until_the_create_is_durable() {
    let (backend, key, store, envs) = fresh_store();
    let env = envs[0];
    backend.hold_flushes();
    let before = backend.commits();
    std::thread::scope(|scope| {
        let (store, backend) = (&store, &backend);
        let create = scope.spawn(move || {
            store
                .create_secrets(&me(), env, vec![secret("FIRST", "v1")])
                .map(|made| made[0].id)
        });
        wait_until("the create waits on its flush", || {
            backend.flushes_waiting() == 1
        });
        // Committed, so a listing finds it, though no flush has made it durable.
        let listed = store.list_secrets(env, &SecretFilter::default()).unwrap();
        let id = listed[0].id;
        let (answered, answer) = mpsc::channel();
        scope.spawn(move || {
            let change = SecretUpdate {
                value: Some("v2".into()),
                ..update(id)
            };
            answered
                .send(store.update_secrets(&me(), env, vec![change]))
                .unwrap();
        });
        wait_until("the update has committed", || {
            backend.commits() == before + 2
        });
        assert!(
            answer.recv_timeout(Duration::from_millis(50)).is_err(),
            "the update was answered while the create it depends on was unflushed"
        );
        // A cut now: whatever part of the two the disk kept, the restart opens, and an
        // update it holds comes with its create (nothing of either was acknowledged).
        for kept in backend.durable_commits()..=backend.commits() {
            let context = format!("{kept} commits kept");
            let restarted = restart_on(backend.image_of_first(kept), &key, &context);
            if let Ok(versions) = restarted.secret_history(env, id) {
                assert_eq!(versions[0].version, 1, "{context}");
                assert_eq!(versions[0].secret.value, "v1", "{context}");
            }
        }
        backend.release_flushes();
        assert_eq!(create.join().unwrap().unwrap(), id);
        let updated = answer.recv().unwrap().unwrap();
        let acked = [
            Acked::Created {
                env,
                id,
                value: "v1".into(),
            },
            Acked::Updated {
                env,
                id,
                version: updated[0].version,
                value: "v2".into(),
            },
        ];
        let restarted = restart_on(backend.durable_image(), &key, "after the flush");
        assert_eq!(missing_writes(&restarted, &acked), Vec::<String>::new());
    });
}

// --- a failed flush ------------------------------------------------------------------------

#[test]
fn a_failed_flush_stops_every_write_keeps_reads_and_loses_nothing_acknowledged() {
    let (backend, key, store, envs) = fresh_store();
    let env = envs[0];
    let kept = store
        .create_secrets(&me(), env, vec![secret("BEFORE", "kept")])
        .unwrap()
        .remove(0);
    let (token, issued) = store.create_token(&me(), user_token("ops")).unwrap();
    let acked = [
        Acked::Created {
            env,
            id: kept.id,
            value: "kept".into(),
        },
        Acked::TokenCreated { id: token.id },
    ];

    backend.fail_next_flushes(1);
    let during = store.create_secrets(&me(), env, vec![secret("DURING", "unknown")]);
    // Committed, not known to be durable: storage unavailable, not "it failed".
    assert!(
        matches!(during, Err(StoreError::WritesStopped)),
        "{during:?}"
    );
    assert_eq!(store.storage_state(), StorageState::Failed);
    let failure = store.storage_failure().expect("the failure is kept");
    assert!(failure.contains("os error 5"), "{failure}");

    // The disk would flush again now; the store still takes no write, and commits none.
    let commits = backend.commits();
    let refused = [
        store
            .create_secrets(&me(), env, vec![secret("LATER", "v")])
            .map(drop),
        store
            .update_secrets(&me(), env, vec![update(kept.id)])
            .map(drop),
        store.delete_secrets(&me(), env, &[kept.id]).map(drop),
        store.create_token(&me(), user_token("later")).map(drop),
        store.revoke_token(&me(), token.id),
    ];
    for answer in refused {
        assert!(
            matches!(answer, Err(StoreError::WritesStopped)),
            "{answer:?}"
        );
    }
    assert_eq!(backend.commits(), commits, "a refused write committed");

    // Reads go on.
    assert_eq!(store.get_secret(env, kept.id).unwrap().value, "kept");
    assert!(store.authenticate(&issued.token).unwrap().is_some());
    let app = store.get_environment(env).unwrap().app_id;
    store.record_read(&me(), app, env, vec![kept.id]).unwrap();

    // Whatever part of the unflushed commits the disk kept, a restart finds everything
    // acknowledged and takes writes again.
    for kept_commits in backend.durable_commits()..=backend.commits() {
        let context = format!("{kept_commits} commits kept");
        let restarted = restart_on(backend.image_of_first(kept_commits), &key, &context);
        assert_eq!(
            missing_writes(&restarted, &acked),
            Vec::<String>::new(),
            "{context}"
        );
        assert_eq!(restarted.storage_state(), StorageState::Writable);
        restarted
            .create_secrets(&me(), env, vec![secret("AFTER", "v")])
            .unwrap();
    }
}

/// A writer that committed while the flush that failed was running waits for a flush of
/// its own. That one may succeed, but the disk's state is unknown after a failed flush (a
/// retried `fsync` can succeed without the pages the failed one dropped): it must not
/// be acknowledged either.
#[test]
fn a_write_waiting_on_a_failed_flush_is_not_acknowledged_by_the_next_flush() {
    let (backend, _key, store, envs) = fresh_store();
    let env = envs[0];
    backend.hold_flushes();
    backend.fail_next_flushes(1);
    let before = backend.commits();
    std::thread::scope(|scope| {
        let (store, backend) = (&store, &backend);
        let first = scope.spawn(move || store.create_secrets(&me(), env, vec![secret("A", "a")]));
        wait_until("the first write waits on its flush", || {
            backend.flushes_waiting() == 1
        });
        let second = scope.spawn(move || store.create_secrets(&me(), env, vec![secret("B", "b")]));
        wait_until("the second write has committed", || {
            backend.commits() == before + 2
        });
        backend.release_flushes();
        let (first, second) = (first.join().unwrap(), second.join().unwrap());
        assert!(matches!(first, Err(StoreError::WritesStopped)), "{first:?}");
        assert!(
            matches!(second, Err(StoreError::WritesStopped)),
            "{second:?}"
        );
    });
    assert_eq!(store.storage_state(), StorageState::Failed);
}

// --- the check itself -------------------------------------------------------------------

/// The check is not vacuous: on a disk that lost a flushed commit (one that lied about
/// its fsync), it names the acknowledged write that is gone.
#[test]
fn the_check_names_an_acknowledged_write_a_lying_disk_lost() {
    let (backend, key, store, envs) = fresh_store();
    let env = envs[0];
    let before_create = backend.commits();
    let created = store
        .create_secrets(&me(), env, vec![secret("LOST", "v1")])
        .unwrap()
        .remove(0);
    let before_update = backend.commits();
    let change = SecretUpdate {
        value: Some("v2".into()),
        ..update(created.id)
    };
    store.update_secrets(&me(), env, vec![change]).unwrap();
    let acked = [
        Acked::Created {
            env,
            id: created.id,
            value: "v1".into(),
        },
        Acked::Updated {
            env,
            id: created.id,
            version: 2,
            value: "v2".into(),
        },
    ];
    let honest = restart_on(backend.durable_image(), &key, "the durable image");
    assert_eq!(missing_writes(&honest, &acked), Vec::<String>::new());

    let lost_update = restart_on(backend.image_of_first(before_update), &key, "no update");
    let missing = missing_writes(&lost_update, &acked);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("Updated") && missing[0].contains("version 2 is not there"),
        "{missing:?}"
    );

    let lost_both = restart_on(backend.image_of_first(before_create), &key, "no create");
    let missing = missing_writes(&lost_both, &acked);
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(
        missing.iter().all(|m| m.contains("not there at all")),
        "{missing:?}"
    );
}

// --- the write group ---------------------------------------------------------------------

#[test]
fn writers_arriving_during_a_flush_wait_for_it_and_one_more_flush_covers_them_all() {
    // A flush is running (held): the writers that commit meanwhile start no flush of
    // their own while it runs, and the next flush covers every one of them.
    const FOLLOWERS: usize = 8;
    let (backend, _key, store, envs) = fresh_store();
    let env = envs[0];
    backend.hold_flushes();
    let (commits, flushes) = (backend.commits(), backend.flushes());
    std::thread::scope(|scope| {
        let (store, backend) = (&store, &backend);
        let leader = scope.spawn(move || store.create_secrets(&me(), env, vec![secret("A", "a")]));
        wait_until("the first write flushes", || backend.flushes_waiting() == 1);
        let followers: Vec<_> = (0..FOLLOWERS)
            .map(|i| {
                scope.spawn(move || {
                    store.create_secrets(&me(), env, vec![secret(&format!("F{i}"), "f")])
                })
            })
            .collect();
        wait_until("every follower has committed", || {
            backend.commits() == commits + 1 + FOLLOWERS
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            backend.flushes(),
            flushes + 1,
            "a follower flushed on its own"
        );
        backend.release_flushes();
        leader.join().unwrap().unwrap();
        for follower in followers {
            follower.join().unwrap().unwrap();
        }
    });
    assert_eq!(backend.flushes(), flushes + 2);
    assert_eq!(backend.durable_commits(), backend.commits());
}

/// Runs `write` with its flush held, and `lookups` on a thread of its own once the write
/// waits for that flush; returns what the lookups found, or the timeout if they waited
/// for the flush (a lookup stuck behind it fails the test instead of hanging it).
fn lookups_during_the_flush_of<T: Send, W: Send>(
    backend: &PowerLoss,
    write: impl FnOnce() -> Result<W, StoreError> + Send,
    lookups: impl FnOnce() -> T + Send,
) -> Result<T, mpsc::RecvTimeoutError> {
    backend.hold_flushes();
    std::thread::scope(|scope| {
        let written = scope.spawn(write);
        wait_until("the write flushes", || backend.flushes_waiting() == 1);
        let (answers, answered) = mpsc::channel();
        // Once timed out nobody takes the answer: the test fails on the timeout.
        scope.spawn(move || drop(answers.send(lookups())));
        let found = answered.recv_timeout(Duration::from_secs(5));
        backend.release_flushes();
        written.join().unwrap().unwrap();
        found
    })
}

#[test]
fn authentications_and_reads_do_not_wait_for_an_app_deletes_flush() {
    let (backend, _key, store, envs) = fresh_store();
    let env = envs[0];
    store
        .create_secrets(&me(), env, vec![secret("KEPT", "v")])
        .unwrap();
    let (gone, _) = store
        .create_app(
            &me(),
            NewApp {
                name: "gone".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let service = NewToken {
        name: "ci".into(),
        kind: TokenKind::Service,
        app_id: Some(gone.id),
        environments: vec!["development".into()],
        permissions: Permissions::ALL,
        expires_at: None,
        allowed_ips: vec![],
    };
    let (_, doomed) = store.create_token(&me(), service).unwrap();
    let (_, cached) = store.create_token(&me(), user_token("cached")).unwrap();
    assert!(store.authenticate(&doomed.token).unwrap().is_some());
    assert!(store.authenticate(&cached.token).unwrap().is_some());
    let lookups = lookups_during_the_flush_of(
        &backend,
        || store.delete_app(&me(), gone.id),
        || {
            (
                store.authenticate(&cached.token).unwrap().is_some(),
                store.list_secrets(env, &Default::default()).unwrap().len(),
            )
        },
    );
    assert_eq!(
        lookups,
        Ok((true, 1)),
        "lookups waited for the delete's flush"
    );
    assert!(store.authenticate(&doomed.token).unwrap().is_none());
    assert!(store.authenticate(&cached.token).unwrap().is_some());
}

#[test]
fn authentications_and_reads_do_not_wait_for_a_revocations_flush() {
    let (backend, _key, store, envs) = fresh_store();
    let env = envs[0];
    store
        .create_secrets(&me(), env, vec![secret("KEPT", "v")])
        .unwrap();
    let (doomed, doomed_token) = store.create_token(&me(), user_token("doomed")).unwrap();
    let (_, cached) = store.create_token(&me(), user_token("cached")).unwrap();
    let (_, uncached) = store.create_token(&me(), user_token("uncached")).unwrap();
    assert!(store.authenticate(&doomed_token.token).unwrap().is_some());
    assert!(store.authenticate(&cached.token).unwrap().is_some());
    let lookups = lookups_during_the_flush_of(
        &backend,
        || store.revoke_token(&me(), doomed.id),
        || {
            (
                store.authenticate(&cached.token).unwrap().is_some(),
                store.authenticate(&uncached.token).unwrap().is_some(),
                store.list_secrets(env, &Default::default()).unwrap().len(),
            )
        },
    );
    assert_eq!(
        lookups,
        Ok((true, true, 1)),
        "lookups waited for the revocation's flush"
    );
    assert!(store.authenticate(&doomed_token.token).unwrap().is_none());
    assert!(store.authenticate(&cached.token).unwrap().is_some());
}
