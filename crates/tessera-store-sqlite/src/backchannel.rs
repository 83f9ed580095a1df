//! `BackchannelStore` on Sqlite: the shared statements; session-client records are
//! written by the batch writer (`tessera_store_sql::Batches`).

use sqlx::Sqlite;
use tessera_store::BackchannelStore;
use tessera_store_sql::sql_store;

use crate::SqliteStore;

sql_store! {
    impl BackchannelStore for SqliteStore {
        forward to Sqlite on self.pool {
            record_session_client, queue_logouts, queue_client_logouts, logout_position, claim_logouts,
            finish_logout, retry_logout, pending_logouts,
        }
    }
}
