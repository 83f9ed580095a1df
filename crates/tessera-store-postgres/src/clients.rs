//! `ClientStore` on PostgreSQL.
//!
//! A client change (and a profile set, a consent withdrawn) notifies
//! `tessera_clients` in its transaction; every process's listener bumps its cache
//! generation when that arrives (see the crate docs).

use std::sync::atomic::Ordering;

use sqlx::Postgres;
use tessera_core::{ClientId, SecretHash};
use tessera_store::{Client, ClientStore, CreateClientError, StoreError};
use tessera_store_sql::{Sql, sql_store};

use crate::{PostgresStore, store_error};

/// Run in a client change's transaction: delivered to every listener at its commit.
const NOTIFY_CLIENTS: &str = "SELECT pg_notify('tessera_clients', '')";

impl PostgresStore {
    /// Commits `tx`, a change to what caches keyed by the cache generation hold,
    /// with the notification that makes every process drop them.
    pub(crate) async fn notify_cached_changed(
        &self,
        mut tx: sqlx::Transaction<'_, Postgres>,
    ) -> Result<(), StoreError> {
        sqlx::query(NOTIFY_CLIENTS)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        // Here at once (elsewhere when the notification arrives).
        self.shared.bump_cache_generation();
        Ok(())
    }
}

sql_store! {
    impl ClientStore for PostgresStore {
        forward to Postgres on self.pool { client, client_by_name, list_clients }

        fn cache_generation(&self) -> Option<u64> {
            if !self.shared.listening.load(Ordering::SeqCst) {
                return None;
            }
            Some(self.shared.cache_generation.load(Ordering::SeqCst))
        }

        async fn create_client(&self, client: Client) -> Result<(), CreateClientError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let result = Postgres::insert_client(&mut *tx, &client).await;
            match result {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return Err(CreateClientError::NameTaken),
                Err(e) => return Err(CreateClientError::Store(e)),
            }
            // No cache holds a client that did not exist: notified only so that the
            // generation means what it says.
            self.notify_cached_changed(tx).await?;
            Ok(())
        }

        async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let removed = Postgres::delete_client(&mut *tx, id).await?;
            if removed {
                // A client cached before the commit is no longer trusted.
                self.notify_cached_changed(tx).await?;
            } else {
                tx.commit().await.map_err(store_error)?;
            }
            Ok(removed)
        }

        async fn replace_client_secret(
            &self,
            id: &ClientId,
            secret_hash: &SecretHash,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let replaced = Postgres::update_client_secret(&mut *tx, id, secret_hash).await?;
            if replaced {
                // The client cached with its old secret is no longer trusted.
                self.notify_cached_changed(tx).await?;
            } else {
                tx.commit().await.map_err(store_error)?;
            }
            Ok(replaced)
        }
    }
}
