//! Crash safety (DESIGN.md, "Durability"): a write is acknowledged only once it is on
//! disk. A child process — this test binary, re-executed — writes from several threads
//! and prints a line per acknowledged write; the parent kills it with SIGKILL at a
//! random moment, reopens the store and finds every acknowledged write, intact.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use coffer_store::{NewApp, OpenError, SecretFilter, SecretUpdate, Store, StoreConfig, StoreError};
use common::{me, secret, update};
use rand::Rng;
use uuid::Uuid;

const CHILD_DIR: &str = "COFFER_CRASH_CHILD_DIR";
const CHILD_ENV: &str = "COFFER_CRASH_CHILD_ENV";
const CHILD_ROUND: &str = "COFFER_CRASH_CHILD_ROUND";
const WRITER_THREADS: usize = 4;
const ROUNDS: usize = 6;

/// The value a secret holds at a version, so any version found can be checked.
fn value_of(key: &str, version: u64) -> String {
    format!("{key}@{version}:{}", "x".repeat(200))
}

/// The child: writes until killed. Not a test of its own; does nothing unless started
/// by `every_acknowledged_write_survives_sigkill`.
#[test]
#[ignore = "child process of the crash test, started by it"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let env: Uuid = std::env::var(CHILD_ENV).unwrap().parse().unwrap();
    let round: usize = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let store = Store::open(&StoreConfig::new(dir)).unwrap();
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    say("READY".into());
    std::thread::scope(|scope| {
        for t in 0..WRITER_THREADS {
            let (store, say) = (&store, &say);
            scope.spawn(move || {
                let mut previous: Option<(Uuid, String, u64)> = None;
                for i in 0.. {
                    let key = format!("R{round}_T{t}_{i}");
                    let created = store
                        .create_secrets(&me(), env, vec![secret(&key, &value_of(&key, 1))])
                        .unwrap();
                    say(format!("ACK {} {key} 1", created[0].id));
                    if let Some((id, key, version)) = previous.take().filter(|_| i % 2 == 0) {
                        let next = version + 1;
                        store
                            .update_secrets(
                                &me(),
                                env,
                                vec![SecretUpdate {
                                    value: Some(value_of(&key, next)),
                                    expected_version: Some(version),
                                    ..update(id)
                                }],
                            )
                            .unwrap();
                        say(format!("ACK {id} {key} {next}"));
                    }
                    previous = Some((created[0].id, key, 1));
                }
            });
        }
    });
}

/// Runs one child on `dir` for a random while, kills it, and returns its acknowledgements.
fn run_and_kill(dir: &Path, env: Uuid, round: usize) -> Vec<(Uuid, String, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir)
        .env(CHILD_ENV, env.to_string())
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // Only complete lines count: a line cut by the kill was never acknowledged.
        while stdout.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
            if lines_tx.send(line.trim_end().to_owned()).is_err() {
                break;
            }
            line.clear();
        }
    });
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the child starts and says READY");
        // The test harness may have started the line ("test crash_child ... ").
        if line.ends_with("READY") {
            break;
        }
    }
    if round == 0 {
        // While the child holds the directory, no other process may open it.
        assert!(matches!(
            Store::open(&StoreConfig::new(dir)),
            Err(OpenError::Locked(_))
        ));
    }
    let delay = rand::thread_rng().gen_range(50..400);
    std::thread::sleep(Duration::from_millis(delay));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    lines
        .try_iter()
        .filter_map(|line| {
            let mut parts = line.split_once("ACK ")?.1.split(' ');
            let id = parts.next()?.parse().ok()?;
            let key = parts.next()?.to_owned();
            let version = parts.next()?.parse().ok()?;
            Some((id, key, version))
        })
        .collect()
}

#[test]
fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let env = {
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        let (_, envs) = store
            .create_app(
                &me(),
                NewApp {
                    name: "crash".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        envs[0].id
    };
    // Secret id -> (key, highest acknowledged version), over every round.
    let mut acked: BTreeMap<Uuid, (String, u64)> = BTreeMap::new();
    for round in 0..ROUNDS {
        let acks = run_and_kill(dir.path(), env, round);
        assert!(
            !acks.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        for (id, key, version) in acks {
            let entry = acked.entry(id).or_insert((key, version));
            entry.1 = entry.1.max(version);
        }

        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        for (id, (key, version)) in &acked {
            let found = store
                .get_secret(env, *id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged {key} lost: {e:?}"));
            assert_eq!(&found.key, key);
            // A write after the last acknowledged one may have landed too; never fewer.
            assert!(
                found.version >= *version,
                "{key}: v{} < acked v{version}",
                found.version
            );
            assert_eq!(found.value, value_of(key, found.version), "{key}");
        }
        let listed = store.list_secrets(env, &SecretFilter::default()).unwrap();
        let keys: BTreeSet<&str> = listed.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys.len(), listed.len(), "one live secret per key");
        assert!(listed.len() >= acked.len());
        // The uniqueness index came through the crash with the records.
        for (key, _) in acked.values().take(20) {
            assert!(matches!(
                store.create_secrets(&me(), env, vec![secret(key, "again")]),
                Err(StoreError::DuplicateSecret)
            ));
        }
        let verified = store.verify_audit().unwrap();
        assert!(verified.intact(), "round {round}: {verified:?}");
    }
}
