//! The primitives of the Phase clients' protocol (`PHASE-CLIENTS.md` §0), made
//! byte-compatible with libsodium (which the official CLI and SDKs use through PyNaCl
//! and libsodium-wrappers) from RustCrypto parts:
//!
//! - `crypto_kx` key exchange: X25519, session keys from BLAKE2b-512;
//! - `crypto_kx_seed_keypair`: the secret key is BLAKE2b-256 of the seed;
//! - "RAW": XChaCha20-Poly1305 (IETF) with the nonce written *after* the ciphertext;
//! - the `ph:v1:<ephemeral pk hex>:<base64>` envelope, sealed to a public key;
//! - keyed BLAKE2b-256 key digests, with the salt's hex text as the key;
//! - the 2-of-2 XOR key split and the wrapped key share.
//!
//! The test vectors in `tests/data/phase_vectors.json` were produced by PyNaCl
//! (`scripts/phase_vectors.py`), so a mismatch with libsodium fails a test.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::digest::{Digest, Mac};
use blake2::{Blake2b512, Blake2bMac};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// Bytes of an X25519 key, a seed, a salt or a symmetric key.
pub const KEY_BYTES: usize = 32;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 24;
/// Bytes of a Poly1305 tag.
pub const TAG_BYTES: usize = 16;
/// Prefix of a `ph:v1` envelope.
const ENVELOPE_PREFIX: &str = "ph:v1:";

/// Why a ciphertext did not open. Deliberately without detail: what failed is no
/// business of whoever sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid ciphertext")]
pub struct InvalidCiphertext;

/// A `crypto_kx` key pair. The secret half is wiped when dropped.
#[derive(Clone)]
pub struct KxKeyPair {
    /// The public key.
    pub public: [u8; KEY_BYTES],
    secret: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for KxKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KxKeyPair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

impl KxKeyPair {
    /// A fresh random key pair (`crypto_kx_keypair`).
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; KEY_BYTES]);
        rand::thread_rng().fill_bytes(secret.as_mut());
        Self::from_secret(secret)
    }

    /// The key pair a seed determines (`crypto_kx_seed_keypair`): the secret key is
    /// the unkeyed BLAKE2b-256 of the seed. Phase derives environment keys this way.
    pub fn from_seed(seed: &[u8; KEY_BYTES]) -> Self {
        let mut hasher = blake2::Blake2b::<U32>::new();
        hasher.update(seed);
        let mut secret = Zeroizing::new([0u8; KEY_BYTES]);
        secret.copy_from_slice(&hasher.finalize());
        Self::from_secret(secret)
    }

    /// The key pair of a secret key (`crypto_scalarmult_base`).
    pub fn from_secret(secret: Zeroizing<[u8; KEY_BYTES]>) -> Self {
        let public = PublicKey::from(&StaticSecret::from(*secret)).to_bytes();
        Self { public, secret }
    }

    /// The secret key.
    pub fn secret(&self) -> &[u8; KEY_BYTES] {
        &self.secret
    }

    /// X25519 with a peer's key; refuses a peer key of small order (an all-zero shared
    /// point), as libsodium's `crypto_scalarmult` does.
    fn shared_point(
        &self,
        peer: &[u8; KEY_BYTES],
    ) -> Result<Zeroizing<[u8; 32]>, InvalidCiphertext> {
        let shared = StaticSecret::from(*self.secret).diffie_hellman(&PublicKey::from(*peer));
        if !shared.was_contributory() {
            return Err(InvalidCiphertext);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }

    /// `crypto_kx_client_session_keys`: `(rx, tx)` of the client side.
    pub fn client_session_keys(
        &self,
        server_public: &[u8; KEY_BYTES],
    ) -> Result<SessionKeys, InvalidCiphertext> {
        let shared = self.shared_point(server_public)?;
        let (first, second) = session_hash(&shared, &self.public, server_public);
        Ok(SessionKeys {
            rx: first,
            tx: second,
        })
    }

    /// `crypto_kx_server_session_keys`: `(rx, tx)` of the server side.
    pub fn server_session_keys(
        &self,
        client_public: &[u8; KEY_BYTES],
    ) -> Result<SessionKeys, InvalidCiphertext> {
        let shared = self.shared_point(client_public)?;
        let (first, second) = session_hash(&shared, client_public, &self.public);
        Ok(SessionKeys {
            rx: second,
            tx: first,
        })
    }
}

/// The two directional keys of a `crypto_kx` session.
#[derive(Clone)]
pub struct SessionKeys {
    /// Key to decrypt what the peer sent.
    pub rx: Zeroizing<[u8; KEY_BYTES]>,
    /// Key to encrypt what is sent to the peer.
    pub tx: Zeroizing<[u8; KEY_BYTES]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// BLAKE2b-512(q ‖ client_pk ‖ server_pk), split into its two halves.
fn session_hash(
    shared: &[u8; 32],
    client_public: &[u8; KEY_BYTES],
    server_public: &[u8; KEY_BYTES],
) -> (Zeroizing<[u8; KEY_BYTES]>, Zeroizing<[u8; KEY_BYTES]>) {
    let mut hasher = Blake2b512::new();
    hasher.update(shared);
    hasher.update(client_public);
    hasher.update(server_public);
    let mut hash = hasher.finalize();
    let mut first = Zeroizing::new([0u8; KEY_BYTES]);
    let mut second = Zeroizing::new([0u8; KEY_BYTES]);
    first.copy_from_slice(&hash[..KEY_BYTES]);
    second.copy_from_slice(&hash[KEY_BYTES..]);
    hash.zeroize();
    (first, second)
}

/// "RAW" encryption: XChaCha20-Poly1305 under `key` with a random nonce, written as
/// `ciphertext ‖ tag ‖ nonce`.
pub fn encrypt_raw(plaintext: &[u8], key: &[u8; KEY_BYTES]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::thread_rng().fill_bytes(&mut nonce);
    encrypt_raw_with_nonce(plaintext, key, &nonce)
}

fn encrypt_raw_with_nonce(
    plaintext: &[u8],
    key: &[u8; KEY_BYTES],
    nonce: &[u8; NONCE_BYTES],
) -> Vec<u8> {
    let mut out = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(nonce), plaintext)
        .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
    out.extend_from_slice(nonce);
    out
}

/// Opens what [`encrypt_raw`] wrote: the last 24 bytes are the nonce.
pub fn decrypt_raw(
    sealed: &[u8],
    key: &[u8; KEY_BYTES],
) -> Result<Zeroizing<Vec<u8>>, InvalidCiphertext> {
    if sealed.len() < TAG_BYTES + NONCE_BYTES {
        return Err(InvalidCiphertext);
    }
    let (body, nonce) = sealed.split_at(sealed.len() - NONCE_BYTES);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), body)
        .map(Zeroizing::new)
        .map_err(|_| InvalidCiphertext)
}

/// Seals `plaintext` to `recipient` as a `ph:v1` envelope: a fresh ephemeral key pair,
/// the client side of a `crypto_kx` session with the recipient, RAW under its `tx`.
pub fn seal_to(plaintext: &str, recipient: &[u8; KEY_BYTES]) -> Result<String, InvalidCiphertext> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::thread_rng().fill_bytes(&mut nonce);
    seal_to_with(plaintext, recipient, &KxKeyPair::generate(), &nonce)
}

fn seal_to_with(
    plaintext: &str,
    recipient: &[u8; KEY_BYTES],
    ephemeral: &KxKeyPair,
    nonce: &[u8; NONCE_BYTES],
) -> Result<String, InvalidCiphertext> {
    let keys = ephemeral.client_session_keys(recipient)?;
    let sealed = encrypt_raw_with_nonce(plaintext.as_bytes(), &keys.tx, nonce);
    Ok(format!(
        "{ENVELOPE_PREFIX}{}:{}",
        hex::encode(ephemeral.public),
        BASE64.encode(sealed)
    ))
}

/// Opens a `ph:v1` envelope sealed to `recipient`. Like the Phase clients, it reads
/// any `ph:<version>:` prefix the same way; the text must be UTF-8.
pub fn open_envelope(
    envelope: &str,
    recipient: &KxKeyPair,
) -> Result<Zeroizing<String>, InvalidCiphertext> {
    let mut parts = envelope.split(':');
    let (Some("ph"), Some(_version), Some(ephemeral_hex), Some(body), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(InvalidCiphertext);
    };
    let ephemeral = decode_key(ephemeral_hex).ok_or(InvalidCiphertext)?;
    let sealed = BASE64.decode(body).map_err(|_| InvalidCiphertext)?;
    let keys = recipient.server_session_keys(&ephemeral)?;
    let plaintext = decrypt_raw(&sealed, &keys.rx)?;
    String::from_utf8(plaintext.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| InvalidCiphertext)
}

/// Whether a text has the form Phase's server accepts for a client ciphertext:
/// `ph:v1:` then 64 hex digits, `:` and at least one character.
pub fn is_envelope(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(ENVELOPE_PREFIX) else {
        return false;
    };
    match rest.split_once(':') {
        Some((key, body)) => {
            key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) && !body.is_empty()
        }
        None => false,
    }
}

/// Phase's key digest: keyed BLAKE2b-256 of the key name, keyed with the salt's
/// 64-character hex text (not its bytes), as lowercase hex.
pub fn key_digest(key: &str, salt_hex: &str) -> String {
    let mut mac = <Blake2bMac<U32> as Mac>::new_from_slice(salt_hex.as_bytes())
        .expect("a salt's hex text is 64 bytes, BLAKE2b's largest key");
    mac.update(key.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The XOR split of a secret key into two shares: `share0` random, `share1 = share0 ⊕ secret`.
pub fn split_secret(
    secret: &[u8; KEY_BYTES],
) -> (Zeroizing<[u8; KEY_BYTES]>, Zeroizing<[u8; KEY_BYTES]>) {
    let mut share0 = Zeroizing::new([0u8; KEY_BYTES]);
    rand::thread_rng().fill_bytes(share0.as_mut());
    let share1 = xor(&share0, secret);
    (share0, share1)
}

/// Joins the two shares of [`split_secret`].
pub fn join_shares(
    share0: &[u8; KEY_BYTES],
    share1: &[u8; KEY_BYTES],
) -> Zeroizing<[u8; KEY_BYTES]> {
    xor(share0, share1)
}

fn xor(a: &[u8; KEY_BYTES], b: &[u8; KEY_BYTES]) -> Zeroizing<[u8; KEY_BYTES]> {
    let mut out = Zeroizing::new([0u8; KEY_BYTES]);
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// The wrapped key share a token's holder unwraps with its wrap key: hex of RAW over
/// `share1`'s hex text (208 hex characters).
pub fn wrap_share(share1: &[u8; KEY_BYTES], wrap_key: &[u8; KEY_BYTES]) -> String {
    let share_hex = Zeroizing::new(hex::encode(share1));
    hex::encode(encrypt_raw(share_hex.as_bytes(), wrap_key))
}

/// Opens [`wrap_share`]'s output.
pub fn unwrap_share(
    wrapped_hex: &str,
    wrap_key: &[u8; KEY_BYTES],
) -> Result<Zeroizing<[u8; KEY_BYTES]>, InvalidCiphertext> {
    let wrapped = hex::decode(wrapped_hex).map_err(|_| InvalidCiphertext)?;
    let share_hex = decrypt_raw(&wrapped, wrap_key)?;
    let text = std::str::from_utf8(&share_hex).map_err(|_| InvalidCiphertext)?;
    decode_key(text)
        .map(Zeroizing::new)
        .ok_or(InvalidCiphertext)
}

/// 64 hex digits as 32 bytes.
pub fn decode_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    let mut key = [0u8; KEY_BYTES];
    hex::decode_to_slice(text, &mut key).ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Produced by PyNaCl (libsodium); see `scripts/phase_vectors.py`.
    const VECTORS: &str = include_str!("../tests/data/phase_vectors.json");

    #[derive(Deserialize)]
    struct Vectors {
        seed_keypairs: Vec<SeedKeypair>,
        session_keys: Vec<Session>,
        raw: Vec<Raw>,
        envelopes: Vec<Envelope>,
        digests: Vec<KeyDigest>,
        wrapped_shares: Vec<WrappedShare>,
    }

    #[derive(Deserialize)]
    struct SeedKeypair {
        seed: String,
        public: String,
        secret: String,
    }

    #[derive(Deserialize)]
    struct Session {
        client_secret: String,
        server_secret: String,
        client_rx: String,
        client_tx: String,
        server_rx: String,
        server_tx: String,
    }

    #[derive(Deserialize)]
    struct Raw {
        key: String,
        nonce: String,
        plaintext: String,
        sealed: String,
    }

    #[derive(Deserialize)]
    struct Envelope {
        recipient_seed: String,
        ephemeral_secret: String,
        nonce: String,
        plaintext: String,
        envelope: String,
    }

    #[derive(Deserialize)]
    struct KeyDigest {
        salt: String,
        key: String,
        digest: String,
    }

    #[derive(Deserialize)]
    struct WrappedShare {
        wrap_key: String,
        share1: String,
        wrapped: String,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(VECTORS).unwrap()
    }

    fn key(text: &str) -> [u8; KEY_BYTES] {
        decode_key(text).unwrap()
    }

    fn pair_of_secret(text: &str) -> KxKeyPair {
        KxKeyPair::from_secret(Zeroizing::new(key(text)))
    }

    #[test]
    fn seed_keypairs_match_libsodium() {
        for v in vectors().seed_keypairs {
            let pair = KxKeyPair::from_seed(&key(&v.seed));
            assert_eq!(hex::encode(pair.public), v.public);
            assert_eq!(hex::encode(pair.secret()), v.secret);
        }
    }

    #[test]
    fn session_keys_match_libsodium_on_both_sides() {
        for v in vectors().session_keys {
            let client = pair_of_secret(&v.client_secret);
            let server = pair_of_secret(&v.server_secret);
            let c = client.client_session_keys(&server.public).unwrap();
            let s = server.server_session_keys(&client.public).unwrap();
            assert_eq!(hex::encode(*c.rx), v.client_rx);
            assert_eq!(hex::encode(*c.tx), v.client_tx);
            assert_eq!(hex::encode(*s.rx), v.server_rx);
            assert_eq!(hex::encode(*s.tx), v.server_tx);
            assert_eq!(*c.tx, *s.rx, "what the client sends, the server opens");
        }
    }

    #[test]
    fn raw_encryption_matches_libsodium_with_the_nonce_last() {
        for v in vectors().raw {
            let nonce: [u8; NONCE_BYTES] = hex::decode(&v.nonce).unwrap().try_into().unwrap();
            let sealed = encrypt_raw_with_nonce(v.plaintext.as_bytes(), &key(&v.key), &nonce);
            assert_eq!(hex::encode(&sealed), v.sealed);
            let opened = decrypt_raw(&hex::decode(&v.sealed).unwrap(), &key(&v.key)).unwrap();
            assert_eq!(opened.as_slice(), v.plaintext.as_bytes());
        }
    }

    #[test]
    fn envelopes_match_libsodium_both_ways() {
        for v in vectors().envelopes {
            let recipient = KxKeyPair::from_seed(&key(&v.recipient_seed));
            let nonce: [u8; NONCE_BYTES] = hex::decode(&v.nonce).unwrap().try_into().unwrap();
            let made = seal_to_with(
                &v.plaintext,
                &recipient.public,
                &pair_of_secret(&v.ephemeral_secret),
                &nonce,
            )
            .unwrap();
            assert_eq!(made, v.envelope);
            assert!(is_envelope(&v.envelope));
            assert_eq!(
                open_envelope(&v.envelope, &recipient).unwrap().as_str(),
                v.plaintext
            );
        }
    }

    #[test]
    fn key_digests_match_libsodium() {
        for v in vectors().digests {
            assert_eq!(key_digest(&v.key, &v.salt), v.digest);
        }
    }

    #[test]
    fn wrapped_shares_from_libsodium_unwrap() {
        for v in vectors().wrapped_shares {
            let share = unwrap_share(&v.wrapped, &key(&v.wrap_key)).unwrap();
            assert_eq!(hex::encode(*share), v.share1);
        }
    }

    #[test]
    fn a_fresh_envelope_opens_only_for_its_recipient() {
        let recipient = KxKeyPair::generate();
        let other = KxKeyPair::generate();
        let envelope = seal_to("postgres://db\nline two", &recipient.public).unwrap();
        assert_eq!(
            open_envelope(&envelope, &recipient).unwrap().as_str(),
            "postgres://db\nline two"
        );
        assert_eq!(open_envelope(&envelope, &other), Err(InvalidCiphertext));
        assert_ne!(
            envelope,
            seal_to("postgres://db\nline two", &recipient.public).unwrap()
        );
    }

    #[test]
    fn a_tampered_or_malformed_envelope_is_refused() {
        let recipient = KxKeyPair::generate();
        let envelope = seal_to("value", &recipient.public).unwrap();
        let mut tampered = envelope.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [
            tampered.as_str(),
            "ph:v1:zz:AAAA",
            "ph:v1",
            "",
            "plain text",
            &format!("{envelope}:extra"),
            &format!("ph:v1:{}:AAAA", "00".repeat(32)),
        ] {
            assert_eq!(
                open_envelope(bad, &recipient),
                Err(InvalidCiphertext),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_envelope_form_check_is_phases() {
        let hex64 = "ab".repeat(32);
        assert!(is_envelope(&format!("ph:v1:{hex64}:x")));
        assert!(!is_envelope(&format!("ph:v1:{hex64}:")));
        assert!(!is_envelope(&format!("ph:v2:{hex64}:x")));
        assert!(!is_envelope(&format!("ph:v1:{}:x", &hex64[..62])));
        assert!(!is_envelope("ph:v1:"));
    }

    #[test]
    fn a_split_key_joins_back_and_its_share_wraps() {
        let pair = KxKeyPair::generate();
        let (share0, share1) = split_secret(pair.secret());
        assert_ne!(*share0, *pair.secret());
        assert_eq!(*join_shares(&share0, &share1), *pair.secret());
        let mut wrap_key = [0u8; KEY_BYTES];
        rand::thread_rng().fill_bytes(&mut wrap_key);
        let wrapped = wrap_share(&share1, &wrap_key);
        assert_eq!(wrapped.len(), 208);
        assert_eq!(*unwrap_share(&wrapped, &wrap_key).unwrap(), *share1);
        assert_eq!(
            unwrap_share(&wrapped, &[7u8; KEY_BYTES]),
            Err(InvalidCiphertext)
        );
    }
}
