//! `POST /v1/activity`: resource services report the sessions whose tokens they
//! accepted, so that "who is online" counts users who only talk to APIs.
//!
//! `tessera-verify` sends these in batches (`report_activity`), at most once per
//! session per minute. It authenticates with the token it already holds for the
//! revocation feed: a service trusted to follow revocations is trusted to say what
//! it saw; `services::activity` keeps only what tessera can confirm.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;

use tessera_core::{SessionId, UserId};

use crate::http::error::ApiError;
use crate::http::extract::{BearerToken, Input};
use crate::services::activity::{Activity, ReportError};
use crate::services::feed::FEED_SCOPE;

/// The most sightings one report may carry (well within `limits.body_bytes`).
pub const MAX_SIGHTINGS: usize = 500;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Report {
    seen: Vec<Sighting>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Sighting {
    /// The token's `sid`: a browser session or a refresh-token family.
    sid: String,
    /// The token's `sub`: the user.
    sub: String,
}

pub async fn report(
    State(activity): State<Arc<Activity>>,
    bearer: BearerToken,
    Input(report): Input<Report>,
) -> Result<StatusCode, ApiError> {
    bearer.require_scope(FEED_SCOPE)?;
    let reporter = bearer.0.client_id.as_deref().unwrap_or(&bearer.0.sub);
    if report.seen.len() > MAX_SIGHTINGS {
        return Err(ApiError::bad_request(format!(
            "a report carries at most {MAX_SIGHTINGS} sightings; send several"
        )));
    }
    // All parsed before any is recorded: a bad report changes nothing.
    let mut seen = Vec::with_capacity(report.seen.len());
    for (index, sighting) in report.seen.iter().enumerate() {
        let sid = SessionId::parse(&sighting.sid)
            .map_err(|_| ApiError::bad_request(format!("seen[{index}].sid is not a session id")))?;
        let user = UserId::parse(&sighting.sub)
            .ok_or_else(|| ApiError::bad_request(format!("seen[{index}].sub is not a user id")))?;
        seen.push((sid, user));
    }
    activity
        .report(reporter, &seen)
        .await
        .map_err(|e| match e {
            ReportError::Throttled(refusal) => ApiError::from(refusal),
            ReportError::Store(e) => e.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
