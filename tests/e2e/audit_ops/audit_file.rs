//! `--audit-file`: one JSON line per audit entry, the same as `GET /v1/audit/` lists
//! them one to one, in the file by the time the request is answered, never holding a
//! value or token, and reopened by its path on SIGHUP (logrotate's rename-then-HUP).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::support::*;
use crate::common::*;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn the_audit_file_holds_every_entry_as_listed_and_is_reopened_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    let rotated = dir.path().join("audit.log.1");
    let mut server = Server::start_with(&["--audit-file", file.to_str().unwrap()]);
    let admin = server.admin();
    let (app, _) = create_app(&admin, "filed");
    let path = secrets_path(&app, "Development");
    const VALUE: &str = "never-in-the-audit-file-4e1f";
    for n in 0..3 {
        let (status, body) = admin.post(
            &path,
            json!({"secrets": [{"key": format!("K{n}"), "value": VALUE}]}),
        );
        assert_eq!(status, 200, "{body}");
        // Answered, so in the file already.
        let last = lines(&file).pop().expect("a line");
        assert_eq!(last["action"], "secret.create");
        assert_eq!(last["secretIds"][0], body[0]["id"]);
        assert_eq!(admin.get(&path).0, 200);
        assert_eq!(lines(&file).pop().unwrap()["action"], "secret.read");
    }
    let (_, token) = admin.post(
        "/v1/tokens/",
        json!({"name": "ci", "type": "service", "appId": app,
               "environments": ["Development"], "permissions": ["read"]}),
    );
    let token_secret = token["token"].as_str().expect("token").to_string();
    assert_eq!(all_entries(&admin), lines(&file));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(VALUE) && !text.contains(&token_secret));
    assert!(!text.contains(&server.admin_token));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Rotation: rename, SIGHUP, and the path is a new file from then on.
    std::fs::rename(&file, &rotated).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(Instant::now() < deadline, "not reopened: {}", server.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = lines(&rotated);
    let (status, _) = admin.post(&path, json!({"secrets": [{"key": "AFTER", "value": "v"}]}));
    assert_eq!(status, 200);
    assert_eq!(admin.get(&path).0, 200);
    let after = lines(&file);
    assert_eq!(after.len(), 2, "{after:#?}");
    assert_eq!(lines(&rotated), before, "the rotated file is left alone");
    let listed = all_entries(&admin);
    assert_eq!([before, after].concat(), listed);

    // Across a restart the file goes on where it was, still one line per entry.
    server.restart();
    let admin = server.admin();
    assert_eq!(admin.get(&path).0, 200);
    let all = [lines(&rotated), lines(&file)].concat();
    assert_eq!(all, all_entries(&admin));
    assert!(all.windows(2).all(|w| seq(&w[1]) == seq(&w[0]) + 1));
    assert!(server.stop().success());
    let (ok, said) = verify(&server.data_dir);
    assert!(ok, "{said}");
}
