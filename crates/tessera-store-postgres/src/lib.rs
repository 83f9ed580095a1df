//! tessera's PostgreSQL store: what lets several server instances (and the CLI) share
//! one database.
//!
//! **Durability.** Every method returns `Ok` only once its transaction has committed,
//! and every multi-step change (a session's end and its revocation entry, a rotation
//! and its record of the used token, a key's retirement, its successor and its entry)
//! is one transaction: `Err` means nothing changed. How durable a commit is, is the
//! server's `synchronous_commit` (on by default: flushed before the commit returns).
//! Writes that read first lock what they read (`DELETE … RETURNING`,
//! `SELECT … FOR UPDATE`, `FOR SHARE` on the user a session is created for), so under
//! PostgreSQL's default READ COMMITTED isolation they behave as SQLite's serialised
//! writers do: of two rotations of one refresh token exactly one rotates, and a
//! session can never be committed for a user whose disabling has committed.
//!
//! **The revocation log's order is commit order.** Readers poll "entries with a
//! sequence above my position". With a `SEQUENCE`, a transaction that drew 7 could
//! commit after one that drew 8; a reader that had seen 8 would skip 7 forever. Here
//! every appending transaction, as its last step before committing, bumps the one row
//! of `revocation_sequence` and inserts its entries under the numbers it got. The
//! row's lock is held until commit, so the next appender gets its numbers only after
//! this one is visible: sequence order is commit order, with no gaps (a rolled-back
//! append returns its numbers), and the counter never goes back when old entries are
//! purged. Taking that lock last (after every other row the transaction locks) keeps
//! it out of any deadlock. An import of another log's entries (`tessera store
//! migrate`) takes it first, since it locks nothing else, inserts them under their
//! own numbers and raises the counter to that log's high-water mark.
//!
//! **Cross-process signals through LISTEN/NOTIFY.** A background task holds one
//! connection that listens on `tessera_clients` and `tessera_revocations`. A
//! transaction that adds or removes a client runs `pg_notify('tessera_clients', '')`,
//! one that appends to the revocation log `pg_notify('tessera_revocations', '')`;
//! PostgreSQL delivers them to every listener when (and only if) it commits. The task
//! bumps the clients generation on the first (so [`ClientStore::cache_generation`]
//! is exact across processes without a round trip: a change elsewhere reaches it
//! within the notification's delivery, typically well under a millisecond after that
//! commit), and wakes [`PostgresStore::revocations_appended`] on the second. While the
//! listening connection is down the generation is `None` (no cached client is
//! trusted); it reconnects with back-off and bumps the generation then, since
//! notifications may have been missed. A heartbeat it sends itself every few seconds
//! tells a silently dead connection from a quiet one. The task holds only a `Weak`
//! reference to the store and stops when the store is dropped or closed. A lost
//! listening connection usually means the server went away, so for a while after it
//! the pool pings its older connections before use rather than fail a request on
//! each dead one.
//!
//! [`ClientStore::cache_generation`]: tessera_store::ClientStore::cache_generation

mod backchannel;
mod clients;
mod codes;
mod keys;
mod listener;
mod migrations;
mod opaque;
mod refresh;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, Postgres};
use tessera_core::{ClientId, SessionId, Timestamp, UserId};
use tessera_store::{
    AccountStore, AuditStore, Consent, CreateUserError, EndReason, Health, NewEvent,
    PRESENCE_RESOLUTION, PresenceStore, Profile, Revocation, RevocationLog, Revoked, Seen,
    SessionStore, StoreError, UserCredentials,
};
use tokio::sync::watch;

pub use migrations::{MigrationError, SCHEMA_VERSION};

/// The most connections one store opens for queries (the listener has its own).
pub const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a connection before failing: an unreachable database
/// becomes a `StoreError` (a 503) this quickly rather than a hung request.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `open` waits for the database to answer at all.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A pooled connection idle at least this long is pinged before it is used again.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);
/// For this long after the listener is back from a lost connection, pooled
/// connections older than the loss are pinged before use.
const SUSPECT_FOR: Duration = Duration::from_secs(60);

// Advisory lock keys. PostgreSQL has one 64-bit key space per database, shared with
// anything else using the database, so these spell "tessera" and a purpose number.
/// Held (per transaction) while a migration step is checked and applied.
pub(crate) const MIGRATION_LOCK: i64 = 0x7465_7373_6572_6101;
/// Held (per transaction) by every change to the signing keys, so that processes
/// starting together create one first key, and key changes apply one after another.
pub(crate) const KEYS_LOCK: i64 = 0x7465_7373_6572_6102;
/// Held by each transaction that records audit events, so that their ids commit
/// in ascending order: a follower reading `id > N` never passes over an event a
/// slower transaction commits later with a smaller id.
pub(crate) const AUDIT_LOCK: i64 = 0x7465_7373_6572_6103;

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    shared: Arc<Shared>,
    /// The code flow's writes, batched (group commit).
    batches: Arc<tessera_store_sql::Batches>,
}

/// What the store and its listener task share. The task holds it only weakly.
pub(crate) struct Shared {
    pool: PgPool,
    /// Bumped by every client change seen: made here, or notified from anywhere.
    cache_generation: AtomicU64,
    /// Whether the listening connection is up; the generation means nothing if not.
    listening: AtomicBool,
    outages: Arc<Outages>,
    /// Notified after an append to the revocation log, here or in any process.
    appended: Arc<tessera_store::RevocationsAppended>,
    /// Sending (or dropping the last store, which drops this) stops the task.
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// When the listening connection was last lost, and when it was back. A loss is
/// usually the server's (a restart, a failover, the network), so the pool's idle
/// connections opened before it are likely dead as well: they are pinged before use
/// (and replaced if dead) until a while after the listener is back, instead of each
/// failing one request.
#[derive(Default)]
pub(crate) struct Outages(Mutex<Outage>);

#[derive(Default, Clone, Copy)]
struct Outage {
    lost: Option<std::time::Instant>,
    back: Option<std::time::Instant>,
}

impl Outages {
    pub(crate) fn lost(&self) {
        if let Ok(mut outage) = self.0.lock() {
            outage.lost = Some(std::time::Instant::now());
            outage.back = None;
        }
    }

    pub(crate) fn back(&self) {
        if let Ok(mut outage) = self.0.lock() {
            outage.back = Some(std::time::Instant::now());
        }
    }

    /// Whether a connection opened `age` ago may have died in the last outage.
    fn suspects(&self, age: Duration) -> bool {
        let Ok(outage) = self.0.lock().map(|o| *o) else {
            return true;
        };
        let Some(lost) = outage.lost else {
            return false;
        };
        let opened_before = std::time::Instant::now()
            .checked_sub(age)
            .is_none_or(|opened| opened <= lost);
        let recent = outage.back.is_none_or(|back| back.elapsed() < SUSPECT_FOR);
        opened_before && recent
    }
}

impl Shared {
    fn bump_cache_generation(&self) {
        self.cache_generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL itself is malformed; it is not repeated, since it may hold a password.
    #[error("the PostgreSQL URL is not valid: {0}")]
    Url(sqlx::Error),
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error(transparent)]
    Migration(#[from] MigrationError),
}

/// The database a connection goes to, for messages: never its password.
fn describe(options: &PgConnectOptions) -> String {
    let host = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => options.get_host().to_owned(),
    };
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        host,
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`),
    /// brings its schema up to date and starts listening for other processes'
    /// changes. Several processes may open the same database at once.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        let mut options = PgConnectOptions::from_str(url).map_err(OpenError::Url)?;
        if options.get_application_name().is_none() {
            options = options.application_name("tessera");
        }
        // Every statement at TRACE, not DEBUG, as on SQLite: periodic polling
        // would bury everything else. Slow statements (over a second) still warn.
        options = options.log_statements(log::LevelFilter::Trace);
        let name = describe(&options);
        let connect_error = |reason: String| OpenError::Connect {
            url: name.clone(),
            reason,
        };
        // One connection first, for an error that says why (a pool says only that it
        // timed out), within a bound (an unreachable host may never answer).
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
            }
            Ok(Err(error)) => return Err(connect_error(error.to_string())),
            Err(_) => {
                return Err(connect_error(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let outages = Arc::new(Outages::default());
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A ping per acquire would add a round trip to every call. sqlx pings a
            // connection when it is released anyway; before use, one is pinged only
            // after a long idle spell or an outage. (A failed ping replaces it.)
            .test_before_acquire(false)
            .before_acquire({
                let outages = Arc::clone(&outages);
                move |connection, meta| {
                    let ping = meta.idle_for >= PING_IF_IDLE_FOR || outages.suspects(meta.age);
                    Box::pin(async move {
                        if ping {
                            connection.ping().await?;
                        }
                        Ok(true)
                    })
                }
            })
            .connect_lazy_with(options.clone());
        migrations::apply(&pool, &name).await?;
        migrations::fill_in_skeletons(&pool, &name).await?;
        let synchronous_commit: Option<String> = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
        if synchronous_commit.as_deref() == Some("off") {
            tracing::warn!(
                database = name,
                "synchronous_commit is off: a change acknowledged just before PostgreSQL \
                 crashes can be lost, so a 2xx from tessera no longer means durable"
            );
        }
        let listener_pool = listener::pool(options);
        let listening = listener::connect(&listener_pool)
            .await
            .map_err(|error| connect_error(error.to_string()))?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            pool: pool.clone(),
            cache_generation: AtomicU64::new(0),
            listening: AtomicBool::new(true),
            outages,
            appended: Arc::default(),
            stop,
            task: Mutex::new(None),
        });
        let task = tokio::spawn(listener::run(
            Arc::downgrade(&shared),
            listener_pool,
            listening,
            stopped,
        ));
        if let Ok(mut slot) = shared.task.lock() {
            *slot = Some(task);
        }
        let batches = Arc::new(tessera_store_sql::Batches::postgres(pool.clone()));
        Ok(Self {
            pool,
            shared,
            batches,
        })
    }

    /// Stops the listener task and closes every connection. The store (and its
    /// clones) must not be used afterwards: every call would fail.
    pub async fn close(&self) {
        // No cache may trust the generation once nothing keeps it up to date.
        self.shared.listening.store(false, Ordering::SeqCst);
        self.shared.stop.send_replace(true);
        let task = self
            .shared
            .task
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.pool.close().await;
    }

    /// Signalled after any process appends to the revocation log (and at once after
    /// this one does). A lost notification (the listener reconnecting) only costs
    /// the follower's next poll.
    pub fn revocations_appended(&self) -> Arc<tessera_store::RevocationsAppended> {
        self.shared.appended.clone()
    }

    fn announce_revocations(&self) {
        self.shared.appended.signal();
    }
}

pub(crate) use tessera_store_sql::store_error;
use tessera_store_sql::{import_sequences, sql_store};

/// One revocation, collected while a transaction makes its changes and appended by
/// [`append_in`] as its last step.
pub(crate) struct Entry {
    pub revoked: Revoked,
    pub user: Option<UserId>,
    pub reason: EndReason,
    pub at: Timestamp,
    pub expires_at: Timestamp,
}

/// The entry for an ended session (or refresh family) that expires at `expires_at`:
/// kept past that by the longest access-token lifetime, since a token exchanged from
/// it may outlive it by that much.
pub(crate) fn session_entry(
    id: &str,
    expires_at: i64,
    user: UserId,
    reason: EndReason,
    at: Timestamp,
) -> Result<Entry, StoreError> {
    Ok(Entry {
        revoked: Revoked::Session(
            SessionId::parse(id).map_err(|_| StoreError::corrupt("session id"))?,
        ),
        user: Some(user),
        reason,
        at,
        expires_at: Timestamp::from_millis(expires_at).saturating_add(tessera_core::MAX_ACCESS_TTL),
    })
}

/// Log entries as column arrays, for one `UNNEST` insert (appends and imports).
struct LogColumns {
    kinds: Vec<&'static str>,
    targets: Vec<String>,
    users: Vec<Option<String>>,
    reasons: Vec<&'static str>,
    ats: Vec<i64>,
    expires: Vec<i64>,
}

impl LogColumns {
    fn of<'a>(
        rows: impl Iterator<Item = (&'a Revoked, Option<UserId>, EndReason, Timestamp, Timestamp)>,
    ) -> Self {
        let mut columns = Self {
            kinds: Vec::new(),
            targets: Vec::new(),
            users: Vec::new(),
            reasons: Vec::new(),
            ats: Vec::new(),
            expires: Vec::new(),
        };
        for (revoked, user, reason, at, expires_at) in rows {
            columns.kinds.push(revoked.kind().as_str());
            columns.targets.push(revoked.target());
            columns.users.push(user.map(|u| u.to_string()));
            columns.reasons.push(reason.as_str());
            columns.ats.push(at.as_millis());
            columns.expires.push(expires_at.as_millis());
        }
        columns
    }
}

/// Appends `entries`, in order, to the revocation log inside the transaction on
/// `connection`, and returns the sequence of the last one (`None` if there were none).
///
/// Must be the transaction's last step before its commit: it takes the lock on the
/// sequence counter, which is held to commit (see the crate docs).
pub(crate) async fn append_in(
    connection: &mut PgConnection,
    entries: &[Entry],
) -> Result<Option<u64>, StoreError> {
    if entries.is_empty() {
        return Ok(None);
    }
    // Delivered to every listener when, and only if, this transaction commits.
    sqlx::query("SELECT pg_notify('tessera_revocations', '')")
        .execute(&mut *connection)
        .await
        .map_err(store_error)?;
    let count =
        i64::try_from(entries.len()).map_err(|_| StoreError::Invalid("too many entries".into()))?;
    let columns = LogColumns::of(
        entries
            .iter()
            .map(|e| (&e.revoked, e.user, e.reason, e.at, e.expires_at)),
    );
    let last: i64 = sqlx::query_scalar(
        "WITH counter AS ( \
           UPDATE revocation_sequence SET last = last + $1 RETURNING last \
         ), appended AS ( \
           INSERT INTO revocation_log (sequence, kind, target, user_id, reason, at, expires_at) \
           SELECT counter.last - $1 + e.ord, e.kind, e.target, e.user_id, e.reason, e.at, \
                  e.expires_at \
           FROM counter, UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], \
                                $7::bigint[]) \
                WITH ORDINALITY AS e(kind, target, user_id, reason, at, expires_at, ord) \
         ) \
         SELECT last FROM counter",
    )
    .bind(count)
    .bind(columns.kinds)
    .bind(columns.targets)
    .bind(columns.users)
    .bind(columns.reasons)
    .bind(columns.ats)
    .bind(columns.expires)
    .fetch_one(&mut *connection)
    .await
    .map_err(store_error)?;
    u64::try_from(last)
        .map(Some)
        .map_err(|_| StoreError::corrupt("sequence"))
}

sql_store! {
    impl AccountStore for PostgresStore {
        forward to Postgres on self.pool {
            create_user, user_credentials, list_users, user, search_users, replace_password_hash,
            set_user_disabled, profile, consent, consents, set_roles, save_reset_link,
            reset_link_user, use_reset_link, totp, begin_totp, confirm_totp, use_totp_step,
            remove_totp, replace_recovery_codes, use_recovery_code, unused_recovery_codes, add_passkey, passkeys, passkey, use_passkey,
            remove_passkey,
        }

        async fn save_consent(&self, consent: Consent) -> Result<bool, StoreError> {
            // Moves the generation: a user's list of consents is cached by it.
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let saved = <Postgres as tessera_store_sql::Sql>::save_consent(&mut *tx, consent).await?;
            self.notify_cached_changed(tx).await?;
            Ok(saved)
        }

        async fn set_profile(&self, id: UserId, profile: Profile) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let set = <Postgres as tessera_store_sql::Sql>::set_profile(&mut *tx, id, profile).await?;
            self.notify_cached_changed(tx).await?;
            Ok(set)
        }

        async fn withdraw_consent(&self, user: UserId, client: &ClientId) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let withdrawn = <Postgres as tessera_store_sql::Sql>::withdraw_consent(&mut *tx, user, client).await?;
            self.notify_cached_changed(tx).await?;
            Ok(withdrawn)
        }

        async fn import_user(&self, user: UserCredentials) -> Result<(), CreateUserError> {
            let UserCredentials {
                user,
                password_hash,
            } = user;
            // A registration racing this between the look for a holder and the insert
            // fails it as taken; `store migrate` writes into a database nothing else uses.
            sqlx::query(
                "INSERT INTO users (id, username, username_skeleton, look_alike_of, password_hash, \
                   roles, disabled, created_at) \
                 SELECT $1, $2, CASE WHEN holder.id IS NULL THEN $3 END, holder.id, $4, $5, $6, $7 \
                 FROM (SELECT 1) AS one \
                 LEFT JOIN users AS holder ON holder.username_skeleton = $3",
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

sql_store! {
    impl SessionStore for PostgresStore {
        forward to Postgres on self.pool {
            create_session, session, sessions_of_user, purge_expired, count_live_sessions,
        }

        async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError> {
            if seen.is_empty() {
                return Ok(());
            }
            let ids: Vec<String> = seen.iter().map(|(id, _)| id.as_str().to_owned()).collect();
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            // Rows locked in one order (by id) first, so that two instances writing
            // overlapping batches wait for each other instead of deadlocking.
            sqlx::query("SELECT 1 FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            // The latest time per session wins, and never moves one back.
            sqlx::query(
                "UPDATE sessions s SET last_seen_at = GREATEST(s.last_seen_at, seen.at) \
                 FROM (SELECT id, max(at) AS at FROM UNNEST($1::text[], $2::bigint[]) AS t(id, at) \
                       GROUP BY id) AS seen \
                 WHERE s.id = seen.id",
            )
            .bind(&ids)
            .bind(
                seen.iter()
                    .map(|(_, at)| at.as_millis())
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            tx.commit().await.map_err(store_error)
        }

        async fn end_session(
            &self,
            user: UserId,
            id: &SessionId,
            reason: EndReason,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let expires_at: Option<i64> = sqlx::query_scalar(
                "DELETE FROM sessions WHERE id = $1 AND user_id = $2 RETURNING expires_at",
            )
            .bind(id.as_str())
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
            let Some(expires_at) = expires_at else {
                return Ok(false);
            };
            let entry = session_entry(id.as_str(), expires_at, user, reason, at)?;
            append_in(&mut tx, &[entry]).await?;
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
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "WITH ended AS ( \
                   DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2 \
                   RETURNING id, expires_at, created_at \
                 ) SELECT id, expires_at FROM ended ORDER BY created_at, id COLLATE \"C\"",
            )
            .bind(user.to_string())
            .bind(except.map(SessionId::as_str))
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
            let entries = rows
                .iter()
                .map(|(id, expires_at)| session_entry(id, *expires_at, user, reason, at))
                .collect::<Result<Vec<_>, _>>()?;
            append_in(&mut tx, &entries).await?;
            tx.commit().await.map_err(store_error)?;
            if !entries.is_empty() {
                self.announce_revocations();
            }
            rows.iter()
                .map(|(id, _)| SessionId::parse(id).map_err(|_| StoreError::corrupt("session id")))
                .collect()
        }
    }
}

sql_store! {
    impl RevocationLog for PostgresStore {
        forward to Postgres on self.pool { revocations_after }

        async fn latest_revocation(&self) -> Result<u64, StoreError> {
            // The counter, not max(sequence): purged entries must not let the position go
            // back. It holds only committed appends, so a reader starting from it misses
            // nothing committed later.
            let latest: i64 = sqlx::query_scalar("SELECT last FROM revocation_sequence")
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
            u64::try_from(latest).map_err(|_| StoreError::corrupt("sequence"))
        }

        async fn append_revocation(
            &self,
            revoked: Revoked,
            user: Option<UserId>,
            reason: EndReason,
            at: Timestamp,
            expires_at: Timestamp,
        ) -> Result<u64, StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let entry = Entry {
                revoked,
                user,
                reason,
                at,
                expires_at,
            };
            let sequence = append_in(&mut tx, &[entry])
                .await?
                .ok_or_else(|| StoreError::corrupt("sequence"))?;
            tx.commit().await.map_err(store_error)?;
            self.announce_revocations();
            Ok(sequence)
        }

        async fn import_revocations(
            &self,
            entries: &[Revocation],
            latest: u64,
        ) -> Result<(), StoreError> {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            // The counter's row lock first, held to commit: appenders wait for the
            // import, so none draws a number the import is about to use. The import
            // locks nothing else, so taking it first cannot deadlock.
            let current: i64 = sqlx::query_scalar("SELECT last FROM revocation_sequence FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
            let (sequences, top) = import_sequences(entries, latest, current)?;
            if !entries.is_empty() {
                let columns = LogColumns::of(
                    entries
                        .iter()
                        .map(|e| (&e.revoked, e.user, e.reason, e.at, e.expires_at)),
                );
                sqlx::query(
                    "INSERT INTO revocation_log (sequence, kind, target, user_id, reason, at, \
                       expires_at) \
                     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], \
                                          $5::text[], $6::bigint[], $7::bigint[])",
                )
                .bind(sequences)
                .bind(columns.kinds)
                .bind(columns.targets)
                .bind(columns.users)
                .bind(columns.reasons)
                .bind(columns.ats)
                .bind(columns.expires)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
                sqlx::query("SELECT pg_notify('tessera_revocations', '')")
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
            }
            sqlx::query("UPDATE revocation_sequence SET last = GREATEST(last, $1)")
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
    impl AuditStore for PostgresStore {
        forward to Postgres on self.pool {
            events, events_after, count_events, purge_events, record_online_peak, online_peaks,
        }

        async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
            if events.is_empty() {
                return Ok(());
            }
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(AUDIT_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            <Postgres as tessera_store_sql::Sql>::insert_events(&mut tx, events).await?;
            tx.commit().await.map_err(store_error)
        }
    }
}

sql_store! {
    impl PresenceStore for PostgresStore {
        forward to Postgres on self.pool { online_since, purge_presence }

        async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError> {
            if seen.is_empty() {
                return Ok(0);
            }
            // One statement. A batch may name a session twice: grouped first (an upsert
            // may touch a row once), the latest sighting per session, inserted in `sid`
            // order so that overlapping batches from two instances cannot deadlock.
            sqlx::query(
                "INSERT INTO presence (sid, user_id, seen_at) \
                 SELECT sid, min(user_id), max(at) \
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS t(sid, user_id, at) \
                 GROUP BY sid ORDER BY sid \
                 ON CONFLICT (sid) DO UPDATE SET seen_at = excluded.seen_at \
                 WHERE excluded.seen_at >= presence.seen_at + $4 AND NOT presence.ended",
            )
            .bind(
                seen.iter()
                    .map(|s| s.sid.as_str().to_owned())
                    .collect::<Vec<_>>(),
            )
            .bind(seen.iter().map(|s| s.user.to_string()).collect::<Vec<_>>())
            .bind(seen.iter().map(|s| s.at.as_millis()).collect::<Vec<_>>())
            .bind(i64::try_from(PRESENCE_RESOLUTION.as_millis()).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
        }

        async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError> {
            if sids.is_empty() {
                return Ok(());
            }
            let sids: Vec<&str> = sids.iter().map(SessionId::as_str).collect();
            // A tombstone, not a delete: see the `ended` column. Sorted, as above.
            sqlx::query(
                "INSERT INTO presence (sid, user_id, seen_at, ended) \
                 SELECT sid, '', $2, true FROM UNNEST($1::text[]) AS t(sid) \
                 GROUP BY sid ORDER BY sid \
                 ON CONFLICT (sid) DO UPDATE SET ended = true",
            )
            .bind(&sids)
            .bind(Timestamp::now().as_millis())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(store_error)
        }
    }
}

sql_store! {
    impl Health for PostgresStore {
        forward to Postgres on self.pool { ping }
    }
}
