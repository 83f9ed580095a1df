//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Each migration runs in one `BEGIN IMMEDIATE` transaction together with the version
//! bump, so a server and a CLI starting at the same moment cannot both apply it, and
//! a crash mid-way leaves the previous version intact.

use std::path::Path;

use sqlx::SqlitePool;

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_accounts_and_sessions.sql"),
    include_str!("../migrations/0002_clients_and_keys.sql"),
    include_str!("../migrations/0003_refresh_families.sql"),
    include_str!("../migrations/0004_revocation_log.sql"),
    include_str!("../migrations/0005_opaque_tokens.sql"),
    include_str!("../migrations/0006_presence.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the store at {path} has schema version {found}, newer than this tessera knows \
         (up to {SCHEMA_VERSION}); run a tessera at least as new as the one that wrote it"
    )]
    NewerSchema { path: String, found: i64 },
    #[error("migrating the store at {path} to schema version {version} failed: {source}")]
    Failed {
        path: String,
        version: i64,
        source: sqlx::Error,
    },
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
            return Err(MigrationError::NewerSchema {
                path: path.display().to_string(),
                found: current,
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
