//! `KeyStore` on PostgreSQL.
//!
//! Every change to the keys takes the transaction-level advisory lock `KEYS_LOCK`
//! first, so changes apply one after another as on SQLite: above all, processes that
//! start together and each find no key create one first key, not one each.

use sqlx::{PgConnection, Postgres};
use tessera_core::{MAX_ACCESS_TTL, Timestamp};
use tessera_store::{EndReason, KeyStore, Revoked, StoreError, StoredKey};
use tessera_store_sql::{Sql, sql_store};

use crate::{Entry, KEYS_LOCK, PostgresStore, append_in, store_error};

/// Waits for, then holds until the transaction ends, the right to change the keys.
async fn lock_keys(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(KEYS_LOCK)
        .execute(connection)
        .await
        .map(drop)
        .map_err(store_error)
}

sql_store! {
    impl KeyStore for PostgresStore {
        forward to Postgres on self.pool { signing_keys, replace_private_key }

        async fn add_first_key(&self, key: StoredKey) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            lock_keys(&mut tx).await?;
            // A statement after the lock: its snapshot sees a key committed by whoever
            // held the lock before us.
            let added = Postgres::insert_first_key(&mut *tx, &key).await?;
            tx.commit().await.map_err(store_error)?;
            Ok(added)
        }

        async fn add_rotated_key(
            &self,
            key: StoredKey,
            old_published_until: Timestamp,
        ) -> Result<(), StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            lock_keys(&mut tx).await?;
            Postgres::end_publication(&mut *tx, &key.algorithm, old_published_until).await?;
            Postgres::insert_key(&mut *tx, &key).await?;
            tx.commit().await.map_err(store_error)
        }

        async fn retire_key(
            &self,
            kid: &str,
            at: Timestamp,
            replacement: Option<StoredKey>,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            lock_keys(&mut tx).await?;
            if !Postgres::retire_key(&mut *tx, kid, at).await? {
                return Ok(false);
            }
            if let Some(key) = &replacement {
                Postgres::insert_key(&mut *tx, key).await?;
            }
            let entry = Entry {
                revoked: Revoked::Key(kid.to_owned()),
                user: None,
                reason: EndReason::KeyRetired,
                at,
                expires_at: at.saturating_add(MAX_ACCESS_TTL),
            };
            append_in(&mut tx, &[entry]).await?;
            tx.commit().await.map_err(store_error)?;
            self.announce_revocations();
            Ok(true)
        }

        async fn import_key(&self, key: StoredKey) -> Result<(), StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            lock_keys(&mut tx).await?;
            Postgres::insert_key(&mut *tx, &key).await?;
            tx.commit().await.map_err(store_error)
        }
    }
}
