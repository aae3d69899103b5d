//! Key material for the Phase clients (`PHASE-CLIENTS.md`): each environment's seed and
//! salt, sealed under the master key, and each token's public key with its wrapped key
//! share. A token's `share0` and wrap key leave the store in the issued `phaseToken`
//! only; they are never kept.
//!
//! One tree, two kinds of key: `e` + environment id, `t` + token id.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::codec;
use crate::error::StoreError;
use crate::kv::{KvBackend, KvTx, Tree, TxAbort};
use crate::model::TokenKind;
use crate::phase_crypto::{self, KxKeyPair, KEY_BYTES};
use crate::store::{tx_error, Store};

const ENV_PREFIX: u8 = b'e';
const TOKEN_PREFIX: u8 = b't';

pub(crate) fn env_keys_key(env_id: Uuid) -> [u8; 17] {
    prefixed(ENV_PREFIX, env_id)
}

pub(crate) fn token_keys_key(token_id: Uuid) -> [u8; 17] {
    prefixed(TOKEN_PREFIX, token_id)
}

fn prefixed(prefix: u8, id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = prefix;
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// An environment's seed (its `crypto_kx` key pair derives from it) and the salt of
/// its Phase key digests.
pub struct EnvironmentKeys {
    seed: Zeroizing<[u8; KEY_BYTES]>,
    salt: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for EnvironmentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvironmentKeys(..)")
    }
}

impl EnvironmentKeys {
    fn generate() -> Self {
        let mut keys = Self {
            seed: Zeroizing::new([0u8; KEY_BYTES]),
            salt: Zeroizing::new([0u8; KEY_BYTES]),
        };
        rand::thread_rng().fill_bytes(keys.seed.as_mut());
        rand::thread_rng().fill_bytes(keys.salt.as_mut());
        keys
    }

    /// The environment's key pair: what clients encrypt to, and what opens it.
    pub fn key_pair(&self) -> KxKeyPair {
        KxKeyPair::from_seed(&self.seed)
    }

    /// The seed as the hex text clients unwrap.
    pub fn seed_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.seed))
    }

    /// The salt as the hex text clients unwrap, which also keys their digests.
    pub fn salt_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.salt))
    }

    fn to_bytes(&self) -> Zeroizing<[u8; 2 * KEY_BYTES]> {
        let mut bytes = Zeroizing::new([0u8; 2 * KEY_BYTES]);
        bytes[..KEY_BYTES].copy_from_slice(self.seed.as_ref());
        bytes[KEY_BYTES..].copy_from_slice(self.salt.as_ref());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 2 * KEY_BYTES {
            return None;
        }
        let mut keys = Self {
            seed: Zeroizing::new([0u8; KEY_BYTES]),
            salt: Zeroizing::new([0u8; KEY_BYTES]),
        };
        keys.seed.copy_from_slice(&bytes[..KEY_BYTES]);
        keys.salt.copy_from_slice(&bytes[KEY_BYTES..]);
        Some(keys)
    }
}

/// What the store keeps of a token for the Phase clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeys {
    /// The token principal's X25519 public key: environment seeds and salts are
    /// wrapped to it.
    pub public: [u8; KEY_BYTES],
    /// The second share of its secret key, wrapped under the wrap key only the
    /// `phaseToken` carries (208 hex characters).
    pub wrapped_share: String,
}

/// A token as issued: the bearer secret, and the same token in the Phase clients'
/// form. Shown once; never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer secret (64 hex).
    pub token: Zeroizing<String>,
    /// `pss_service:v2:<token>:<public>:<share0>:<wrapKey>` for a Service token,
    /// `pss_user:v1:…` for a User token.
    pub phase_token: Zeroizing<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedToken(..)")
    }
}

impl std::ops::Deref for IssuedToken {
    type Target = str;

    fn deref(&self) -> &str {
        &self.token
    }
}

/// Makes a token's key material: a fresh key pair whose secret half is split in two,
/// one share wrapped for the store to keep, the other handed out with the wrap key.
pub(crate) fn issue(kind: TokenKind, token: String) -> (TokenKeys, IssuedToken) {
    let principal = KxKeyPair::generate();
    let (share0, share1) = phase_crypto::split_secret(principal.secret());
    let mut wrap_key = Zeroizing::new([0u8; KEY_BYTES]);
    rand::thread_rng().fill_bytes(wrap_key.as_mut());
    let keys = TokenKeys {
        public: principal.public,
        wrapped_share: phase_crypto::wrap_share(&share1, &wrap_key),
    };
    let prefix = match kind {
        TokenKind::Service => "pss_service:v2",
        TokenKind::User => "pss_user:v1",
    };
    let phase_token = Zeroizing::new(format!(
        "{prefix}:{token}:{}:{}:{}",
        hex::encode(principal.public),
        hex::encode(*share0),
        hex::encode(*wrap_key)
    ));
    let issued = IssuedToken {
        token: Zeroizing::new(token),
        phase_token,
    };
    (keys, issued)
}

/// Stores a token's key material inside a transaction.
pub(crate) fn put_token_keys(
    tx: &dyn KvTx,
    token_id: Uuid,
    keys: &TokenKeys,
) -> Result<(), TxAbort<StoreError>> {
    tx.insert(
        Tree::ClientKeys,
        &token_keys_key(token_id),
        &codec::encode(keys),
    )?;
    Ok(())
}

impl<B: KvBackend> Store<B> {
    /// Fresh key material for a new environment, sealed to its location.
    pub(crate) fn new_environment_keys(&self, env_id: Uuid) -> Vec<u8> {
        let keys = EnvironmentKeys::generate();
        self.keys
            .seal(&env_keys_key(env_id), keys.to_bytes().as_ref())
    }

    /// An environment's seed and salt.
    pub fn environment_keys(&self, env_id: Uuid) -> Result<EnvironmentKeys, StoreError> {
        let location = env_keys_key(env_id);
        let sealed = self
            .kv
            .get(Tree::ClientKeys, &location)?
            .ok_or(StoreError::EnvironmentIdNotFound(env_id))?;
        let bytes = Zeroizing::new(
            self.keys
                .open(&location, &sealed)
                .map_err(|_| StoreError::unauthentic(Tree::ClientKeys))?,
        );
        EnvironmentKeys::from_bytes(&bytes).ok_or(StoreError::unauthentic(Tree::ClientKeys))
    }

    /// A token's key material; `None` for a token issued before the store kept any.
    pub fn token_keys(&self, token_id: Uuid) -> Result<Option<TokenKeys>, StoreError> {
        self.get_record(Tree::ClientKeys, &token_keys_key(token_id))
    }

    /// Gives every environment made before environments had key material its seed
    /// and salt: once, one transaction per app, at open.
    pub(crate) fn backfill_environment_keys(&self) -> Result<(), StoreError> {
        for app in self.list_apps()? {
            let mut missing = Vec::new();
            for env in self.list_environments(app.id)? {
                if self
                    .kv
                    .get(Tree::ClientKeys, &env_keys_key(env.id))?
                    .is_none()
                {
                    missing.push(env.id);
                }
            }
            if missing.is_empty() {
                continue;
            }
            let sealed: Vec<(Uuid, Vec<u8>)> = missing
                .iter()
                .map(|id| (*id, self.new_environment_keys(*id)))
                .collect();
            self.kv
                .transaction(&[Tree::ClientKeys], |tx| {
                    for (id, keys) in &sealed {
                        // Checked again inside: another process may have filled it.
                        if tx.get(Tree::ClientKeys, &env_keys_key(*id))?.is_none() {
                            tx.insert(Tree::ClientKeys, &env_keys_key(*id), keys)?;
                        }
                    }
                    Ok::<_, TxAbort<StoreError>>(())
                })
                .map_err(tx_error)?;
        }
        self.kv.flush()?;
        Ok(())
    }
}
