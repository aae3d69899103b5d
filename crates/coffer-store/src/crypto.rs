//! Encryption at rest: a master key that wraps a data key, HKDF subkeys of the data key,
//! XChaCha20-Poly1305 with the record's location as associated data, a keyed digest for
//! the uniqueness index, and a MAC that binds every stored record to its tree and key.
//!
//! Rotating the master key re-wraps the data key (see `rekey.rs`): the subkeys, and so
//! every sealed record, key digest and record tag, stay as they are.
//!
//! Key bytes live in buffers that are zeroed when dropped. The HMAC states built from a
//! subkey (`hmac` 0.12 cannot zero them) are made per use and never kept, so no long-lived
//! copy of a subkey outlives the [`Keyring`] or [`RecordMac`] that holds it.

use std::fs;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::OpenError;

const NONCE_LEN: usize = 24;
/// Length of the tag [`RecordMac`] appends to every stored value.
pub const TAG_LEN: usize = 32;

/// The 32-byte key the operator holds: it wraps the [`DataKey`]. Never logged, never
/// written but to its own file; zeroed when dropped.
pub struct MasterKey([u8; 32]);

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = MasterKey([0u8; 32]);
        rand::thread_rng().fill_bytes(&mut key.0);
        key
    }

    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    /// Reads a key file: 32 raw bytes, or 64 hex characters (surrounding whitespace allowed).
    /// A file that its group or others may open is refused, as ssh does with private keys.
    pub fn read(path: &Path) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        let failed = |source| OpenError::MasterKeyFile {
            path: shown.clone(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).map_err(failed)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(OpenError::MasterKeyExposed { path: shown, mode });
            }
        }
        let bytes = Zeroizing::new(fs::read(path).map_err(failed)?);
        let mut key = MasterKey([0u8; 32]);
        if bytes.len() == key.0.len() {
            key.0.copy_from_slice(&bytes);
            return Ok(key);
        }
        let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
        hex::decode_to_slice(text, &mut key.0).map_err(|_| OpenError::MasterKeyFormat(shown))?;
        Ok(key)
    }

    /// Writes the key as hex to a new file readable only by its owner.
    pub fn write_new(&self, path: &Path) -> Result<(), OpenError> {
        let failed = |source| OpenError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(failed)?;
        let hex = Zeroizing::new(hex::encode(self.0));
        file.write_all(hex.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(failed)
    }

    /// A 32-byte subkey for `purpose`, by HKDF-SHA256 (the key that wraps the data key,
    /// the key of backups).
    pub(crate) fn subkey(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        subkey(&self.0, purpose)
    }

    /// Whether two keys are the same (in constant time).
    pub(crate) fn same_as(&self, other: &MasterKey) -> bool {
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        diff == 0
    }

    /// Seals `data_key` under this key, bound to `location` (the record that holds it):
    /// witness ‖ nonce ‖ ciphertext ‖ tag. The witness, an HMAC of the location under
    /// another subkey, tells a wrong master key from an edited record.
    pub(crate) fn wrap(&self, location: &[u8], data_key: &DataKey) -> Vec<u8> {
        let mut out = self.witness(location).to_vec();
        out.extend_from_slice(&self.wrapping().seal(location, &data_key.0));
        out
    }

    /// Opens a data key sealed by [`MasterKey::wrap`] at `location`.
    pub(crate) fn unwrap(&self, location: &[u8], wrapped: &[u8]) -> Unwrapped {
        let Some((witness, sealed)) = wrapped.split_at_checked(WITNESS_LEN) else {
            return Unwrapped::NotThisKey;
        };
        let holds = hmac(&self.subkey(WITNESS_PURPOSE))
            .chain_update(location)
            .verify_slice(witness)
            .is_ok();
        if !holds {
            return Unwrapped::NotThisKey;
        }
        let Ok(plain) = self.wrapping().open(location, sealed).map(Zeroizing::new) else {
            return Unwrapped::Damaged;
        };
        let mut key = DataKey([0u8; 32]);
        if plain.len() != key.0.len() {
            return Unwrapped::Damaged;
        }
        key.0.copy_from_slice(&plain);
        Unwrapped::Opened(key)
    }

    fn witness(&self, location: &[u8]) -> [u8; WITNESS_LEN] {
        hmac(&self.subkey(WITNESS_PURPOSE))
            .chain_update(location)
            .finalize()
            .into_bytes()
            .into()
    }

    fn wrapping(&self) -> Sealer {
        Sealer::new(&self.subkey(b"coffer data key wrapping v1"))
    }
}

const WITNESS_LEN: usize = 32;
const WITNESS_PURPOSE: &[u8] = b"coffer master key witness v1";

/// What [`MasterKey::unwrap`] found.
#[derive(Debug)]
pub(crate) enum Unwrapped {
    /// The data key.
    Opened(DataKey),
    /// The record was wrapped by another master key.
    NotThisKey,
    /// The record was wrapped by this master key and edited since.
    Damaged,
}

impl Unwrapped {
    /// The data key, if it opened.
    #[cfg(test)]
    fn opened(self) -> Option<DataKey> {
        match self {
            Unwrapped::Opened(key) => Some(key),
            _ => None,
        }
    }
}

/// A 32-byte subkey of `root` for `purpose`, by HKDF-SHA256.
fn subkey(root: &[u8; 32], purpose: &[u8]) -> Zeroizing<[u8; 32]> {
    let hkdf = Hkdf::<Sha256>::new(Some(b"coffer"), root);
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf.expand(purpose, key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// The 32-byte key every subkey derives from, stored wrapped by the master key. A store
/// made before data keys has none stored: its data key is its first master key itself.
/// Zeroed when dropped.
pub struct DataKey([u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key, for a new store.
    pub(crate) fn generate() -> Self {
        let mut key = DataKey([0u8; 32]);
        rand::thread_rng().fill_bytes(&mut key.0);
        key
    }

    /// The data key of a store made before data keys: the master key's own bytes.
    pub(crate) fn of_unwrapped_store(master: &MasterKey) -> Self {
        DataKey(master.0)
    }

    fn subkey(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        subkey(&self.0, purpose)
    }
}

/// HMAC-SHA256 under a subkey kept in a buffer that is zeroed on drop.
fn hmac(key: &[u8; 32]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length")
}

/// Authenticates stored records: a tag over tree ‖ key ‖ value, so that a record edited,
/// or moved to another key or tree, no longer verifies.
pub struct RecordMac {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for RecordMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordMac(..)")
    }
}

impl RecordMac {
    /// Derives the record-authentication subkey with HKDF-SHA256.
    pub fn derive(data_key: &DataKey) -> Self {
        RecordMac {
            key: data_key.subkey(b"coffer record authentication v1"),
        }
    }

    fn keyed(&self, tree: &str, key: &[u8], value: &[u8]) -> Hmac<Sha256> {
        let mut mac = hmac(&self.key);
        // Tree and key are length-prefixed so that no two locations frame alike.
        mac.update(&[tree.len() as u8]);
        mac.update(tree.as_bytes());
        mac.update(&(key.len() as u32).to_be_bytes());
        mac.update(key);
        mac.update(value);
        mac
    }

    /// The tag of `value` stored at `key` in `tree`.
    pub fn tag(&self, tree: &str, key: &[u8], value: &[u8]) -> [u8; TAG_LEN] {
        self.keyed(tree, key, value).finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `value` at `key` in `tree` (in constant time).
    pub fn verify(&self, tree: &str, key: &[u8], value: &[u8], tag: &[u8]) -> bool {
        self.keyed(tree, key, value).verify_slice(tag).is_ok()
    }
}

/// XChaCha20-Poly1305 under one key, with a random nonce per message.
struct Sealer(XChaCha20Poly1305);

impl Sealer {
    fn new(key: &[u8; 32]) -> Self {
        Sealer(XChaCha20Poly1305::new(key.into()))
    }

    /// Encrypts `plaintext` bound to `location`: nonce ‖ ciphertext ‖ tag.
    fn seal(&self, location: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: location,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    fn open(&self, location: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenFailed> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenFailed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: location,
                },
            )
            .map_err(|_| OpenFailed)
    }
}

/// The subkeys derived from a data key.
pub struct Keyring {
    /// Zeroes its key when dropped.
    records: Sealer,
    digests: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(..)")
    }
}

/// A sealed blob did not authenticate.
#[derive(Debug)]
pub struct OpenFailed;

impl Keyring {
    /// Derives the record and digest subkeys with HKDF-SHA256.
    pub fn derive(data_key: &DataKey) -> Self {
        Keyring {
            records: Sealer::new(&data_key.subkey(b"coffer record encryption v1")),
            digests: data_key.subkey(b"coffer key digest v1"),
        }
    }

    /// Encrypts `plaintext` bound to `location`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, location: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.records.seal(location, plaintext)
    }

    /// Decrypts a blob from [`Keyring::seal`]; fails if it was sealed for another location
    /// or under another key, or was altered.
    pub fn open(&self, location: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenFailed> {
        self.records.open(location, sealed)
    }

    /// HMAC-SHA256 of an (upper-cased) secret key, for the uniqueness index.
    pub fn key_digest(&self, key: &str) -> [u8; 32] {
        let mut mac = hmac(&self.digests);
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_blob_opens_only_at_its_location() {
        let keys = Keyring::derive(&DataKey::generate());
        let sealed = keys.seal(b"env/secret/1", b"hunter2");
        assert_eq!(keys.open(b"env/secret/1", &sealed).unwrap(), b"hunter2");
        assert!(keys.open(b"env/secret/2", &sealed).is_err());
    }

    #[test]
    fn another_master_key_cannot_open() {
        let sealed = Keyring::derive(&DataKey::generate()).seal(b"loc", b"v");
        assert!(Keyring::derive(&DataKey::generate())
            .open(b"loc", &sealed)
            .is_err());
    }

    #[test]
    fn digest_is_keyed() {
        let a = Keyring::derive(&DataKey([1; 32]));
        let b = Keyring::derive(&DataKey([2; 32]));
        assert_eq!(a.key_digest("DB_URL"), a.key_digest("DB_URL"));
        assert_ne!(a.key_digest("DB_URL"), b.key_digest("DB_URL"));
    }

    #[test]
    fn key_file_round_trips_as_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let key = MasterKey::from_bytes([7; 32]);
        key.write_new(&path).unwrap();
        assert_eq!(MasterKey::read(&path).unwrap().0, [7; 32]);
        assert!(key.write_new(&path).is_err(), "never overwrites a key file");
    }

    #[test]
    fn a_wrapped_data_key_opens_only_under_its_master_key_and_location() {
        let master = MasterKey::from_bytes([5; 32]);
        let data_key = DataKey([6; 32]);
        let wrapped = master.wrap(b"data key", &data_key);
        assert!(!wrapped.windows(32).any(|w| w == [6; 32]), "never in clear");
        let opened = master.unwrap(b"data key", &wrapped).opened().unwrap();
        assert_eq!(opened.0, [6; 32]);
        assert!(matches!(
            master.unwrap(b"next data key", &wrapped),
            Unwrapped::NotThisKey
        ));
        assert!(matches!(
            MasterKey::from_bytes([7; 32]).unwrap(b"data key", &wrapped),
            Unwrapped::NotThisKey
        ));
        for at in [WITNESS_LEN, WITNESS_LEN + 30, wrapped.len() - 1] {
            let mut edited = wrapped.clone();
            edited[at] ^= 1;
            assert!(matches!(
                master.unwrap(b"data key", &edited),
                Unwrapped::Damaged
            ));
        }
    }

    #[test]
    fn an_unwrapped_store_derives_from_its_master_key() {
        let master = MasterKey::from_bytes([8; 32]);
        let legacy = Keyring::derive(&DataKey::of_unwrapped_store(&master));
        assert_eq!(
            legacy.key_digest("DB_URL"),
            Keyring::derive(&DataKey([8; 32])).key_digest("DB_URL")
        );
    }

    #[test]
    fn a_record_tag_holds_only_at_its_tree_and_key() {
        let mac = RecordMac::derive(&DataKey([3; 32]));
        let tag = mac.tag("tokens", b"id-1", b"record");
        assert!(mac.verify("tokens", b"id-1", b"record", &tag));
        assert!(!mac.verify("tokens", b"id-2", b"record", &tag));
        assert!(!mac.verify("apps", b"id-1", b"record", &tag));
        assert!(!mac.verify("tokens", b"id-1", b"recorD", &tag));
        // Framing: moving bytes between key and value changes the tag.
        assert!(!mac.verify("tokens", b"id-1r", b"ecord", &tag));
        let other = RecordMac::derive(&DataKey([4; 32]));
        assert!(!other.verify("tokens", b"id-1", b"record", &tag));
    }
}
