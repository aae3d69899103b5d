//! A full disk: the data directory on a small tmpfs, filled up by a filler file. Writes
//! that cannot be stored answer 503 with the error body; reads still answer while their
//! audit entries fit the held queue (`/health` says `degraded`), then 503 (`/health`
//! 503); once the filler is deleted, writing resumes by itself, the held entries are
//! written in order, nothing acknowledged is lost, and the audit chain verifies.
//!
//! Mounting needs root: the test is `#[ignore]`d so that `cargo test --workspace` runs
//! anywhere, and `.ci/run` runs it (`cargo test --test e2e -- --ignored disk_full`).
//! If the mount fails, the test fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

/// Entries the server may hold: small, so that the test reaches the bound.
const HELD_READS: usize = 40;

/// A size-limited tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed (this test needs root): {status}"
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk: writes until the file system refuses.
fn fill(path: &Path) -> PathBuf {
    let filler = path.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    // Byte by byte to the last one.
    while file.write_all(&[0]).is_ok() {}
    let _ = file.sync_all();
    filler
}

fn health(server: &Server) -> (u16, Value) {
    let (status, body) = server.client(None).get("/health");
    (status.as_u16(), body)
}

#[test]
#[ignore = "mounts a tmpfs: needs root; run by .ci/run"]
fn disk_full_refuses_writes_keeps_reads_and_resumes_when_space_returns() {
    let disk = SmallDisk::mount(48);
    let data = disk.path().join("data");
    let mut server = Server::start_on(&data, &["--held-reads", &HELD_READS.to_string()]);
    let admin = server.admin();
    let (app, _) = create_app(&admin, "full");
    let path = secrets_path(&app, "Development");
    let mut acknowledged: Vec<String> = Vec::new();
    let mut create = |n: usize| -> (u16, Value) {
        let key = format!("K{n}");
        let (status, body) = admin.post(&path, json!({"secrets": [{"key": key, "value": "v"}]}));
        if status == 200 {
            acknowledged.push(key);
        }
        (status.as_u16(), body)
    };
    for n in 0..20 {
        assert_eq!(create(n).0, 200);
    }
    assert_eq!(health(&server).1["status"], "ok");

    let filler = fill(disk.path());
    // Writes that cannot be stored answer 503 with the error body.
    let mut n = 20;
    let refused = loop {
        let (status, body) = create(n);
        n += 1;
        if status != 200 {
            break (status, body);
        }
        assert!(n < 5000, "writes never failed on a full disk");
    };
    assert_eq!(
        refused,
        (
            503,
            json!({"error": "Service unavailable.", "code": "service_unavailable"})
        )
    );
    let (status, body) = create(n);
    assert_eq!(
        (status, &body["code"]),
        (503, &json!("service_unavailable"))
    );
    let (status, _) = admin.post("/v1/apps/", json!({"name": "never"}));
    assert_eq!(status, 503);
    assert_eq!(
        health(&server),
        (
            200,
            json!({"status": "degraded", "version": env!("CARGO_PKG_VERSION")})
        )
    );

    // Reads answer while their entries fit the held queue, then 503.
    let mut reads_answered = 0;
    loop {
        let (status, body) = admin.get(&path);
        match status.as_u16() {
            200 => {
                assert!(body.as_array().is_some_and(|s| !s.is_empty()), "{body}");
                reads_answered += 1;
            }
            503 => {
                assert_eq!(body["code"], "service_unavailable");
                break;
            }
            other => panic!("read answered {other}: {body}"),
        }
        assert!(
            reads_answered <= HELD_READS,
            "more reads answered than held"
        );
    }
    assert_eq!(reads_answered, HELD_READS);
    assert_eq!(health(&server).0, 503);
    assert_eq!(health(&server).1["status"], "unavailable");

    // Space returns: writing resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while health(&server).1["status"] != "ok" {
        assert!(
            Instant::now() < deadline,
            "did not recover: {}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..5 {
        assert_eq!(create(n).0, 200);
        n += 1;
    }
    assert_eq!(admin.get(&path).0, 200);

    // Nothing acknowledged is lost; every read answered has its entry, in order.
    let listed: Vec<String> = {
        let (status, body) = admin.get(&path);
        assert_eq!(status, 200);
        body.as_array()
            .expect("secrets")
            .iter()
            .map(|s| s["key"].as_str().unwrap().to_string())
            .collect()
    };
    for key in &acknowledged {
        assert!(listed.contains(key), "{key} acknowledged, then lost");
    }
    let entries = all_entries(&admin);
    assert!(entries.windows(2).all(|w| seq(&w[1]) == seq(&w[0]) + 1));
    let reads = entries
        .iter()
        .filter(|e| e["action"] == "secret.read")
        .count();
    assert_eq!(reads, reads_answered + 2, "every read answered is audited");

    server.restart();
    let admin = server.admin();
    let (status, body) = admin.get(&path);
    assert_eq!(status, 200);
    let count = body.as_array().expect("secrets").len();
    assert_eq!(count, acknowledged.len());
    assert!(server.stop().success());
    let (ok, said) = verify(&data);
    assert!(ok, "{said}");
    drop(disk);
}
