//! Two Coffer nodes on one etcd cluster, sharing a master key and a key prefix.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Api, Server};
use crate::etcd::EtcdCluster;

/// Node A (which initialised the store, and so printed its admin token) and node B.
pub struct Nodes {
    pub a: Server,
    pub b: Server,
    pub admin_token: String,
    key_file: PathBuf,
    prefix: String,
    endpoints: String,
    _dir: tempfile::TempDir,
}

/// The `serve` (and `audit verify`) arguments that put a node on the cluster.
fn storage_args(endpoints: &str, prefix: &str, key_file: &Path) -> Vec<String> {
    vec![
        "--storage".into(),
        "etcd".into(),
        "--etcd-endpoints".into(),
        endpoints.into(),
        "--etcd-prefix".into(),
        prefix.into(),
        "--master-key-file".into(),
        key_file.to_str().expect("UTF-8 path").into(),
    ]
}

impl Nodes {
    /// Starts two nodes on a fresh prefix of `cluster`.
    pub fn start(cluster: &EtcdCluster) -> Nodes {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = dir.path().join("master.key");
        std::fs::write(&key_file, hex::encode(rand::random::<[u8; 32]>())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let prefix = format!("coffer-{}/", uuid::Uuid::new_v4());
        let endpoints = cluster.endpoints();
        let on_node = |node_id: &str| {
            let mut args = storage_args(&endpoints, &prefix, &key_file);
            args.extend(["--node-id".into(), node_id.into()]);
            args
        };
        let (args_a, args_b) = (on_node("a"), on_node("b"));
        let a = Server::start_with(&args_a.iter().map(String::as_str).collect::<Vec<_>>());
        let b = Server::start_on(
            &dir.path().join("b"),
            &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(
            b.admin_token.is_empty(),
            "node B found the store node A initialised"
        );
        let admin_token = a.admin_token.clone();
        Nodes {
            a,
            b,
            admin_token,
            key_file,
            prefix,
            endpoints,
            _dir: dir,
        }
    }

    /// Node `i % 2`.
    pub fn node(&self, i: usize) -> &Server {
        if i.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        }
    }

    /// An admin client of node `i % 2`.
    pub fn admin(&self, i: usize) -> Api {
        self.node(i)
            .client(Some(format!("Bearer User {}", self.admin_token)))
    }

    /// Runs `coffer audit verify` against the cluster (as node a, so that it names no
    /// chain of its own); returns what it printed, and whether it succeeded.
    pub fn verify_audit(&self) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["audit", "verify", "--node-id", "a"])
            .args(storage_args(&self.endpoints, &self.prefix, &self.key_file))
            .env_remove("COFFER_DATA_DIR")
            .output()
            .expect("run coffer audit verify");
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), printed)
    }
}

impl Drop for Nodes {
    /// A failed test shows what the nodes logged at warning level and above.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, node) in [("A", &self.a), ("B", &self.b)] {
                for line in node
                    .logs()
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                {
                    eprintln!("node {name}: {line}");
                }
            }
        }
    }
}
