//! Encryption at rest: a master key, HKDF subkeys, XChaCha20-Poly1305 with the record's
//! location as associated data, and a keyed digest for the uniqueness index.

use std::fs;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::OpenError;

const NONCE_LEN: usize = 24;

/// The 32-byte root of all keys. Never logged, never written but to its own file.
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        MasterKey(key)
    }

    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    /// Reads a key file: 32 raw bytes, or 64 hex characters (surrounding whitespace allowed).
    pub fn read(path: &Path) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        let bytes = fs::read(path).map_err(|source| OpenError::MasterKeyFile {
            path: shown.clone(),
            source,
        })?;
        if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(MasterKey(raw));
        }
        let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or("");
        let mut key = [0u8; 32];
        hex::decode_to_slice(text, &mut key).map_err(|_| OpenError::MasterKeyFormat(shown))?;
        Ok(MasterKey(key))
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
        file.write_all(hex::encode(self.0).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(failed)
    }
}

/// The subkeys derived from a master key.
pub struct Keyring {
    records: XChaCha20Poly1305,
    digests: Hmac<Sha256>,
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
    pub fn derive(master: &MasterKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(b"coffer"), &master.0);
        let mut record_key = [0u8; 32];
        let mut digest_key = [0u8; 32];
        hkdf.expand(b"coffer record encryption v1", &mut record_key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hkdf.expand(b"coffer key digest v1", &mut digest_key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Keyring {
            records: XChaCha20Poly1305::new(&record_key.into()),
            digests: <Hmac<Sha256> as Mac>::new_from_slice(&digest_key)
                .expect("HMAC takes any key length"),
        }
    }

    /// Encrypts `plaintext` bound to `location`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, location: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .records
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

    /// Decrypts a blob from [`Keyring::seal`]; fails if it was sealed for another location
    /// or under another key, or was altered.
    pub fn open(&self, location: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenFailed> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenFailed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.records
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: location,
                },
            )
            .map_err(|_| OpenFailed)
    }

    /// HMAC-SHA256 of an (upper-cased) secret key, for the uniqueness index.
    pub fn key_digest(&self, key: &str) -> [u8; 32] {
        let mut mac = self.digests.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_blob_opens_only_at_its_location() {
        let keys = Keyring::derive(&MasterKey::generate());
        let sealed = keys.seal(b"env/secret/1", b"hunter2");
        assert_eq!(keys.open(b"env/secret/1", &sealed).unwrap(), b"hunter2");
        assert!(keys.open(b"env/secret/2", &sealed).is_err());
    }

    #[test]
    fn another_master_key_cannot_open() {
        let sealed = Keyring::derive(&MasterKey::generate()).seal(b"loc", b"v");
        assert!(Keyring::derive(&MasterKey::generate())
            .open(b"loc", &sealed)
            .is_err());
    }

    #[test]
    fn digest_is_keyed() {
        let a = Keyring::derive(&MasterKey::from_bytes([1; 32]));
        let b = Keyring::derive(&MasterKey::from_bytes([2; 32]));
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
}
