//! Which backend holds which kind of state, chosen by URL at start-up.
//!
//! Services see only the traits of `tessera-store`; this is the one place that
//! knows the backends: the embedded SQLite file (one machine, the default), or
//! PostgreSQL (many instances, one service); and, when configured, Redis for the
//! hot, short-lived state (sessions, opaque tokens, throttling, presence).

use std::path::PathBuf;
use std::sync::Arc;

use tessera_store::StoreSet;
use tessera_store_postgres::PostgresStore;
use tessera_store_sqlite::SqliteStore;

use crate::config::{Config, StoreUrl};

/// Every store a tessera process uses, and what it needs to run them.
#[derive(Clone)]
pub struct Stores {
    pub set: StoreSet,
    /// Notified after an append to the revocation log: by this process (SQLite), or
    /// by any process on the same database (PostgreSQL).
    pub revocations_appended: Arc<tessera_store::RevocationsAppended>,
    /// Throttling counters shared by every instance (Redis); `None`: per process.
    pub rate_limits: Option<Arc<dyn tessera_store::RateLimitStore>>,
    database: Database,
}

/// The database of accounts, clients, keys, refresh tokens and the revocation log.
#[derive(Clone)]
pub enum Database {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Database {
    /// Opens (creating and migrating if needed) the database at `location`.
    pub async fn open(location: &DatabaseLocation) -> anyhow::Result<Self> {
        match location {
            // Its folder too, if missing, private to this user.
            DatabaseLocation::Sqlite(path) => {
                Ok(Self::Sqlite(Arc::new(SqliteStore::open(path).await?)))
            }
            DatabaseLocation::Postgres(url) => {
                Ok(Self::Postgres(Arc::new(PostgresStore::open(&url.0).await?)))
            }
        }
    }

    /// Every kind of state in this database.
    pub fn store_set(&self) -> StoreSet {
        match self {
            Self::Sqlite(store) => StoreSet::single(store.clone()),
            Self::Postgres(store) => StoreSet::single(store.clone()),
        }
    }

    pub fn revocations_appended(&self) -> Arc<tessera_store::RevocationsAppended> {
        match self {
            Self::Sqlite(store) => store.revocations_appended(),
            Self::Postgres(store) => store.revocations_appended(),
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(store) => store.close().await,
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// Where the database is, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(StoreUrl),
}

impl DatabaseLocation {
    /// `sqlite://PATH` (`sqlite:///abs/path` or `sqlite://relative/path`) or
    /// `postgres://…`/`postgresql://…`.
    pub fn parse(url: &StoreUrl) -> anyhow::Result<Self> {
        if let Some(path) = url.0.strip_prefix("sqlite://") {
            anyhow::ensure!(!path.is_empty(), "the database URL sqlite:// names no file");
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.0.starts_with("postgres://") || url.0.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.clone()));
        }
        anyhow::bail!(
            "the database URL {} is not one tessera knows: use sqlite://PATH or \
             postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            url.redacted()
        )
    }

    pub fn of(config: &Config) -> anyhow::Result<Self> {
        match &config.database {
            Some(url) => Self::parse(url),
            None => Ok(Self::Sqlite(config.database_path())),
        }
    }
}

/// A consistent copy of the SQLite database at `path` into the new file `to`,
/// while servers use it (see `tessera_store_sqlite::backup`).
pub fn backup_sqlite(
    path: &std::path::Path,
    to: &std::path::Path,
) -> Result<tessera_store_sqlite::BackupSummary, tessera_store_sqlite::BackupError> {
    tessera_store_sqlite::backup(path, to)
}

impl Stores {
    /// Opens (creating and migrating if needed) the configured stores.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let database = Database::open(&DatabaseLocation::of(config)?).await?;
        let mut set = database.store_set();
        let mut rate_limits: Option<Arc<dyn tessera_store::RateLimitStore>> = None;
        if let Some(url) = &config.redis {
            anyhow::ensure!(
                url.0.starts_with("redis://")
                    || url.0.starts_with("rediss://")
                    || url.0.starts_with("redis+unix://"),
                "the redis URL {} is not one tessera knows: use \
                 redis://[:PASSWORD@]HOST:PORT[/DB]",
                url.redacted()
            );
            let redis = Arc::new(
                tessera_store_redis::RedisStore::open(
                    &url.0,
                    set.accounts.clone(),
                    set.log.clone(),
                )
                .await?,
            );
            // The database still purges its own: families, opaque tokens, the log.
            set.also_purge.push(set.sessions.clone());
            set.sessions = redis.clone();
            set.opaque = redis.clone();
            set.codes = redis.clone();
            set.ceremonies = redis.clone();
            set.exchange = Arc::new(tessera_store::SeparateCodeExchange {
                codes: redis.clone(),
                backchannel: set.backchannel.clone(),
                refresh: set.refresh.clone(),
            });
            set.presence = redis.clone();
            set.health.push(redis.clone());
            rate_limits = Some(redis);
        }
        Ok(Self {
            set,
            revocations_appended: database.revocations_appended(),
            rate_limits,
            database,
        })
    }

    /// Closes connections once the work using them is done.
    pub async fn close(&self) {
        self.database.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(url: &str) -> anyhow::Result<DatabaseLocation> {
        DatabaseLocation::parse(&StoreUrl(url.into()))
    }

    #[test]
    fn database_urls_name_their_backend() {
        assert_eq!(
            parse("sqlite:///var/lib/tessera/t.db").unwrap(),
            DatabaseLocation::Sqlite("/var/lib/tessera/t.db".into())
        );
        assert_eq!(
            parse("sqlite://data/t.db").unwrap(),
            DatabaseLocation::Sqlite("data/t.db".into())
        );
        assert!(matches!(
            parse("postgresql://u:p@h/d").unwrap(),
            DatabaseLocation::Postgres(_)
        ));
        let unknown = parse("mysql://u:secret@h/d").unwrap_err().to_string();
        assert!(
            unknown.contains("sqlite://") && !unknown.contains("secret"),
            "{unknown}"
        );
        assert!(parse("sqlite://").is_err());
    }
}
