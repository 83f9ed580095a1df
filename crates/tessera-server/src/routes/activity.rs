//! `POST /v1/activity`: resource services report the sessions whose tokens they
//! accepted, so that "who is online" counts users who only talk to APIs.
//!
//! `tessera-verify` sends these in batches (`report_activity`), at most once per
//! session per minute. It authenticates with the token it already holds for the
//! revocation feed: a service trusted to follow revocations is trusted to say what
//! it saw, but only what tessera can confirm counts: a sighting of a session that
//! is not live, or not the reported user's, is dropped (and counted as such), and
//! reports are rate-limited per client. A report can only make a session count as
//! online; it cannot revive an ended one (presence keeps tombstones).

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use tessera_core::{SessionId, Timestamp, UserId};

use crate::http::error::ApiError;
use crate::http::extract::{BearerToken, Input};
use crate::routes::login::throttled;
use crate::routes::revocations::SCOPE;
use crate::state::AppState;

/// The most sightings one report may carry (well within `limits.body_bytes`).
pub const MAX_SIGHTINGS: usize = 500;

#[derive(Deserialize)]
pub struct Report {
    seen: Vec<Sighting>,
}

#[derive(Deserialize)]
struct Sighting {
    /// The token's `sid`: a browser session or a refresh-token family.
    sid: String,
    /// The token's `sub`: the user.
    sub: String,
}

pub async fn report(
    State(state): State<AppState>,
    bearer: BearerToken,
    Input(report): Input<Report>,
) -> Result<StatusCode, ApiError> {
    bearer.require_scope(SCOPE)?;
    let reporter = bearer.0.client_id.as_deref().unwrap_or(&bearer.0.sub);
    state
        .throttle
        .activity_report(reporter)
        .await
        .map_err(throttled)?;
    if report.seen.len() > MAX_SIGHTINGS {
        return Err(ApiError::bad_request(format!(
            "a report carries at most {MAX_SIGHTINGS} sightings; send several"
        )));
    }
    // All parsed before any is recorded: a bad report changes nothing.
    let mut parsed = Vec::with_capacity(report.seen.len());
    for (index, sighting) in report.seen.iter().enumerate() {
        let sid = SessionId::parse(&sighting.sid)
            .map_err(|_| ApiError::bad_request(format!("seen[{index}].sid is not a session id")))?;
        let user = UserId::parse(&sighting.sub)
            .ok_or_else(|| ApiError::bad_request(format!("seen[{index}].sub is not a user id")))?;
        parsed.push((sid, user));
    }
    let now = Timestamp::now();
    let (mut counted, mut dropped) = (0u64, 0u64);
    for (sid, user) in parsed {
        // A report can only confirm what tessera knows: a live session (or refresh
        // family) of that very user. Anything else is dropped, not an error, since
        // a session may well have ended since the verifier saw its token.
        if is_live_session_of(&state, &sid, user, now).await? {
            state.presence.observe(sid, user, now);
            counted += 1;
        } else {
            dropped += 1;
        }
    }
    metrics::counter!("tessera_activity_sightings_total", "outcome" => "counted")
        .increment(counted);
    metrics::counter!("tessera_activity_sightings_total", "outcome" => "dropped")
        .increment(dropped);
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `sid` is a live browser session or refresh family of `user`.
async fn is_live_session_of(
    state: &AppState,
    sid: &SessionId,
    user: UserId,
    now: Timestamp,
) -> Result<bool, ApiError> {
    if let Some(session) = state.sessions.live(sid).await? {
        return Ok(session.user().id == user);
    }
    Ok(state
        .refresh_store
        .family(sid)
        .await?
        .is_some_and(|f| f.user.id == user && !f.user.disabled && f.expires_at > now))
}
