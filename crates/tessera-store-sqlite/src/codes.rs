//! `AuthorizationCodeStore` and `CeremonyStore` on SQLite: the shared statements; codes are written and
//! spent by the batch writer (`tessera_store_sql::Batches`).

use sqlx::Sqlite;
use tessera_store::{AuthorizationCodeStore, CeremonyStore, CodeExchangeStore};
use tessera_store_sql::sql_store;

use crate::SqliteStore;

sql_store! {
    impl AuthorizationCodeStore for SqliteStore {
        forward to Sqlite on self.pool {
            store_code, redeem_code, push_request, pushed_request, drop_pushed_request,
        }
    }
}

sql_store! {
    impl CodeExchangeStore for SqliteStore {
        forward to Sqlite on self.pool { exchange_code }
    }
}

sql_store! {
    impl CeremonyStore for SqliteStore {
        forward to Sqlite on self.pool { begin_ceremony, ceremony, take_ceremony }
    }
}
