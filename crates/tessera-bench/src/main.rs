//! Helpers for `scripts/bench`: the raw baselines the server is compared with, and
//! seeding a store with many sessions quickly.

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Argon2Rate {
            threads,
            seconds,
            memory_kib,
            iterations,
            parallelism,
        } => argon2_rate(threads, seconds, memory_kib, iterations, parallelism),
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
    }
}

fn argon2_rate(
    threads: usize,
    seconds: u64,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
) -> anyhow::Result<()> {
    let params = Params::new(memory_kib, iterations, parallelism, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (argon, done, stop) = (argon.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if argon.hash_password(b"a benchmark password").is_ok() {
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
