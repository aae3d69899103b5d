//! A real etcd cluster on loopback: three members, each its own process with its own
//! data directory, that the tests kill and start again.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The limits members run with unless told otherwise: what a 1,000-entry batch needs
/// (README.md, "Several nodes on etcd").
pub const BATCH_LIMITS: &[&str] = &["--max-txn-ops", "8192", "--max-request-bytes", "8388608"];

/// One member: its ports, and its process while it runs.
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    process: Option<Child>,
}

/// A cluster of members on loopback, stopped and removed when dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    limits: Vec<String>,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl EtcdCluster {
    /// Starts `size` members with [`BATCH_LIMITS`] and waits until the cluster has a
    /// leader.
    pub fn start(size: usize) -> EtcdCluster {
        Self::start_with(size, BATCH_LIMITS)
    }

    /// Starts `size` members with the given limit flags (none: etcd's defaults).
    pub fn start_with(size: usize, limits: &[&str]) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                data_dir: dir.path().join(format!("m{i}")),
                process: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token: format!("coffer-cluster-{}", uuid::Uuid::new_v4()),
            limits: limits.iter().map(|flag| flag.to_string()).collect(),
            _dir: dir,
        };
        for i in 0..size {
            cluster.start_member(i);
        }
        cluster.until_healthy(Duration::from_secs(30));
        cluster
    }

    /// The client URLs, comma-separated (`--etcd-endpoints`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts member `i` (again: a restarted member rejoins with its data directory).
    pub fn start_member(&mut self, i: usize) {
        let initial_cluster = self.initial_cluster.clone();
        let token = self.token.clone();
        let limits = self.limits.clone();
        let member = &mut self.members[i];
        assert!(member.process.is_none(), "member {i} is running");
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let process = Command::new("etcd")
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&member.data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            .args(&limits)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start etcd ({e}): the cluster tests need etcd 3.4 on PATH")
            });
        member.process = Some(process);
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill_member(&mut self, i: usize) {
        let mut process = self.members[i].process.take().expect("member running");
        process.kill().expect("SIGKILL");
        process.wait().expect("wait for etcd");
    }

    fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client")
    }

    /// Whether member `i` answers its health check (it is part of a cluster with a
    /// leader).
    fn healthy(&self, i: usize) -> bool {
        let url = format!("http://127.0.0.1:{}/health", self.members[i].client_port);
        self.client()
            .get(url)
            .send()
            .and_then(|r| r.json::<Value>())
            .is_ok_and(|health| health["health"] == "true")
    }

    /// Waits until every running member is healthy.
    pub fn until_healthy(&self, within: Duration) {
        let deadline = Instant::now() + within;
        let running: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].process.is_some())
            .collect();
        while !running.iter().all(|i| self.healthy(*i)) {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The member that leads the cluster now (asked of the running members).
    pub fn leader(&self) -> usize {
        for member in self.members.iter().filter(|m| m.process.is_some()) {
            let url = format!(
                "http://127.0.0.1:{}/v3/maintenance/status",
                member.client_port
            );
            let Ok(status) = self
                .client()
                .post(url)
                .body("{}")
                .send()
                .and_then(|r| r.json::<Value>())
            else {
                continue;
            };
            let (Some(me), Some(leader)) = (
                status["header"]["member_id"].as_str(),
                status["leader"].as_str(),
            ) else {
                continue;
            };
            if me == leader {
                return self
                    .members
                    .iter()
                    .position(|m| m.name == member.name)
                    .unwrap();
            }
        }
        panic!("no running member leads the cluster");
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut process) = member.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }
}
