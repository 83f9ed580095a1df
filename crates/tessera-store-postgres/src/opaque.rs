//! `OpaqueTokenStore` on PostgreSQL.

use sqlx::Postgres;
use tessera_core::{ClientId, SecretHash, Timestamp};
use tessera_store::{EndReason, OpaqueTokenStore, Revoked, StoreError};
use tessera_store_sql::{Sql, sql_store};

use crate::{Entry, PostgresStore, append_in, store_error};

sql_store! {
    impl OpaqueTokenStore for PostgresStore {
        forward to Postgres on self.pool { store_opaque_token, opaque_token }

        async fn revoke_opaque_token(
            &self,
            hash: &SecretHash,
            client: &ClientId,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let Some((jti, user, expires_at)) =
                Postgres::delete_opaque_token(&mut *tx, hash, client).await?
            else {
                return Ok(false);
            };
            // Logged like a JWT's jti, so verifiers that cached an introspection answer
            // for this token learn of the revocation from the feed.
            let entry = Entry {
                revoked: Revoked::Token(jti),
                user,
                reason: EndReason::Revoked,
                at,
                expires_at,
            };
            append_in(&mut tx, &[entry]).await?;
            tx.commit().await.map_err(store_error)?;
            self.announce_revocations();
            Ok(true)
        }
    }
}
