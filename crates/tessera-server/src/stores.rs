//! Which backend holds which kind of state, chosen by URL at start-up.
//!
//! Services see only the traits of `tessera-store`; this is the one place that
//! knows the backends. Today one backend holds everything: the embedded SQLite file
//! (one machine), or PostgreSQL (many instances, one service).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tessera_store::{
    AccountStore, ClientStore, Health, KeyStore, OpaqueTokenStore, PresenceStore, RefreshStore,
    RevocationLog, SessionStore,
};
use tessera_store_postgres::PostgresStore;
use tessera_store_sqlite::SqliteStore;
use tokio::sync::Notify;

use crate::config::{Config, StoreUrl};

/// Every store a tessera process uses, each behind its trait.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub refresh: Arc<dyn RefreshStore>,
    pub opaque: Arc<dyn OpaqueTokenStore>,
    pub log: Arc<dyn RevocationLog>,
    pub clients: Arc<dyn ClientStore>,
    pub keys: Arc<dyn KeyStore>,
    pub presence: Arc<dyn PresenceStore>,
    pub health: Arc<dyn Health>,
    /// Notified after an append to the revocation log: by this process (SQLite), or
    /// by any process on the same database (PostgreSQL).
    pub revocations_appended: Arc<Notify>,
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
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

impl Stores {
    /// Opens (creating and migrating if needed) the configured database.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        match DatabaseLocation::of(config)? {
            DatabaseLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("cannot create the folder of the store {}", path.display())
                    })?;
                }
                let store = Arc::new(SqliteStore::open(&path).await?);
                let appended = store.revocations_appended();
                Ok(Self::all_in(
                    store.clone(),
                    appended,
                    Backend::Sqlite(store),
                ))
            }
            DatabaseLocation::Postgres(url) => {
                let store = Arc::new(PostgresStore::open(&url.0).await?);
                let appended = store.revocations_appended();
                Ok(Self::all_in(
                    store.clone(),
                    appended,
                    Backend::Postgres(store),
                ))
            }
        }
    }

    fn all_in<S>(store: Arc<S>, revocations_appended: Arc<Notify>, backend: Backend) -> Self
    where
        S: AccountStore
            + SessionStore
            + RefreshStore
            + OpaqueTokenStore
            + RevocationLog
            + ClientStore
            + KeyStore
            + PresenceStore
            + Health
            + 'static,
    {
        Self {
            accounts: store.clone(),
            sessions: store.clone(),
            refresh: store.clone(),
            opaque: store.clone(),
            log: store.clone(),
            clients: store.clone(),
            keys: store.clone(),
            presence: store.clone(),
            health: store,
            revocations_appended,
            backend,
        }
    }

    /// Closes connections once the work using them is done.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(store) => store.close().await,
            Backend::Postgres(store) => store.close().await,
        }
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
