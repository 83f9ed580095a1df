//! TLS on a listener (tessera's public port, the gateway's): a certificate and
//! key from PEM files, reloaded without a restart when either file changes (a
//! renewal by certbot or an ACME agent replaces them in place).
//!
//! The files are looked at once a second. A new pair that does not load (half
//! written, or a key that does not match) is logged and the pair in use kept, so
//! a botched renewal never takes the service down; the next change is tried again.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the PEM files are: the chain, leaf first; the private key, PKCS#8,
/// PKCS#1 or SEC1. The `[tls]` table of the server's and the gateway's
/// configuration files.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {}: {reason}", path.display())]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read the private key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("the private key {} does not go with the certificate {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The certificate in use, swapped when the files change.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|current| current.clone())
    }
}

fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: files.cert.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE in it".to_owned()));
    }
    let key_error = |reason: String| TlsError::Key {
        path: files.key.clone(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| key_error(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
    })?;
    Ok(certified)
}

fn modified(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let at = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((at(&files.cert)?, at(&files.key)?))
}

/// A TLS acceptor for `files` (HTTP/2 and HTTP/1.1 by ALPN), and a task that
/// reloads them when they change. Fails at once if they do not load now.
pub fn acceptor(files: TlsFiles) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let reloading = Arc::new(Reloading {
        current: RwLock::new(Arc::new(load(&files)?)),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Cert {
        path: files.cert.clone(),
        reason: e.to_string(),
    })?
    .with_no_client_auth()
    .with_cert_resolver(reloading.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio::spawn(watch(files, reloading));
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The TLS handshake of an accepted connection, bounded by `within` (a client
/// that never finishes it holds nothing but its own task). `None`, logged at
/// debug, when it fails or times out.
pub(crate) async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    within: Duration,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

async fn watch(files: TlsFiles, reloading: Arc<Reloading>) {
    let mut seen = modified(&files);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = modified(&files);
        if now == seen || now.is_none() {
            continue;
        }
        seen = now;
        match load(&files) {
            Ok(certified) => {
                if let Ok(mut current) = reloading.current.write() {
                    *current = Arc::new(certified);
                }
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "the new TLS certificate does not load; keeping the one in use");
            }
        }
    }
}
