//! HTTPS with a certificate made at test time, and a clear, fast failure when the TLS
//! files are unusable.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::Certificate;
use serde_json::json;

use crate::common::*;

/// A self-signed certificate for localhost and 127.0.0.1, as (cert PEM, key PEM).
fn self_signed() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("self-signed certificate");
    (certified.cert.pem(), certified.key_pair.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = self_signed();
    let cert = write(dir.path(), "cert.pem", &cert_pem);
    let key = write(dir.path(), "key.pem", &key_pem);
    let server = Server::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let addr: SocketAddr = server.base.trim_start_matches("https://").parse().unwrap();

    // A client that trusts exactly this certificate, by IP and by name.
    let trusting = Client::builder()
        .add_root_certificate(Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let admin = Api {
        http: trusting.clone(),
        base: server.base.clone(),
        authorization: Some(format!("Bearer User {}", server.admin_token)),
    };
    assert_eq!(admin.get("/health").0, 200);
    let (app_id, _) = create_app(&admin, "secure");
    let path = secrets_path(&app_id, "Development");
    let (status, _) = admin.post(&path, json!({"secrets": [{"key": "TLS", "value": "on"}]}));
    assert_eq!(status, 200);
    let by_name = Api {
        base: format!("https://localhost:{}", addr.port()),
        ..admin.clone()
    };
    let (status, listed) = by_name.get(&path);
    assert_eq!(status, 200);
    assert_eq!(listed[0]["value"], "on");
    // Access control is the same over TLS.
    let anonymous = Api {
        authorization: None,
        ..admin.clone()
    };
    assert_eq!(anonymous.get(&path).0, 403);

    // A client that does not trust it refuses to talk; plain HTTP gets no answer.
    let untrusting = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let refused = untrusting.get(format!("{}/health", server.base)).send();
    assert!(refused.is_err(), "an unknown certificate was accepted");
    let plain = trusting
        .get(format!("http://{addr}/health"))
        .send()
        .map(|r| r.status());
    assert!(
        !matches!(plain, Ok(s) if s.is_success()),
        "plain HTTP answered: {plain:?}"
    );
}

/// Runs `coffer serve` expecting it to exit on its own within ten seconds.
fn serve_expecting_exit(data_dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .env_remove("COFFER_TLS_CERT")
        .env_remove("COFFER_TLS_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "coffer kept running with {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn unusable_tls_files_fail_fast_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert_pem, key_pem) = self_signed();
    let cert = write(dir.path(), "cert.pem", &cert_pem);
    let key = write(dir.path(), "key.pem", &key_pem);
    let missing = dir.path().join("missing.pem").to_str().unwrap().to_string();
    let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");

    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--tls-cert", &missing, "--tls-key", &key],
            &[&missing, "TLS"],
        ),
        (
            &["--tls-cert", &cert, "--tls-key", &missing],
            &[&missing, "TLS"],
        ),
        (
            &["--tls-cert", &garbage, "--tls-key", &key],
            &[&garbage, "certificate"],
        ),
        (
            &["--tls-cert", &cert, "--tls-key", &garbage],
            &[&garbage, "key"],
        ),
    ];
    for (args, mentions) in cases {
        let started = Instant::now();
        let out = serve_expecting_exit(&data, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} exited 0");
        assert!(started.elapsed() < Duration::from_secs(5), "slow failure");
        for word in mentions {
            assert!(
                stderr.contains(word),
                "{args:?}: stderr lacks {word:?}: {stderr}"
            );
        }
        assert!(!stderr.contains("Coffer listening"), "{stderr}");
    }
    // Half a pair is a usage error.
    let out = serve_expecting_exit(&data, &["--tls-cert", &cert]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
