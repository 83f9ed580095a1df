//! Versioned schema migrations, tracked in the one-row table `tessera_schema`.
//!
//! Each migration runs in one transaction together with its version bump, under a
//! transaction-level advisory lock: processes opening the same database at once
//! apply each step exactly once (the others wait, then find it applied), and a
//! failure mid-way leaves the previous version intact.

use sqlx::PgPool;
use tessera_core::Username;
use tessera_store::backfill_skeletons;

use crate::MIGRATION_LOCK;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_username_skeletons.sql"),
    include_str!("../migrations/0003_code_flow_clients.sql"),
    include_str!("../migrations/0004_authorization_codes.sql"),
    include_str!("../migrations/0005_profiles.sql"),
    include_str!("../migrations/0006_consents.sql"),
    include_str!("../migrations/0007_backchannel_logout.sql"),
    include_str!("../migrations/0008_pushed_requests.sql"),
    include_str!("../migrations/0009_audit_events.sql"),
    include_str!("../migrations/0010_password_reset_links.sql"),
    include_str!("../migrations/0011_online_peaks.sql"),
    include_str!("../migrations/0012_schema_compatibility.sql"),
    include_str!("../migrations/0013_totp_credentials.sql"),
    include_str!("../migrations/0014_recovery_codes.sql"),
    include_str!("../migrations/0015_sign_in_ceremonies.sql"),
    include_str!("../migrations/0016_passkeys.sql"),
    include_str!("../migrations/0017_opaque_token_methods.sql"),
    include_str!("../migrations/0018_dpop.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database at {url} has schema version {found}, newer than this tessera knows \
         (up to {SCHEMA_VERSION}), and a migration since took away what this version uses \
         (it needs a tessera of schema version {oldest_compatible} or later); run a tessera \
         at least as new as the one that wrote it"
    )]
    NewerSchema {
        url: String,
        found: i64,
        oldest_compatible: i64,
    },
    #[error("migrating the database at {url} to schema version {version} failed: {source}")]
    Failed {
        url: String,
        version: i64,
        source: sqlx::Error,
    },
    #[error("recording the look-alike keys of the usernames in {url} failed: {source}")]
    Skeletons { url: String, source: sqlx::Error },
}

/// Brings the schema up to [`SCHEMA_VERSION`]; `url` (without its password) names the
/// database in errors.
pub(crate) async fn apply(pool: &PgPool, url: &str) -> Result<(), MigrationError> {
    let failed = |version: i64| {
        let url = url.to_owned();
        move |source| MigrationError::Failed {
            url,
            version,
            source,
        }
    };
    loop {
        let mut tx = pool.begin().await.map_err(failed(0))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(failed(0))?;
        // Under the lock, so that two first opens cannot both create the table.
        // (Checked first rather than `IF NOT EXISTS`, whose notice every open would log.)
        let missing: bool = sqlx::query_scalar("SELECT to_regclass('tessera_schema') IS NULL")
            .fetch_one(&mut *tx)
            .await
            .map_err(failed(0))?;
        if missing {
            sqlx::raw_sql(
                "CREATE TABLE tessera_schema ( \
                   only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), \
                   version  BIGINT  NOT NULL \
                 ); \
                 INSERT INTO tessera_schema (only_row, version) VALUES (TRUE, 0)",
            )
            .execute(&mut *tx)
            .await
            .map_err(failed(0))?;
        }
        let current: i64 = sqlx::query_scalar("SELECT version FROM tessera_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(failed(0))?;
        if current > SCHEMA_VERSION {
            // A rolling upgrade: a newer tessera migrated. Its migrations only
            // added, unless one raised the oldest version that still fits.
            let oldest_compatible: i64 =
                sqlx::query_scalar("SELECT oldest_compatible FROM tessera_schema")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed(current))?;
            if tessera_store::runs_on_newer_schema(current, SCHEMA_VERSION, oldest_compatible) {
                return Ok(());
            }
            return Err(MigrationError::NewerSchema {
                url: url.to_owned(),
                found: current,
                oldest_compatible,
            });
        }
        let Some(script) = usize::try_from(current)
            .ok()
            .and_then(|i| MIGRATIONS.get(i))
        else {
            // Up to date (the commit keeps a `tessera_schema` made just now).
            tx.commit().await.map_err(failed(current))?;
            return Ok(());
        };
        let next = current + 1;
        sqlx::raw_sql(*script)
            .execute(&mut *tx)
            .await
            .map_err(failed(next))?;
        sqlx::query("UPDATE tessera_schema SET version = $1")
            .bind(next)
            .execute(&mut *tx)
            .await
            .map_err(failed(next))?;
        tx.commit().await.map_err(failed(next))?;
        tracing::info!(version = next, "store schema migrated");
    }
}

/// Gives each account without one its username's confusable skeleton: accounts from
/// before skeletons were kept (migration 2), once. Oldest first, so that of two
/// existing names that look alike the older holds the skeleton; the later keeps its
/// name, password, roles and sessions, holds none, and names the older in
/// `look_alike_of` (and is logged), so that neither is lost and no third look-alike
/// can register. In one transaction, holding off other writers to `users` (a
/// registration racing it, another process doing the same) until it commits.
pub(crate) async fn fill_in_skeletons(pool: &PgPool, url: &str) -> Result<(), MigrationError> {
    let failed = |source| MigrationError::Skeletons {
        url: url.to_owned(),
        source,
    };
    // Without the lock first: after the one time, there is nothing to do.
    let pending: Option<String> = sqlx::query_scalar(
        "SELECT id FROM users WHERE username_skeleton IS NULL AND look_alike_of IS NULL LIMIT 1",
    )
    .fetch_optional(pool)
    .await
    .map_err(failed)?;
    if pending.is_none() {
        return Ok(());
    }
    let mut tx = pool.begin().await.map_err(failed)?;
    // Readers (logins) go on; writers to `users` wait the few moments this takes.
    sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, username FROM users \
         WHERE username_skeleton IS NULL AND look_alike_of IS NULL ORDER BY created_at, id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?;
    let wanted: Vec<String> = rows
        .iter()
        .filter_map(|(_, stored)| Username::parse(stored).ok())
        .map(|username| username.skeleton())
        .collect();
    let held: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT username_skeleton, id, username FROM users WHERE username_skeleton = ANY($1)",
    )
    .bind(&wanted)
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?;
    let holders = held
        .into_iter()
        .map(|(skeleton, id, username)| (skeleton, (id, username)))
        .collect();
    let backfill = backfill_skeletons(rows, holders);
    let (filled_ids, filled_skeletons): (Vec<_>, Vec<_>) = backfill.holds.into_iter().unzip();
    let (alike_ids, alike_of): (Vec<_>, Vec<_>) = backfill.looks_like.into_iter().unzip();
    sqlx::query(
        "UPDATE users SET username_skeleton = u.skeleton \
         FROM UNNEST($1::text[], $2::text[]) AS u(id, skeleton) WHERE users.id = u.id",
    )
    .bind(&filled_ids)
    .bind(&filled_skeletons)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    sqlx::query(
        "UPDATE users SET look_alike_of = u.holder \
         FROM UNNEST($1::text[], $2::text[]) AS u(id, holder) WHERE users.id = u.id",
    )
    .bind(&alike_ids)
    .bind(&alike_of)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    tracing::info!(
        accounts = filled_ids.len(),
        "recorded the look-alike keys of existing usernames"
    );
    Ok(())
}
