//! `coffer rekey`: the master key of a stopped server rotated, the rotation killed with
//! SIGKILL at each of its steps and at random moments, then run again. At every crash
//! point the data directory's own `master.key` opens the store; after the re-run only the
//! new key does, and every secret, version and token is served as before.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;

use super::*;
use crate::common::*;

/// The steps `rekey` can be stopped after (`COFFER_FAULT_REKEY_PAUSE_AT`).
const STEPS: [&str; 5] = [
    "opened",
    "staged",
    "key-file-written",
    "key-file-replaced",
    "committed",
];

/// Whether `key` (or, with `None`, `<dir>/master.key`) opens the store in `dir`.
fn opens_with(dir: &Path, key: Option<&Path>) -> bool {
    let mut args = vec!["audit", "verify", "--data-dir", arg(dir)];
    if let Some(key) = key {
        args.extend(["--master-key-file", arg(key)]);
    }
    let out = coffer(None, None, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("wrong master key"),
        "refused for another reason: {stderr}"
    );
    out.status.success()
}

/// A `coffer rekey` of `dir` to `new` (with its own key file), with `extra` environment.
fn rekey_command(dir: &Path, new: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
    command
        .args([
            "rekey",
            "--data-dir",
            arg(dir),
            "--new-master-key-file",
            arg(new),
        ])
        .env_remove("COFFER_MASTER_KEY_FILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs `rekey` until it says it paused at `step`, then kills it with SIGKILL.
fn kill_rekey_at(dir: &Path, new: &Path, step: &str) {
    let mut child = rekey_command(dir, new, &[("COFFER_FAULT_REKEY_PAUSE_AT", step)])
        .spawn()
        .expect("spawn coffer rekey");
    let stderr = child.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut paused = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        paused = line.contains(&format!("rekey paused at {step}"));
        said.push(line);
        if paused {
            child.kill().expect("SIGKILL");
            break;
        }
    }
    child.wait().unwrap();
    assert!(paused, "rekey did not pause at {step}: {}", said.join("\n"));
}

/// A stopped server's data directory with the shop in it: the server (stopped), the
/// shop, what it served, and a copy of its first master key.
fn stopped_shop(work: &Path) -> (Server, Shop, Value, std::path::PathBuf) {
    let mut server = Server::start();
    let shop = Shop::stock(&server);
    let served = shop.served(&server, &server.admin_token);
    assert!(server.stop().success());
    let old = work.join("old.key");
    std::fs::copy(server.data_dir().join("master.key"), &old).unwrap();
    (server, shop, served, old)
}

/// After a finished rotation: only the new key opens the store, `master.key` holds it,
/// the server serves the same shop, and the chain holds one `store.rekey` and verifies.
fn assert_rotated(server: &mut Server, shop: &Shop, served: &Value, old: &Path, new: &Path) {
    let dir = server.data_dir().to_path_buf();
    assert!(
        !opens_with(&dir, Some(old)),
        "the old key no longer opens the store"
    );
    assert!(opens_with(&dir, Some(new)));
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key")).unwrap(),
        std::fs::read_to_string(new).unwrap()
    );
    server.start_again();
    assert_eq!(&shop.served(server, &server.admin_token), served);
    let chain = audit_chain(server, &server.admin_token);
    let rekeys: Vec<_> = chain
        .iter()
        .filter(|e| e["action"] == "store.rekey")
        .collect();
    assert_eq!(rekeys.len(), 1, "{rekeys:?}");
    assert!(server.stop().success());
    let verified = succeeded(&coffer(
        None,
        None,
        &["audit", "verify", "--data-dir", arg(&dir)],
    ));
    assert!(verified.starts_with("audit chain intact"), "{verified}");
}

#[test]
fn rekey_killed_at_each_step_and_run_again_ends_with_the_new_key_only() {
    for step in STEPS {
        let work = tempfile::tempdir().unwrap();
        let (mut server, shop, served, old) = stopped_shop(work.path());
        let new = new_key_file(&work.path().join("new.key"));
        let dir = server.data_dir().to_path_buf();
        kill_rekey_at(&dir, &new, step);

        assert!(opens_with(&dir, None), "{step}: master.key opens the store");
        let (by_old, by_new) = (opens_with(&dir, Some(&old)), opens_with(&dir, Some(&new)));
        let expected = match step {
            "opened" => (true, false),
            "committed" => (false, true),
            _ => (true, true),
        };
        assert_eq!((by_old, by_new), expected, "{step}: (old opens, new opens)");
        if step == "staged" {
            // A server started meanwhile runs, and says the rotation is unfinished.
            let mut meanwhile = Server::start_on(&dir, &[]);
            assert!(
                meanwhile
                    .logs()
                    .contains("a master key rotation did not finish"),
                "{}",
                meanwhile.logs()
            );
            assert_eq!(meanwhile.client(None).get("/health").0, 200);
            assert!(meanwhile.stop().success());
        }

        let out = succeeded(&coffer(
            None,
            None,
            &[
                "rekey",
                "--data-dir",
                arg(&dir),
                "--new-master-key-file",
                arg(&new),
            ],
        ));
        if step == "committed" {
            assert!(out.starts_with("nothing to do"), "{step}: {out}");
        } else {
            assert!(out.starts_with("master key rotated"), "{step}: {out}");
        }
        assert_rotated(&mut server, &shop, &served, &old, &new);
    }
}

#[test]
fn rekey_killed_at_random_moments_leaves_a_store_that_opens_and_a_rerun_finishes() {
    let work = tempfile::tempdir().unwrap();
    let (mut server, shop, served, old) = stopped_shop(work.path());
    let new = new_key_file(&work.path().join("new.key"));
    let dir = server.data_dir().to_path_buf();
    let mut rng = rand::thread_rng();
    for _ in 0..8 {
        let mut child = rekey_command(&dir, &new, &[]).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..60_000)));
        let _ = child.kill();
        child.wait().unwrap();
        assert!(opens_with(&dir, None), "master.key opens the store");
        assert!(opens_with(&dir, Some(&old)) || opens_with(&dir, Some(&new)));
    }
    succeeded(&coffer(
        None,
        None,
        &[
            "rekey",
            "--data-dir",
            arg(&dir),
            "--new-master-key-file",
            arg(&new),
        ],
    ));
    assert_rotated(&mut server, &shop, &served, &old, &new);
}

#[test]
fn rekey_with_a_key_file_outside_the_data_directory() {
    let work = tempfile::tempdir().unwrap();
    let key = new_key_file(&work.path().join("old.key"));
    let mut server = Server::start_with(&["--master-key-file", arg(&key)]);
    let shop = Shop::stock(&server);
    let served = shop.served(&server, &server.admin_token);
    assert!(server.stop().success());
    let new = new_key_file(&work.path().join("new.key"));
    let dir = server.data_dir().to_path_buf();
    let out = succeeded(&coffer(
        None,
        None,
        &[
            "rekey",
            "--data-dir",
            arg(&dir),
            "--master-key-file",
            arg(&key),
            "--new-master-key-file",
            arg(&new),
        ],
    ));
    assert!(
        out.contains("start the server with --master-key-file"),
        "{out}"
    );
    assert!(
        !dir.join("master.key").exists(),
        "no key file put in the data directory"
    );
    assert!(!opens_with(&dir, Some(&key)));
    let copy = Server::start_on(&dir, &["--master-key-file", arg(&new)]);
    assert_eq!(shop.served(&copy, &server.admin_token), served);
}

#[test]
fn rekey_refuses_a_running_server_and_a_key_that_does_not_open_the_store() {
    let work = tempfile::tempdir().unwrap();
    let mut server = Server::start();
    Shop::stock(&server);
    let new = new_key_file(&work.path().join("new.key"));
    let dir = server.data_dir().to_path_buf();
    let running = [
        "rekey",
        "--data-dir",
        arg(&dir),
        "--new-master-key-file",
        arg(&new),
    ];
    let stderr = failed(&coffer(None, None, &running));
    assert!(
        stderr.contains("is in use by a running server: stop it first"),
        "{stderr}"
    );
    assert!(server.stop().success());
    assert!(opens_with(&dir, None));
    assert!(!opens_with(&dir, Some(&new)), "nothing was rotated");

    let wrong = new_key_file(&work.path().join("wrong.key"));
    let stderr = failed(&coffer(
        None,
        None,
        &[
            "rekey",
            "--data-dir",
            arg(&dir),
            "--master-key-file",
            arg(&wrong),
            "--new-master-key-file",
            arg(&new),
        ],
    ));
    assert!(
        stderr.contains("neither the current master key nor the new one opens"),
        "{stderr}"
    );
    let empty = work.path().join("empty");
    let stderr = failed(&coffer(
        None,
        None,
        &[
            "rekey",
            "--data-dir",
            arg(&empty),
            "--new-master-key-file",
            arg(&new),
        ],
    ));
    assert!(stderr.contains("holds no Coffer store"), "{stderr}");
    assert!(!empty.exists(), "nothing created");
}
