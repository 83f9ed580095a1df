//! tessera's listeners, shared by the server's public and management ports and
//! the gateway's: one accept loop ([`serve`]) for HTTP/1.1 and HTTP/2 with
//! upgrades, TLS when configured ([`acceptor`]: PEM files, reloaded when they
//! change), a graceful stop bounded by a grace period ([`shutdown_signal`]), and
//! the metrics recorder the management listener renders ([`install_metrics`]).
//! No tessera crate below it.

mod metrics;
mod serve;
mod signal;
mod tls;

pub use metrics::install_metrics;
pub use serve::serve;
pub use signal::shutdown_signal;
pub use tls::{TlsError, TlsFiles, acceptor};
