//! TLS with rustls: a certificate chain and private key from PEM files.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("TLS file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("TLS certificate file {0} holds no PEM certificate")]
    NoCertificate(String),
    /// The key file holds no private key.
    #[error("TLS key file {0} holds no PEM private key")]
    NoKey(String),
    /// rustls refused the pair.
    #[error("TLS certificate and key do not form a valid server identity: {0}")]
    Invalid(#[from] rustls::Error),
}

fn open(path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| TlsError::Read {
            path: path.display().to_string(),
            source,
        })
}

/// A rustls server configuration from PEM files.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Read {
            path: shown(cert),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(shown(cert)));
    }
    let key_der = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|source| TlsError::Read {
            path: shown(key),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(shown(key)))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?)
}
