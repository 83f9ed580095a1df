//! `RefreshStore` on SQLite.

use sqlx::{Sqlite, Transaction};
use tessera_core::{ClientId, SecretHash, SessionId, Timestamp, UserId};
use tessera_store::{EndReason, RefreshOutcome, RefreshStore, Revoked, StoreError};

use tessera_store_sql::{Sql, rows, sql_store};

use crate::{SqliteStore, append_revocation_in, end_sessions_in, store_error};

/// Deletes the families and logs each one's revocation, with the sessions they came
/// from, inside `tx`.
async fn revoke_families_in(
    tx: &mut Transaction<'_, Sqlite>,
    user: UserId,
    families: &[(String, i64, Option<String>)],
    reason: EndReason,
    at: Timestamp,
) -> Result<(), StoreError> {
    for (id, expires_at, session) in families {
        sqlx::query("DELETE FROM refresh_families WHERE id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        append_revocation_in(
            tx,
            &Revoked::Session(rows::session_id(id, "family id")?),
            Some(user),
            reason,
            at,
            rows::session_revocation_expiry(*expires_at),
        )
        .await?;
        if let Some(session) = session.as_ref().filter(|_| reason.ends_parent_session()) {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT id, expires_at FROM sessions WHERE id = ?")
                    .bind(session)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(store_error)?;
            end_sessions_in(tx, user, &rows, reason, at).await?;
        }
    }
    Ok(())
}

sql_store! {
    impl RefreshStore for SqliteStore {
        forward to Sqlite on self.pool { create_family, family_by_token, family }

        async fn last_use_by_client(
            &self,
            user: UserId,
        ) -> Result<Vec<(ClientId, Timestamp)>, StoreError> {
            let statement = tessera_store_sql::Statement {
                text: tessera_store_sql::LAST_USE_BY_CLIENT.to_owned(),
                values: vec![tessera_store_sql::Value::Text(user.to_string())],
            };
            match self.readers.rows(statement)? {
                Some(read) => read.iter().map(tessera_store_sql::rows::last_use).collect(),
                None => Sqlite::last_use_by_client(&self.pool, user).await,
            }
        }

        async fn rotate_refresh_token(
            &self,
            presented: &SecretHash,
            next: &SecretHash,
            now: Timestamp,
            grace_cutoff: Timestamp,
        ) -> Result<RefreshOutcome, StoreError> {
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            // The write lock is held: no other rotation comes between the read and the
            // update.
            if let Some(mut family) = Sqlite::family_by_token(&mut *tx, presented).await? {
                if family.expires_at <= now || family.user.disabled {
                    return Ok(RefreshOutcome::Invalid);
                }
                Sqlite::advance_family(&mut tx, &family.id, presented, next, now).await?;
                tx.commit().await.map_err(store_error)?;
                family.generation = family.generation.saturating_add(1);
                return Ok(RefreshOutcome::Rotated(Box::new(family)));
            }
            let used: Option<(String, i64, String, i64, Option<String>)> = sqlx::query_as(
                "SELECT f.id, used.rotated_at, f.user_id, f.expires_at, f.session_id \
                 FROM refresh_tokens_used used JOIN refresh_families f ON f.id = used.family_id \
                 WHERE used.hash = ?",
            )
            .bind(presented.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some((family, rotated_at, user, expires_at, session)) = used else {
                return Ok(RefreshOutcome::Invalid);
            };
            // Rotated after the cutoff: within the grace period, a lost race.
            if rotated_at > grace_cutoff.as_millis() {
                return Ok(RefreshOutcome::RaceLost);
            }
            let user = UserId::parse(&user).ok_or_else(|| StoreError::corrupt("user id"))?;
            revoke_families_in(
                &mut tx,
                user,
                &[(family.clone(), expires_at, session)],
                EndReason::RefreshReuse,
                now,
            )
            .await?;
            tx.commit().await.map_err(store_error)?;
            // The family's end is in the log: this process's readers look again.
            self.announce_revocations();
            Ok(RefreshOutcome::Reused {
                family: SessionId::parse(&family).map_err(|_| StoreError::corrupt("family id"))?,
                user,
            })
        }

        async fn revoke_family(
            &self,
            id: &SessionId,
            user: Option<UserId>,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
                "SELECT user_id, expires_at, session_id FROM refresh_families \
                 WHERE id = ? AND (?2 IS NULL OR user_id = ?2)",
            )
            .bind(id.as_str().to_owned())
            .bind(user.map(|u| u.to_string()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some((owner, expires_at, session)) = row else {
                return Ok(false);
            };
            let owner = UserId::parse(&owner).ok_or_else(|| StoreError::corrupt("user id"))?;
            revoke_families_in(
                &mut tx,
                owner,
                &[(id.as_str().to_owned(), expires_at, session)],
                reason,
                at,
            )
            .await?;
            tx.commit().await.map_err(store_error)?;
            self.announce_revocations();
            Ok(true)
        }

        async fn revoke_families_of_user(
            &self,
            user: UserId,
            client: Option<ClientId>,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<Vec<SessionId>, StoreError> {
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
                "SELECT id, expires_at, session_id FROM refresh_families WHERE user_id = $1 \
                 AND ($2 = '' OR client_id = $2) ORDER BY created_at",
            )
            .bind(user.to_string())
            .bind(client.map(|c| c.to_string()).unwrap_or_default())
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            revoke_families_in(&mut tx, user, &rows, reason, at).await?;
            tx.commit().await.map_err(store_error)?;
            self.announce_revocations();
            rows.iter()
                .map(|(id, _, _)| {
                    SessionId::parse(id).map_err(|_| StoreError::corrupt("family id"))
                })
                .collect()
        }

        async fn revoke_families_of_session(
            &self,
            session: &SessionId,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<Vec<SessionId>, StoreError> {
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT id, user_id, expires_at FROM refresh_families WHERE session_id = ? \
                 ORDER BY created_at",
            )
            .bind(session.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let mut revoked = Vec::with_capacity(rows.len());
            for (id, user, expires_at) in rows {
                let user = UserId::parse(&user).ok_or_else(|| StoreError::corrupt("user id"))?;
                // The session is what ended: nothing more to end.
                revoke_families_in(&mut tx, user, &[(id.clone(), expires_at, None)], reason, at)
                    .await?;
                revoked.push(SessionId::parse(&id).map_err(|_| StoreError::corrupt("family id"))?);
            }
            tx.commit().await.map_err(store_error)?;
            if !revoked.is_empty() {
                self.announce_revocations();
            }
            Ok(revoked)
        }
    }
}
