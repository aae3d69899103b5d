//! Network access policies: per-token `allowedIps`, the global `--allowed-ips`, their
//! union, CIDR edges, IPv6, and which forwarded headers are believed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::support::*;
use crate::common::*;

/// A service token of `app_id` (Development, read) limited to `allowed`.
fn limited_token(admin: &Api, app_id: &str, allowed: &[&str]) -> String {
    let (_, token) = create_token(
        admin,
        json!({"name": "limited", "type": "service", "appId": app_id,
               "environments": ["Development"], "permissions": ["read"],
               "allowedIps": allowed}),
    );
    token
}

#[test]
fn token_allowlists_decide_for_the_tcp_peer() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "net");
    let path = secrets_path(&app_id, "Development");
    for allowed in [
        &["127.0.0.1"][..],
        &["127.0.0.1/32"],
        &["127.0.0.0/8"],
        &["10.0.0.0/8", "127.0.0.1"],
    ] {
        let client = server.client(service_header(&limited_token(&admin, &app_id, allowed)));
        assert_eq!(client.get(&path).0, 200, "{allowed:?}");
    }
    for refused in [
        &["10.0.0.0/8"][..],
        &["127.0.0.2"],
        &["::1"],
        &["126.255.255.255/32"],
    ] {
        let client = server.client(service_header(&limited_token(&admin, &app_id, refused)));
        assert_denied(&client.get(&path), IP_REFUSED);
        // The policy comes before the scope checks: nothing else is revealed.
        assert_denied(
            &client.get(&secrets_path(&app_id, "Production")),
            IP_REFUSED,
        );
        assert_denied(&client.get("/v1/apps/"), IP_REFUSED);
    }
    // The refusal is an authenticated one: revoking still wins over it.
    let (id, token) = create_token(
        &admin,
        json!({"name": "x", "type": "service", "appId": app_id,
               "environments": ["Development"], "allowedIps": ["10.0.0.0/8"]}),
    );
    assert_eq!(admin.delete(&format!("/v1/tokens/{id}/")).0, 204);
    assert_denied(&server.client(service_header(&token)).get(&path), GONE);
}

#[test]
fn cidr_edges_through_a_trusted_proxy() {
    let server = Server::start_with(&["--trusted-proxies", "127.0.0.1/32"]);
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "edges");
    let path = secrets_path(&app_id, "Development");
    let token = limited_token(
        &admin,
        &app_id,
        &[
            "192.168.10.0/30",
            "10.9.8.7/32",
            "2001:db8::/126",
            "172.16.5.9",
        ],
    );
    let client = server.client(service_header(&token));
    let allowed = [
        "192.168.10.0",
        "192.168.10.3",
        "10.9.8.7",
        "172.16.5.9",
        "2001:db8::",
        "2001:db8::3",
        // The nearest untrusted hop decides; hops left of it are the client's to forge.
        "10.0.0.1, 192.168.10.1",
        "192.168.10.2, 127.0.0.1",
    ];
    for client_ip in allowed {
        let answer = forwarded(&client, Method::GET, &path, None, client_ip);
        assert_eq!(answer.0, 200, "{client_ip}: {}", answer.1);
    }
    let refused = [
        "192.168.9.255",
        "192.168.10.4",
        "10.9.8.6",
        "10.9.8.8",
        "172.16.5.8",
        "2001:db8::4",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "192.168.10.1, 10.0.0.1",
    ];
    for client_ip in refused {
        let answer = forwarded(&client, Method::GET, &path, None, client_ip);
        assert_denied(&answer, IP_REFUSED);
    }
    // X-Real-IP is honoured from a trusted proxy too.
    for (real_ip, status) in [("192.168.10.2", 200), ("192.168.10.5", 403)] {
        let answer = client.send_raw(Method::GET, &path, None, &[("X-Real-IP", real_ip)]);
        assert_eq!(answer.0, status, "{real_ip}");
    }
    // Without a forwarded header the peer itself is the client.
    assert_denied(&client.get(&path), IP_REFUSED);
}

#[test]
fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "spoof");
    let path = secrets_path(&app_id, "Development");
    // They cannot open a door…
    let remote_only = server.client(service_header(&limited_token(
        &admin,
        &app_id,
        &["10.1.2.3"],
    )));
    assert_denied(
        &forwarded(&remote_only, Method::GET, &path, None, "10.1.2.3"),
        IP_REFUSED,
    );
    let real_ip = [("X-Real-IP", "10.1.2.3")];
    assert_denied(
        &remote_only.send_raw(Method::GET, &path, None, &real_ip),
        IP_REFUSED,
    );
    // …nor close one.
    let local_only = server.client(service_header(&limited_token(
        &admin,
        &app_id,
        &["127.0.0.1"],
    )));
    assert_eq!(
        forwarded(&local_only, Method::GET, &path, None, "10.1.2.3").0,
        200
    );
    assert_eq!(
        local_only.send_raw(Method::GET, &path, None, &real_ip).0,
        200
    );
    // And the audit log records the peer, not the header.
    let (_, audit) = admin.get(&format!("/v1/audit/?app_id={app_id}"));
    let last = audit["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "secret.read");
    assert_eq!(last["ip"], "127.0.0.1");
}

#[test]
fn global_allowlist_is_a_ceiling_that_token_lists_narrow_and_spares_operations() {
    let server = Server::start_with(&[
        "--allowed-ips",
        "10.0.0.0/8,2001:db8::1",
        "--trusted-proxies",
        "127.0.0.1/32",
    ]);
    let admin = server.admin();
    // The admin token has no list of its own: only the global ranges admit it.
    assert_denied(&admin.get("/v1/apps/"), IP_REFUSED);
    assert_denied(
        &forwarded(&admin, Method::GET, "/v1/apps/", None, "192.168.1.5"),
        IP_REFUSED,
    );
    assert_eq!(
        forwarded(&admin, Method::GET, "/v1/apps/", None, "2001:db8::1").0,
        200
    );
    let body = json!({"name": "ceiling"});
    let (status, app) = forwarded(&admin, Method::POST, "/v1/apps/", Some(&body), "10.0.0.1");
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_str().unwrap();
    let token_body = json!({"name": "branch", "type": "service", "appId": app_id,
                            "environments": ["Development"],
                            "allowedIps": ["10.20.0.0/16", "192.168.1.0/24", "2001:db8::/64"]});
    let (status, created) = forwarded(
        &admin,
        Method::POST,
        "/v1/tokens/",
        Some(&token_body),
        "10.0.0.1",
    );
    assert_eq!(status, 201, "{created}");
    let branch = server.client(service_header(created["token"].as_str().unwrap()));
    let path = secrets_path(app_id, "Development");
    for (client_ip, status) in [
        ("10.20.30.40", 200), // inside both lists
        ("2001:db8::1", 200), // inside both lists, IPv6
        ("10.30.0.1", 403),   // the global list only
        ("192.168.1.5", 403), // the token's list only: the global list is a ceiling
        ("2001:db8::2", 403), // the token's list only
        ("172.16.0.1", 403),  // neither
    ] {
        let answer = forwarded(&branch, Method::GET, &path, None, client_ip);
        assert_eq!(answer.0, status, "{client_ip}: {}", answer.1);
        if status == 403 {
            assert_denied(&answer, IP_REFUSED);
        }
    }
    assert_denied(&branch.get(&path), IP_REFUSED);

    // /health and /metrics answer whatever the client's address.
    let anyone = server.client(None);
    for client_ip in [None, Some("172.16.0.1")] {
        let headers: Vec<(&str, &str)> = client_ip
            .map(|ip| ("X-Forwarded-For", ip))
            .into_iter()
            .collect();
        let (status, health) = anyone.send_raw(Method::GET, "/health", None, &headers);
        assert_eq!(
            (status.as_u16(), health),
            (
                200,
                json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
            )
        );
        let (status, metrics) = anyone.send_raw(Method::GET, "/metrics", None, &headers);
        assert_eq!(status, 200);
        assert!(
            metrics.as_str().is_some_and(|m| m.contains("# TYPE")),
            "{metrics}"
        );
    }
}

#[test]
fn operations_routes_ignore_token_policies_too() {
    let server = Server::start_with(&["--allowed-ips", "10.0.0.0/8"]);
    let anyone = server.client(None);
    assert_eq!(anyone.get("/health").0, 200);
    assert_eq!(anyone.get("/metrics").0, 200);
    // Even a token-bearing request to /health is not checked.
    let refused = server.client(Some(format!("Bearer User {}", server.admin_token)));
    assert_eq!(refused.get("/health").0, 200);
    assert_denied(&refused.get("/v1/apps/"), IP_REFUSED);
}

/// `coffer serve` on an IPv6 loopback socket (the harness binds 127.0.0.1, and
/// `--bind` may be given only once).
struct Ipv6Server {
    child: Child,
    base: String,
    admin_token: String,
    _dir: tempfile::TempDir,
}

impl Ipv6Server {
    fn start(extra: &[&str]) -> Ipv6Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--bind", "[::1]:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coffer");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut base, mut admin_token) = (String::new(), String::new());
        while base.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("coffer did not start on [::1]");
            if let Some(token) = line.strip_prefix("Admin token: ") {
                admin_token = token.trim().to_string();
            }
            if let Some(addr) = line.strip_prefix("Coffer listening on ") {
                base = addr.trim().to_string();
            }
        }
        Ipv6Server {
            child,
            base,
            admin_token,
            _dir: dir,
        }
    }

    fn client(&self, authorization: Option<String>) -> Api {
        Api {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: self.base.clone(),
            authorization,
        }
    }
}

impl Drop for Ipv6Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ipv6_clients_meet_ipv6_rules() {
    let server = Ipv6Server::start(&[]);
    assert!(server.base.starts_with("http://[::1]:"), "{}", server.base);
    let admin = server.client(Some(format!("Bearer User {}", server.admin_token)));
    let (app_id, _) = create_app(&admin, "six");
    let path = secrets_path(&app_id, "Development");
    for (allowed, status) in [
        (&["::1"][..], 200),
        (&["::1/128"], 200),
        (&["::/0"], 200),
        (&["10.0.0.0/8", "::1"], 200),
        (&["2001:db8::/32"], 403),
        (&["::2"], 403),
        (&["127.0.0.1"], 403),
        (&["0.0.0.0/0"], 403),
    ] {
        let client = server.client(service_header(&limited_token(&admin, &app_id, allowed)));
        let answer = client.get(&path);
        assert_eq!(answer.0, status, "{allowed:?}: {}", answer.1);
        if status == 403 {
            assert_denied(&answer, IP_REFUSED);
        }
    }
    let (_, audit) = admin.get(&format!("/v1/audit/?app_id={app_id}"));
    let last = audit["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ip"], "::1", "{last}");

    // A global IPv6 allowlist.
    let server = Ipv6Server::start(&["--allowed-ips", "fd00::/8"]);
    let admin = server.client(Some(format!("Bearer User {}", server.admin_token)));
    assert_denied(&admin.get("/v1/apps/"), IP_REFUSED);
    assert_eq!(server.client(None).get("/health").0, 200);
}
