//! Login throttling per account and per client address (GCRA, via `governor`).
//!
//! Every attempt counts, successful or not, and is counted before any password work,
//! so a flood of guesses costs the server almost nothing. Throttled attempts answer
//! 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tessera_core::Username;

use crate::config::ThrottleConfig;

pub struct Throttle {
    accounts: DefaultKeyedRateLimiter<Username>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

/// How long to wait before the next attempt may succeed.
#[derive(Debug)]
pub struct Throttled(pub Duration);

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl Throttle {
    pub fn new(config: &ThrottleConfig) -> Self {
        Self {
            accounts: RateLimiter::keyed(quota(config.account_per_minute, config.account_burst)),
            addresses: RateLimiter::keyed(quota(config.address_per_minute, config.address_burst)),
            clock: DefaultClock::default(),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), Throttled> {
        limiter
            .check_key(key)
            .map_err(|not_until| Throttled(not_until.wait_time_from(self.clock.now())))
    }

    pub fn address(&self, address: IpAddr) -> Result<(), Throttled> {
        self.check(&self.addresses, &address)
    }

    pub fn login(&self, account: &Username, address: IpAddr) -> Result<(), Throttled> {
        self.address(address)?;
        self.check(&self.accounts, account)
    }

    /// Forgets keys whose budget has fully refilled; run now and then so the maps
    /// stay as small as the set of recent attempts.
    pub fn forget_idle_keys(&self) {
        self.accounts.retain_recent();
        self.addresses.retain_recent();
        self.accounts.shrink_to_fit();
        self.addresses.shrink_to_fit();
    }
}
