//! Why the gateway could not start.

use std::net::SocketAddr;

/// Why the gateway failed to start (`run`, `Gateway::new`).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start following tessera at {url}: {source}")]
    Tessera {
        url: String,
        source: tessera_verify::remote::SetupError,
    },
    #[error("cannot set up an HTTP client: {0}")]
    Http(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("cannot set up the metrics: {0}")]
    Metrics(String),
}
