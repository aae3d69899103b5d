//! Records at rest over the real server: a token record edited on disk (a service token
//! turned into a user token, a revoked token un-revoked) is refused with a 500 after a
//! restart, never served with the forged rights; the data directory is private to its
//! owner whatever the umask; a master key file open to others stops `coffer serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::common::*;

/// Opens the stopped server's sled database directly, as an attacker with disk access
/// would (sled releases its lock a moment after the process exits).
fn open_raw_sled(data_dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(data_dir.join("db")) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("opening the raw database: {e}"),
        }
    }
}

/// Length of the tag after every stored value.
const TAG_LEN: usize = 32;

/// Rewrites the token record `id` with `edit` applied to its bytes (the tag left as is).
fn edit_token_record(data_dir: &Path, id: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let db = open_raw_sled(data_dir);
    let tokens = db.open_tree("tokens").unwrap();
    let key = uuid::Uuid::parse_str(id).unwrap();
    let mut value = tokens.get(key.as_bytes()).unwrap().unwrap().to_vec();
    edit(&mut value);
    tokens.insert(key.as_bytes(), value).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_token_record_edited_on_disk_is_refused_never_served() {
    let mut server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let name = "deployer-at-rest";
    let (service_id, service_token) = create_token(
        &admin,
        json!({"name": name, "type": "service", "appId": app_id,
               "environments": ["Development"]}),
    );
    let (revoked_id, revoked_token) = create_token(&admin, json!({"name": "gone", "type": "user"}));
    assert_eq!(
        admin
            .delete(&format!("/v1/tokens/{revoked_id}/"))
            .0
            .as_u16(),
        204
    );
    // Controls: the service token may not list tokens; the revoked one is refused.
    let as_service = server.client(Some(format!("Bearer Service {service_token}")));
    assert_eq!(as_service.get("/v1/tokens/").0.as_u16(), 403);
    let as_revoked = server.client(Some(format!("Bearer User {revoked_token}")));
    assert_eq!(as_revoked.get("/v1/tokens/").0.as_u16(), 403);
    server.stop();

    // The service token becomes a user token: bincode puts the kind (a u32 variant
    // index, User = 0, Service = 1) right after the name.
    edit_token_record(server.data_dir(), &service_id, |value| {
        let at = value
            .windows(name.len())
            .position(|w| w == name.as_bytes())
            .expect("the token's name is in its record")
            + name.len();
        assert_eq!(value[at..at + 4], [1, 0, 0, 0], "kind Service");
        value[at..at + 4].copy_from_slice(&[0, 0, 0, 0]);
    });
    // The revoked token is un-revoked: `revoked` is the record's last byte.
    edit_token_record(server.data_dir(), &revoked_id, |value| {
        let at = value.len() - TAG_LEN - 1;
        assert_eq!(value[at], 1, "revoked");
        value[at] = 0;
    });
    server.start_again();

    for (who, authorization) in [
        (
            "service token forged into a user token",
            format!("Bearer User {service_token}"),
        ),
        (
            "revoked token un-revoked",
            format!("Bearer User {revoked_token}"),
        ),
    ] {
        let client = server.client(Some(authorization));
        let (status, body) = client.get("/v1/tokens/");
        assert_eq!(status.as_u16(), 500, "{who}: {body}");
    }
    let logs = server.logs();
    assert!(
        logs.contains("record in tree 'tokens' failed authentication"),
        "the refusal is logged:\n{logs}"
    );
    assert!(!logs.contains(&service_token) && !logs.contains(&revoked_token));
    // Records that were not touched are served as before.
    assert_eq!(server.admin().get("/v1/apps/").0.as_u16(), 200);
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn a_fresh_data_directory_under_umask_022_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `sh -c 'umask 022; exec coffer ...'`: the umask of an ordinary login shell.
    let script = format!(
        "umask 022; exec '{}' init --data-dir '{}'",
        env!("CARGO_BIN_EXE_coffer"),
        data.display()
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "coffer init: {status}");
    assert!(data.join("db").is_dir(), "control: the store was written");
    assert_private(&data);
}

#[test]
fn a_master_key_file_readable_by_others_stops_serve_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = dir.path().join("master.key");
    std::fs::write(&key, hex::encode([0x5a; 32])).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .arg("--master-key-file")
        .arg(&key)
        .args(["--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let line = format!(
        "master key file {0} is accessible by group or others (mode 0644); run chmod 600 {0}",
        key.display()
    );
    assert!(stderr.contains(&line), "{stderr}");
    assert!(!stderr.contains("listening"), "{stderr}");
    assert!(
        !stderr.contains(&hex::encode([0x5a; 32])),
        "no key in the output"
    );
}
