//! `RateLimitStore` on Redis: GCRA in one script, on Redis's clock.
//!
//! Each key holds its theoretical arrival time (TAT), in microseconds of Redis's own
//! clock (`TIME`), so every instance judges attempts against the same clock whatever
//! their own clocks say. An attempt at `now` would move the TAT to
//! `max(TAT, now) + interval`; it is allowed if that is at most
//! `now + burst × interval`, and only then is the TAT stored, expiring when it falls
//! behind Redis's clock (an idle key then starts afresh, as a missing one does).

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use tessera_store::{RateLimitStore, StoreError};

use crate::{RedisStore, Retry};

/// The longest interval the script is given (a year): longer ones are capped, so
/// that the microsecond arithmetic stays exact in Lua's doubles.
const LONGEST_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);
/// The largest burst the script is given, for the same reason.
const LARGEST_BURST: u32 = 1_000_000;

/// KEYS: the key's TAT. ARGV: interval (µs), burst. Returns 0 if allowed, else the
/// wait in µs.
static ATTEMPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local next_tat = tat + interval
local allowed_at = next_tat - burst * interval
if now < allowed_at then
  return allowed_at - now
end
local ttl = math.ceil((next_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', ttl)
return 0
",
    )
});

#[async_trait]
impl RateLimitStore for RedisStore {
    async fn attempt(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let interval = interval.min(LONGEST_INTERVAL).as_micros().max(1);
        // A burst of 0 would refuse everything forever: one attempt is the least.
        let burst = burst.clamp(1, LARGEST_BURST);
        let key = format!("tessera:rate:{key}");
        let key = &key;
        // Counted once: an attempt whose answer was lost is not retried, so it is
        // never counted twice (it may have counted once).
        let wait: u64 = self
            .run(Retry::Once, |mut c| async move {
                ATTEMPT
                    .key(key)
                    .arg(interval.to_string())
                    .arg(burst)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok((wait > 0).then(|| Duration::from_micros(wait)))
    }
}
