//! `OpaqueTokenStore` on PostgreSQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use tessera_core::{Audience, ClientId, Roles, Scopes, SecretHash, SessionId, Timestamp, UserId};
use tessera_store::{EndReason, OpaqueToken, OpaqueTokenStore, Revoked, StoreError};

use crate::{Entry, PostgresStore, append_in, hash_from_bytes, store_error};

macro_rules! token_columns {
    () => {
        "hash, jti, client_id, subject, user_id, scopes, audience, session_id, roles, \
         issued_at, expires_at"
    };
}

fn token_from_row(row: &PgRow) -> Result<OpaqueToken, StoreError> {
    let text = |c: &str| -> Result<String, StoreError> { row.try_get(c).map_err(store_error) };
    let optional =
        |c: &str| -> Result<Option<String>, StoreError> { row.try_get(c).map_err(store_error) };
    let hash: Vec<u8> = row.try_get("hash").map_err(store_error)?;
    Ok(OpaqueToken {
        hash: hash_from_bytes(hash, "token hash")?,
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
impl OpaqueTokenStore for PostgresStore {
    async fn store_opaque_token(&self, token: OpaqueToken) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO opaque_tokens (",
            token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
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
        sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            " FROM opaque_tokens WHERE hash = $1"
        ))
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
            "DELETE FROM opaque_tokens WHERE hash = $1 AND client_id = $2 \
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
        // Logged like a JWT's jti, so verifiers that cached an introspection answer
        // for this token learn of the revocation from the feed.
        let entry = Entry {
            revoked: Revoked::Token(jti),
            user: user.as_deref().and_then(UserId::parse),
            reason: EndReason::Revoked,
            at,
            expires_at: Timestamp::from_millis(expires_at),
        };
        append_in(&mut tx, &[entry]).await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(true)
    }
}
