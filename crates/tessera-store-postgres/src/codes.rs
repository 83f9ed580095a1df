//! `AuthorizationCodeStore` on PostgreSQL: the shared statements; codes are written and
//! spent in batches (`tessera_store_sql::Batches`).

use sqlx::Postgres;
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{AuthorizationCode, AuthorizationCodeStore, Redemption, StoreError};
use tessera_store_sql::sql_store;

use crate::PostgresStore;

sql_store! {
    impl AuthorizationCodeStore for PostgresStore {
        forward to Postgres on self.pool {
            push_request, pushed_request, drop_pushed_request,
        }

        async fn store_code(&self, code: AuthorizationCode) -> Result<(), StoreError> {
            self.batches.store_code(code).await
        }

        async fn redeem_code(
            &self,
            hash: &SecretHash,
            at: Timestamp,
        ) -> Result<Redemption, StoreError> {
            self.batches.redeem_code(hash, at).await
        }
    }
}
