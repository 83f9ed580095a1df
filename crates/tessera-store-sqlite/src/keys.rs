//! `KeyStore` on SQLite.

use sqlx::Sqlite;
use tessera_core::{MAX_ACCESS_TTL, Timestamp};
use tessera_store::{EndReason, KeyStore, Revoked, StoreError, StoredKey};
use tessera_store_sql::{Sql, sql_store};

use crate::{SqliteStore, append_revocation_in, store_error};

sql_store! {
    impl KeyStore for SqliteStore {
        // `add_first_key` is one statement: SQLite's write lock makes its check and
        // insert atomic.
        forward to Sqlite on self.pool {
            signing_keys, add_first_key, replace_private_key, import_key,
        }

        async fn add_rotated_key(
            &self,
            key: StoredKey,
            old_published_until: Timestamp,
        ) -> Result<(), StoreError> {
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
    }
}
