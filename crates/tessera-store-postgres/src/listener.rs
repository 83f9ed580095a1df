//! The listening connection: other processes' client changes and revocation appends,
//! through LISTEN/NOTIFY (see the crate docs).

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Shared;

/// Notified by a committed client change.
pub(crate) const CLIENTS_CHANNEL: &str = "tessera_clients";
/// Notified by a committed append to the revocation log.
pub(crate) const REVOCATIONS_CHANNEL: &str = "tessera_revocations";
/// Each listener's own heartbeats (the payload names the sender).
const HEARTBEAT_CHANNEL: &str = "tessera_heartbeat";

/// How often the task sends itself a heartbeat through the query pool...
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// ...and how long without one coming back before the listening connection is taken
/// for dead (a connection can die without a reset reaching us) and replaced.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(16);

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A pool of one connection for the listener alone (`PgListener` reconnects through
/// a pool), so that it never takes a connection from the queries.
pub(crate) fn pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(crate::ACQUIRE_TIMEOUT)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options)
}

/// Connects and listens on every channel.
pub(crate) async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is reported (`Ok(None)`), and replaced by us.
    listener.eager_reconnect(false);
    listener
        .listen_all([CLIENTS_CHANNEL, REVOCATIONS_CHANNEL, HEARTBEAT_CHANNEL])
        .await?;
    Ok(listener)
}

/// Why listening stopped.
enum Ended {
    /// The store was closed or dropped: the task ends.
    Stopped,
    /// The connection is gone; it will be replaced.
    Lost(String),
}

/// The task: applies notifications, and replaces the connection when it is lost,
/// until the store is closed or dropped.
pub(crate) async fn run(
    shared: Weak<Shared>,
    pool: PgPool,
    first: PgListener,
    mut stop: watch::Receiver<bool>,
) {
    // Unique enough to tell this listener's heartbeats from other processes'.
    let token = tessera_core::random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let mut listener = Some(first);
    let mut backoff = BACKOFF_FIRST;
    loop {
        let mut active = match listener.take() {
            Some(active) => active,
            None => {
                let attempt = tokio::select! {
                    attempt = connect(&pool) => attempt,
                    _ = stop.changed() => break,
                };
                match attempt {
                    Ok(active) => {
                        let Some(shared) = shared.upgrade() else {
                            break;
                        };
                        // Notifications sent while we were away are lost: whatever
                        // was cached may be stale, and the log may have grown.
                        shared.bump_cache_generation();
                        shared.listening.store(true, Ordering::SeqCst);
                        shared.outages.back();
                        shared.appended.signal();
                        tracing::info!("listening for the store's changes again");
                        backoff = BACKOFF_FIRST;
                        active
                    }
                    Err(error) => {
                        tracing::debug!(%error, "cannot reconnect the store's listener");
                        tokio::select! {
                            () = tokio::time::sleep(backoff) => {}
                            _ = stop.changed() => break,
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        match listen(&shared, &mut active, &mut stop, &token).await {
            Ended::Stopped => break,
            Ended::Lost(why) => {
                if let Some(shared) = shared.upgrade() {
                    shared.listening.store(false, Ordering::SeqCst);
                    shared.outages.lost();
                }
                tracing::warn!(
                    why,
                    "the store's listening connection is lost: clients are read from the \
                     database until it is back"
                );
            }
        }
    }
    pool.close().await;
}

/// Applies notifications until the connection is lost or the store stops.
async fn listen(
    shared: &Weak<Shared>,
    listener: &mut PgListener,
    stop: &mut watch::Receiver<bool>,
    token: &str,
) -> Ended {
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT_EVERY, HEARTBEAT_EVERY);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_echo = Instant::now();
    loop {
        let received = {
            // Polled by reference, so that sending a heartbeat never cancels a
            // receive half-way through a message.
            let receive = listener.try_recv();
            tokio::pin!(receive);
            loop {
                tokio::select! {
                    received = &mut receive => break received,
                    _ = heartbeat.tick() => {
                        if last_echo.elapsed() > HEARTBEAT_TIMEOUT {
                            return Ended::Lost("no heartbeat came back".into());
                        }
                        let Some(pool) = shared.upgrade().map(|s| s.pool.clone()) else {
                            return Ended::Stopped;
                        };
                        send_heartbeat(&pool, token).await;
                    }
                    _ = stop.changed() => return Ended::Stopped,
                }
            }
        };
        match received {
            Ok(Some(notification)) => {
                let Some(shared) = shared.upgrade() else {
                    return Ended::Stopped;
                };
                apply(&shared, &notification, token, &mut last_echo);
            }
            Ok(None) => return Ended::Lost("the connection closed".into()),
            Err(error) => return Ended::Lost(error.to_string()),
        }
    }
}

fn apply(shared: &Shared, notification: &PgNotification, token: &str, last_echo: &mut Instant) {
    match notification.channel() {
        CLIENTS_CHANNEL => shared.bump_cache_generation(),
        REVOCATIONS_CHANNEL => shared.appended.signal(),
        HEARTBEAT_CHANNEL if notification.payload() == token => *last_echo = Instant::now(),
        _ => {}
    }
}

/// Best effort: a heartbeat that cannot be sent is one that does not come back.
async fn send_heartbeat(pool: &PgPool, token: &str) {
    let sent = tokio::time::timeout(
        HEARTBEAT_EVERY,
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(HEARTBEAT_CHANNEL)
            .bind(token)
            .execute(pool),
    )
    .await;
    if let Ok(Err(error)) = sent {
        tracing::debug!(%error, "cannot send the listener's heartbeat");
    }
}
