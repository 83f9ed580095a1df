//! How long an instance may trust what it cached after losing contact with a store.
//!
//! Sessions and the revocation set are cached in memory and kept exact by following
//! the revocation log. When a store stops answering, another instance may end a
//! session that this one cannot hear about; so past a bound
//! (`session.cache_staleness`) cached answers stop, and requests go to the store,
//! which fails with 503 until it is back. Two contacts are tracked: with the log
//! (marked by its followers once caught up) and with every store (pinged).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tessera_core::Timestamp;

pub struct Contact {
    /// When the store last answered (Unix milliseconds).
    last: AtomicI64,
    bound_millis: i64,
}

impl Contact {
    pub fn new(bound: Duration) -> Self {
        Self {
            last: AtomicI64::new(Timestamp::now().as_millis()),
            bound_millis: i64::try_from(bound.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// The store answered just now.
    pub fn heard(&self) {
        self.last
            .fetch_max(Timestamp::now().as_millis(), Ordering::Relaxed);
    }

    pub fn is_fresh(&self) -> bool {
        Timestamp::now().as_millis() - self.last.load(Ordering::Relaxed) <= self.bound_millis
    }
}
