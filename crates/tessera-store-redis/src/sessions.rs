//! `SessionStore` on Redis: a hash per session, a set per user, two sorted sets for
//! purging and counting (see the crate docs for the layout).

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use tessera_core::{AuthMethods, CsrfToken, SessionId, Timestamp, UserId};
use tessera_store::{
    CreateSessionError, EndReason, NewSession, Revoked, SessionRecord, SessionStore, StoreError,
    User,
};

use crate::{RedisStore, Retry, Stored, corrupt, hex, parse_hex};

const BY_SEEN: &str = "tessera:sessions:by-seen";
const BY_EXPIRY: &str = "tessera:sessions:by-expiry";
/// Sessions one purge script handles before it lets other commands run.
const PURGE_BATCH: usize = 500;

fn session_key(id: &SessionId) -> String {
    format!("tessera:session:{id}")
}

fn user_key(user: UserId) -> String {
    format!("tessera:user-sessions:{user}")
}

/// The member of `by-expiry`: the user is in it so that cleaning up after a hash
/// Redis has expired needs nothing from the hash.
fn expiry_member(id: &SessionId, user: UserId) -> String {
    format!("{id}:{user}")
}

/// KEYS: session hash, user set, by-seen, by-expiry. ARGV: sid, by-expiry member,
/// last seen, expires at, then the hash's field/value pairs. 0 if the id is taken.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
-- the user's set lives as long as their longest-lived session
if redis.call('PTTL', KEYS[2]) == -1 then
  redis.call('PEXPIREAT', KEYS[2], ARGV[4])
else
  redis.call('PEXPIREAT', KEYS[2], ARGV[4], 'GT')
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
return 1
",
    )
});

/// KEYS: user set, by-seen, by-expiry. ARGV: user id, then session ids. Deletes those
/// sessions of that user and their index entries; returns how many hashes it deleted.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local deleted = 0
for i = 2, #ARGV do
  local sid = ARGV[i]
  local key = 'tessera:session:' .. sid
  local owner = redis.call('HGET', key, 'user_id')
  if owner == ARGV[1] then
    deleted = deleted + redis.call('DEL', key)
  end
  if owner == ARGV[1] or not owner then
    redis.call('SREM', KEYS[1], sid)
    redis.call('ZREM', KEYS[2], sid)
    redis.call('ZREM', KEYS[3], sid .. ':' .. ARGV[1])
  end
end
return deleted
",
    )
});

/// KEYS: by-seen. ARGV: pairs of session id and time. Moves last-seen times forward
/// only, and only of sessions that still exist.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #ARGV, 2 do
  local key = 'tessera:session:' .. ARGV[i]
  local current = redis.call('HGET', key, 'last_seen_at')
  if current and tonumber(ARGV[i + 1]) > tonumber(current) then
    redis.call('HSET', key, 'last_seen_at', ARGV[i + 1])
    redis.call('ZADD', KEYS[1], 'GT', ARGV[i + 1], ARGV[i])
  end
end
return 0
",
    )
});

/// KEYS: by-seen, by-expiry. ARGV: now, idle cut-off, batch size. Deletes up to a
/// batch of sessions past their expiry (whose hash Redis may have expired already)
/// and a batch idle since before the cut-off. Returns {deleted, expired seen, idle
/// seen}; a full batch means there may be more.
static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local limit = tonumber(ARGV[3])
local deleted = 0
local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, limit)
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[2], member)
  local sid, user = string.match(member, '^([^:]+):(.+)$')
  if sid then
    -- counted unless an earlier purge already took it as idle
    local gone = redis.call('DEL', 'tessera:session:' .. sid) + redis.call('ZREM', KEYS[1], sid)
    redis.call('SREM', 'tessera:user-sessions:' .. user, sid)
    if gone > 0 then deleted = deleted + 1 end
  end
end
local idle = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, limit)
for _, sid in ipairs(idle) do
  local key = 'tessera:session:' .. sid
  local user = redis.call('HGET', key, 'user_id')
  redis.call('ZREM', KEYS[1], sid)
  deleted = deleted + 1
  if user then
    redis.call('DEL', key)
    redis.call('SREM', 'tessera:user-sessions:' .. user, sid)
    redis.call('ZREM', KEYS[2], sid .. ':' .. user)
  end
end
return {deleted, #expired, #idle}
",
    )
});

/// KEYS: by-seen, by-expiry. ARGV: now, idle cut-off. Sessions seen since the
/// cut-off, less those of them past their expiry (few: the purge removes them).
static COUNT_LIVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cutoff = tonumber(ARGV[2])
local count = redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf')
local expired = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE')
for _, member in ipairs(expired) do
  local sid = string.match(member, '^([^:]+):')
  if sid then
    local seen = redis.call('ZSCORE', KEYS[1], sid)
    if seen and tonumber(seen) >= cutoff then count = count - 1 end
  end
end
return count
",
    )
});

/// A session as stored, without its user.
struct StoredSession {
    id: SessionId,
    user_id: UserId,
    record: Stored,
}

impl StoredSession {
    fn parse(id: SessionId, fields: HashMap<String, String>) -> Result<Option<Self>, StoreError> {
        let Some(record) = Stored::new("session", fields) else {
            return Ok(None);
        };
        let user_id = record.parse("user_id", UserId::parse)?;
        Ok(Some(Self {
            id,
            user_id,
            record,
        }))
    }

    fn with_user(&self, user: User) -> Result<SessionRecord, StoreError> {
        let r = &self.record;
        Ok(SessionRecord {
            id: self.id,
            secret_hash: r.parse("secret_hash", parse_hex)?,
            user,
            csrf_token: r.parse("csrf_token", CsrfToken::from_stored)?,
            created_at: r.millis("created_at")?,
            last_seen_at: r.millis("last_seen_at")?,
            expires_at: r.millis("expires_at")?,
            client_address: r.optional("client_address").map(str::to_owned),
            user_agent: r.optional("user_agent").map(str::to_owned),
            // A session written before methods were recorded was a password's.
            methods: match r.optional("amr") {
                Some(stored) => AuthMethods::parse_stored(stored)
                    .map_err(|_| StoreError::corrupt("session's authentication methods"))?,
                None => AuthMethods::password(),
            },
        })
    }
}

/// A session about to be ended: what its revocation entry needs.
struct Ending {
    id: SessionId,
    expires_at: Timestamp,
}

impl RedisStore {
    async fn delete_sessions(&self, user: UserId, ids: &[SessionId]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut invocation = DELETE.prepare_invoke();
        invocation
            .key(user_key(user))
            .key(BY_SEEN)
            .key(BY_EXPIRY)
            .arg(user.to_string());
        for id in ids {
            invocation.arg(id.as_str());
        }
        let invocation = &invocation;
        self.run(Retry::Idempotent, |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// The user's sessions, from their set: ids whose hash is gone (expired) are
    /// returned apart, for cleaning.
    async fn stored_sessions_of(
        &self,
        user: UserId,
    ) -> Result<(Vec<StoredSession>, Vec<SessionId>), StoreError> {
        let key = user_key(user);
        let key = &key;
        let ids: Vec<String> = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("SMEMBERS").arg(key).query_async(&mut c).await
            })
            .await?;
        let ids = ids
            .iter()
            .map(|id| SessionId::parse(id).map_err(|_| corrupt("session id")))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut pipeline = redis::pipe();
        for id in &ids {
            pipeline.cmd("HGETALL").arg(session_key(id));
        }
        let pipeline = &pipeline;
        let hashes: Vec<HashMap<String, String>> = self
            .run(Retry::Idempotent, |mut c| async move {
                pipeline.query_async(&mut c).await
            })
            .await?;
        let mut found = Vec::new();
        let mut gone = Vec::new();
        for (id, fields) in ids.into_iter().zip(hashes) {
            match StoredSession::parse(id, fields)? {
                Some(session) if session.user_id == user => found.push(session),
                Some(_) => {}
                None => gone.push(id),
            }
        }
        Ok((found, gone))
    }

    async fn end(
        &self,
        user: UserId,
        sessions: &[Ending],
        reason: EndReason,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // The log first: once an entry has committed, every instance and verifier
        // refuses the session, whatever happens to Redis next. If an append fails,
        // the sessions already logged are still deleted before the error is
        // returned, so none is left both revoked and in Redis by this call.
        let mut logged = Vec::with_capacity(sessions.len());
        let mut failure = None;
        for session in sessions {
            match self
                .log
                .append_revocation(
                    Revoked::Session(session.id),
                    Some(user),
                    reason,
                    at,
                    // Kept past the session by the longest access-token lifetime, as
                    // the database's own backends do: a token exchanged from the
                    // session may outlive it by that much.
                    session
                        .expires_at
                        .saturating_add(tessera_core::MAX_ACCESS_TTL),
                )
                .await
            {
                Ok(_) => logged.push(session.id),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        self.delete_sessions(user, &logged).await?;
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, session: NewSession) -> Result<(), CreateSessionError> {
        let user = session.user_id;
        if self.accounts.user(user).await?.is_none_or(|u| u.disabled) {
            return Err(CreateSessionError::UserDisabled);
        }
        let id = session.id;
        let mut invocation = CREATE.prepare_invoke();
        invocation
            .key(session_key(&id))
            .key(user_key(user))
            .key(BY_SEEN)
            .key(BY_EXPIRY)
            .arg(id.as_str())
            .arg(expiry_member(&id, user))
            .arg(session.created_at.as_millis())
            .arg(session.expires_at.as_millis())
            .arg("user_id")
            .arg(user.to_string())
            .arg("secret_hash")
            .arg(hex(&session.secret_hash))
            .arg("csrf_token")
            .arg(session.csrf_token.as_str())
            .arg("created_at")
            .arg(session.created_at.as_millis())
            .arg("last_seen_at")
            .arg(session.created_at.as_millis())
            .arg("expires_at")
            .arg(session.expires_at.as_millis())
            .arg("amr")
            .arg(session.methods.to_stored());
        if let Some(address) = &session.client_address {
            invocation.arg("client_address").arg(address);
        }
        if let Some(agent) = &session.user_agent {
            invocation.arg("user_agent").arg(agent);
        }
        let invocation = &invocation;
        // Not retried on a dropped connection: a second run would find the first's
        // session and report the id as taken.
        let created: i64 = self
            .run(Retry::Once, |mut c| async move {
                invocation.invoke_async(&mut c).await
            })
            .await?;
        if created == 0 {
            return Err(StoreError::Conflict("a session with this id exists".into()).into());
        }
        // The user is read again now that the session is in Redis. Disabling a user
        // commits `disabled` in the database first and then ends their sessions
        // (`end_sessions_of_user`, which reads the user's set here). Either that
        // disabling committed before this read, and this read sees it and the
        // session is deleted; or it commits after this read, so its ending of the
        // sessions runs after the session was written, finds it and ends it. No
        // order lets a disabled user keep a session.
        let still_enabled = match self.accounts.user(user).await {
            Ok(found) => found.is_some_and(|u| !u.disabled),
            Err(error) => {
                // Unknown: nothing may be left behind by a call that fails.
                let _ = self.delete_sessions(user, &[id]).await;
                return Err(error.into());
            }
        };
        if !still_enabled {
            self.delete_sessions(user, &[id]).await?;
            return Err(CreateSessionError::UserDisabled);
        }
        Ok(())
    }

    async fn session(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
        let key = session_key(id);
        let key = &key;
        let fields: HashMap<String, String> = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut c).await
            })
            .await?;
        let Some(stored) = StoredSession::parse(*id, fields)? else {
            return Ok(None);
        };
        // One database read per cache miss: the server keeps sessions in memory.
        match self.accounts.user(stored.user_id).await? {
            Some(user) => stored.with_user(user).map(Some),
            None => Ok(None),
        }
    }

    async fn sessions_of_user(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let (stored, _) = self.stored_sessions_of(user).await?;
        if stored.is_empty() {
            return Ok(Vec::new());
        }
        let Some(account) = self.accounts.user(user).await? else {
            return Ok(Vec::new());
        };
        let mut sessions = stored
            .iter()
            .map(|s| s.with_user(account.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        Ok(sessions)
    }

    async fn touch_sessions(&self, seen: &[(SessionId, Timestamp)]) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut invocation = TOUCH.prepare_invoke();
        invocation.key(BY_SEEN);
        for (id, at) in seen {
            invocation.arg(id.as_str()).arg(at.as_millis());
        }
        let invocation = &invocation;
        self.run(Retry::Idempotent, |mut c| async move {
            invocation.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(drop)
    }

    async fn end_session(
        &self,
        user: UserId,
        id: &SessionId,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = session_key(id);
        let key = &key;
        let (owner, expires_at): (Option<String>, Option<String>) = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("user_id")
                    .arg("expires_at")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        if owner.as_deref().and_then(UserId::parse) != Some(user) {
            return Ok(false);
        }
        let ending = Ending {
            id: *id,
            expires_at: expires_at
                .as_deref()
                .and_then(crate::parse_millis)
                .ok_or_else(|| corrupt("session expires_at"))?,
        };
        self.end(user, &[ending], reason, at).await?;
        Ok(true)
    }

    async fn end_sessions_of_user(
        &self,
        user: UserId,
        except: Option<&SessionId>,
        reason: EndReason,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        let (stored, gone) = self.stored_sessions_of(user).await?;
        let mut ending = stored
            .iter()
            .filter(|s| Some(&s.id) != except)
            .map(|s| {
                let created_at = s.record.millis("created_at")?;
                let ending = Ending {
                    id: s.id,
                    expires_at: s.record.millis("expires_at")?,
                };
                Ok((created_at, ending))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Oldest first, as the database backends log them.
        ending.sort_by(|(a, x), (b, y)| (a, x.id.as_str()).cmp(&(b, y.id.as_str())));
        let ending: Vec<Ending> = ending.into_iter().map(|(_, e)| e).collect();
        self.end(user, &ending, reason, at).await?;
        // Set members whose hash Redis has expired: tidied on the way.
        self.delete_sessions(user, &gone).await?;
        Ok(ending.into_iter().map(|e| e.id).collect())
    }

    async fn purge_expired(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        // Opaque tokens need nothing: Redis expires them. The log is the database's
        // (a `StoreSet` purges it through `also_purge`).
        let mut deleted = 0;
        loop {
            let (batch, expired, idle): (u64, usize, usize) = self
                .run(Retry::Idempotent, |mut c| async move {
                    PURGE
                        .key(BY_SEEN)
                        .key(BY_EXPIRY)
                        .arg(now.as_millis())
                        .arg(idle_cutoff.as_millis())
                        .arg(PURGE_BATCH)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            deleted += batch;
            if expired < PURGE_BATCH && idle < PURGE_BATCH {
                return Ok(deleted);
            }
        }
    }

    async fn count_live_sessions(
        &self,
        now: Timestamp,
        idle_cutoff: Timestamp,
    ) -> Result<u64, StoreError> {
        let count: i64 = self
            .run(Retry::Idempotent, |mut c| async move {
                COUNT_LIVE
                    .key(BY_SEEN)
                    .key(BY_EXPIRY)
                    .arg(now.as_millis())
                    .arg(idle_cutoff.as_millis())
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
