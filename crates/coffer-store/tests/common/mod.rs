//! Helpers shared by the integration tests: a store in a temporary directory, an app
//! with its default environments, and short constructors for batch entries.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use coffer_store::{Actor, Environment, NewApp, NewSecret, SecretUpdate, Store, StoreConfig};
use tempfile::TempDir;
use uuid::Uuid;

/// A store opened on its own temporary data directory (kept alive with it).
pub struct TestStore {
    pub store: Store,
    pub dir: TempDir,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        TestStore { store, dir }
    }

    /// A store on an existing data directory.
    pub fn open_in(dir: TempDir) -> Self {
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        TestStore { store, dir }
    }

    /// Closes the store and opens the same data directory again.
    pub fn reopen(self) -> Self {
        let TestStore { store, dir } = self;
        drop(store);
        Self::open_in(dir)
    }

    /// Creates an app with the default environments; returns its id and environments.
    pub fn app(&self, name: &str) -> (Uuid, Vec<Environment>) {
        let (app, envs) = self
            .create_app(
                &me(),
                NewApp {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .unwrap();
        (app.id, envs)
    }

    /// The `Development` environment of a new app.
    pub fn dev_env(&self, app_name: &str) -> Uuid {
        self.app(app_name).1[0].id
    }
}

/// The embedding program as actor.
pub fn me() -> Actor {
    Actor::embedded()
}

/// A secret to create at the root path.
pub fn secret(key: &str, value: &str) -> NewSecret {
    NewSecret {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// A secret to create at `path`.
pub fn secret_at(path: &str, key: &str, value: &str) -> NewSecret {
    NewSecret {
        path: path.into(),
        ..secret(key, value)
    }
}

/// An update of one secret that changes nothing yet.
pub fn update(id: Uuid) -> SecretUpdate {
    SecretUpdate {
        id,
        ..Default::default()
    }
}

/// Opens a closed store's sled database directly, to corrupt it as an attacker with disk
/// access would. Retries briefly: sled releases its file lock a moment after the store
/// is dropped (spacejam/sled#1289).
pub fn open_raw_sled(data_dir: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::open(data_dir.join("db")) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("opening the raw database: {e}"),
        }
    }
}
