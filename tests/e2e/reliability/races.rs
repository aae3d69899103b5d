//! Races over HTTP: concurrent creators of one key, check-and-set updates, listings
//! during batch replacements, and writes into an environment being deleted.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// Runs `work(i)` on `n` threads released together by a barrier; returns the answers.
fn all_at_once<T: Send + 'static>(
    n: usize,
    work: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (barrier, work) = (Arc::clone(&barrier), Arc::clone(&work));
            thread::spawn(move || {
                barrier.wait();
                work(i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

fn secret_list(answer: &(reqwest::StatusCode, Value)) -> &Vec<Value> {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1.as_array().expect("array of secrets")
}

#[test]
fn concurrent_creates_of_one_key_have_exactly_one_winner() {
    const CLIENTS: usize = 32;
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "race-create");
    let path = secrets_path(&app_id, "Development");
    // The same (path, key) spelled several ways: case, slashes.
    let keys = ["race_key", "RACE_KEY", "Race_Key"];
    let paths = ["/svc", "svc", "//svc/", "/svc/"];
    for round in 0..3 {
        let (api, url) = (admin.clone(), path.clone());
        let answers = all_at_once(CLIENTS, move |i| {
            let body = json!({"secrets": [{
                "key": format!("{}_{round}", keys[i % keys.len()]),
                "value": format!("client {i}"),
                "path": paths[i % paths.len()],
            }]});
            api.post(&url, body)
        });
        let winners: Vec<&Value> = answers
            .iter()
            .filter(|a| a.0 == 200)
            .map(|a| &a.1)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        for answer in answers.iter().filter(|a| a.0 != 200) {
            assert_error(answer, 409, "Duplicate secret found", "duplicate_secret");
        }
        let listed = admin.get(&format!("{path}&key=race_key_{round}"));
        let listed = secret_list(&listed);
        assert_eq!(listed.len(), 1, "one secret stored: {listed:?}");
        assert_eq!(listed[0]["value"], winners[0][0]["value"]);
        assert_eq!(listed[0]["path"], "/svc");
        assert_eq!(listed[0]["key"], format!("RACE_KEY_{round}"));
    }
    let all = admin.get(&path);
    assert_eq!(secret_list(&all).len(), 3);
}

#[test]
fn concurrent_updates_with_one_expected_version_have_exactly_one_winner() {
    const CLIENTS: usize = 16;
    const VERSIONS: u64 = 8;
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "race-cas");
    let path = secrets_path(&app_id, "Development");
    let created = admin.post(
        &path,
        json!({"secrets": [{"key": "CAS", "value": "start"}]}),
    );
    let id = secret_list(&created)[0]["id"].as_str().unwrap().to_string();
    let mut last_winner = String::new();
    for version in 1..=VERSIONS {
        let (api, url, id) = (admin.clone(), path.clone(), id.clone());
        let answers = all_at_once(CLIENTS, move |i| {
            let value = format!("v{version}-client{i}");
            api.put(
                &url,
                json!({"secrets": [{"id": id, "value": value, "version": version}]}),
            )
        });
        let winners: Vec<&Value> = answers
            .iter()
            .filter(|a| a.0 == 200)
            .map(|a| &a.1)
            .collect();
        assert_eq!(winners.len(), 1, "version {version}: {answers:?}");
        assert_eq!(winners[0][0]["version"], version + 1);
        last_winner = winners[0][0]["value"].as_str().unwrap().to_string();
        let conflict = format!(
            "Secret version conflict: expected {version}, current {}",
            version + 1
        );
        for answer in answers.iter().filter(|a| a.0 != 200) {
            assert_error(answer, 409, &conflict, "version_conflict");
        }
    }
    let listed = admin.get(&path);
    let listed = secret_list(&listed);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["version"], VERSIONS + 1);
    assert_eq!(listed[0]["value"], last_winner.as_str());
}

#[test]
fn listings_never_see_part_of_a_batch() {
    const SECRETS: usize = 50;
    const WRITERS: usize = 2;
    const READERS: usize = 3;
    const GENERATIONS: usize = 30;
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "race-batch");
    let path = secrets_path(&app_id, "Development");
    let batch: Vec<Value> = (0..SECRETS)
        .map(|i| json!({"key": format!("K{i:02}"), "value": "g0:start", "path": if i % 2 == 0 { "/" } else { "/sub" }}))
        .collect();
    let created = admin.post(&path, json!({ "secrets": batch }));
    let ids: Vec<String> = secret_list(&created)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (api, url, ids) = (admin.clone(), path.clone(), ids.clone());
            thread::spawn(move || {
                for g in 1..=GENERATIONS {
                    let generation = format!("g{w}-{g}");
                    let body = json!({"secrets": ids.iter().enumerate().map(|(i, id)| {
                        json!({"id": id, "value": format!("{generation}:{i}")})
                    }).collect::<Vec<_>>()});
                    let answer = api.put(&url, body);
                    assert_eq!(secret_list(&answer).len(), SECRETS);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (api, url, done) = (admin.clone(), path.clone(), Arc::clone(&done));
            thread::spawn(move || {
                let mut listings = 0;
                let mut generations = HashSet::new();
                while !done.load(Ordering::SeqCst) {
                    // Whole listings and filtered ones (one path: half the batch).
                    let query = if r == 0 {
                        format!("{url}&path=/sub")
                    } else {
                        url.clone()
                    };
                    let answer = api.get(&query);
                    let secrets = secret_list(&answer);
                    let seen: HashSet<&str> = secrets
                        .iter()
                        .map(|s| s["value"].as_str().unwrap().split(':').next().unwrap())
                        .collect();
                    assert_eq!(seen.len(), 1, "one listing mixes generations: {seen:?}");
                    generations.extend(seen.into_iter().map(String::from));
                    listings += 1;
                }
                (listings, generations.len())
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        let (listings, generations) = reader.join().expect("reader");
        assert!(listings > 0, "reader listed nothing");
        assert!(generations > 0);
    }
    let last = admin.get(&path);
    let secrets = secret_list(&last);
    assert_eq!(secrets.len(), SECRETS);
    assert!(secrets
        .iter()
        .all(|s| s["version"] == (WRITERS * GENERATIONS + 1) as u64));
}

/// The `coffer_store_records{kind="secrets"}` gauge: live secret records in the store.
fn stored_secret_records(api: &Api) -> u64 {
    let (status, text) = api.get("/metrics");
    assert_eq!(status, 200);
    let text = text.as_str().expect("metrics text");
    text.lines()
        .find(|l| l.starts_with("coffer_store_records{") && l.contains("\"secrets\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no secrets gauge in metrics:\n{text}"))
}

#[test]
fn deleting_an_environment_while_writing_leaves_no_orphan() {
    const WRITERS: usize = 4;
    let mut server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "race-env");
    // Secrets elsewhere stay untouched.
    let keep = secrets_path(&app_id, "Production");
    let kept = admin.post(
        &keep,
        json!({"secrets": [{"key": "KEEP_A", "value": "a"}, {"key": "KEEP_B", "value": "b"}]}),
    );
    assert_eq!(secret_list(&kept).len(), 2);
    for attempt in 0..3 {
        // The server restarts at the end of each attempt, on a new port.
        let admin = server.admin();
        let (status, env) = admin.post(
            &format!("/v1/environments/?app_id={app_id}"),
            json!({"name": "Doomed"}),
        );
        assert_eq!(status, 201, "{env}");
        let env_id = env["id"].as_str().unwrap().to_string();
        // Writers name the environment by id, so a new one of the same name is not theirs.
        let path = secrets_path(&app_id, &env_id);
        let deleted_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
        let landed = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (api, url) = (admin.clone(), path.clone());
                let (deleted_at, landed) = (Arc::clone(&deleted_at), Arc::clone(&landed));
                thread::spawn(move || {
                    let mut answers = Vec::new();
                    let mut not_found = 0;
                    for n in 0.. {
                        let started = Instant::now();
                        let body = json!({"secrets": [
                            {"key": format!("W{w}_{n}_A"), "value": "x"},
                            {"key": format!("W{w}_{n}_B"), "value": "y"},
                        ]});
                        let answer = api.post(&url, body);
                        let after_delete = deleted_at.lock().unwrap().is_some_and(|d| started > d);
                        match answer.0.as_u16() {
                            200 => _ = landed.fetch_add(1, Ordering::SeqCst),
                            404 => not_found += 1,
                            _ => {}
                        }
                        answers.push((after_delete, answer));
                        if not_found >= 3 {
                            break;
                        }
                    }
                    answers
                })
            })
            .collect();
        // Delete once writes are landing, at a different moment each attempt.
        let waiting = Instant::now();
        while landed.load(Ordering::SeqCst) < 2 * WRITERS {
            assert!(
                waiting.elapsed() < Duration::from_secs(30),
                "no write lands"
            );
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(30 + 70 * attempt));
        let (status, body) = admin.delete(&format!("/v1/environments/{env_id}/"));
        assert_eq!(status, 204, "{body}");
        *deleted_at.lock().unwrap() = Some(Instant::now());
        let mut acknowledged = Vec::new();
        let missing = format!("Environment '{env_id}' not found in App {app_id}");
        for writer in writers {
            for (after_delete, answer) in writer.join().expect("writer") {
                if answer.0 == 200 {
                    assert!(
                        !after_delete,
                        "a write sent after the delete succeeded: {}",
                        answer.1
                    );
                    acknowledged.extend(
                        answer
                            .1
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|s| s["id"].as_str().unwrap().to_string()),
                    );
                } else {
                    // Refused when the route looks the environment up, or (if the
                    // delete lands in between) inside the store's transaction: the
                    // same answer either way.
                    assert_error(&answer, 404, &missing, "environment_not_found");
                }
            }
        }
        assert!(
            !acknowledged.is_empty(),
            "no write landed before the delete"
        );
        // The environment and everything written into it are gone.
        assert_error(&admin.get(&path), 404, &missing, "environment_not_found");
        let update = admin.put(
            &path,
            json!({"secrets": [{"id": acknowledged[0], "value": "z"}]}),
        );
        assert_error(&update, 404, &missing, "environment_not_found");
        assert_eq!(stored_secret_records(&admin), 2, "orphaned secret records");
        let (status, again) = admin.post(
            &format!("/v1/environments/?app_id={app_id}"),
            json!({"name": "doomed"}),
        );
        assert_eq!(status, 201, "{again}");
        let fresh = admin.get(&secrets_path(&app_id, "Doomed"));
        assert_eq!(
            secret_list(&fresh).len(),
            0,
            "a new environment of the same name is empty"
        );
        // Nothing comes back after a restart either.
        server.restart();
        let admin_after = server.admin();
        assert_eq!(
            stored_secret_records(&admin_after),
            2,
            "orphans after a restart"
        );
        let fresh = admin_after.get(&secrets_path(&app_id, "Doomed"));
        assert_eq!(secret_list(&fresh).len(), 0);
        let (status, body) = admin_after.delete(&format!(
            "/v1/environments/{}/",
            again["id"].as_str().unwrap()
        ));
        assert_eq!(status, 204, "{body}");
        assert_eq!(secret_list(&admin_after.get(&keep)).len(), 2);
    }
}
