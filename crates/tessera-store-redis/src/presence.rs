//! `PresenceStore` on Redis: who has been active since when, counted in O(log n).
//!
//! Each sighting raises three scores, never lowers them: the session's in
//! `presence:seen`, the session's in its user's own sorted set, and the user's in
//! `presence:users` (the latest of their sessions). Then "online since t" is one
//! `ZCOUNT` on each of the two global sets. Removing a session (it ended, or its
//! sighting is old) recomputes its user's score from the user's set: its highest
//! remaining score, or no entry at all.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use tessera_core::{SessionId, Timestamp};
use tessera_store::{Online, PRESENCE_RESOLUTION, PresenceStore, Seen, StoreError};

use crate::{RedisStore, Retry};

/// How long an ended session's tombstone lasts: a sighting queued before the end
/// and written after it (by any instance) arrives well within this.
pub const FORGOTTEN_FOR: Duration = Duration::from_secs(24 * 3600);

const SEEN: &str = "tessera:presence:seen";
const USERS: &str = "tessera:presence:users";
const OWNER: &str = "tessera:presence:owner";
/// Sessions one purge script removes before it lets other commands run.
const PURGE_BATCH: usize = 1000;

/// Removes a session from every presence key (KEYS: seen, users, owner), and
/// returns 1 if it was there.
const REMOVE: &str = r"
local function remove(sid)
  local user = redis.call('HGET', KEYS[3], sid)
  local removed = redis.call('ZREM', KEYS[1], sid)
  if user then
    redis.call('HDEL', KEYS[3], sid)
    local own = 'tessera:presence:user:' .. user
    redis.call('ZREM', own, sid)
    local latest = redis.call('ZRANGE', own, 0, 0, 'REV', 'WITHSCORES')
    if latest[2] then
      redis.call('ZADD', KEYS[2], latest[2], user)
    else
      redis.call('ZREM', KEYS[2], user)
    end
  end
  return removed
end
";

/// KEYS: seen, users, owner. ARGV: the resolution in milliseconds, then triples of
/// session id, user id, time. Returns how many sightings were written: only those
/// of a session not seen within the resolution (see `PRESENCE_RESOLUTION`).
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local resolution = tonumber(ARGV[1])
local written = 0
for i = 2, #ARGV, 3 do
  local sid, user, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local stored = redis.call('ZSCORE', KEYS[1], sid)
  if redis.call('EXISTS', 'tessera:presence:ended:' .. sid) == 0
    and (not stored or tonumber(at) >= tonumber(stored) + resolution) then
    redis.call('ZADD', KEYS[1], 'GT', at, sid)
    redis.call('HSETNX', KEYS[3], sid, user)
    redis.call('ZADD', 'tessera:presence:user:' .. user, 'GT', at, sid)
    redis.call('ZADD', KEYS[2], 'GT', at, user)
    written = written + 1
  end
end
return written
",
    )
});

/// KEYS: seen, users, owner. ARGV: the tombstone's lifetime in seconds, then
/// session ids.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{REMOVE}
for i = 2, #ARGV do
  redis.call('SET', 'tessera:presence:ended:' .. ARGV[i], '1', 'EX', ARGV[1])
  remove(ARGV[i])
end
return 0
"
    ))
});

/// KEYS: seen, users, owner. ARGV: before, batch size. Removes up to a batch of
/// sessions last seen before `before`; returns how many.
static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{REMOVE}
local old = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[2])
for _, sid in ipairs(old) do
  remove(sid)
end
return #old
"
    ))
});

#[async_trait]
impl PresenceStore for RedisStore {
    async fn record_presence(&self, seen: &[Seen]) -> Result<u64, StoreError> {
        if seen.is_empty() {
            return Ok(0);
        }
        let mut invocation = RECORD.prepare_invoke();
        invocation.key(SEEN).key(USERS).key(OWNER);
        invocation.arg(u64::try_from(PRESENCE_RESOLUTION.as_millis()).unwrap_or(u64::MAX));
        for s in seen {
            invocation
                .arg(s.sid.as_str())
                .arg(s.user.to_string())
                .arg(s.at.as_millis());
        }
        let invocation = &invocation;
        self.run(Retry::Idempotent, |mut c| async move {
            invocation.invoke_async::<u64>(&mut c).await
        })
        .await
    }

    async fn online_since(&self, since: Timestamp) -> Result<Online, StoreError> {
        let since = since.as_millis();
        let (sessions, users): (u64, u64) = self
            .run(Retry::Idempotent, |mut c| async move {
                redis::pipe()
                    .atomic()
                    .cmd("ZCOUNT")
                    .arg(SEEN)
                    .arg(since)
                    .arg("+inf")
                    .cmd("ZCOUNT")
                    .arg(USERS)
                    .arg(since)
                    .arg("+inf")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(Online { users, sessions })
    }

    async fn purge_presence(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let batch: u64 = self
                .run(Retry::Idempotent, |mut c| async move {
                    PURGE
                        .key(SEEN)
                        .key(USERS)
                        .key(OWNER)
                        .arg(before.as_millis())
                        .arg(PURGE_BATCH)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            purged += batch;
            if batch < PURGE_BATCH as u64 {
                return Ok(purged);
            }
        }
    }

    async fn forget_presence(&self, sids: &[SessionId]) -> Result<(), StoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        let mut invocation = FORGET.prepare_invoke();
        invocation
            .key(SEEN)
            .key(USERS)
            .key(OWNER)
            .arg(FORGOTTEN_FOR.as_secs());
        for sid in sids {
            invocation.arg(sid.as_str());
        }
        let invocation = &invocation;
        self.run(Retry::Idempotent, |mut c| async move {
            invocation.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(drop)
    }
}
