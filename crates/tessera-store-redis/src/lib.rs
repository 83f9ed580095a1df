//! tessera's Redis store: the hot, short-lived state of a scaled-out deployment
//! (browser sessions, opaque access tokens, presence, shared rate limits), beside a
//! database (PostgreSQL) that keeps accounts, clients, keys, refresh families and the
//! revocation log.
//!
//! [`RedisStore`] implements [`SessionStore`], [`OpaqueTokenStore`],
//! [`PresenceStore`], [`RateLimitStore`] and [`Health`]. It is opened with the
//! database's [`AccountStore`] (a [`SessionRecord`] carries its [`User`], and no
//! session is created for a disabled user) and its [`RevocationLog`] (ending a
//! session or revoking an opaque token is a revocation every instance and verifier
//! must learn of). It works with Redis 7.0 or later and with Valkey; it needs one
//! server (or a primary with replicas), not a cluster: its scripts touch keys that
//! they name themselves.
//!
//! # Data layout
//!
//! Every key starts with `tessera:`. Times are milliseconds since the Unix epoch,
//! written in decimal; a secret hash is 64 lower-case hex digits.
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `tessera:session:{sid}` | hash | `user_id`, `secret_hash`, `csrf_token`, `created_at`, `last_seen_at`, `expires_at`, `amr`, and `client_address`, `user_agent` when known; `PEXPIREAT` its `expires_at` |
//! | `tessera:user-sessions:{user_id}` | set | the user's session ids; expires with the last of them |
//! | `tessera:sessions:by-seen` | sorted set | `{sid}` by `last_seen_at`: idle sessions, live counts |
//! | `tessera:sessions:by-expiry` | sorted set | `{sid}:{user_id}` by `expires_at`: what to clean up once Redis has expired a hash |
//! | `tessera:opaque:{hash}` | hash | an opaque access token by the SHA-256 of its secret: `jti`, `client_id`, `subject`, `scopes`, `roles`, `issued_at`, `expires_at`, and `user_id`, `audience`, `session_id` when set; `PEXPIREAT` its `expires_at` |
//! | `tessera:code:{hash}` | hash | an authorization code by the SHA-256 of the code: `client_id`, `user_id`, `session_id`, `redirect_uri`, `scopes`, `auth_time`, `family_id`, `jti`, `issued_at`, `expires_at`, `forget_at`, `code_challenge`, `nonce` and `dpop_jkt` when set, `redeemed_at` once spent; `PEXPIREAT` its `forget_at` |
//! | `tessera:par:{hash}` | hash | a pushed authorization request by the SHA-256 of its `request_uri`: `client_id`, `params`, `expires_at`; `PEXPIREAT` its `expires_at` |
//! | `tessera:ceremony:{hash}` | hash | a sign-in ceremony by the SHA-256 of its secret: `kind`, `state`, `expires_at`, `user_id` when set; `PEXPIREAT` its `expires_at`; taken (read and deleted) once |
//! | `tessera:presence:seen` | sorted set | `{sid}` by its latest sighting |
//! | `tessera:presence:users` | sorted set | `{user_id}` by the latest sighting of any of their sessions |
//! | `tessera:presence:user:{user_id}` | sorted set | that user's `{sid}`s by latest sighting |
//! | `tessera:presence:owner` | hash | `{sid}` → `{user_id}` |
//! | `tessera:presence:ended:{sid}` | string | a tombstone: the session ended, later sightings are ignored; expires after a day ([`FORGOTTEN_FOR`]) |
//! | `tessera:rate:{key}` | string | a rate limit's theoretical arrival time (µs, Redis's clock); `PEXPIRE`d when it no longer matters |
//!
//! Every change that touches more than one key is one Lua script, so Redis applies
//! it whole and nothing sees half of it. Counting who is online is two `ZCOUNT`s, so
//! it costs O(log n) however many sessions are live.
//!
//! Redis expires a session's hash (and a token's) itself at its absolute expiry, so
//! [`SessionStore::session`] and [`OpaqueTokenStore::opaque_token`] find nothing
//! after it rather than an expired record. Both mean the same to their callers:
//! refused. `purge_expired` deletes sessions idle since before its cut-off and
//! cleans the indices of those Redis has expired. These deletions are not
//! revocations: an expired or idle session is refused anyway.
//!
//! # Ending a session, revoking a token
//!
//! The database and Redis share no transaction, so ending a session appends its
//! revocation to the log *first*, then deletes the session. Once the append has
//! committed, every instance (following the log) and every verifier (following the
//! feed) refuses the session, whatever Redis does next. If the deletion then fails,
//! the call fails and the session is left in Redis, already revoked; trying again
//! appends a second entry, which changes nothing for readers of the log. The same
//! goes for revoking an opaque token.
//!
//! # Durability
//!
//! Redis acknowledges a write once it is in memory. What survives a restart is what
//! its persistence kept: with the append-only file on (`appendonly yes`) and
//! `appendfsync always`, every acknowledged write survives a crash of Redis or of its
//! machine, as a committed transaction does in PostgreSQL; with
//! `appendfsync everysec`, up to about a second of writes can be lost. What is lost
//! matters differently: a new session or token (its user signs in again), activity
//! times and presence (they are refreshed within a minute), a rate-limit count; but
//! a lost *deletion* brings back, for Redis readers, a session or opaque token whose
//! revocation is in the log (the log itself lives in the database, so verifiers and
//! the instances' revocation followers are not affected). So: `appendfsync always`
//! for exact revocation, `everysec` if a second of exposure after a crash is
//! acceptable. Without persistence a Redis restart signs everyone out. With a
//! `maxmemory` limit, the eviction policy must be `noeviction` or a `volatile-*`
//! one: an evicted session signs its user out, an evicted tombstone or rate limit
//! weakens them. [`RedisStore::open`] logs a warning for each of these.
//!
//! So the trait contract "`Ok` means durable" holds under `appendfsync always`. "`Err`
//! means nothing changed" holds for every error Redis reports; a call that times out
//! may or may not have been applied (Redis may have run it after the client gave up).
//!
//! # Outages
//!
//! One multiplexed connection, reconnected by itself ([`ConnectionManager`]). Every
//! call is bounded by [`COMMAND_TIMEOUT`], so an unreachable Redis is a
//! [`StoreError`] (a 503) within that time rather than a hung request. A call whose
//! connection turns out to be dead (Redis restarted) is retried once on the new
//! connection if it is safe to run twice, so a restart costs no failed request.
//!
//! [`SessionStore`]: tessera_store::SessionStore
//! [`SessionStore::session`]: tessera_store::SessionStore::session
//! [`OpaqueTokenStore`]: tessera_store::OpaqueTokenStore
//! [`OpaqueTokenStore::opaque_token`]: tessera_store::OpaqueTokenStore::opaque_token
//! [`PresenceStore`]: tessera_store::PresenceStore
//! [`RateLimitStore`]: tessera_store::RateLimitStore
//! [`SessionRecord`]: tessera_store::SessionRecord
//! [`User`]: tessera_store::User

mod ceremonies;
mod codes;
mod opaque;
mod presence;
mod rate;
mod sessions;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError, RedisResult,
};
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{AccountStore, Health, RevocationLog, StoreError};

pub use presence::FORGOTTEN_FOR;

/// The most time one call may take, all attempts included: past it, the call fails
/// with a [`StoreError`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `open` waits for Redis to answer at all.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one command waits for its answer on an open connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause before a call is tried again on a new connection.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// The oldest server whose commands the scripts use (`ZADD GT`, `PEXPIREAT GT`,
/// `ZRANGE … BYSCORE`).
const MINIMUM_VERSION: (u32, u32) = (7, 0);

/// A store over one Redis (or Valkey) server. Cloning it is cheap: clones share the
/// connection.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    accounts: Arc<dyn AccountStore>,
    log: Arc<dyn RevocationLog>,
    /// The server, for messages: never its password.
    name: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL itself is malformed; it is not repeated, since it may hold a password.
    #[error("the Redis URL is not valid: {0}")]
    Url(String),
    #[error("cannot connect to Redis at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("Redis at {url} is version {version}; tessera needs {}.{} or later", MINIMUM_VERSION.0, MINIMUM_VERSION.1)]
    Unsupported { url: String, version: String },
}

/// The server a connection goes to, for messages: never its password.
fn describe(info: &ConnectionInfo) -> String {
    let settings = info.redis_settings();
    let user = settings
        .username()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = settings.db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("redis://{user}{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{user}{host}:{port}/{db}"),
        ConnectionAddr::Unix(path) => format!("redis+unix://{user}{}?db={db}", path.display()),
        _ => format!("redis (database {db})"),
    }
}

/// Whether a call may be run again when its connection turned out to be dead: a
/// command sent on a connection that then dropped may have run already.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Running it twice does what running it once does.
    Idempotent,
    /// Only retried when it certainly never reached Redis (the connection was
    /// refused).
    Once,
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[user:password@]host:port/db`,
    /// or `redis+unix:///path?db=N`), checks its version, and warns (in the log)
    /// about settings that weaken durability. `accounts` and `log` are the
    /// database's: see the crate docs.
    pub async fn open(
        url: &str,
        accounts: Arc<dyn AccountStore>,
        log: Arc<dyn RevocationLog>,
    ) -> Result<Self, OpenError> {
        // redis-rs's parse errors name what is wrong, never the URL.
        let info = url
            .into_connection_info()
            .map_err(|error| OpenError::Url(error.to_string()))?;
        let name = describe(&info);
        let connect_error = |reason: String| OpenError::Connect {
            url: name.clone(),
            reason,
        };
        let client = Client::open(info).map_err(|error| connect_error(error.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // A reconnection gives up quickly: calls wait for it, and each has only
            // COMMAND_TIMEOUT. The next call starts a new one.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let connection = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(connect_error(error.to_string())),
            Err(_) => {
                return Err(connect_error(format!(
                    "no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let store = Self {
            connection,
            accounts,
            log,
            name: name.clone().into(),
        };
        let info: String = store
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("INFO").query_async(&mut c).await
            })
            .await
            .map_err(|error| connect_error(error.message().to_owned()))?;
        let info = parse_info(&info);
        let version = info.get("redis_version").copied().unwrap_or("unknown");
        if !supported(version) {
            return Err(OpenError::Unsupported {
                url: name,
                version: version.to_owned(),
            });
        }
        if info.get("aof_enabled") == Some(&"0") {
            tracing::warn!(
                redis = %store.name,
                "Redis's append-only file is off: a Redis restart loses sessions (everyone \
                 signs in again) and may bring back ended ones; see appendonly"
            );
        }
        store.check_config().await;
        Ok(store)
    }

    /// The server, as `redis://[user@]host:port/db`: without its password.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Warns about configuration that weakens what the store promises. Managed Redis
    /// services often refuse `CONFIG`; then there is nothing to say.
    async fn check_config(&self) {
        let config = |parameter: &'static str| async move {
            self.run(Retry::Idempotent, |mut c| async move {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(parameter)
                    .query_async::<HashMap<String, String>>(&mut c)
                    .await
            })
            .await
            .ok()
            .and_then(|mut values| values.remove(parameter))
        };
        if let Some(fsync) = config("appendfsync").await.filter(|f| f != "always")
            && config("appendonly").await.as_deref() == Some("yes")
        {
            tracing::warn!(
                redis = %self.name,
                appendfsync = fsync,
                "Redis syncs its append-only file only now and then: a crash of its machine \
                 can lose the last acknowledged writes (set appendfsync always for none)"
            );
        }
        if let Some(policy) = config("maxmemory-policy")
            .await
            .filter(|p| p.starts_with("allkeys"))
        {
            tracing::warn!(
                redis = %self.name,
                policy,
                "Redis may evict any key when full: sessions, tombstones and rate limits \
                 would vanish (use noeviction, or a volatile-* policy)"
            );
        }
    }

    /// Writes a hash that must be new (an opaque token, an authorization code: keyed
    /// by a secret's hash), expiring at `expires_at`. A key that exists already is
    /// [`StoreError::Conflict`] naming `what`, and stays as it was.
    pub(crate) async fn insert_expiring_hash(
        &self,
        key: String,
        expires_at: Timestamp,
        fields: &[(&str, String)],
        what: &str,
    ) -> Result<(), StoreError> {
        static INSERT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
",
            )
        });
        let mut invocation = INSERT.prepare_invoke();
        invocation.key(key).arg(expires_at.as_millis());
        for (field, value) in fields {
            invocation.arg(*field).arg(value);
        }
        let invocation = &invocation;
        // Not retried on a dropped connection: a second run would find the first's
        // hash and report it as taken.
        let stored: i64 = self
            .run(Retry::Once, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        if stored == 0 {
            return Err(StoreError::Conflict(format!(
                "{what} with this hash exists"
            )));
        }
        Ok(())
    }

    /// Runs `call` on the connection, within [`COMMAND_TIMEOUT`] all attempts
    /// included, retrying as `retry` allows when the connection was dead.
    pub(crate) async fn run<T, F, Fut>(&self, retry: Retry, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match tokio::time::timeout_at(deadline, call(self.connection.clone())).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => {
                    let again = attempts < 2
                        && (error.is_connection_refusal()
                            || (retry == Retry::Idempotent && error.is_connection_dropped()));
                    if !again {
                        return Err(self.error(&error));
                    }
                    tokio::time::sleep_until(
                        (tokio::time::Instant::now() + RETRY_PAUSE).min(deadline),
                    )
                    .await;
                }
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "Redis at {} did not answer within {} s",
                        self.name,
                        COMMAND_TIMEOUT.as_secs()
                    )));
                }
            }
        }
    }

    /// The one place a Redis error becomes a [`StoreError`]. redis-rs's messages
    /// carry Redis's message, never a command's arguments.
    fn error(&self, error: &RedisError) -> StoreError {
        let message = format!("Redis at {}: {error}", self.name);
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
        {
            StoreError::Unavailable(message)
        } else if matches!(
            error.kind(),
            ErrorKind::Parse | ErrorKind::UnexpectedReturnType
        ) {
            StoreError::Corrupt(message)
        } else {
            StoreError::Other(message)
        }
    }
}

/// `INFO`'s `name:value` lines.
fn parse_info(info: &str) -> HashMap<&str, &str> {
    info.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .collect()
}

fn supported(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= MINIMUM_VERSION,
        _ => false,
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::corrupt(what)
}

/// The fields of a stored hash, read back with the `tessera-core` parsers.
pub(crate) struct Stored {
    what: &'static str,
    fields: HashMap<String, String>,
}

impl Stored {
    /// `None` for an empty hash: Redis has no such key.
    pub(crate) fn new(what: &'static str, fields: HashMap<String, String>) -> Option<Self> {
        (!fields.is_empty()).then_some(Self { what, fields })
    }

    fn malformed(&self, field: &str) -> StoreError {
        corrupt(&format!("{} {field}", self.what))
    }

    pub(crate) fn text(&self, field: &str) -> Result<&str, StoreError> {
        self.fields
            .get(field)
            .map(String::as_str)
            .ok_or_else(|| self.malformed(field))
    }

    pub(crate) fn optional(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub(crate) fn parse<T>(
        &self,
        field: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StoreError> {
        parse(self.text(field)?).ok_or_else(|| self.malformed(field))
    }

    pub(crate) fn parse_optional<T>(
        &self,
        field: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        self.optional(field)
            .map(|value| parse(value).ok_or_else(|| self.malformed(field)))
            .transpose()
    }

    pub(crate) fn millis(&self, field: &str) -> Result<Timestamp, StoreError> {
        self.parse(field, parse_millis)
    }
}

pub(crate) fn parse_millis(value: &str) -> Option<Timestamp> {
    value.parse().ok().map(Timestamp::from_millis)
}

pub(crate) fn hex(hash: &SecretHash) -> String {
    use std::fmt::Write;
    hash.as_bytes()
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

pub(crate) fn parse_hex(value: &str) -> Option<SecretHash> {
    if value.len() != 64 || !value.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(value.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(SecretHash::from_bytes(bytes))
}

#[async_trait]
impl Health for RedisStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(Retry::Idempotent, |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex() {
        let hash = SecretHash::from_bytes(std::array::from_fn(|i| (i * 37) as u8));
        let written = hex(&hash);
        assert_eq!(written.len(), 64);
        assert!(parse_hex(&written).unwrap().matches(&hash));
        assert!(parse_hex(&written[..62]).is_none());
        assert!(parse_hex(&written.replace('a', "g")).is_none() || !written.contains('a'));
        assert!(parse_hex(&"é".repeat(32)).is_none());
    }

    #[test]
    fn versions() {
        assert!(supported("7.0.15"));
        assert!(supported("7.2.4"));
        assert!(supported("8.0.1"));
        assert!(!supported("6.2.14"));
        assert!(!supported("unknown"));
    }

    #[test]
    fn names_leave_out_the_password() {
        let info = "redis://app:hunter2@cache.internal:6380/3"
            .into_connection_info()
            .unwrap();
        assert_eq!(describe(&info), "redis://app@cache.internal:6380/3");
        let info = "redis://:hunter2@cache/".into_connection_info().unwrap();
        assert_eq!(describe(&info), "redis://cache:6379/0");
    }
}
