//! The audit log: every security-relevant event, recorded in the store with its
//! time, actor, subject, address and outcome, and written as a structured log line
//! (target `tessera::audit`). The services that do a thing record it; handlers
//! never do.
//!
//! Recording is part of the action, after it took effect: the answer waits for the
//! event to be committed, so a response the caller saw has its event in the store.
//! Should the store refuse the event, the action stands (it happened) and the
//! failure is logged at `error` with the event, so the log line still carries it.
//! Nothing secret is ever recorded: `NewEvent` has no field for a password, token,
//! code or cookie, and the callers put none in `detail`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::{Timestamp, UserId};
use tessera_store::{
    Actor, AuditStore, Event, EventCount, EventKind, NewEvent, Online, OnlinePeak, Outcome,
    StoreError, User,
};

/// What a read of the log asks for: parsed values only, so the admin routes build
/// it as they parse a request.
pub use tessera_store::EventQuery;

/// How long events are kept when configuration does not say.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub struct Audit {
    store: Arc<dyn AuditStore>,
    /// `audit.stored`: whether events go to the store, or to the log alone.
    stored: bool,
}

/// Who is acting, and from where: an admin over HTTP, or the operator at the
/// command line (no address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    pub address: Option<IpAddr>,
}

impl Caller {
    /// Someone at the host's command line.
    pub const OPERATOR: Caller = Caller {
        actor: Actor::Operator,
        address: None,
    };

    /// A signed-in user, acting from `address`.
    pub fn user(id: UserId, address: IpAddr) -> Caller {
        Caller {
            actor: Actor::User(id),
            address: Some(address),
        }
    }

    /// `kind`, done by this caller.
    pub fn event(&self, kind: EventKind) -> Described {
        event(kind, self.actor).address(self.address)
    }
}

/// An event being described: what happened and by whom, then what it concerns.
#[must_use = "an event is recorded by `Audit::record`"]
pub struct Described(NewEvent);

impl Described {
    pub fn user(mut self, user: UserId) -> Self {
        self.0.user = Some(user);
        self
    }

    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.0.username = Some(username.into());
        self
    }

    /// What else it concerns: `kind` is `client`, `key`, `session`.
    pub fn target(mut self, kind: &str, id: impl std::fmt::Display) -> Self {
        self.0.target = Some(format!("{kind}:{id}"));
        self
    }

    pub fn address(mut self, address: Option<IpAddr>) -> Self {
        self.0.address = address;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    pub fn failed(mut self) -> Self {
        self.0.outcome = Outcome::Failure;
        self
    }
}

/// `kind`, done by `user` to their own account from `address`.
pub fn by_user(kind: EventKind, user: &User, address: IpAddr) -> Described {
    event(kind, Actor::User(user.id))
        .user(user.id)
        .username(user.username.as_str())
        .address(Some(address))
}

/// `kind`, done by `actor`, now, successfully unless [`Described::failed`].
pub fn event(kind: EventKind, actor: Actor) -> Described {
    Described(NewEvent {
        at: Timestamp::now(),
        kind,
        outcome: Outcome::Success,
        actor,
        user: None,
        username: None,
        target: None,
        address: None,
        detail: None,
    })
}

impl Audit {
    pub fn new(store: Arc<dyn AuditStore>, stored: bool) -> Self {
        Self { store, stored }
    }

    /// Records the event and writes its log line.
    pub async fn record(&self, described: Described) {
        let event = described.0;
        log_line(&event);
        metrics::counter!(
            "tessera_audit_events_total",
            "kind" => event.kind.as_str(),
            "outcome" => event.outcome.as_str()
        )
        .increment(1);
        if !self.stored {
            return;
        }
        if let Err(error) = self.store.record_events(std::slice::from_ref(&event)).await {
            tracing::error!(
                target: "tessera::audit",
                %error,
                kind = event.kind.as_str(),
                "the audit event above could not be stored"
            );
        }
    }

    /// Events `query` matches, newest first.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        self.store.events(query).await
    }

    /// Events recorded after `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.store.events_after(after, limit).await
    }

    /// Events of `kind` since `since`, by outcome, in buckets of `bucket` ms.
    pub async fn count_events(
        &self,
        kind: EventKind,
        since: Timestamp,
        bucket: i64,
    ) -> Result<Vec<EventCount>, StoreError> {
        self.store.count_events(kind, since, bucket).await
    }

    /// Keeps `online` as the hour's peak if it is the most seen in it so far.
    pub async fn record_online_peak(
        &self,
        hour: Timestamp,
        online: Online,
    ) -> Result<(), StoreError> {
        self.store.record_online_peak(hour, online).await
    }

    /// The hourly online peaks since `since`, oldest first.
    pub async fn online_peaks(&self, since: Timestamp) -> Result<Vec<OnlinePeak>, StoreError> {
        self.store.online_peaks(since).await
    }

    /// Forgets, once an hour, the events older than `retention`.
    pub async fn purge(self: Arc<Self>, retention: Duration) {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            let before = Timestamp::now().saturating_sub(retention);
            match self.store.purge_events(before).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "old audit events purged"),
                Err(error) => tracing::warn!(%error, "cannot purge old audit events"),
            }
        }
    }
}

/// The event as a structured log line, at `info` (a failure at `warn`).
fn log_line(event: &NewEvent) {
    let actor = match event.actor.id() {
        Some(id) => format!("{}:{id}", event.actor.kind()),
        None => event.actor.kind().to_owned(),
    };
    let user = event.user.map(|u| u.to_string());
    let address = event.address.map(|a| a.to_string());
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                target: "tessera::audit",
                kind = event.kind.as_str(),
                outcome = event.outcome.as_str(),
                actor,
                user = user.as_deref(),
                username = event.username.as_deref(),
                event_target = event.target.as_deref(),
                address = address.as_deref(),
                detail = event.detail.as_deref(),
                "audit event"
            )
        };
    }
    match event.outcome {
        Outcome::Success => line!(info),
        Outcome::Failure => line!(warn),
    }
}
