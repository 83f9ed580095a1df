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
/// from `TESSERA_LOG` (e.g. `debug`, `tessera_server=trace`), default `info`. For the
/// CLI's commands, which log little; services use [`init_service_logging`].
pub fn init_logging(format: LogFormat) {
    install_logging(format, std::io::stderr);
}

/// Logging for a long-running service (`serve`, `gateway`): the same lines, written
/// to stderr by a thread of their own, so that no request waits on the terminal,
/// the journal or a full pipe. Writing each request's line synchronously cost a
/// fifth of hello world's rate at `info`. No line is dropped: when the buffer is
/// full, the writer waits. Keep the guard until the service stops; dropping it
/// writes out what is left.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_service_logging(format: LogFormat) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Its queue is allocated whole: the default 128,000 lines cost megabytes of
        // memory at rest; a few thousand lines absorb any burst a second long.
        .buffered_lines_limit(4096)
        .lossy(false)
        .thread_name("tessera-log-writer")
        .finish(std::io::stderr());
    install_logging(format, writer);
    LogGuard { _writer: guard }
}

/// Keeps a service's log writer running; see [`init_service_logging`].
pub struct LogGuard {
    _writer: tracing_appender::non_blocking::WorkerGuard,
}

fn install_logging<W>(format: LogFormat, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
