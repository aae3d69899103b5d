//! Byte layouts of the keys in each tree. Numbers are big-endian so that key order is
//! numeric order; the one variable-length part of a key is always its last.

use uuid::Uuid;

/// `app id`
pub fn app(id: Uuid) -> [u8; 16] {
    *id.as_bytes()
}

/// `lower(name)`
pub fn app_name(name: &str) -> Vec<u8> {
    name.to_lowercase().into_bytes()
}

/// `env id`
pub fn env(id: Uuid) -> [u8; 16] {
    *id.as_bytes()
}

/// `app id ‖ lower(name)`
pub fn env_name(app_id: Uuid, name: &str) -> Vec<u8> {
    let mut key = app_id.as_bytes().to_vec();
    key.extend_from_slice(name.to_lowercase().as_bytes());
    key
}

/// `env id ‖ secret id`
pub fn secret(env_id: Uuid, id: Uuid) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(env_id.as_bytes());
    key[16..].copy_from_slice(id.as_bytes());
    key
}

/// `env id ‖ key digest ‖ path`: the digest first, so that finding a key in every
/// path of an environment is a short prefix scan.
pub fn secret_index(env_id: Uuid, path: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut key = secret_index_prefix(env_id, digest);
    key.extend_from_slice(path.as_bytes());
    key
}

/// `env id ‖ key digest`
pub fn secret_index_prefix(env_id: Uuid, digest: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(16 + 32 + 64);
    key.extend_from_slice(env_id.as_bytes());
    key.extend_from_slice(digest);
    key
}

/// `env id ‖ secret id ‖ version` (the environment first, so that deleting an
/// environment finds the history of secrets deleted before it)
pub fn history(env_id: Uuid, id: Uuid, version: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(&secret(env_id, id));
    key[32..].copy_from_slice(&version.to_be_bytes());
    key
}

/// `chain ‖ seq`: each node's chain apart, each in order.
pub fn audit(chain: u32, seq: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&audit_chain(chain));
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `chain`: every record of one node's chain.
pub fn audit_chain(chain: u32) -> [u8; 4] {
    chain.to_be_bytes()
}

/// The location a secret version's sealed fields are bound to.
pub fn sealed_location(env_id: Uuid, id: Uuid, version: u64) -> [u8; 46] {
    let mut loc = [0u8; 46];
    loc[..6].copy_from_slice(b"secret");
    loc[6..22].copy_from_slice(env_id.as_bytes());
    loc[22..38].copy_from_slice(id.as_bytes());
    loc[38..].copy_from_slice(&version.to_be_bytes());
    loc
}

/// `env id ‖ token id ‖ secret id`
pub fn personal_override(env_id: Uuid, token_id: Uuid, secret_id: Uuid) -> [u8; 48] {
    let mut key = [0u8; 48];
    key[..32].copy_from_slice(&personal_override_prefix(env_id, token_id));
    key[32..].copy_from_slice(secret_id.as_bytes());
    key
}

/// `env id ‖ token id`: every override of one token in one environment.
pub fn personal_override_prefix(env_id: Uuid, token_id: Uuid) -> [u8; 32] {
    secret(env_id, token_id)
}

/// The location a personal override's value is sealed to: its environment, secret and
/// owner, so that a sealed value moved to another secret or token does not open.
pub fn override_location(env_id: Uuid, secret_id: Uuid, token_id: Uuid) -> [u8; 56] {
    let mut loc = [0u8; 56];
    loc[..8].copy_from_slice(b"override");
    loc[8..24].copy_from_slice(env_id.as_bytes());
    loc[24..40].copy_from_slice(secret_id.as_bytes());
    loc[40..].copy_from_slice(token_id.as_bytes());
    loc
}
