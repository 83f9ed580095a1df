//! `BackchannelStore` on Sqlite: the shared statements; session-client records are
//! written in batches (`tessera_store_sql::Batches`).

use sqlx::Sqlite;
use tessera_store::{BackchannelStore, SessionClient, StoreError};
use tessera_store_sql::sql_store;

use crate::SqliteStore;

sql_store! {
    impl BackchannelStore for SqliteStore {
        forward to Sqlite on self.pool {
            queue_logouts, logout_position, claim_logouts,
            finish_logout, retry_logout, pending_logouts,
        }

        /// Batched with the code flow's other writes (see `tessera_store_sql::Batches`).
        async fn record_session_client(&self, record: SessionClient) -> Result<(), StoreError> {
            self.batches.record_session_client(record).await
        }
    }
}
