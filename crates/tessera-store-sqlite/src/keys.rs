//! `KeyStore` on SQLite.

use async_trait::async_trait;
use sqlx::Sqlite;
use tessera_core::{MAX_ACCESS_TTL, Timestamp};
use tessera_store::{EndReason, KeyStore, Revoked, StoreError, StoredKey};
use tessera_store_sql::{Sql, key_columns, rows};

use crate::{SqliteStore, append_revocation_in, store_error};

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys ORDER BY created_at, kid"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::key)
        .collect()
    }

    async fn add_first_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        // One statement, so SQLite's write lock makes check and insert atomic.
        Sqlite::insert_first_key(&self.pool, &key).await
    }

    async fn add_rotated_key(
        &self,
        key: StoredKey,
        old_published_until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        Sqlite::end_publication(&mut *tx, &key.algorithm, old_published_until).await?;
        Sqlite::insert_key(&mut *tx, &key).await?;
        tx.commit().await.map_err(store_error)
    }

    async fn retire_key(
        &self,
        kid: &str,
        at: Timestamp,
        replacement: Option<StoredKey>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        if !Sqlite::retire_key(&mut *tx, kid, at).await? {
            return Ok(false);
        }
        if let Some(key) = &replacement {
            Sqlite::insert_key(&mut *tx, key).await?;
        }
        append_revocation_in(
            &mut tx,
            &Revoked::Key(kid.to_owned()),
            None,
            EndReason::KeyRetired,
            at,
            at.saturating_add(MAX_ACCESS_TTL),
        )
        .await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(true)
    }

    async fn replace_private_key(
        &self,
        kid: &str,
        private_key: Vec<u8>,
        sealed: bool,
    ) -> Result<(), StoreError> {
        Sqlite::replace_private_key(&self.pool, kid, private_key, sealed).await
    }

    async fn import_key(&self, key: StoredKey) -> Result<(), StoreError> {
        Sqlite::insert_key(&self.pool, &key).await
    }
}
