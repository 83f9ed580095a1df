//! `ClientStore` on PostgreSQL.
//!
//! A client change notifies `tessera_clients` in its transaction; every process's
//! listener bumps its clients generation when that arrives (see the crate docs).

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use tessera_core::{Audience, ClientId, ClientName, GrantType, Scopes, Timestamp};
use tessera_store::{Client, ClientStore, CreateClientError, StoreError};

use crate::{PostgresStore, hash_from_bytes, is_unique_violation, store_error};

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, grants, scopes, audiences, token_format, algorithm, \
         access_ttl_seconds, created_at"
    };
}

/// Run in a client change's transaction: delivered to every listener at its commit.
const NOTIFY_CLIENTS: &str = "SELECT pg_notify('tessera_clients', '')";

fn space_separated<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

fn client_from_row(row: &PgRow) -> Result<Client, StoreError> {
    let text =
        |column: &str| -> Result<String, StoreError> { row.try_get(column).map_err(store_error) };
    let secret_hash: Option<Vec<u8>> = row.try_get("secret_hash").map_err(store_error)?;
    let secret_hash = secret_hash
        .map(|bytes| hash_from_bytes(bytes, "client secret hash"))
        .transpose()?;
    let grants = text("grants")?
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| StoreError::corrupt("client grant")))
        .collect::<Result<Vec<_>, _>>()?;
    let audiences = text("audiences")?
        .split(' ')
        .filter(|a| !a.is_empty())
        .map(|a| Audience::parse(a).map_err(|_| StoreError::corrupt("client audience")))
        .collect::<Result<Vec<_>, _>>()?;
    let ttl: i64 = row.try_get("access_ttl_seconds").map_err(store_error)?;
    Ok(Client {
        id: ClientId::parse(&text("id")?).ok_or_else(|| StoreError::corrupt("client id"))?,
        name: ClientName::parse(&text("name")?).map_err(|_| StoreError::corrupt("client name"))?,
        secret_hash,
        grants,
        scopes: Scopes::parse(&text("scopes")?)
            .map_err(|_| StoreError::corrupt("client scopes"))?,
        audiences,
        token_format: text("token_format")?
            .parse()
            .map_err(|_| StoreError::corrupt("client token format"))?,
        algorithm: text("algorithm")?
            .parse()
            .map_err(|_| StoreError::corrupt("client algorithm"))?,
        access_ttl: Duration::from_secs(
            u64::try_from(ttl).map_err(|_| StoreError::corrupt("client token lifetime"))?,
        ),
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(store_error)?),
    })
}

#[async_trait]
impl ClientStore for PostgresStore {
    fn clients_generation(&self) -> Option<u64> {
        if !self.shared.listening.load(Ordering::SeqCst) {
            return None;
        }
        Some(self.shared.clients_generation.load(Ordering::SeqCst))
    }

    async fn create_client(&self, client: Client) -> Result<(), CreateClientError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let result = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(client.id.to_string())
        .bind(client.name.as_str())
        .bind(client.secret_hash.map(|h| h.as_bytes().to_vec()))
        .bind(space_separated(client.grants.iter().map(|g| g.as_str())))
        .bind(client.scopes.to_string())
        .bind(space_separated(
            client.audiences.iter().map(Audience::as_str),
        ))
        .bind(client.token_format.as_str())
        .bind(client.algorithm.as_str())
        .bind(i64::try_from(client.access_ttl.as_secs()).unwrap_or(i64::MAX))
        .bind(client.created_at.as_millis())
        .execute(&mut *tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(CreateClientError::NameTaken),
            Err(e) => return Err(CreateClientError::Store(store_error(e))),
        }
        sqlx::query(NOTIFY_CLIENTS)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        // No cache holds a client that did not exist: bumped only so that the
        // generation means what it says, here at once rather than at the echo.
        self.shared.bump_clients_generation();
        Ok(())
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    async fn client_by_name(&self, name: &ClientName) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE name = $1"
        ))
        .bind(name.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY created_at, id COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(client_from_row)
        .collect()
    }

    async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let done = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let removed = done.rows_affected() > 0;
        if removed {
            sqlx::query(NOTIFY_CLIENTS)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)?;
        // Here at once (elsewhere when the notification arrives): a client cached
        // before the commit is no longer trusted.
        self.shared.bump_clients_generation();
        Ok(removed)
    }
}
