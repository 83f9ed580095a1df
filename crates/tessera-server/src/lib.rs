//! tessera's HTTP service.
//!
//! Layers, outside in: `app` (opens the stores, builds the services, mounts the
//! routes, serves), `routes` (one module per area: parse, call one service, render),
//! `http` (extractors, errors and middleware, below the routes), `services` (the only
//! code that reaches a store), and the store traits of `tessera-store` underneath.
//! `openapi` is the JSON API's contract (`/openapi.json`).
//! See ARCHITECTURE.md at the repository root.

mod app;
pub mod config;
pub mod http;
pub mod openapi;
mod routes;
pub mod services;
mod state;
pub mod stores;
pub mod views;

pub use crate::app::{Core, Listening, serve};
pub use crate::config::{Config, LogFormat, MASTER_KEY_VAR, Overrides};

/// Sets up `tracing` output on stderr: human-readable or JSON lines. The filter comes
/// from `TESSERA_LOG` (e.g. `debug`, `tessera_server=trace`), default `info`.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
