//! TLS: the server's certificate chain and private key, read from PEM files
//! and checked at start-up, ready for rustls.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{InconsistentKeys, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and its key, checked to belong together: what the
/// server needs to serve HTTPS.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
}

/// Why a certificate or key can't be used. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file could not be read, or is not well-formed PEM.
    #[error("cannot read the TLS certificate file {}", .path.display())]
    Certificate {
        /// The file given as `--tls-cert`.
        path: PathBuf,
        /// Why: the file system's error, or what is wrong with the PEM.
        #[source]
        source: io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error(
        "the TLS certificate file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        .path.display()
    )]
    NoCertificate {
        /// The file given as `--tls-cert`.
        path: PathBuf,
    },
    /// The key file could not be read, or is not well-formed PEM.
    #[error("cannot read the TLS private key file {}", .path.display())]
    Key {
        /// The file given as `--tls-key`.
        path: PathBuf,
        /// Why: the file system's error, or what is wrong with the PEM.
        #[source]
        source: io::Error,
    },
    /// The key file holds no private key block.
    #[error(
        "the TLS private key file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        .path.display()
    )]
    NoKey {
        /// The file given as `--tls-key`.
        path: PathBuf,
    },
    /// The key is not the one of the server's certificate.
    #[error(
        "the TLS private key {} does not belong to the certificate {} (the server's own certificate must come first in the file)",
        .key.display(), .certificate.display()
    )]
    KeyMismatch {
        /// The file given as `--tls-cert`.
        certificate: PathBuf,
        /// The file given as `--tls-key`.
        key: PathBuf,
    },
    /// rustls refused the pair otherwise: a key type it does not support,
    /// or a malformed certificate.
    #[error("cannot use the TLS certificate {} with the key {}", .certificate.display(), .key.display())]
    Unusable {
        /// The file given as `--tls-cert`.
        certificate: PathBuf,
        /// The file given as `--tls-key`.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

impl Tls {
    /// Reads a PEM certificate chain (the server's certificate first, then
    /// any intermediates) and its PEM private key, and checks that they
    /// belong together.
    pub fn load(certificate: &Path, key: &Path) -> Result<Tls, TlsError> {
        let chain = std::fs::read(certificate)
            .and_then(|pem| certificates(&pem))
            .map_err(|source| TlsError::Certificate {
                path: certificate.to_owned(),
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: certificate.to_owned(),
            });
        }
        let private_key = std::fs::read(key)
            .and_then(|pem| pem_private_key(&pem))
            .map_err(|source| TlsError::Key {
                path: key.to_owned(),
                source,
            })?
            .ok_or_else(|| TlsError::NoKey {
                path: key.to_owned(),
            })?;
        Tls::new(chain, private_key).map_err(|source| match source {
            rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    certificate: certificate.to_owned(),
                    key: key.to_owned(),
                }
            }
            source => TlsError::Unusable {
                certificate: certificate.to_owned(),
                key: key.to_owned(),
                source,
            },
        })
    }

    /// Uses a certificate chain (the server's certificate first) and its
    /// private key, already in memory.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Tls, rustls::Error> {
        // The provider is chosen here rather than taken from the process-wide
        // default, so nothing depends on which rustls features other crates
        // turn on. ring is the one reqwest's rustls already builds; aws-lc-rs
        // would need cmake.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            // TLS 1.3 and 1.2.
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Tls {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration to serve with. actix adds the ALPN protocol
    /// (`http/1.1` only: this build has no HTTP/2).
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig::clone(&self.config)
    }
}

/// The certificates of a PEM file's bytes, none when it holds no
/// `CERTIFICATE` block; the error says what is wrong with the PEM. Also
/// checks `--etcd-ca-cert` and `--etcd-cert` at start-up.
pub(crate) fn certificates(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(readable)
}

/// The private key of a PEM file's bytes, `None` when it holds none. Also
/// checks `--etcd-key` at start-up.
pub(crate) fn pem_private_key(pem: &[u8]) -> io::Result<Option<PrivateKeyDer<'static>>> {
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(key) => Ok(Some(key)),
        Err(pem::Error::NoItemsFound) => Ok(None),
        Err(err) => Err(readable(err)),
    }
}

/// A PEM reading error as a person reads it: the file system's own error,
/// or a sentence about the PEM (whose own messages print markers as bytes).
fn readable(err: pem::Error) -> io::Error {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
    let message = match err {
        pem::Error::Io(err) => return err,
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "a PEM block has no \"-----END {}-----\" line; is the file cut short?",
            text(&end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed PEM line {:?}", text(&line))
        }
        pem::Error::Base64Decode(err) => format!("a PEM block is not valid base64 ({err})"),
        other => other.to_string(),
    };
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never anything about the key.
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}
