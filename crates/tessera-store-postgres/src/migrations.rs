//! Versioned schema migrations, tracked in the one-row table `tessera_schema`.
//!
//! Each migration runs in one transaction together with its version bump, under a
//! transaction-level advisory lock: processes opening the same database at once
//! apply each step exactly once (the others wait, then find it applied), and a
//! failure mid-way leaves the previous version intact.

use sqlx::PgPool;

use crate::MIGRATION_LOCK;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_initial.sql")];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the database at {url} has schema version {found}, newer than this tessera knows \
         (up to {SCHEMA_VERSION}); run a tessera at least as new as the one that wrote it"
    )]
    NewerSchema { url: String, found: i64 },
    #[error("migrating the database at {url} to schema version {version} failed: {source}")]
    Failed {
        url: String,
        version: i64,
        source: sqlx::Error,
    },
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
            return Err(MigrationError::NewerSchema {
                url: url.to_owned(),
                found: current,
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
