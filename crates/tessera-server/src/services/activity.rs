//! Sightings reported by resource services: which sessions' tokens they accepted,
//! so that "who is online" counts users who only talk to APIs. Only what tessera
//! can confirm counts: a sighting of a session that is not live, or not the
//! reported user's, is dropped (and counted as such), and reports are
//! rate-limited per reporting client. A report can only make a session count as
//! online; it cannot revive an ended one (presence keeps tombstones).

use std::sync::Arc;

use tessera_core::{SessionId, Timestamp, UserId};
use tessera_store::{RefreshStore, StoreError};

use crate::services::presence::Presence;
use crate::services::sessions::SessionService;
use crate::services::throttle::{Throttle, Throttled};

pub struct Activity {
    sessions: Arc<SessionService>,
    refresh: Arc<dyn RefreshStore>,
    presence: Arc<Presence>,
    throttle: Arc<Throttle>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("too many reports")]
    Throttled(Throttled),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Activity {
    pub fn new(
        sessions: Arc<SessionService>,
        refresh: Arc<dyn RefreshStore>,
        presence: Arc<Presence>,
        throttle: Arc<Throttle>,
    ) -> Self {
        Self {
            sessions,
            refresh,
            presence,
            throttle,
        }
    }

    /// Records what `reporter` (a client id) saw: each session with the user its
    /// token named.
    pub async fn report(
        &self,
        reporter: &str,
        seen: &[(SessionId, UserId)],
    ) -> Result<(), ReportError> {
        self.throttle
            .activity_report(reporter)
            .await
            .map_err(ReportError::Throttled)?;
        let now = Timestamp::now();
        let (mut counted, mut dropped) = (0u64, 0u64);
        for (sid, user) in seen {
            // Dropped, not an error: a session may well have ended since the
            // verifier saw its token.
            if self.is_live_session_of(sid, *user, now).await? {
                self.presence.observe(*sid, *user, now);
                counted += 1;
            } else {
                dropped += 1;
            }
        }
        metrics::counter!("tessera_activity_sightings_total", "outcome" => "counted")
            .increment(counted);
        metrics::counter!("tessera_activity_sightings_total", "outcome" => "dropped")
            .increment(dropped);
        Ok(())
    }

    /// Whether `sid` is a live browser session or refresh family of `user`.
    async fn is_live_session_of(
        &self,
        sid: &SessionId,
        user: UserId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if let Some(session) = self.sessions.live(sid).await? {
            return Ok(session.user().id == user);
        }
        Ok(self
            .refresh
            .family(sid)
            .await?
            .is_some_and(|f| f.user.id == user && !f.user.disabled && f.expires_at > now))
    }
}
