//! `KeyStore` on PostgreSQL.
//!
//! Every change to the keys takes the transaction-level advisory lock `KEYS_LOCK`
//! first, so changes apply one after another as on SQLite: above all, processes that
//! start together and each find no key create one first key, not one each.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{PgConnection, Postgres, Row};
use tessera_core::{MAX_ACCESS_TTL, Timestamp};
use tessera_store::{EndReason, KeyStore, Revoked, StoreError, StoredKey};

use crate::{Entry, KEYS_LOCK, PostgresStore, append_in, store_error};

macro_rules! key_columns {
    () => {
        "kid, algorithm, private_key, sealed, created_at, signs_from, published_until, retired_at"
    };
}

/// The plain insert of one key row, used by rotation, by retirement's successor and
/// by import.
const INSERT_KEY: &str = concat!(
    "INSERT INTO signing_keys (",
    key_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

fn key_from_row(row: &PgRow) -> Result<StoredKey, StoreError> {
    let get_time = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        let millis: Option<i64> = row.try_get(column).map_err(store_error)?;
        Ok(millis.map(Timestamp::from_millis))
    };
    Ok(StoredKey {
        kid: row.try_get("kid").map_err(store_error)?,
        algorithm: row.try_get("algorithm").map_err(store_error)?,
        private_key: row.try_get("private_key").map_err(store_error)?,
        sealed: row.try_get("sealed").map_err(store_error)?,
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(store_error)?),
        signs_from: Timestamp::from_millis(row.try_get("signs_from").map_err(store_error)?),
        published_until: get_time("published_until")?,
        retired_at: get_time("retired_at")?,
    })
}

fn insert(
    key: &StoredKey,
    sql: &'static str,
) -> sqlx::query::Query<'static, Postgres, PgArguments> {
    sqlx::query(sql)
        .bind(key.kid.clone())
        .bind(key.algorithm.clone())
        .bind(key.private_key.clone())
        .bind(key.sealed)
        .bind(key.created_at.as_millis())
        .bind(key.signs_from.as_millis())
        .bind(key.published_until.map(Timestamp::as_millis))
        .bind(key.retired_at.map(Timestamp::as_millis))
}

/// Waits for, then holds until the transaction ends, the right to change the keys.
async fn lock_keys(connection: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(KEYS_LOCK)
        .execute(connection)
        .await
        .map(drop)
        .map_err(store_error)
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM signing_keys ORDER BY created_at, kid COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn add_first_key(&self, key: StoredKey) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        lock_keys(&mut tx).await?;
        // A statement after the lock: its snapshot sees a key committed by whoever
        // held the lock before us.
        let done = insert(
            &key,
            concat!(
                "INSERT INTO signing_keys (",
                key_columns!(),
                ") SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (",
                "SELECT 1 FROM signing_keys WHERE algorithm = $2 AND retired_at IS NULL)"
            ),
        )
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_rotated_key(
        &self,
        key: StoredKey,
        old_published_until: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        lock_keys(&mut tx).await?;
        sqlx::query(
            "UPDATE signing_keys SET published_until = $1 \
             WHERE algorithm = $2 AND retired_at IS NULL AND published_until IS NULL",
        )
        .bind(old_published_until.as_millis())
        .bind(key.algorithm.clone())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        insert(&key, INSERT_KEY)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
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
        let done = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
        )
        .bind(at.as_millis())
        .bind(kid.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(key) = &replacement {
            insert(key, INSERT_KEY)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
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

    async fn replace_private_key(
        &self,
        kid: &str,
        private_key: Vec<u8>,
        sealed: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE signing_keys SET private_key = $1, sealed = $2 WHERE kid = $3")
            .bind(private_key)
            .bind(sealed)
            .bind(kid.to_owned())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn import_key(&self, key: StoredKey) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        lock_keys(&mut tx).await?;
        insert(&key, INSERT_KEY)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }
}
