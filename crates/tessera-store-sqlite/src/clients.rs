//! `ClientStore` on SQLite.
//!
//! Beside the database file, `clients.changed` gets one byte appended whenever a
//! client is added or removed (and a profile set or a consent withdrawn: the
//! server caches those too), so its length is a generation number that any process
//! reads with one `stat` (the server's caches check it on every use; the CLI's
//! changes must reach a running server at once).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Sqlite;
use tessera_core::ClientId;
use tessera_store::{Client, ClientStore, CreateClientError, StoreError};
use tessera_store_sql::{Sql, sql_store};

use crate::SqliteStore;

/// The file beside the database whose length counts changes to the clients.
const CLIENTS_CHANGED: &str = "clients.changed";

/// Changes made by this process (to any store): counted as well, for a database
/// without a directory (in memory) and should appending to the file ever fail.
static CHANGED_HERE: AtomicU64 = AtomicU64::new(0);

impl SqliteStore {
    fn clients_changed_file(&self) -> Option<PathBuf> {
        let options = self.pool.connect_options();
        let database = options.get_filename();
        if database.as_os_str() == ":memory:" {
            return None;
        }
        Some(database.parent()?.join(CLIENTS_CHANGED))
    }

    /// Called before and after each change to the clients.
    pub(crate) fn note_cached_changed(&self) -> Result<(), StoreError> {
        CHANGED_HERE.fetch_add(1, Ordering::SeqCst);
        if let Some(path) = self.clients_changed_file() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
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
            let on_disk = match self.clients_changed_file() {
                None => 0,
                Some(path) => match std::fs::metadata(path) {
                    Ok(metadata) => metadata.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                    Err(_) => return None,
                },
            };
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
    }
}
