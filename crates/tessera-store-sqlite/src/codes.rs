//! `AuthorizationCodeStore` on SQLite: the shared statements, run on the store's
//! transient pool (commits without an fsync; see `SqliteStore::open`).

use sqlx::Sqlite;
use tessera_store::AuthorizationCodeStore;
use tessera_store_sql::sql_store;

use crate::SqliteStore;

sql_store! {
    impl AuthorizationCodeStore for SqliteStore {
        forward to Sqlite on self.transient {
            store_code, redeem_code, push_request, pushed_request, drop_pushed_request,
        }
    }
}
