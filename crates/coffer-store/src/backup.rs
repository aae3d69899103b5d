//! Backups: a consistent snapshot of every tree, sealed under the master key, as a byte
//! stream (`GET /v1/backup/`, `coffer backup`), and the reader that `restore.rs` loads.
//!
//! The snapshot is in terms of the storage seam — tree names, keys and stored values —
//! not of any backend's files, so a backup of one backend restores onto another. Stored
//! values are copied as the backend holds them (with their record tags): the restored
//! store is the same records under the same data key.
//!
//! **Consistency.** The copy is made while [`Cut::frozen`](crate::kv::Cut) holds every
//! write off: no transaction is in flight and none starts, so the copy is the state after
//! a set of whole transactions and before all the others. Writers pause for the copy
//! into memory only; sealing and sending happen after, while writes go on.
//!
//! **Format** (all integers big-endian):
//!
//! ```text
//! header  = magic "COFFERBK" ‖ version 1 ‖ salt (32) ‖ nonce prefix (19) ‖ key check (32)
//! frame   = kind (0: more, 1: last) ‖ length u32 ‖ sealed chunk
//! file    = header ‖ frame*   (the last frame, and only it, of kind 1)
//! ```
//!
//! The chunks are the STREAM construction (`aead::stream`, big-endian 32-bit counter and
//! a last-chunk flag in the nonce) over XChaCha20-Poly1305, with the whole header as
//! associated data of each, under a key derived from the master key and the salt. So a
//! chunk edited, dropped, moved or cut off, or a header edited, fails to open; a file
//! that ends before its last chunk is truncated, and bytes after it are refused. The key
//! check (an HMAC of the header under another subkey) tells a wrong master key from a
//! damaged chunk. Each chunk holds one bincode [`Section`]: a manifest first, then the
//! records of one tree at a time, then the end with the total count.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::audit::{Actor, AuditAction, AuditEvent};
use crate::codec;
use crate::crypto::MasterKey;
use crate::error::StoreError;
use crate::kv::{KvBackend, KvPair, Tree};
use crate::model::Timestamp;
use crate::store::Store;

const MAGIC: &[u8; 8] = b"COFFERBK";
const VERSION: u8 = 1;
const SALT_LEN: usize = 32;
/// XChaCha20's 24-byte nonce less STREAM's 5 bytes of counter and flag.
const NONCE_PREFIX_LEN: usize = 19;
const CHECK_LEN: usize = 32;
/// Length of the header.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + SALT_LEN + NONCE_PREFIX_LEN + CHECK_LEN;
/// Records are packed into chunks of about this many bytes of plaintext.
const CHUNK_TARGET: usize = 64 * 1024;
/// The largest sealed chunk a reader accepts (one record, however large, fits).
const MAX_SEALED_CHUNK: usize = 64 * 1024 * 1024;
const FRAME_MORE: u8 = 0;
const FRAME_LAST: u8 = 1;

/// The subkey of the master key that backups are sealed under. Held by an open store
/// (which keeps no master key), so that a backup opens only with the master key the store
/// was opened with.
pub(crate) struct BackupKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey(..)")
    }
}

impl BackupKey {
    pub(crate) fn derive(master: &MasterKey) -> Self {
        BackupKey(master.subkey(b"coffer backup v1"))
    }

    /// The stream cipher and the key-check tag of the header that starts with `fields`
    /// (magic, version, salt, nonce prefix).
    fn for_header(&self, salt: &[u8], fields: &[u8]) -> (XChaCha20Poly1305, [u8; CHECK_LEN]) {
        let hkdf = Hkdf::<Sha256>::new(Some(salt), self.0.as_ref());
        let mut stream_key = Zeroizing::new([0u8; 32]);
        let mut check_key = Zeroizing::new([0u8; 32]);
        hkdf.expand(b"coffer backup stream v1", stream_key.as_mut())
            .and_then(|()| hkdf.expand(b"coffer backup key check v1", check_key.as_mut()))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut check = <Hmac<Sha256> as Mac>::new_from_slice(check_key.as_ref())
            .expect("HMAC takes any key length");
        check.update(fields);
        (
            XChaCha20Poly1305::new(stream_key.as_ref().into()),
            check.finalize().into_bytes().into(),
        )
    }
}

/// What a backup holds besides its records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// When the cut was taken.
    pub taken_at: Timestamp,
    /// The store's format version.
    pub store_format: u8,
    /// Whether the store's master key was its data directory's own `master.key` (a
    /// restore then lays the key file out the same way).
    pub key_in_data_dir: bool,
    /// Every tree by name, with its number of records.
    pub trees: Vec<(String, u64)>,
}

/// The plaintext of one chunk.
#[derive(Debug, Serialize, Deserialize)]
enum Section {
    Manifest(Manifest),
    Records { tree: String, records: Vec<KvPair> },
    End { records: u64 },
}

/// What taking a backup cost.
#[derive(Clone, Copy, Debug)]
pub struct BackupStats {
    /// Records copied.
    pub records: u64,
    /// How long writes were held off for the copy.
    pub writes_paused: Duration,
}

/// A backup being sealed: yields the header, then one frame per chunk. The records are
/// already copied; nothing here touches the store.
pub struct BackupStream {
    header: Option<Vec<u8>>,
    aad: Vec<u8>,
    encryptor: Option<EncryptorBE32<XChaCha20Poly1305>>,
    manifest: Option<Manifest>,
    trees: std::vec::IntoIter<(Tree, Vec<KvPair>)>,
    /// The tree being packed and its records not yet sealed.
    current: Option<(Tree, std::vec::IntoIter<KvPair>)>,
    total: u64,
    ended: bool,
}

impl std::fmt::Debug for BackupStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupStream").finish_non_exhaustive()
    }
}

impl<B: KvBackend> Store<B> {
    /// Takes a backup: records `store.backup` (durably, before the cut, so the backup
    /// holds the entry of its own taking), copies every tree at one consistent cut, and
    /// returns the stream that seals the copy.
    pub fn backup(&self, actor: &Actor) -> Result<(BackupStream, BackupStats), StoreError> {
        self.write(actor, &[], |_| {
            Ok(((), AuditEvent::new(AuditAction::StoreBackup)))
        })?;
        let started = Instant::now();
        let copied = {
            let _frozen = self.kv.inner().frozen();
            let raw = self.kv.inner().inner();
            Tree::ALL
                .iter()
                .map(|tree| {
                    let records = raw.scan_prefix(*tree, &[]).collect::<Result<Vec<_>, _>>()?;
                    Ok((*tree, records))
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        };
        let writes_paused = started.elapsed();
        let manifest = Manifest {
            taken_at: Timestamp::now(),
            store_format: codec::FORMAT_VERSION,
            key_in_data_dir: self.key_in_data_dir,
            trees: copied
                .iter()
                .map(|(tree, records)| (tree.name().to_owned(), records.len() as u64))
                .collect(),
        };
        let stats = BackupStats {
            records: manifest.trees.iter().map(|(_, n)| n).sum(),
            writes_paused,
        };
        Ok((BackupStream::new(&self.backup_key, manifest, copied), stats))
    }
}

impl BackupStream {
    fn new(key: &BackupKey, manifest: Manifest, trees: Vec<(Tree, Vec<KvPair>)>) -> Self {
        let mut salt = [0u8; SALT_LEN];
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        rand::thread_rng().fill_bytes(&mut prefix);
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.push(VERSION);
        header.extend_from_slice(&salt);
        header.extend_from_slice(&prefix);
        let (cipher, check) = key.for_header(&salt, &header);
        header.extend_from_slice(&check);
        BackupStream {
            aad: header.clone(),
            header: Some(header),
            encryptor: Some(EncryptorBE32::from_aead(cipher, (&prefix).into())),
            manifest: Some(manifest),
            trees: trees.into_iter(),
            current: None,
            total: 0,
            ended: false,
        }
    }

    /// The next section to seal, and whether it is the last.
    fn next_section(&mut self) -> Option<(Section, bool)> {
        if let Some(manifest) = self.manifest.take() {
            return Some((Section::Manifest(manifest), false));
        }
        loop {
            if let Some((tree, records)) = &mut self.current {
                let mut packed = Vec::new();
                let mut size = 0;
                for record in records.by_ref() {
                    size += record.0.len() + record.1.len() + 16;
                    packed.push(record);
                    if size >= CHUNK_TARGET {
                        break;
                    }
                }
                if !packed.is_empty() {
                    self.total += packed.len() as u64;
                    let tree = tree.name().to_owned();
                    return Some((
                        Section::Records {
                            tree,
                            records: packed,
                        },
                        false,
                    ));
                }
            }
            match self.trees.next() {
                Some((tree, records)) => self.current = Some((tree, records.into_iter())),
                None if self.ended => return None,
                None => {
                    self.ended = true;
                    return Some((
                        Section::End {
                            records: self.total,
                        },
                        true,
                    ));
                }
            }
        }
    }
}

impl Iterator for BackupStream {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if let Some(header) = self.header.take() {
            return Some(header);
        }
        let (section, last) = self.next_section()?;
        let plain = Zeroizing::new(bincode::serialize(&section).expect("sections encode"));
        let payload = Payload {
            msg: &plain,
            aad: &self.aad,
        };
        let sealed = if last {
            self.encryptor.take()?.encrypt_last(payload)
        } else {
            self.encryptor.as_mut()?.encrypt_next(payload)
        }
        .expect("XChaCha20-Poly1305 seals any chunk under 256 GiB");
        let mut frame = Vec::with_capacity(5 + sealed.len());
        frame.push(if last { FRAME_LAST } else { FRAME_MORE });
        frame.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        frame.extend_from_slice(&sealed);
        Some(frame)
    }
}

/// Why a backup cannot be read. Never names a key or a record's contents.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file does not start like a backup.
    #[error("not a Coffer backup")]
    NotABackup,
    /// A backup of a format this release does not know.
    #[error("backup format {0} is not supported by this release")]
    UnsupportedVersion(u8),
    /// The master key is not the one the backup was taken under.
    #[error(
        "the master key does not open this backup (it was taken under another master key, \
         or its header is damaged)"
    )]
    WrongMasterKey,
    /// A chunk does not authenticate.
    #[error("the backup is damaged: chunk {0} does not authenticate")]
    Damaged(u64),
    /// The file ends before its last chunk.
    #[error("the backup is truncated: it ends before its last chunk")]
    Truncated,
    /// Bytes follow the last chunk.
    #[error("the backup is damaged: data follows its last chunk")]
    TrailingData,
    /// Authentic chunks that do not make a backup (sections out of order, counts that do
    /// not add up, a tree this release does not know).
    #[error("the backup is inconsistent: {0}")]
    Inconsistent(String),
    /// Reading failed.
    #[error("cannot read the backup: {0}")]
    Io(#[from] io::Error),
}

/// A backup being opened: the manifest, then the records, tree by tree.
pub(crate) struct BackupReader<R> {
    reader: R,
    aad: Vec<u8>,
    decryptor: Option<DecryptorBE32<XChaCha20Poly1305>>,
    chunk: u64,
}

/// Reads exactly `buf.len()` bytes; a short read is a truncation.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), BackupError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Truncated,
        _ => BackupError::Io(e),
    })
}

impl<R: Read> BackupReader<R> {
    /// Reads the header and checks the master key against it.
    pub(crate) fn open(mut reader: R, master: &MasterKey) -> Result<Self, BackupError> {
        let mut header = [0u8; HEADER_LEN];
        let mut magic = [0u8; MAGIC.len() + 1];
        reader.read_exact(&mut magic).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => BackupError::NotABackup,
            _ => BackupError::Io(e),
        })?;
        if &magic[..MAGIC.len()] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        if magic[MAGIC.len()] != VERSION {
            return Err(BackupError::UnsupportedVersion(magic[MAGIC.len()]));
        }
        header[..magic.len()].copy_from_slice(&magic);
        read_full(&mut reader, &mut header[magic.len()..])?;
        let salt_at = magic.len();
        let prefix_at = salt_at + SALT_LEN;
        let check_at = prefix_at + NONCE_PREFIX_LEN;
        let key = BackupKey::derive(master);
        let (cipher, check) = key.for_header(&header[salt_at..prefix_at], &header[..check_at]);
        if !subtle_eq(&check, &header[check_at..]) {
            return Err(BackupError::WrongMasterKey);
        }
        let prefix: [u8; NONCE_PREFIX_LEN] = header[prefix_at..check_at]
            .try_into()
            .expect("the prefix is 19 bytes");
        Ok(BackupReader {
            reader,
            aad: header.to_vec(),
            decryptor: Some(DecryptorBE32::from_aead(cipher, (&prefix).into())),
            chunk: 0,
        })
    }

    /// The next section, `None` after the last (and only if nothing follows it).
    fn next_section(&mut self) -> Result<Option<Section>, BackupError> {
        if self.decryptor.is_none() {
            let mut probe = [0u8; 1];
            return match self.reader.read(&mut probe)? {
                0 => Ok(None),
                _ => Err(BackupError::TrailingData),
            };
        }
        let mut head = [0u8; 5];
        read_full(&mut self.reader, &mut head)?;
        let length = u32::from_be_bytes(head[1..].try_into().expect("4 bytes")) as usize;
        let chunk = self.chunk;
        if length > MAX_SEALED_CHUNK || head[0] > FRAME_LAST {
            return Err(BackupError::Damaged(chunk));
        }
        let mut sealed = vec![0u8; length];
        read_full(&mut self.reader, &mut sealed)?;
        let payload = Payload {
            msg: &sealed,
            aad: &self.aad,
        };
        let plain = if head[0] == FRAME_LAST {
            self.decryptor
                .take()
                .and_then(|d| d.decrypt_last(payload).ok())
        } else {
            self.decryptor
                .as_mut()
                .and_then(|d| d.decrypt_next(payload).ok())
        }
        .map(Zeroizing::new)
        .ok_or(BackupError::Damaged(chunk))?;
        self.chunk += 1;
        bincode::deserialize(&plain)
            .map(Some)
            .map_err(|_| BackupError::Inconsistent(format!("chunk {chunk} does not decode")))
    }

    /// Reads the whole backup into `kv` (a backend below any authentication layer: the
    /// values keep their tags), checking every count against the manifest. Returns the
    /// manifest. On error, `kv` holds part of the backup and is to be thrown away.
    pub(crate) fn load_into(mut self, kv: &impl KvBackend) -> Result<Manifest, BackupError> {
        let inconsistent = |what: &str| BackupError::Inconsistent(what.to_owned());
        let manifest = match self.next_section()? {
            Some(Section::Manifest(manifest)) => manifest,
            _ => return Err(inconsistent("it does not start with its manifest")),
        };
        let mut counts: Vec<u64> = vec![0; Tree::ALL.len()];
        let mut total = 0u64;
        loop {
            match self.next_section()? {
                Some(Section::Records { tree, records }) => {
                    let tree = Tree::ALL
                        .into_iter()
                        .find(|t| t.name() == tree)
                        .ok_or_else(|| {
                            BackupError::Inconsistent(format!(
                                "it holds tree '{tree}', which this release does not know"
                            ))
                        })?;
                    for (key, value) in &records {
                        kv.insert(tree, key, value)
                            .map_err(|e| BackupError::Io(io::Error::other(e)))?;
                    }
                    counts[tree.position()] += records.len() as u64;
                    total += records.len() as u64;
                }
                Some(Section::End { records }) if records == total => break,
                Some(Section::End { .. }) => return Err(inconsistent("its record count is off")),
                Some(Section::Manifest(_)) => return Err(inconsistent("it has two manifests")),
                None => return Err(BackupError::Truncated),
            }
        }
        if self.next_section()?.is_some() {
            return Err(BackupError::TrailingData);
        }
        for (name, expected) in &manifest.trees {
            let tree = Tree::ALL.into_iter().find(|t| t.name() == name);
            let found = tree.map_or(0, |t| counts[t.position()]);
            if found != *expected {
                return Err(BackupError::Inconsistent(format!(
                    "tree '{name}' holds {found} records, its manifest says {expected}"
                )));
            }
        }
        Ok(manifest)
    }
}

/// Constant-time equality of two tags.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
