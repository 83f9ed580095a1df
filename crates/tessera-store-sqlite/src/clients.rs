//! `ClientStore` on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tessera_core::{Audience, ClientId, ClientName, GrantType, Scopes, SecretHash, Timestamp};
use tessera_store::{Client, ClientStore, CreateClientError, StoreError};

use crate::{SqliteStore, corrupt, is_unique_violation, store_error};

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, grants, scopes, audiences, token_format, algorithm, \
         access_ttl_seconds, created_at"
    };
}

fn space_separated<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

fn client_from_row(row: &SqliteRow) -> Result<Client, StoreError> {
    let text =
        |column: &str| -> Result<String, StoreError> { row.try_get(column).map_err(store_error) };
    let secret_hash: Option<Vec<u8>> = row.try_get("secret_hash").map_err(store_error)?;
    let secret_hash = secret_hash
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes)
                .map(SecretHash::from_bytes)
                .map_err(|_| corrupt("client secret hash"))
        })
        .transpose()?;
    let grants = text("grants")?
        .split(' ')
        .filter(|g| !g.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("client grant")))
        .collect::<Result<Vec<_>, _>>()?;
    let audiences = text("audiences")?
        .split(' ')
        .filter(|a| !a.is_empty())
        .map(|a| Audience::parse(a).map_err(|_| corrupt("client audience")))
        .collect::<Result<Vec<_>, _>>()?;
    let ttl: i64 = row.try_get("access_ttl_seconds").map_err(store_error)?;
    Ok(Client {
        id: ClientId::parse(&text("id")?).ok_or_else(|| corrupt("client id"))?,
        name: ClientName::parse(&text("name")?).map_err(|_| corrupt("client name"))?,
        secret_hash,
        grants,
        scopes: Scopes::parse(&text("scopes")?).map_err(|_| corrupt("client scopes"))?,
        audiences,
        token_format: text("token_format")?
            .parse()
            .map_err(|_| corrupt("client token format"))?,
        algorithm: text("algorithm")?
            .parse()
            .map_err(|_| corrupt("client algorithm"))?,
        access_ttl: Duration::from_secs(
            u64::try_from(ttl).map_err(|_| corrupt("client token lifetime"))?,
        ),
        created_at: Timestamp::from_millis(row.try_get("created_at").map_err(store_error)?),
    })
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, client: Client) -> Result<(), CreateClientError> {
        let result = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(CreateClientError::NameTaken),
            Err(e) => Err(CreateClientError::Store(store_error(e))),
        }
    }

    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id = ?"
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
            " FROM clients WHERE name = ?"
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
            " FROM clients ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(client_from_row)
        .collect()
    }

    async fn remove_client(&self, id: &ClientId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() > 0)
    }
}
