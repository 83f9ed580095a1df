//! `OpaqueTokenStore` on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tessera_core::{Audience, ClientId, Roles, Scopes, SecretHash, SessionId, Timestamp, UserId};
use tessera_store::{EndReason, OpaqueToken, OpaqueTokenStore, Revoked, StoreError};

use crate::{SqliteStore, store_error};

fn token_from_row(row: &SqliteRow) -> Result<OpaqueToken, StoreError> {
    let text = |c: &str| -> Result<String, StoreError> { row.try_get(c).map_err(store_error) };
    let optional =
        |c: &str| -> Result<Option<String>, StoreError> { row.try_get(c).map_err(store_error) };
    let hash: Vec<u8> = row.try_get("hash").map_err(store_error)?;
    Ok(OpaqueToken {
        hash: SecretHash::from_bytes(
            hash.try_into()
                .map_err(|_| StoreError::corrupt("token hash"))?,
        ),
        jti: text("jti")?,
        client_id: ClientId::parse(&text("client_id")?)
            .ok_or_else(|| StoreError::corrupt("client id"))?,
        subject: text("subject")?,
        user: optional("user_id")?
            .map(|u| UserId::parse(&u).ok_or_else(|| StoreError::corrupt("user id")))
            .transpose()?,
        scopes: Scopes::parse(&text("scopes")?).map_err(|_| StoreError::corrupt("token scopes"))?,
        audience: optional("audience")?
            .map(|a| Audience::parse(&a).map_err(|_| StoreError::corrupt("token audience")))
            .transpose()?,
        session: optional("session_id")?
            .map(|s| SessionId::parse(&s).map_err(|_| StoreError::corrupt("token session")))
            .transpose()?,
        roles: Roles::from_stored(&text("roles")?)
            .map_err(|_| StoreError::corrupt("token roles"))?,
        issued_at: Timestamp::from_millis(row.try_get("issued_at").map_err(store_error)?),
        expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(store_error)?),
    })
}

#[async_trait]
impl OpaqueTokenStore for SqliteStore {
    async fn store_opaque_token(&self, token: OpaqueToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO opaque_tokens (hash, jti, client_id, subject, user_id, scopes, audience, \
             session_id, roles, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(token.hash.as_bytes().to_vec())
        .bind(token.jti)
        .bind(token.client_id.to_string())
        .bind(token.subject)
        .bind(token.user.map(|u| u.to_string()))
        .bind(token.scopes.to_string())
        .bind(token.audience.map(|a| a.as_str().to_owned()))
        .bind(token.session.map(|s| s.as_str().to_owned()))
        .bind(token.roles.to_stored())
        .bind(token.issued_at.as_millis())
        .bind(token.expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn opaque_token(&self, hash: &SecretHash) -> Result<Option<OpaqueToken>, StoreError> {
        sqlx::query("SELECT * FROM opaque_tokens WHERE hash = ?")
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn revoke_opaque_token(
        &self,
        hash: &SecretHash,
        client: &ClientId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let deleted = sqlx::query(
            "DELETE FROM opaque_tokens WHERE hash = ? AND client_id = ? \
             RETURNING jti, user_id, expires_at",
        )
        .bind(hash.as_bytes().to_vec())
        .bind(client.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(row) = deleted else {
            return Ok(false);
        };
        let jti: String = row.try_get("jti").map_err(store_error)?;
        let user: Option<String> = row.try_get("user_id").map_err(store_error)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(store_error)?;
        // Logged like a JWT's jti, so verifiers that cached an introspection
        // answer for this token learn of the revocation from the feed.
        crate::append_revocation_in(
            &mut tx,
            &Revoked::Token(jti),
            user.as_deref().and_then(UserId::parse),
            EndReason::Revoked,
            at,
            Timestamp::from_millis(expires_at),
        )
        .await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(true)
    }
}
