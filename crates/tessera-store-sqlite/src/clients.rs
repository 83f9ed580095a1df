//! `ClientStore` on SQLite.
//!
//! Beside the database file, `clients.changed` gets one byte appended whenever a
//! client is added or removed, so its length is a generation number that any
//! process reads with one `stat` (the server's client cache checks it on every
//! use; the CLI's changes must reach a running server at once).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tessera_core::{Audience, ClientId, ClientName, GrantType, Scopes, SecretHash, Timestamp};
use tessera_store::{Client, ClientStore, CreateClientError, StoreError};

use crate::{SqliteStore, is_unique_violation, store_error};

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, grants, scopes, audiences, token_format, algorithm, \
         access_ttl_seconds, created_at"
    };
}

fn space_separated<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

fn client_from_row(row: &SqliteRow) -> Result<Client, StoreError> {
    let text =
        |column: &str| -> Result<String, StoreError> { row.try_get(column).map_err(store_error) };
    let secret_hash: Option<Vec<u8>> = row.try_get("secret_hash").map_err(store_error)?;
    let secret_hash = secret_hash
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes)
                .map(SecretHash::from_bytes)
                .map_err(|_| StoreError::corrupt("client secret hash"))
        })
        .transpose()?;
    let grants = text("grants")?
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| StoreError::corrupt("client grant")))
        .collect::<Result<Vec<_>, _>>()?;
    let audiences = text("audiences")?
        .split(' ')
        .filter(|a| !a.is_empty())
        .map(|a| Audience::parse(a).map_err(|_| StoreError::corrupt("client audience")))
        .collect::<Result<Vec<_>, _>>()?;
    let ttl: i64 = row.try_get("access_ttl_seconds").map_err(store_error)?;
    Ok(Client {
        id: ClientId::parse(&text("id")?).ok_or_else(|| StoreError::corrupt("client id"))?,
        name: ClientName::parse(&text("name")?).map_err(|_| StoreError::corrupt("client name"))?,
        secret_hash,
        grants,
        scopes: Scopes::parse(&text("scopes")?)
            .map_err(|_| StoreError::corrupt("client scopes"))?,
        audiences,
        token_format: text("token_format")?
            .parse()
            .map_err(|_| StoreError::corrupt("client token format"))?,
        algorithm: text("algorithm")?
            .parse()
            .map_err(|_| StoreError::corrupt("client algorithm"))?,
        access_ttl: Duration::from_secs(
            u64::try_from(ttl).map_err(|_| StoreError::corrupt("client token lifetime"))?,
        ),
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(store_error)?),
    })
}

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
    fn note_clients_changed(&self) -> Result<(), StoreError> {
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
    fn note_clients_committed(&self) {
        if let Err(error) = self.note_clients_changed() {
            tracing::error!(
                %error,
                "a client change is committed but running servers may not see it until restarted"
            );
        }
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    fn clients_generation(&self) -> Option<u64> {
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
        let result = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(client.id.to_string())
        .bind(client.name.as_str())
        .bind(client.secret_hash.map(|h| h.as_bytes().to_vec()))
        .bind(space_separated(client.grants.iter().map(|g| g.as_str())))
        .bind(client.scopes.to_string())
        .bind(space_separated(
            client.audiences.iter().map(Audience::as_str),
        ))
        .bind(client.token_format.as_str())
        .bind(client.algorithm.as_str())
        .bind(i64::try_from(client.access_ttl.as_secs()).unwrap_or(i64::MAX))
        .bind(client.created_at.as_millis())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {
                // No cache holds a client that did not exist: noted only so that
                // the generation means what it says.
                self.note_clients_committed();
                Ok(())
            }
            Err(e) if is_unique_violation(&e) => Err(CreateClientError::NameTaken),
            Err(e) => Err(CreateClientError::Store(store_error(e))),
        }
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    async fn client_by_name(&self, name: &ClientName) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE name = ?"
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(client_from_row)
        .collect()
    }

    async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        self.note_clients_changed()?;
        let done = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        self.note_clients_committed();
        Ok(done.rows_affected() > 0)
    }
}
