//! Login throttling per account and per client address (GCRA).
//!
//! Every attempt counts, successful or not, and is counted before any password work,
//! so a flood of guesses costs the server almost nothing. Throttled attempts answer
//! 429 with `Retry-After`.
//!
//! With Redis configured the counters are shared (`RateLimitStore`), so an attacker
//! spreading guesses over instances gets no more than against one; else they live
//! in this process (`governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tessera_core::Username;
use tessera_store::{RateLimitStore, StoreError};

use crate::config::ThrottleConfig;

pub struct Throttle {
    accounts: DefaultKeyedRateLimiter<Username>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    /// Activity reports (`POST /v1/activity`) per reporting client.
    reports: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    shared: Option<Shared>,
}

/// Counters every instance shares, with each kind's interval and burst.
struct Shared {
    store: Arc<dyn RateLimitStore>,
    account: (Duration, u32),
    address: (Duration, u32),
}

/// Why an attempt may not go ahead.
#[derive(Debug)]
pub enum Throttled {
    /// Too many attempts: wait this long.
    Wait(Duration),
    /// The shared counters cannot be reached; attempts are refused (fail closed).
    Store(StoreError),
}

/// Activity reports per client: a sustained one a second, 20 at once.
const REPORTS_PER_MINUTE: u32 = 60;
const REPORTS_BURST: u32 = 20;

fn interval(per_minute: u32) -> Duration {
    Duration::from_secs(60) / per_minute.max(1)
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl Throttle {
    /// Counters in this process, or in `shared` for every instance.
    pub fn new(config: &ThrottleConfig, shared: Option<Arc<dyn RateLimitStore>>) -> Self {
        Self {
            accounts: RateLimiter::keyed(quota(config.account_per_minute, config.account_burst)),
            addresses: RateLimiter::keyed(quota(config.address_per_minute, config.address_burst)),
            reports: RateLimiter::keyed(quota(REPORTS_PER_MINUTE, REPORTS_BURST)),
            clock: DefaultClock::default(),
            shared: shared.map(|store| Shared {
                store,
                account: (interval(config.account_per_minute), config.account_burst),
                address: (interval(config.address_per_minute), config.address_burst),
            }),
        }
    }

    async fn shared_check(
        shared: &Shared,
        key: &str,
        (interval, burst): (Duration, u32),
    ) -> Result<(), Throttled> {
        match shared.store.attempt(key, interval, burst).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(Throttled::Wait(wait)),
            Err(error) => Err(Throttled::Store(error)),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), Throttled> {
        limiter
            .check_key(key)
            .map_err(|not_until| Throttled::Wait(not_until.wait_time_from(self.clock.now())))
    }

    pub async fn address(&self, address: IpAddr) -> Result<(), Throttled> {
        match &self.shared {
            Some(shared) => {
                Self::shared_check(shared, &format!("address:{address}"), shared.address).await
            }
            None => self.check(&self.addresses, &address),
        }
    }

    pub async fn login(&self, account: &Username, address: IpAddr) -> Result<(), Throttled> {
        self.address(address).await?;
        match &self.shared {
            Some(shared) => {
                Self::shared_check(shared, &format!("account:{account}"), shared.account).await
            }
            None => self.check(&self.accounts, account),
        }
    }

    /// An activity report from `client`. `tessera-verify` sends at most one batch
    /// per reporting interval, so the budget is generous for a real verifier and
    /// bounds what a misbehaving one can make tessera look up.
    pub async fn activity_report(&self, client: &str) -> Result<(), Throttled> {
        match &self.shared {
            Some(shared) => {
                Self::shared_check(
                    shared,
                    &format!("reports:{client}"),
                    (interval(REPORTS_PER_MINUTE), REPORTS_BURST),
                )
                .await
            }
            None => self.check(&self.reports, &client.to_owned()),
        }
    }

    /// Forgets keys whose budget has fully refilled; run now and then so the maps
    /// stay as small as the set of recent attempts.
    pub fn forget_idle_keys(&self) {
        self.accounts.retain_recent();
        self.addresses.retain_recent();
        self.reports.retain_recent();
        self.accounts.shrink_to_fit();
        self.addresses.shrink_to_fit();
    }
}
