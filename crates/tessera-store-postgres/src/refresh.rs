//! `RefreshStore` on PostgreSQL.

use sqlx::{PgConnection, Postgres};
use tessera_core::{ClientId, SecretHash, SessionId, Timestamp, UserId};
use tessera_store::{EndReason, RefreshOutcome, RefreshStore, StoreError};

use tessera_store_sql::{Sql, family_select, rows, sql_store};

use crate::{Entry, PostgresStore, append_in, session_entry, store_error};

/// A family deleted by a revocation: `(id, expires_at, session_id)`.
type Deleted = (String, i64, Option<String>);

/// For families just deleted (with `DELETE … RETURNING`, so that of two concurrent
/// revocations only the one that deleted logs), ends the sessions they came from and
/// collects the entries of both, inside the transaction on `connection`.
async fn revoked_families_in(
    connection: &mut PgConnection,
    user: UserId,
    families: &[Deleted],
    reason: EndReason,
    at: Timestamp,
) -> Result<Vec<Entry>, StoreError> {
    let mut entries = Vec::new();
    for (id, expires_at, session) in families {
        entries.push(session_entry(id, *expires_at, user, reason, at)?);
        if let Some(session) = session.as_ref().filter(|_| reason.ends_parent_session()) {
            let ended: Option<i64> =
                sqlx::query_scalar("DELETE FROM sessions WHERE id = $1 RETURNING expires_at")
                    .bind(session)
                    .fetch_optional(&mut *connection)
                    .await
                    .map_err(store_error)?;
            if let Some(session_expires_at) = ended {
                entries.push(session_entry(
                    session,
                    session_expires_at,
                    user,
                    reason,
                    at,
                )?);
            }
        }
    }
    Ok(entries)
}

sql_store! {
    impl RefreshStore for PostgresStore {
        forward to Postgres on self.pool { create_family, family_by_token, family, last_use_by_client }

        async fn rotate_refresh_token(
            &self,
            presented: &SecretHash,
            next: &SecretHash,
            now: Timestamp,
            grace_cutoff: Timestamp,
        ) -> Result<RefreshOutcome, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            // FOR UPDATE: a concurrent rotation of the same token waits for this one to
            // commit, then finds `current_hash` changed (no row) and the token used.
            let row = sqlx::query(concat!(
                family_select!(),
                "WHERE f.current_hash = $1 FOR UPDATE OF f"
            ))
            .bind(presented.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            if let Some(row) = row {
                let mut family = rows::family(&row)?;
                if family.expires_at <= now || family.user.disabled {
                    return Ok(RefreshOutcome::Invalid);
                }
                Postgres::advance_family(&mut tx, &family.id, presented, next, now).await?;
                tx.commit().await.map_err(store_error)?;
                family.generation = family.generation.saturating_add(1);
                return Ok(RefreshOutcome::Rotated(Box::new(family)));
            }
            let used: Option<(String, i64, String)> = sqlx::query_as(
                "SELECT f.id, used.rotated_at, f.user_id \
                 FROM refresh_tokens_used used JOIN refresh_families f ON f.id = used.family_id \
                 WHERE used.hash = $1",
            )
            .bind(presented.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some((family, rotated_at, user)) = used else {
                return Ok(RefreshOutcome::Invalid);
            };
            // Rotated after the cutoff: within the grace period, a lost race.
            if rotated_at > grace_cutoff.as_millis() {
                return Ok(RefreshOutcome::RaceLost);
            }
            let user = UserId::parse(&user).ok_or_else(|| StoreError::corrupt("user id"))?;
            // Reuse: the family goes. If a concurrent call revoked it first, there is
            // nothing left to delete or log, and the answer is the same.
            let deleted: Vec<Deleted> = sqlx::query_as(
                "DELETE FROM refresh_families WHERE id = $1 RETURNING id, expires_at, session_id",
            )
            .bind(&family)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let entries =
                revoked_families_in(&mut tx, user, &deleted, EndReason::RefreshReuse, now).await?;
            append_in(&mut tx, &entries).await?;
            tx.commit().await.map_err(store_error)?;
            if !entries.is_empty() {
                self.announce_revocations();
            }
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
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
                "DELETE FROM refresh_families WHERE id = $1 AND ($2::text IS NULL OR user_id = $2) \
                 RETURNING user_id, expires_at, session_id",
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
            let deleted = [(id.as_str().to_owned(), expires_at, session)];
            let entries = revoked_families_in(&mut tx, owner, &deleted, reason, at).await?;
            append_in(&mut tx, &entries).await?;
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
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let deleted: Vec<Deleted> = sqlx::query_as(
                "WITH revoked AS ( \
                   DELETE FROM refresh_families WHERE user_id = $1 \
                   AND ($2 = '' OR client_id = $2) \
                   RETURNING id, expires_at, session_id, created_at \
                 ) SELECT id, expires_at, session_id FROM revoked \
                 ORDER BY created_at, id COLLATE \"C\"",
            )
            .bind(user.to_string())
            .bind(client.map(|c| c.to_string()).unwrap_or_default())
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let entries = revoked_families_in(&mut tx, user, &deleted, reason, at).await?;
            append_in(&mut tx, &entries).await?;
            tx.commit().await.map_err(store_error)?;
            if !entries.is_empty() {
                self.announce_revocations();
            }
            deleted
                .iter()
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
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let deleted: Vec<(String, String, i64)> = sqlx::query_as(
                "WITH revoked AS ( \
                   DELETE FROM refresh_families WHERE session_id = $1 \
                   RETURNING id, user_id, expires_at, created_at \
                 ) SELECT id, user_id, expires_at FROM revoked \
                 ORDER BY created_at, id COLLATE \"C\"",
            )
            .bind(session.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let mut entries = Vec::new();
            let mut revoked = Vec::with_capacity(deleted.len());
            for (id, user, expires_at) in &deleted {
                let user = UserId::parse(user).ok_or_else(|| StoreError::corrupt("user id"))?;
                // The session is what ended: nothing more to end.
                let family = [(id.clone(), *expires_at, None)];
                entries.extend(revoked_families_in(&mut tx, user, &family, reason, at).await?);
                revoked.push(SessionId::parse(id).map_err(|_| StoreError::corrupt("family id"))?);
            }
            append_in(&mut tx, &entries).await?;
            tx.commit().await.map_err(store_error)?;
            if !entries.is_empty() {
                self.announce_revocations();
            }
            Ok(revoked)
        }
    }
}
