//! What the several-instances benchmarks need: throwaway PostgreSQL and Redis
//! servers, a round-robin TCP balancer in front of the instances (as a load
//! balancer without sticky sessions would be), and the cost of "who is online".

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tessera_core::{SessionSecret, Timestamp, UserId};
use tessera_store::{PresenceStore, Seen};
use tokio::net::{TcpListener, TcpStream};

/// Starts PostgreSQL and Redis (AOF on) on free loopback ports, prints
/// `TESSERA_DATABASE=…` and `TESSERA_REDIS=…`, and keeps them until stdin closes.
pub fn stores() -> anyhow::Result<()> {
    let postgres = tessera_testkit::Postgres::start();
    let redis = tessera_testkit::Redis::start_with(true);
    println!("TESSERA_DATABASE={}", postgres.url());
    println!("TESSERA_REDIS={}", redis.url());
    use std::io::Write;
    std::io::stdout().flush()?;
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink)? > 0 {}
    drop((postgres, redis));
    Ok(())
}

/// Accepts connections on `listen` and hands each to the next of `backends` in turn.
pub async fn balance(listen: SocketAddr, backends: Vec<SocketAddr>) -> anyhow::Result<()> {
    anyhow::ensure!(!backends.is_empty(), "give at least one --backend");
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let next = Arc::new(AtomicUsize::new(0));
    let backends = Arc::new(backends);
    loop {
        let (mut inbound, _) = listener.accept().await?;
        let target = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()];
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            if let Ok(mut outbound) = TcpStream::connect(target).await {
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Records `sessions` sightings (of `sessions / 3` users) in the store at `url`, then
/// times `online_since` for a five-minute window; prints the median and p99.
pub async fn presence(
    database: Option<String>,
    redis: Option<String>,
    sessions: usize,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir()?;
    let store: Arc<dyn PresenceStore> = match (database, redis) {
        (_, Some(redis)) => {
            // Presence touches neither the accounts nor the log it is given.
            let database = Arc::new(
                tessera_store_sqlite::SqliteStore::open(&scratch.path().join("unused.sqlite3"))
                    .await?,
            );
            Arc::new(
                tessera_store_redis::RedisStore::open(&redis, database.clone(), database).await?,
            )
        }
        (Some(url), None) if url.starts_with("postgres") => {
            Arc::new(tessera_store_postgres::PostgresStore::open(&url).await?)
        }
        (Some(url), None) => {
            let path = url.strip_prefix("sqlite://").unwrap_or(&url);
            Arc::new(tessera_store_sqlite::SqliteStore::open(std::path::Path::new(path)).await?)
        }
        (None, None) => anyhow::bail!("give --database URL or --redis URL"),
    };
    let users: Vec<UserId> = (0..sessions.div_ceil(3))
        .map(|_| UserId::generate())
        .collect();
    let now = Timestamp::now();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..sessions {
        batch.push(Seen {
            sid: SessionSecret::generate().session_id(),
            user: users[i / 3],
            at: now,
        });
        if batch.len() == 1000 {
            store.record_presence(&batch).await?;
            batch.clear();
        }
    }
    store.record_presence(&batch).await?;
    let seeding = started.elapsed();
    let since = now.saturating_sub(Duration::from_secs(300));
    let mut times = Vec::new();
    let mut online = store.online_since(since).await?;
    for _ in 0..200 {
        let started = Instant::now();
        online = store.online_since(since).await?;
        times.push(started.elapsed().as_micros() as u64);
    }
    times.sort_unstable();
    println!(
        "presence: {sessions} sightings written in {:.2} s ({:.0}/s); online = {} users, {} sessions; \
         query p50 {} µs, p99 {} µs",
        seeding.as_secs_f64(),
        sessions as f64 / seeding.as_secs_f64(),
        online.users,
        online.sessions,
        crate::percentile(&times, 50.0),
        crate::percentile(&times, 99.0),
    );
    Ok(())
}
