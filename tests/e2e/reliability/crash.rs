//! Crash safety over HTTP: clients write concurrently, the server is killed with SIGKILL
//! at a random moment and started again on the same data directory. Every acknowledged
//! write must be there; an unacknowledged batch must be there whole or not at all.
//!
//! `COFFER_CRASH_ROUNDS` sets the number of kill/restart rounds (default 20).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const DEFAULT_ROUNDS: usize = 20;
const CLIENTS: usize = 4;
/// Above this many secrets a client also deletes, so long runs stay about this size.
const DELETE_ABOVE: usize = 250;

/// A secret as the test knows it: acknowledged, or verified after a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    key: String,
    value: String,
    version: u64,
}

/// What one client saw during one round.
#[derive(Debug, Default)]
struct Journal {
    /// Acknowledged created secrets: id → state.
    created: Vec<(String, Known)>,
    /// Acknowledged updates, in order: (id, value, version).
    updated: Vec<(String, String, u64)>,
    /// A create batch sent but not acknowledged: (batch number, [(key, value)]).
    pending_create: Option<(u64, Vec<(String, String)>)>,
    /// An update batch sent but not acknowledged: [(id, value, version)].
    pending_update: Vec<(String, String, u64)>,
    /// Acknowledged deletions.
    deleted: Vec<String>,
    /// A delete batch sent but not acknowledged.
    pending_delete: Vec<String>,
    /// Requests acknowledged.
    acknowledged: usize,
}

/// Sends a request; `None` when no complete answer came (the server died).
fn try_send(api: &Api, method: Method, path: &str, body: &Value) -> Option<(u16, Value)> {
    let mut request = api.http.request(method, format!("{}{path}", api.base));
    if let Some(auth) = &api.authorization {
        request = request.header("Authorization", auth);
    }
    let response = request.json(body).send().ok()?;
    let status = response.status().as_u16();
    let text = response.text().ok()?;
    let value = serde_json::from_str(&text).ok()?;
    Some((status, value))
}

fn batch_key(batch: u64, i: usize) -> String {
    format!("B{batch}_{i}")
}

/// Writes until the server stops answering: creates, updates and (once it holds enough)
/// deletes. Updates and deletes touch only `owned` secrets, so the client knows each
/// one's current version.
fn client(
    api: Api,
    path: String,
    mut owned: Vec<(String, Known)>,
    batches: Arc<AtomicU64>,
) -> Journal {
    let mut rng = rand::thread_rng();
    let mut journal = Journal::default();
    loop {
        let dice = rng.gen_range(0..10);
        if owned.len() > DELETE_ABOVE && dice < 3 {
            let n = rng.gen_range(1..=3);
            let mut picked = rand::seq::index::sample(&mut rng, owned.len(), n).into_vec();
            picked.sort_unstable_by(|a, b| b.cmp(a));
            let ids: Vec<String> = picked.iter().map(|i| owned[*i].0.clone()).collect();
            let body = json!({ "secrets": ids });
            let Some((status, answer)) = try_send(&api, Method::DELETE, &path, &body) else {
                journal.pending_delete = ids;
                return journal;
            };
            assert_eq!(status, 200, "delete answered {answer}");
            let message = if n == 1 {
                "Deleted 1 secret".to_owned()
            } else {
                format!("Deleted {n} secrets")
            };
            assert_eq!(answer, json!({ "message": message }));
            for i in picked {
                owned.swap_remove(i);
            }
            journal.deleted.extend(ids);
        } else if owned.is_empty() || dice < 5 {
            let batch = batches.fetch_add(1, Ordering::SeqCst);
            // Now and then a batch large enough for the store to apply it in steps.
            let n = if rng.gen_ratio(1, 4) {
                rng.gen_range(20..=40)
            } else {
                rng.gen_range(1..=5)
            };
            let entries: Vec<(String, String)> = (0..n)
                .map(|i| {
                    (
                        batch_key(batch, i),
                        format!("c{batch}-{i}-{:08x}", rng.gen::<u32>()),
                    )
                })
                .collect();
            let body = json!({"secrets": entries.iter()
                .map(|(key, value)| json!({"key": key, "value": value}))
                .collect::<Vec<_>>()});
            let Some((status, answer)) = try_send(&api, Method::POST, &path, &body) else {
                journal.pending_create = Some((batch, entries));
                return journal;
            };
            assert_eq!(status, 200, "create answered {answer}");
            let created = answer.as_array().expect("array of secrets");
            assert_eq!(created.len(), n, "{answer}");
            for (secret, (key, value)) in created.iter().zip(entries) {
                assert_eq!(secret["key"], key.as_str(), "{answer}");
                assert_eq!(secret["value"], value.as_str(), "{answer}");
                assert_eq!(secret["version"], 1, "{answer}");
                let id = secret["id"].as_str().unwrap().to_string();
                let known = Known {
                    key,
                    value,
                    version: 1,
                };
                journal.created.push((id.clone(), known.clone()));
                owned.push((id, known));
            }
        } else {
            let n = rng.gen_range(1..=3).min(owned.len());
            let picked: Vec<usize> = rand::seq::index::sample(&mut rng, owned.len(), n).into_vec();
            let changes: Vec<(usize, String)> = picked
                .iter()
                .map(|i| {
                    (
                        *i,
                        format!("u{}-{:08x}", owned[*i].1.version + 1, rng.gen::<u32>()),
                    )
                })
                .collect();
            let body = json!({"secrets": changes.iter().map(|(i, value)| {
                let (id, known) = &owned[*i];
                json!({"id": id, "value": value, "version": known.version})
            }).collect::<Vec<_>>()});
            let Some((status, answer)) = try_send(&api, Method::PUT, &path, &body) else {
                journal.pending_update = changes
                    .iter()
                    .map(|(i, value)| (owned[*i].0.clone(), value.clone(), owned[*i].1.version + 1))
                    .collect();
                return journal;
            };
            assert_eq!(status, 200, "update answered {answer}");
            let updated = answer.as_array().expect("array of secrets");
            assert_eq!(updated.len(), n, "{answer}");
            for ((i, value), secret) in changes.into_iter().zip(updated) {
                let (id, known) = &mut owned[i];
                assert_eq!(secret["id"], id.as_str(), "{answer}");
                assert_eq!(secret["value"], value.as_str(), "{answer}");
                assert_eq!(secret["version"], known.version + 1, "{answer}");
                known.version += 1;
                known.value = value;
                journal
                    .updated
                    .push((id.clone(), known.value.clone(), known.version));
            }
        }
        journal.acknowledged += 1;
    }
}

/// Every live secret of the environment after a restart: id → state.
fn stored_state(server: &Server, path: &str) -> HashMap<String, Known> {
    let (status, listed) = server.admin().get(path);
    assert_eq!(status, 200, "{listed}");
    let secrets = listed.as_array().expect("array of secrets");
    let state: HashMap<String, Known> = secrets
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                Known {
                    key: s["key"].as_str().unwrap().to_string(),
                    value: s["value"].as_str().unwrap().to_string(),
                    version: s["version"].as_u64().unwrap(),
                },
            )
        })
        .collect();
    assert_eq!(state.len(), secrets.len(), "ids are unique");
    state
}

/// Checks the state after a restart against what was acknowledged before the kill.
/// Returns how many unacknowledged batches were found applied and how many absent.
fn verify_round(
    round: usize,
    expected: &HashMap<String, Known>,
    journals: &[Journal],
    stored: &HashMap<String, Known>,
) -> (usize, usize) {
    let (mut applied_batches, mut absent_batches) = (0, 0);
    // Each secret may have at most one unacknowledged update in flight.
    let pending_updates: HashMap<&str, (&str, u64)> = journals
        .iter()
        .flat_map(|j| &j.pending_update)
        .map(|(id, value, version)| (id.as_str(), (value.as_str(), *version)))
        .collect();
    let pending_deletes: HashSet<&str> = journals
        .iter()
        .flat_map(|j| &j.pending_delete)
        .map(String::as_str)
        .collect();
    for (id, known) in expected {
        let Some(found) = stored.get(id) else {
            assert!(
                pending_deletes.contains(id.as_str()),
                "round {round}: acknowledged secret {id} ({}) lost",
                known.key
            );
            continue;
        };
        let pending = pending_updates
            .get(id.as_str())
            .is_some_and(|(value, version)| found.value == *value && found.version == *version);
        assert!(
            found == known || pending,
            "round {round}: secret {id} is {found:?}, acknowledged {known:?}"
        );
    }
    // An unacknowledged update batch is applied whole or not at all.
    for journal in journals {
        let applied: Vec<bool> = journal
            .pending_update
            .iter()
            .map(|(id, value, version)| {
                stored
                    .get(id)
                    .is_some_and(|s| s.value == *value && s.version == *version)
            })
            .collect();
        assert!(
            applied.iter().all(|a| *a) || applied.iter().all(|a| !*a),
            "round {round}: update batch partly applied: {applied:?}"
        );
        if !applied.is_empty() {
            if applied[0] {
                applied_batches += 1;
            } else {
                absent_batches += 1;
            }
        }
    }
    // An acknowledged delete is never undone; an unacknowledged one is whole or absent.
    for journal in journals {
        for id in &journal.deleted {
            assert!(
                !stored.contains_key(id),
                "round {round}: deleted {id} is back"
            );
        }
        let gone: Vec<bool> = journal
            .pending_delete
            .iter()
            .map(|id| !stored.contains_key(id))
            .collect();
        assert!(
            gone.iter().all(|g| *g) || gone.iter().all(|g| !*g),
            "round {round}: delete batch partly applied: {gone:?}"
        );
        if !gone.is_empty() {
            if gone[0] {
                applied_batches += 1;
            } else {
                absent_batches += 1;
            }
        }
    }
    // An unacknowledged create batch is there whole or not at all.
    let by_key: HashMap<&str, &Known> = stored.values().map(|k| (k.key.as_str(), k)).collect();
    let mut pending_keys = HashSet::new();
    for (batch, entries) in journals.iter().filter_map(|j| j.pending_create.as_ref()) {
        let present: Vec<bool> = entries
            .iter()
            .map(|(key, value)| {
                pending_keys.insert(key.clone());
                by_key.get(key.as_str()).is_some_and(|k| {
                    assert_eq!(&k.value, value, "round {round}: value of {key}");
                    assert_eq!(k.version, 1, "round {round}: version of {key}");
                    true
                })
            })
            .collect();
        assert!(
            present.iter().all(|p| *p) || present.iter().all(|p| !*p),
            "round {round}: batch B{batch} partly stored: {present:?}"
        );
        if present[0] {
            applied_batches += 1;
        } else {
            absent_batches += 1;
        }
    }
    // Nothing else appeared.
    for (id, found) in stored {
        assert!(
            expected.contains_key(id) || pending_keys.contains(&found.key),
            "round {round}: unexpected secret {id} {found:?}"
        );
    }
    (applied_batches, absent_batches)
}

fn rounds() -> usize {
    std::env::var("COFFER_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS)
}

/// What a run of kill/restart rounds saw.
pub(super) struct Rounds {
    /// Writes acknowledged in all rounds.
    pub acknowledged: usize,
    /// Secrets stored at the end.
    pub stored: usize,
    /// Batches in flight at a kill found whole, and found absent.
    pub in_flight: (usize, usize),
}

/// Runs `rounds` rounds of concurrent writes killed with SIGKILL after a delay drawn
/// from `kill_after_ms`; `while_down` looks at the data directory before each restart.
/// Every round checks that every acknowledged write is stored.
pub(super) fn kill_restart_rounds(
    rounds: usize,
    kill_after_ms: std::ops::Range<u64>,
    mut while_down: impl FnMut(usize, &Server),
) -> Rounds {
    let mut server = Server::start();
    let (app_id, _) = create_app(&server.admin(), "crash");
    let path = secrets_path(&app_id, "Development");
    let batches = Arc::new(AtomicU64::new(0));
    let mut expected: HashMap<String, Known> = HashMap::new();
    let mut rng = rand::thread_rng();
    let mut acknowledged = 0;
    let mut in_flight = (0, 0);
    for round in 0..rounds {
        let mut all: Vec<(String, Known)> = expected.clone().into_iter().collect();
        all.shuffle(&mut rng);
        let mut shares: Vec<Vec<(String, Known)>> = vec![Vec::new(); CLIENTS];
        for (i, entry) in all.into_iter().enumerate() {
            shares[i % CLIENTS].push(entry);
        }
        let api = server.admin();
        let handles: Vec<_> = shares
            .into_iter()
            .map(|owned| {
                let (api, path, batches) = (api.clone(), path.clone(), Arc::clone(&batches));
                thread::spawn(move || client(api, path, owned, batches))
            })
            .collect();
        thread::sleep(Duration::from_millis(rng.gen_range(kill_after_ms.clone())));
        server.kill();
        let journals: Vec<Journal> = handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect();
        while_down(round, &server);
        server.start_again();
        for journal in &journals {
            acknowledged += journal.acknowledged;
            for (id, known) in &journal.created {
                expected.insert(id.clone(), known.clone());
            }
            for (id, value, version) in &journal.updated {
                let known = expected.get_mut(id).expect("updated secret is known");
                known.value = value.clone();
                known.version = *version;
            }
            for id in &journal.deleted {
                expected.remove(id).expect("deleted secret is known");
            }
        }
        let stored = stored_state(&server, &path);
        let (applied, absent) = verify_round(round, &expected, &journals, &stored);
        in_flight.0 += applied;
        in_flight.1 += absent;
        expected = stored;
    }
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
    Rounds {
        acknowledged,
        stored: expected.len(),
        in_flight,
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds = rounds();
    let seen = kill_restart_rounds(rounds, 300..1000, |_, _| {});
    eprintln!(
        "{rounds} kill/restart rounds: {} writes acknowledged, {} secrets stored; \
         batches in flight at a kill: {} found whole, {} found absent",
        seen.acknowledged, seen.stored, seen.in_flight.0, seen.in_flight.1
    );
    assert!(
        seen.acknowledged >= rounds,
        "only {} writes acknowledged in {rounds} rounds",
        seen.acknowledged
    );
}
