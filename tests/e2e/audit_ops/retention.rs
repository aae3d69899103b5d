//! `--audit-retention`: entries older than the retention are trimmed in the background;
//! the chain verifies from the checkpoint where trimming stopped, a cursor before it is
//! 410, and tampering with the checkpoint or the entries after it is detected.

use std::time::{Duration, Instant};

use serde_json::json;

use super::support::*;
use crate::common::*;

/// Polls until the oldest listed entry is past `seq`.
fn until_trimmed_past(admin: &Api, seq_of_last_old: u64) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = all_entries(admin);
        if entries.first().is_some_and(|e| seq(e) > seq_of_last_old) {
            return entries;
        }
        assert!(Instant::now() < deadline, "not trimmed: {entries:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn old_entries_are_trimmed_and_the_chain_verifies_from_the_checkpoint() {
    let mut server = Server::start_with(&["--audit-retention", "1s"]);
    let admin = server.admin();
    let (app, _) = create_app(&admin, "kept");
    let path = secrets_path(&app, "Development");
    for n in 0..5 {
        let (status, body) = admin.post(
            &path,
            json!({"secrets": [{"key": format!("OLD_{n}"), "value": "v"}]}),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(admin.get(&path).0, 200);
    }
    let old = all_entries(&admin);
    let last_old = seq(old.last().unwrap());
    assert!(last_old >= 11, "{old:#?}");

    std::thread::sleep(Duration::from_millis(1200));
    let (status, body) = admin.post(&path, json!({"secrets": [{"key": "NEW", "value": "v"}]}));
    assert_eq!(status, 200, "{body}");
    let kept = until_trimmed_past(&admin, last_old);
    assert_eq!(seq(&kept[0]), last_old + 1, "{kept:#?}");
    assert_eq!(kept[0]["action"], "secret.create");
    // The first entry kept still names the hash of the last one trimmed.
    assert_eq!(kept[0]["prevHash"], old.last().unwrap()["hash"]);

    // A cursor into what was trimmed is gone; the oldest kept one answers.
    for gone in [0, 1, last_old] {
        let answer = admin.get(&format!("/v1/audit/?since={gone}"));
        assert_error(
            &answer,
            410,
            "The cursor points before the oldest retained entry.",
            "cursor_expired",
        );
    }
    let (status, page) = admin.get(&format!("/v1/audit/?since={}", last_old + 1));
    assert_eq!(status, 200);
    assert_eq!(page["data"][0], kept[0]);

    // The chain goes on from the checkpoint after a restart, with no gap.
    server.restart();
    let admin = server.admin();
    assert_eq!(admin.get(&path).0, 200);
    let after = all_entries(&admin);
    assert!(after.windows(2).all(|w| seq(&w[1]) == seq(&w[0]) + 1));
    assert!(server.stop().success());

    let dir = server.data_dir.clone();
    let (ok, said) = verify(&dir);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("verified from checkpoint {last_old}")),
        "{said}"
    );

    // An edited checkpoint fails its authentication.
    let mut checkpoint = None;
    edit_tree(&dir, "meta", |meta| {
        let stored = meta.get(CHECKPOINT).unwrap().expect("checkpoint");
        checkpoint = Some(stored.to_vec());
        let mut edited = stored.to_vec();
        edited[1] ^= 1;
        meta.insert(CHECKPOINT, edited).unwrap();
    });
    let (ok, said) = verify(&dir);
    assert!(!ok, "an edited checkpoint passed: {said}");
    assert!(said.contains("checkpoint failed authentication"), "{said}");

    // The checkpoint put back; an entry after it edited is detected at that entry.
    let checkpoint = checkpoint.unwrap();
    let first_kept = audit_key(last_old + 1);
    let mut original = None;
    edit_tree(&dir, "meta", |meta| {
        meta.insert(CHECKPOINT, checkpoint.clone()).unwrap();
    });
    assert!(verify(&dir).0);
    edit_tree(&dir, "audit", |audit| {
        let stored = audit.get(first_kept).unwrap().expect("first kept entry");
        original = Some(stored.to_vec());
        audit.remove(first_kept).unwrap();
    });
    let (ok, said) = verify(&dir);
    assert!(!ok, "a removed entry after the checkpoint passed: {said}");
    assert!(
        said.contains(&format!("broken at entry {}", last_old + 1)),
        "{said}"
    );

    // Without its checkpoint, a trimmed chain does not pass for a whole one.
    edit_tree(&dir, "audit", |audit| {
        audit.insert(first_kept, original.clone().unwrap()).unwrap();
    });
    edit_tree(&dir, "meta", |meta| {
        meta.remove(CHECKPOINT).unwrap();
    });
    let (ok, said) = verify(&dir);
    assert!(!ok, "a trimmed chain without its checkpoint passed: {said}");
    assert!(said.contains("broken at entry 1"), "{said}");
}

#[test]
fn a_bad_retention_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args([
            "serve",
            "--data-dir",
            "/nonexistent/never",
            "--audit-retention",
            "soon",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--audit-retention"), "{said}");
}
