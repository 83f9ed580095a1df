//! tessera's embedded store: one SQLite file in WAL mode.
//!
//! Durability: `synchronous = FULL`, so a committed write survives `kill -9` and
//! power loss alike; the server answers 2xx only after the commit returns.
//! Several processes may open the same file (the server and the CLI); SQLite's
//! locking serialises their writes, and `busy_timeout` makes a writer wait its turn.

mod backchannel;
mod backup;
mod clients;
mod codes;
mod files;
mod keys;
mod migrations;
mod opaque;
mod reader;
mod refresh;
mod writer;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite, Transaction};
use tessera_core::{ClientId, SessionId, Timestamp, UserId};
use tessera_store::{
    AccountStore, AuditStore, Consent, CreateUserError, EndReason, Health, NewEvent,
    PRESENCE_RESOLUTION, PresenceStore, Profile, Revocation, RevocationLog, Revoked, Seen,
    SessionRecord, SessionStore, StoreError, UserCredentials,
};

pub use backup::{BackupError, BackupSummary, backup};
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
    /// The code flow's writes, batched (group commit): one writer, so they never
    /// wait for each other in the busy handler.
    batches: std::sync::Arc<tessera_store_sql::Batches>,
    /// `clients.changed`, the cache generation other processes move.
    changed: std::sync::Arc<clients::ChangedFile>,
    /// Read connections of each thread's own, for the reads `/account` makes.
    readers: reader::Readers,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the store at {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot start the store's writer on {path}: {reason}")]
    Writer { path: String, reason: String },
    #[error(transparent)]
    Files(#[from] FileError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

/// How long a statement waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            // Every statement at TRACE, not DEBUG: the revocation log is polled
            // ten times a second, which buried everything else at DEBUG. Slow
            // statements (over a second) still warn.
            .log_statements(log::LevelFilter::Trace);
        let open_error = |source| OpenError::Open {
            path: path.display().to_string(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            // A connection to a local file does not go stale, and sqlx's check
            // before each use is a round trip through the connection's worker
            // thread: on every store call, as long as the rest of a point read.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        migrations::apply(&pool, path).await?;
        migrations::fill_in_skeletons(&pool, path).await?;
        let writer_error = |reason: String| OpenError::Writer {
            path: path.display().to_string(),
            reason,
        };
        let writer = writer::WriterConnection::open(path, BUSY_TIMEOUT)
            .map_err(|e| writer_error(e.to_string()))?;
        let batches =
            tessera_store_sql::Batches::sqlite(writer).map_err(|e| writer_error(e.to_string()))?;
        let batches = std::sync::Arc::new(batches);
        Ok(Self {
            changed: std::sync::Arc::new(clients::ChangedFile::beside(
                pool.connect_options().get_filename(),
            )),
            readers: reader::Readers::new(path),
            pool,
            appended: std::sync::Arc::default(),
            batches,
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

use tessera_store_sql::{Sql, import_sequences, rows, sql_store, store_error};

sql_store! {
    impl AccountStore for SqliteStore {
        forward to Sqlite on self.pool {
            create_user, user_credentials, list_users, user, search_users, replace_password_hash,
            set_user_disabled, profile, consent, consents, set_roles, save_reset_link,
            reset_link_user, use_reset_link, totp, begin_totp, confirm_totp, use_totp_step,
            remove_totp, replace_recovery_codes, use_recovery_code, unused_recovery_codes, add_passkey, passkeys, passkey, use_passkey,
            remove_passkey,
        }

        async fn save_consent(&self, consent: Consent) -> Result<bool, StoreError> {
            // Moves the generation: the account page's list of a user's consents is
            // cached by it.
            self.note_cached_changed()?;
            let saved = Sqlite::save_consent(&self.pool, consent).await;
            self.note_cached_committed();
            saved
        }

        async fn set_profile(&self, id: UserId, profile: Profile) -> Result<bool, StoreError> {
            self.note_cached_changed()?;
            let set = Sqlite::set_profile(&self.pool, id, profile).await;
            self.note_cached_committed();
            set
        }

        async fn withdraw_consent(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError> {
            self.note_cached_changed()?;
            let withdrawn = Sqlite::withdraw_consent(&self.pool, user, client).await;
            self.note_cached_committed();
            withdrawn
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

sql_store! {
    impl SessionStore for SqliteStore {
        forward to Sqlite on self.pool {
            create_session, session, purge_expired, count_live_sessions,
        }

        async fn sessions_of_user(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
            let statement = tessera_store_sql::Statement {
                text: Sqlite::statements().sessions_of_user().to_owned(),
                values: vec![tessera_store_sql::Value::Text(user.to_string())],
            };
            match self.readers.rows(statement)? {
                Some(read) => read.iter().map(rows::session).collect(),
                None => Sqlite::sessions_of_user(&self.pool, user).await,
            }
        }

        async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError> {
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
    }
}

sql_store! {
    impl RevocationLog for SqliteStore {
        forward to Sqlite on self.pool { revocations_after }

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
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
            // The write lock first: no append can slip in between the check and the
            // inserts.
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            let current: i64 = sqlx::query_scalar(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence \
                 WHERE name = 'revocation_log'), 0)",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
            let (sequences, top) = import_sequences(entries, latest, current)?;
            for (entry, sequence) in entries.iter().zip(sequences) {
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
            sqlx::query(
                "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'revocation_log'",
            )
            .bind(top)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            self.announce_revocations();
            Ok(())
        }
    }
}

sql_store! {
    impl AuditStore for SqliteStore {
        forward to Sqlite on self.pool {
            events, events_after, count_events, purge_events, record_online_peak, online_peaks,
        }

        async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
            if events.is_empty() {
                return Ok(());
            }
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            Sqlite::insert_events(&mut tx, events).await?;
            tx.commit().await.map_err(store_error)
        }
    }
}

/// Sightings written by one statement (three values each, far inside SQLite's
/// 32,766).
const PRESENCE_ROWS_PER_STATEMENT: usize = 500;

sql_store! {
    impl PresenceStore for SqliteStore {
        forward to Sqlite on self.pool { online_since, purge_presence }

        async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError> {
            if seen.is_empty() {
                return Ok(0);
            }
            let resolution = i64::try_from(PRESENCE_RESOLUTION.as_millis()).unwrap_or(i64::MAX);
            let mut tx = Sqlite::begin_write(&self.pool).await?;
            let mut written = 0;
            // Many rows a statement: the write lock, which every batch of the code
            // flow waits for, is held for a few statements, not a round trip through
            // sqlx's worker per sighting (at thousands of new refresh families a
            // second that was tens of milliseconds, five times a second). SQLite
            // takes a statement's rows in order, so a session named twice is upserted
            // twice, as one statement each would have.
            for chunk in seen.chunks(PRESENCE_ROWS_PER_STATEMENT) {
                let text = format!(
                    "INSERT INTO presence (sid, user_id, seen_at) VALUES {} \
                     ON CONFLICT (sid) DO UPDATE SET seen_at = excluded.seen_at \
                     WHERE excluded.seen_at >= presence.seen_at + ? AND presence.ended = 0",
                    vec!["(?, ?, ?)"; chunk.len()].join(", ")
                );
                // Only placeholders are formatted into the text.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                for sighting in chunk {
                    query = query
                        .bind(sighting.sid.as_str().to_owned())
                        .bind(sighting.user.to_string())
                        .bind(sighting.at.as_millis());
                }
                written += query
                    .bind(resolution)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?
                    .rows_affected();
            }
            tx.commit().await.map_err(store_error)?;
            Ok(written)
        }

        async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError> {
            if sids.is_empty() {
                return Ok(());
            }
            let mut tx = Sqlite::begin_write(&self.pool).await?;
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
}

sql_store! {
    impl Health for SqliteStore {
        forward to Sqlite on self.pool { ping }
    }
}
