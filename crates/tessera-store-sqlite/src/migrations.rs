//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each migration runs in one `BEGIN IMMEDIATE` transaction together with the version
//! bump, so a server and a CLI starting at the same moment cannot both apply it, and
//! a crash mid-way leaves the previous version intact.

use std::path::Path;

use sqlx::SqlitePool;
use tessera_store::backfill_skeletons;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_accounts_and_sessions.sql"),
    include_str!("../migrations/0002_clients_and_keys.sql"),
    include_str!("../migrations/0003_refresh_families.sql"),
    include_str!("../migrations/0004_revocation_log.sql"),
    include_str!("../migrations/0005_opaque_tokens.sql"),
    include_str!("../migrations/0006_presence.sql"),
    include_str!("../migrations/0007_username_skeletons.sql"),
    include_str!("../migrations/0008_code_flow_clients.sql"),
    include_str!("../migrations/0009_authorization_codes.sql"),
    include_str!("../migrations/0010_profiles.sql"),
    include_str!("../migrations/0011_consents.sql"),
    include_str!("../migrations/0012_backchannel_logout.sql"),
    include_str!("../migrations/0013_pushed_requests.sql"),
    include_str!("../migrations/0014_audit_events.sql"),
    include_str!("../migrations/0015_password_reset_links.sql"),
    include_str!("../migrations/0016_online_peaks.sql"),
    include_str!("../migrations/0017_schema_compatibility.sql"),
    include_str!("../migrations/0018_totp_credentials.sql"),
    include_str!("../migrations/0019_recovery_codes.sql"),
    include_str!("../migrations/0020_sign_in_ceremonies.sql"),
    include_str!("../migrations/0021_passkeys.sql"),
    include_str!("../migrations/0022_opaque_token_methods.sql"),
    include_str!("../migrations/0023_dpop.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the store at {path} has schema version {found}, newer than this tessera knows \
         (up to {SCHEMA_VERSION}), and a migration since took away what this version uses \
         (it needs a tessera of schema version {oldest_compatible} or later); run a tessera \
         at least as new as the one that wrote it"
    )]
    NewerSchema {
        path: String,
        found: i64,
        oldest_compatible: i64,
    },
    #[error("migrating the store at {path} to schema version {version} failed: {source}")]
    Failed {
        path: String,
        version: i64,
        source: sqlx::Error,
    },
    #[error("recording the look-alike keys of the usernames in {path} failed: {source}")]
    Skeletons { path: String, source: sqlx::Error },
}

pub(crate) async fn apply(pool: &SqlitePool, path: &Path) -> Result<(), MigrationError> {
    let failed = |version: i64| {
        let path = path.display().to_string();
        move |source| MigrationError::Failed {
            path,
            version,
            source,
        }
    };
    loop {
        let mut tx = pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(failed(0))?;
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(failed(0))?;
        if current > SCHEMA_VERSION {
            // A rolling upgrade: a newer tessera migrated. Its migrations only
            // added, unless one raised the oldest version that still fits.
            let oldest_compatible: i64 =
                sqlx::query_scalar("SELECT oldest_compatible FROM schema_compatibility")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed(current))?;
            if tessera_store::runs_on_newer_schema(current, SCHEMA_VERSION, oldest_compatible) {
                return Ok(());
            }
            return Err(MigrationError::NewerSchema {
                path: path.display().to_string(),
                found: current,
                oldest_compatible,
            });
        }
        let Some(script) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            return Ok(());
        };
        let next = current + 1;
        sqlx::raw_sql(*script)
            .execute(&mut *tx)
            .await
            .map_err(failed(next))?;
        // PRAGMA takes no bound parameters; `next` is an integer we computed.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA user_version = {next}")))
            .execute(&mut *tx)
            .await
            .map_err(failed(next))?;
        tx.commit().await.map_err(failed(next))?;
        tracing::info!(version = next, "store schema migrated");
    }
}

/// Gives each account without one its username's confusable skeleton: accounts from
/// before skeletons were kept (migration 7), once. Oldest first, so that of two
/// existing names that look alike the older holds the skeleton; the later keeps its
/// name, password, roles and sessions, holds none, and names the older in
/// `look_alike_of` (and is logged), so that neither is lost and no third look-alike
/// can register. In one transaction: a crash leaves the work to the next open.
pub(crate) async fn fill_in_skeletons(
    pool: &SqlitePool,
    path: &Path,
) -> Result<(), MigrationError> {
    let failed = |source| MigrationError::Skeletons {
        path: path.display().to_string(),
        source,
    };
    // Without the write lock first: after the one time, there is nothing to do.
    let pending: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM users WHERE username_skeleton IS NULL AND look_alike_of IS NULL LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(failed)?;
    if pending.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(failed)?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, username FROM users \
         WHERE username_skeleton IS NULL AND look_alike_of IS NULL ORDER BY created_at, id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?;
    // Every account holding a skeleton: a one-time read, at most the whole table.
    let held: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT username_skeleton, id, username FROM users WHERE username_skeleton IS NOT NULL",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?;
    let holders = held
        .into_iter()
        .map(|(skeleton, id, username)| (skeleton, (id, username)))
        .collect();
    let backfill = backfill_skeletons(rows, holders);
    for (id, skeleton) in &backfill.holds {
        sqlx::query("UPDATE users SET username_skeleton = ? WHERE id = ?")
            .bind(skeleton)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    for (id, holder) in &backfill.looks_like {
        sqlx::query("UPDATE users SET look_alike_of = ? WHERE id = ?")
            .bind(holder)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }
    let filled = backfill.holds.len();
    tx.commit().await.map_err(failed)?;
    tracing::info!(
        accounts = filled,
        "recorded the look-alike keys of existing usernames"
    );
    Ok(())
}
