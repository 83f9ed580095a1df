//! Helpers for `scripts/bench`: the raw baselines the server is compared with, and
//! seeding a store with many sessions quickly.

mod cluster;
mod code_flow;
mod revocation;
mod token_endpoint;
mod upstream;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use clap::{Parser, Subcommand};
use tessera_core::{CsrfToken, SessionSecret, Timestamp, UserId};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hashes per second of the argon2 crate alone, on THREADS threads: the ceiling for
    /// logins per second with the same parameters on the same cores.
    Argon2Rate {
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 19456)]
        memory_kib: u32,
        #[arg(long, default_value_t = 2)]
        iterations: u32,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
        /// Give each thread one memory buffer for all its hashes (the crate's
        /// `hash_password_into_with_memory`), as the server does, instead of the
        /// crate's allocate-per-hash `hash_password`.
        #[arg(long)]
        reuse_memory: bool,
    },
    /// Sends GET requests at a steady RATE per second over CONNECTIONS keep-alive
    /// connections and prints latency percentiles in microseconds. A request that
    /// fell due while its connection still waited for the previous answer is timed
    /// from when it was due, so a server stall counts against every request it held
    /// back (no coordinated omission); others are timed from when they were sent.
    /// The probe's own late wake-ups are thus not counted: on a shared machine they
    /// are the probe's latency, not the server's (with few connections and a short
    /// interval per connection, they once made up most of a measured p99).
    Probe {
        #[arg(long)]
        url: String,
        #[arg(long)]
        cookie: Option<String>,
        #[arg(long, default_value_t = 4000)]
        rate: u32,
        #[arg(long, default_value_t = 64)]
        connections: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also append every latency (µs), one per line, to this file, so that runs
        /// can be pooled.
        #[arg(long)]
        samples: Option<PathBuf>,
    },
    /// Creates COUNT live sessions for one user straight in the store file (one
    /// transaction, so 100,000 take seconds, not an fsync each), and writes each
    /// session's cookie header value, one per line, to COOKIES.
    SeedSessions {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        cookies: PathBuf,
        #[arg(long, default_value = "__Host-tessera-session")]
        cookie_name: String,
    },
    /// Revokes COUNT fresh JWTs one by one and times, for each, from the revoke call
    /// returning until VERIFIERS tessera-verify verifiers (each following the feed)
    /// all refuse it.
    RevocationLatency {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        audience: String,
        /// ID:SECRET of a client with the `revocations` scope.
        #[arg(long, value_parser = revocation::client)]
        feed_client: revocation::Client,
        /// ID:SECRET of a client_credentials client whose tokens are for AUDIENCE.
        #[arg(long, value_parser = revocation::client)]
        token_client: revocation::Client,
        #[arg(long, default_value_t = 1)]
        verifiers: usize,
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// Starts throwaway PostgreSQL and Redis (append-only file on) servers on free
    /// loopback ports, prints TESSERA_DATABASE=… and TESSERA_REDIS=… lines, and stops
    /// them when standard input closes.
    Stores,
    /// A round-robin TCP balancer: each connection to LISTEN goes to the next
    /// BACKEND, as behind a load balancer without sticky sessions.
    Balance {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long = "backend", required = true)]
        backends: Vec<std::net::SocketAddr>,
    },
    /// A minimal HTTP/1.1 upstream answering every request with a short body: what
    /// the gateway and nginx proxy to in the gateway benchmarks.
    Upstream {
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// The code flow's throughput (authorize, exchange, userinfo, the whole flow)
    /// against hello world, for tessera or any provider.
    CodeFlow(code_flow::Args),
    /// The token endpoint with DPoP proofs (client credentials, a fresh proof per
    /// request) against the same without proofs and against hello world.
    TokenEndpoint(token_endpoint::Args),
    /// RSA-2048 signatures per second with aws-lc-rs: RS256's ceiling.
    RsaSignRate {
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// An exchange's two signatures (the ID token's, ES256 or RS256, and the EdDSA
    /// access token's) per second with aws-lc-rs: with hello world's rate, the
    /// exchange's ceiling.
    TokenPairSignRate {
        #[arg(long, default_value = "ES256")]
        id_token_alg: String,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// A DPoP token request's own cryptography (one proof's signature checked,
    /// one EdDSA access token signed) per second with aws-lc-rs: with hello
    /// world's rate, the ceiling of the token endpoint with DPoP.
    DpopCryptoRate {
        #[arg(long, default_value = "ES256")]
        proof_alg: String,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Writes SESSIONS presence sightings, then times "who was online in the last
    /// five minutes" on that store.
    Presence {
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        redis: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        sessions: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Argon2Rate {
            threads,
            seconds,
            memory_kib,
            iterations,
            parallelism,
            reuse_memory,
        } => argon2_rate(
            threads,
            seconds,
            memory_kib,
            iterations,
            parallelism,
            reuse_memory,
        ),
        Command::Probe {
            url,
            cookie,
            rate,
            connections,
            seconds,
            samples,
        } => tokio::runtime::Runtime::new()?.block_on(probe(
            url,
            cookie,
            rate,
            connections,
            seconds,
            samples,
        )),
        Command::SeedSessions {
            data_dir,
            count,
            cookies,
            cookie_name,
        } => tokio::runtime::Runtime::new()?.block_on(seed_sessions(
            data_dir,
            count,
            cookies,
            cookie_name,
        )),
        Command::RevocationLatency {
            issuer,
            audience,
            feed_client,
            token_client,
            verifiers,
            count,
        } => tokio::runtime::Runtime::new()?.block_on(revocation::run(
            issuer,
            audience,
            feed_client,
            token_client,
            verifiers,
            count,
        )),
        Command::Stores => cluster::stores(),
        Command::Upstream { listen } => {
            tokio::runtime::Runtime::new()?.block_on(upstream::run(listen))
        }
        Command::Balance { listen, backends } => {
            tokio::runtime::Runtime::new()?.block_on(cluster::balance(listen, backends))
        }
        Command::Presence {
            database,
            redis,
            sessions,
        } => tokio::runtime::Runtime::new()?.block_on(cluster::presence(database, redis, sessions)),
        Command::CodeFlow(args) => tokio::runtime::Runtime::new()?.block_on(code_flow::run(args)),
        Command::TokenEndpoint(args) => {
            tokio::runtime::Runtime::new()?.block_on(token_endpoint::run(args))
        }
        Command::RsaSignRate { threads, seconds } => {
            let rate = code_flow::rsa_sign_rate(threads, seconds)?;
            println!(
                "{}",
                serde_json::json!({ "threads": threads, "signatures_per_second": rate.round() })
            );
            Ok(())
        }
        Command::DpopCryptoRate {
            proof_alg,
            threads,
            seconds,
        } => {
            let rate = token_endpoint::dpop_crypto_rate(&proof_alg, threads, seconds)?;
            println!(
                "{}",
                serde_json::json!({ "threads": threads, "requests_per_second": rate.round() })
            );
            Ok(())
        }
        Command::TokenPairSignRate {
            id_token_alg,
            threads,
            seconds,
        } => {
            let rate = code_flow::token_pair_sign_rate(&id_token_alg, threads, seconds)?;
            println!(
                "{}",
                serde_json::json!({ "threads": threads, "pairs_per_second": rate.round() })
            );
            Ok(())
        }
    }
}

/// The `p`th percentile (0–100) of sorted samples, nearest rank; 0 for none.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> u64 {
    let index = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted
        .get(index.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

fn argon2_rate(
    threads: usize,
    seconds: u64,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    reuse_memory: bool,
) -> anyhow::Result<()> {
    let params = Params::new(memory_kib, iterations, parallelism, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let block_count = params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (argon, done, stop) = (argon.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut blocks = vec![argon2::Block::default(); block_count];
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    let hashed = if reuse_memory {
                        argon
                            .hash_password_into_with_memory(
                                b"a benchmark password",
                                b"sixteen byte salt",
                                &mut out,
                                &mut blocks[..],
                            )
                            .is_ok()
                    } else {
                        argon.hash_password(b"a benchmark password").is_ok()
                    };
                    if hashed {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let counted = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    println!(
        "{}",
        serde_json::json!({
            "threads": threads,
            "reuse_memory": reuse_memory,
            "hashes": counted,
            "seconds": elapsed,
            "hashes_per_second": counted as f64 / elapsed,
        })
    );
    Ok(())
}

async fn seed_sessions(
    data_dir: PathBuf,
    count: usize,
    cookies: PathBuf,
    cookie_name: String,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir)?;
    let path = data_dir.join(tessera_store_sqlite::DATABASE_FILE);
    // Opening through the store creates and migrates the schema.
    tessera_store_sqlite::SqliteStore::open(&path)
        .await?
        .close()
        .await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
    let mut tx = pool.begin().await?;
    let user = UserId::generate().to_string();
    let now = Timestamp::now();
    let expires = now.saturating_add(Duration::from_secs(7 * 24 * 3600));
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, roles, disabled, created_at) \
         VALUES (?, ?, 'seeded: no password', '', 0, ?)",
    )
    .bind(&user)
    .bind(format!("seeded-{}", &user[..8]))
    .bind(now.as_millis())
    .execute(&mut *tx)
    .await?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&cookies).with_context(|| format!("{}", cookies.display()))?,
    );
    for _ in 0..count {
        let secret = SessionSecret::generate();
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, \
             last_seen_at, expires_at, client_address, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?, '127.0.0.1', 'tessera-bench')",
        )
        .bind(secret.session_id().as_str())
        .bind(&secret.hash().as_bytes()[..])
        .bind(&user)
        .bind(CsrfToken::generate().as_str())
        .bind(now.as_millis())
        .bind(now.as_millis())
        .bind(expires.as_millis())
        .execute(&mut *tx)
        .await?;
        writeln!(out, "{cookie_name}={}", secret.expose())?;
    }
    tx.commit().await?;
    out.flush()?;
    pool.close().await;
    Ok(())
}

struct ProbeResult {
    latencies_us: Vec<u64>,
    not_ok: u64,
}

async fn probe(
    url: String,
    cookie: Option<String>,
    rate: u32,
    connections: u32,
    seconds: u64,
    samples: Option<PathBuf>,
) -> anyhow::Result<()> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri
        .authority()
        .context("the URL needs a host and port")?
        .to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let interval = Duration::from_secs_f64(f64::from(connections) / f64::from(rate.max(1)));
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for index in 0..connections {
        let (authority, path, cookie) = (authority.clone(), path.clone(), cookie.clone());
        // Stagger the connections evenly across one interval.
        let first = start + interval.mul_f64(f64::from(index) / f64::from(connections));
        tasks.push(tokio::spawn(async move {
            probe_connection(authority, path, cookie, first, end, interval).await
        }));
    }
    let mut latencies = Vec::new();
    let mut not_ok = 0;
    for task in tasks {
        let result = task.await??;
        latencies.extend(result.latencies_us);
        not_ok += result.not_ok;
    }
    if let Some(path) = samples {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("{}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for latency in &latencies {
            writeln!(out, "{latency}")?;
        }
        out.flush()?;
    }
    latencies.sort_unstable();
    let at = |p: f64| percentile(&latencies, p);
    println!(
        "{}",
        serde_json::json!({
            "requests": latencies.len(),
            "not_ok": not_ok,
            "rate": rate,
            "p50_us": at(50.0),
            "p90_us": at(90.0),
            "p99_us": at(99.0),
            "p99_9_us": at(99.9),
            "max_us": latencies.last().copied().unwrap_or(0),
        })
    );
    Ok(())
}

async fn probe_connection(
    authority: String,
    path: String,
    cookie: Option<String>,
    first: tokio::time::Instant,
    end: tokio::time::Instant,
    interval: Duration,
) -> anyhow::Result<ProbeResult> {
    use http_body_util::{BodyExt, Empty};
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut result = ProbeResult {
        latencies_us: Vec::new(),
        not_ok: 0,
    };
    let mut due = first;
    let mut previous_answered = first;
    while due < end {
        tokio::time::sleep_until(due).await;
        let mut request = hyper::Request::get(path.as_str()).header("host", authority.as_str());
        if let Some(cookie) = &cookie {
            request = request.header("cookie", cookie.as_str());
        }
        let request = request.body(Empty::<bytes::Bytes>::new())?;
        sender.ready().await?;
        let sent = tokio::time::Instant::now();
        let timed_from = if previous_answered > due { due } else { sent };
        let response = sender.send_request(request).await?;
        let ok = response.status() == hyper::StatusCode::OK;
        response.into_body().collect().await?;
        previous_answered = tokio::time::Instant::now();
        let latency = previous_answered.saturating_duration_since(timed_from);
        result
            .latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        if !ok {
            result.not_ok += 1;
        }
        due += interval;
    }
    Ok(result)
}
