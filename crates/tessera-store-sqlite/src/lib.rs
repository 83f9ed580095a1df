//! tessera's embedded store: one SQLite file in WAL mode.
//!
//! Durability: `synchronous = FULL`, so a committed write survives `kill -9` and
//! power loss alike; the server answers 2xx only after the commit returns.
//! Several processes may open the same file (the server and the CLI); SQLite's
//! locking serialises their writes, and `busy_timeout` makes a writer wait its turn.

mod clients;
mod files;
mod keys;
mod migrations;
mod opaque;
mod refresh;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tessera_core::{SessionId, Timestamp, UserId, Username};
use tessera_store::{
    AccountStore, CreateSessionError, CreateUserError, EndReason, Health, NewSession, NewUser,
    Online, PRESENCE_RESOLUTION, PresenceStore, Revocation, RevocationLog, Revoked, Seen,
    SessionRecord, SessionStore, StoreError, User, UserCredentials,
};

pub use files::FileError;
pub use migrations::{MigrationError, SCHEMA_VERSION};

/// The file name of the store inside the data dir.
pub const DATABASE_FILE: &str = "tessera.sqlite3";

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Signalled after every commit that appended to the revocation log, so this
    /// process's follower applies it at once instead of at its next poll. (Other
    /// processes, the CLI say, are seen at the poll.)
    appended: std::sync::Arc<tessera_store::RevocationsAppended>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the store at {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error(transparent)]
    Files(#[from] FileError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

impl SqliteStore {
    /// Opens (creating if missing, with its folder) the store file and brings its
    /// schema up to date. The folder, if created, and the files are private to this
    /// user: see `files`.
    pub async fn open(path: &Path) -> Result<Self, OpenError> {
        files::prepare(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let open_error = |source| OpenError::Open {
            path: path.display().to_string(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        migrations::apply(&pool, path).await?;
        migrations::fill_in_skeletons(&pool, path).await?;
        Ok(Self {
            pool,
            appended: std::sync::Arc::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Signalled after this process appends to the revocation log.
    pub fn revocations_appended(&self) -> std::sync::Arc<tessera_store::RevocationsAppended> {
        self.appended.clone()
    }

    fn announce_revocations(&self) {
        self.appended.signal();
    }
}

use tessera_store_sql::{Sql, rows, session_columns, store_error, user_columns};

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<User, CreateUserError> {
        Sqlite::create_user(&self.pool, user).await
    }

    async fn user_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<UserCredentials>, StoreError> {
        Sqlite::user_credentials(&self.pool, username).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u ORDER BY u.username"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::user)
        .collect()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Sqlite::user(&self.pool, id).await
    }

    async fn search_users(
        &self,
        contains: &str,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        // instr, not LIKE: what an admin types is matched literally.
        sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE instr(u.username, ?) > 0 AND u.username > ? \
             ORDER BY u.username LIMIT ?"
        ))
        .bind(contains)
        .bind(after.map_or("", Username::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::user)
        .collect()
    }

    async fn replace_password_hash(
        &self,
        user: UserId,
        previous: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        Sqlite::replace_password_hash(&self.pool, user, previous, new).await
    }

    async fn set_user_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<User>, StoreError> {
        Sqlite::set_user_disabled(&self.pool, username, disabled).await
    }

    async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError> {
        let UserCredentials {
            user,
            password_hash,
        } = user;
        // One statement, so no other writer comes between the look for a holder of
        // the skeleton and the insert.
        sqlx::query(
            "INSERT INTO users (id, username, username_skeleton, look_alike_of, password_hash, \
               roles, disabled, created_at) \
             VALUES (?1, ?2, \
               CASE WHEN EXISTS (SELECT 1 FROM users WHERE username_skeleton = ?3) \
                 THEN NULL ELSE ?3 END, \
               (SELECT id FROM users WHERE username_skeleton = ?3), ?4, ?5, ?6, ?7)",
        )
        .bind(user.id.to_string())
        .bind(user.username.as_str())
        .bind(user.username.skeleton())
        .bind(password_hash)
        .bind(user.roles.to_stored())
        .bind(user.disabled)
        .bind(user.created_at.as_millis())
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(|e| match store_error(e) {
            StoreError::Conflict(_) => CreateUserError::UsernameTaken,
            e => CreateUserError::Store(e),
        })
    }
}

/// Deletes the given sessions and logs their revocation, inside `tx`.
async fn end_sessions_in(
    tx: &mut Transaction<'_, Sqlite>,
    user: UserId,
    ids: &[(String, i64)],
    reason: EndReason,
    at: Timestamp,
) -> Result<(), StoreError> {
    for (id, expires_at) in ids {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
        append_revocation_in(
            tx,
            &Revoked::Session(rows::session_id(id, "session id")?),
            Some(user),
            reason,
            at,
            rows::session_revocation_expiry(*expires_at),
        )
        .await?;
    }
    Ok(())
}

/// Appends one entry to the revocation log inside `tx`; returns its sequence.
pub(crate) async fn append_revocation_in(
    tx: &mut Transaction<'_, Sqlite>,
    revoked: &Revoked,
    user: Option<UserId>,
    reason: EndReason,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "INSERT INTO revocation_log (kind, target, user_id, reason, at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(revoked.kind().as_str())
    .bind(revoked.target())
    .bind(user.map(|u| u.to_string()))
    .bind(reason.as_str())
    .bind(at.as_millis())
    .bind(expires_at.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    u64::try_from(done.last_insert_rowid()).map_err(|_| StoreError::corrupt("sequence"))
}

impl SqliteStore {
    /// A write transaction that takes the write lock at once, so that a read inside
    /// it cannot be invalidated by another writer before the transaction commits.
    async fn write_transaction(&self) -> Result<Transaction<'_, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: NewSession) -> Result<(), CreateSessionError> {
        let inserted = sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, \
               last_seen_at, expires_at, client_address, user_agent) \
             SELECT ?, ?, id, ?, ?, ?, ?, ?, ? FROM users WHERE id = ? AND disabled = 0",
        )
        .bind(session.id.as_str())
        .bind(&session.secret_hash.as_bytes()[..])
        .bind(session.csrf_token.as_str())
        .bind(session.created_at.as_millis())
        .bind(session.created_at.as_millis())
        .bind(session.expires_at.as_millis())
        .bind(session.client_address)
        .bind(session.user_agent)
        .bind(session.user_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        if inserted.rows_affected() == 0 {
            return Err(CreateSessionError::UserDisabled);
        }
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        Sqlite::session(&self.pool, id).await
    }

    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            " FROM sessions s JOIN users u ON u.id = s.user_id \
              WHERE s.user_id = ? ORDER BY s.created_at"
        ))
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(rows::session)
        .collect()
    }

    async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        for (id, at) in seen {
            sqlx::query("UPDATE sessions SET last_seen_at = max(last_seen_at, ?) WHERE id = ?")
                .bind(at.as_millis())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    async fn end_session(
        &self,
        user: UserId,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_transaction().await?;
        let expires_at: Option<i64> =
            sqlx::query_scalar("SELECT expires_at FROM sessions WHERE id = ? AND user_id = ?")
                .bind(id.as_str())
                .bind(user.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
        let Some(expires_at) = expires_at else {
            return Ok(false);
        };
        end_sessions_in(
            &mut tx,
            user,
            &[(id.as_str().to_owned(), expires_at)],
            reason,
            at,
        )
        .await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(true)
    }

    async fn end_sessions_of_user(
        &self,
        user: UserId,
        except: Option<&SessionId>,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, expires_at FROM sessions WHERE user_id = ? AND id IS NOT ? \
             ORDER BY created_at",
        )
        .bind(user.to_string())
        .bind(except.map(SessionId::as_str))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        end_sessions_in(&mut tx, user, &rows, reason, at).await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        rows.iter()
            .map(|(id, _)| SessionId::parse(id).map_err(|_| StoreError::corrupt("session id")))
            .collect()
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let sessions = Sqlite::purge_expired(&mut tx, now, idle_cutoff).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(sessions)
    }

    async fn count_live_sessions(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        Sqlite::count_live_sessions(&self.pool, now, idle_cutoff).await
    }
}

#[async_trait]
impl RevocationLog for SqliteStore {
    async fn revocations_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError> {
        Sqlite::revocations_after(&self.pool, after, limit).await
    }

    async fn latest_revocation(&self) -> Result<u64, StoreError> {
        // The AUTOINCREMENT counter, not max(sequence): purged entries must not let
        // the sequence go backwards.
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'revocation_log'")
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        Ok(latest.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    async fn append_revocation(
        &self,
        revoked: Revoked,
        user: Option<UserId>,
        reason: EndReason,
        at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let sequence =
            append_revocation_in(&mut tx, &revoked, user, reason, at, expires_at).await?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(sequence)
    }

    async fn import_revocations(
        &self,
        entries: &[Revocation],
        latest: u64,
    ) -> Result<(), StoreError> {
        let sequence_of = |sequence: u64| {
            i64::try_from(sequence)
                .map_err(|_| StoreError::Invalid(format!("sequence {sequence} is out of range")))
        };
        // The write lock first: no append can slip in between the check and the
        // inserts.
        let mut tx = self.write_transaction().await?;
        let current: i64 = sqlx::query_scalar(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'revocation_log'), 0)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let mut top = sequence_of(latest)?;
        for entry in entries {
            let sequence = sequence_of(entry.sequence)?;
            if sequence <= current {
                return Err(StoreError::Invalid(format!(
                    "cannot import revocation {sequence}: the log is at {current} already"
                )));
            }
            top = top.max(sequence);
            sqlx::query(
                "INSERT INTO revocation_log (sequence, kind, target, user_id, reason, at, \
                   expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(sequence)
            .bind(entry.revoked.kind().as_str())
            .bind(entry.revoked.target())
            .bind(entry.user.map(|u| u.to_string()))
            .bind(entry.reason.as_str())
            .bind(entry.at.as_millis())
            .bind(entry.expires_at.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        // The AUTOINCREMENT counter is what the next append is numbered after and
        // what `latest_revocation` reads; it only moves up.
        sqlx::query(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'revocation_log', 0 \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'revocation_log')",
        )
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        sqlx::query("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'revocation_log'")
            .bind(top)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        self.announce_revocations();
        Ok(())
    }
}

#[async_trait]
impl PresenceStore for SqliteStore {
    async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError> {
        if seen.is_empty() {
            return Ok(0);
        }
        let resolution = i64::try_from(PRESENCE_RESOLUTION.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.write_transaction().await?;
        let mut written = 0;
        for sighting in seen {
            written += sqlx::query(
                "INSERT INTO presence (sid, user_id, seen_at) VALUES (?, ?, ?) \
                 ON CONFLICT (sid) DO UPDATE SET seen_at = excluded.seen_at \
                 WHERE excluded.seen_at >= presence.seen_at + ? AND presence.ended = 0",
            )
            .bind(sighting.sid.as_str())
            .bind(sighting.user.to_string())
            .bind(sighting.at.as_millis())
            .bind(resolution)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?
            .rows_affected();
        }
        tx.commit().await.map_err(store_error)?;
        Ok(written)
    }

    async fn online_since(&self, since: Timestamp) -> Result<Online, StoreError> {
        Sqlite::online_since(&self.pool, since).await
    }

    async fn purge_presence(&self, before: Timestamp) -> Result<u64, StoreError> {
        Sqlite::purge_presence(&self.pool, before).await
    }

    async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_transaction().await?;
        for sid in sids {
            // A tombstone, not a delete: see the `ended` column.
            sqlx::query(
                "INSERT INTO presence (sid, user_id, seen_at, ended) VALUES (?, '', ?, 1) \
                 ON CONFLICT (sid) DO UPDATE SET ended = 1",
            )
            .bind(sid.as_str())
            .bind(Timestamp::now().as_millis())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }
}

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Sqlite::ping(&self.pool).await
    }
}
