//! `ClientStore` on SQLite.
//!
//! Beside the database file, `clients.changed` gets one byte appended whenever a
//! client is added or removed (and a profile set or a consent withdrawn: the
//! server caches those too), so its length is a generation number that any process
//! reads with one `stat`. The CLI's changes must reach a running server at once, so
//! the server's caches check it on every use, but they trust a length read in the
//! last millisecond: a `stat` per cache use cost 5 % of the server's CPU on the
//! authorize endpoint, which asks three caches. Another process's change is thus
//! seen by every request that starts a millisecond after it commits; this
//! process's own changes, counted in memory, at once.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::Sqlite;
use tessera_core::{ClientId, SecretHash};
use tessera_store::{Client, ClientStore, CreateClientError, StoreError};
use tessera_store_sql::{Sql, sql_store};

use crate::SqliteStore;

/// The file beside the database whose length counts changes to the clients.
const CLIENTS_CHANGED: &str = "clients.changed";

/// Changes made by this process (to any store): counted as well, for a database
/// without a directory (in memory) and should appending to the file ever fail.
static CHANGED_HERE: AtomicU64 = AtomicU64::new(0);

/// How long a length read of `clients.changed` is trusted.
const TRUSTED_FOR: Duration = Duration::from_millis(1);

/// `clients.changed` of one store, and its length as last read.
pub(crate) struct ChangedFile {
    path: Option<PathBuf>,
    last_read: Mutex<Option<(Instant, u64)>>,
}

impl ChangedFile {
    /// The file beside `database` (none for a database in memory).
    pub(crate) fn beside(database: &std::path::Path) -> Self {
        let path = (database.as_os_str() != ":memory:")
            .then(|| database.parent().map(|dir| dir.join(CLIENTS_CHANGED)))
            .flatten();
        Self {
            path,
            last_read: Mutex::default(),
        }
    }

    /// Its length: as read in the last millisecond, else read now. `None` when it
    /// cannot be read.
    fn length(&self) -> Option<u64> {
        let Some(path) = &self.path else {
            return Some(0);
        };
        let now = Instant::now();
        if let Ok(last) = self.last_read.lock()
            && let Some((at, length)) = *last
            && now.duration_since(at) < TRUSTED_FOR
        {
            return Some(length);
        }
        let length = match std::fs::metadata(path) {
            Ok(metadata) => metadata.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(_) => return None,
        };
        if let Ok(mut last) = self.last_read.lock() {
            *last = Some((now, length));
        }
        Some(length)
    }
}

impl SqliteStore {
    fn clients_changed_file(&self) -> Option<&PathBuf> {
        self.changed.path.as_ref()
    }

    /// Called before and after each change to the clients.
    pub(crate) fn note_cached_changed(&self) -> Result<(), StoreError> {
        CHANGED_HERE.fetch_add(1, Ordering::SeqCst);
        if let Some(path) = self.clients_changed_file() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(b"."))
                .map_err(|e| {
                    StoreError::Other(format!("cannot append to {}: {e}", path.display()))
                })?;
        }
        Ok(())
    }

    /// Noted before a change (so that a failure stops it: nothing changed) and
    /// again after it commits (so that a cache refilled in between is dropped).
    pub(crate) fn note_cached_committed(&self) {
        if let Err(error) = self.note_cached_changed() {
            tracing::error!(
                %error,
                "a client change is committed but running servers may not see it until restarted"
            );
        }
    }
}

sql_store! {
    impl ClientStore for SqliteStore {
        forward to Sqlite on self.pool { client, client_by_name, list_clients }

        fn cache_generation(&self) -> Option<u64> {
            let here = CHANGED_HERE.load(Ordering::SeqCst);
            let on_disk = self.changed.length()?;
            Some(on_disk.wrapping_add(here << 32))
        }

        async fn create_client(&self, client: Client) -> Result<(), CreateClientError> {
            let result = Sqlite::insert_client(&self.pool, &client).await;
            match result {
                Ok(_) => {
                    // No cache holds a client that did not exist: noted only so that
                    // the generation means what it says.
                    self.note_cached_committed();
                    Ok(())
                }
                Err(StoreError::Conflict(_)) => Err(CreateClientError::NameTaken),
                Err(e) => Err(CreateClientError::Store(e)),
            }
        }

        async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
            self.note_cached_changed()?;
            let removed = Sqlite::delete_client(&self.pool, id).await?;
            self.note_cached_committed();
            Ok(removed)
        }

        async fn replace_client_secret(
            &self,
            id: &ClientId,
            secret_hash: &SecretHash,
        ) -> Result<bool, StoreError> {
            self.note_cached_changed()?;
            let replaced = Sqlite::update_client_secret(&self.pool, id, secret_hash).await?;
            self.note_cached_committed();
            Ok(replaced)
        }
    }
}
