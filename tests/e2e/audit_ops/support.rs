//! What the audit operations tests share: `coffer audit verify` on a stopped server's
//! data directory, and raw edits of its sled trees (an attacker with the files).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// `coffer audit verify` on a data directory; returns (success, stdout + stderr).
pub fn verify(data_dir: &Path) -> (bool, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .env_remove("COFFER_MASTER_KEY_FILE")
        .output()
        .expect("run coffer audit verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Opens a stopped server's sled database and lets `change` edit the tree `name`.
pub fn edit_tree(data_dir: &Path, name: &str, change: impl FnOnce(&sled::Tree)) {
    // sled releases its file lock a moment after the process exits (spacejam/sled#1289).
    let deadline = Instant::now() + Duration::from_secs(5);
    let db = loop {
        match sled::open(data_dir.join("db")) {
            Ok(db) => break db,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("open the data directory with sled: {e}"),
        }
    };
    let tree = db.open_tree(name).unwrap();
    change(&tree);
    tree.flush().unwrap();
    db.flush().unwrap();
}

/// Every audit entry `GET /v1/audit/` lists, walking its pages.
pub fn all_entries(admin: &Api) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut query = "limit=1000".to_string();
    loop {
        let (status, page) = admin.get(&format!("/v1/audit/?{query}"));
        assert_eq!(status, 200, "{page}");
        entries.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => query = format!("limit=1000&since={next}"),
            None => return entries,
        }
    }
}

/// The `seq` of an entry.
pub fn seq(entry: &Value) -> u64 {
    entry["seq"].as_u64().expect("seq")
}
