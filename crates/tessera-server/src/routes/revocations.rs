//! `GET /v1/revocations`: the revocation log as Server-Sent Events, for verifiers.
//!
//! Each event carries its sequence as the SSE `id`, so a client that reconnects with
//! `Last-Event-ID` resumes exactly after the last event it saw; without it, the
//! stream starts with every revocation still in force. Entries leave the log only
//! once what they revoke has expired, so a resumed stream misses nothing that
//! matters. A `heartbeat` event with the current sequence comes as soon as the
//! stream has caught up and then every `tokens.feed_heartbeat`, so a verifier
//! knows when its view is complete and how fresh it is. The sequence is the log's
//! own, even to a client that resumed from further on: such a client followed
//! another log (before a restored backup, say) and must start over, which it can
//! only tell from a heartbeat below its position.
//!
//! A stream lives no longer than the token that opened it: it ends when the token
//! expires, is revoked, or its client is removed or loses the `revocations`
//! scope. `tessera-verify` then reconnects with a fresh token from where it was.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::HeaderMap;
use tessera_proto::feed::{
    HEARTBEAT_EVENT, Heartbeat, LAST_EVENT_ID, REVOCATION_EVENT, RevocationEntry,
};
use tessera_store::Revocation;
use tessera_verify::AccessClaims;

use crate::http::error::ApiError;
use crate::http::extract::BearerToken;
use crate::state::AppState;

/// The scope a token needs to read the feed.
pub const SCOPE: &str = tessera_proto::scope::REVOCATIONS;
const PAGE: u32 = 500;

pub async fn feed(
    State(state): State<AppState>,
    bearer: BearerToken,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    bearer.require_scope(SCOPE)?;
    let after = match headers.get(LAST_EVENT_ID) {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a sequence number"))?,
    };
    metrics::gauge!("tessera_revocation_feed_clients").increment(1.0);
    Ok(Sse::new(events(state, bearer.0, after)).into_response())
}

fn event_of(entry: &Revocation) -> Event {
    let data = RevocationEntry {
        at: entry.at.to_rfc3339(),
        expires_at: entry.expires_at.as_millis() / 1000,
        id: entry.revoked.target(),
        kind: entry.revoked.kind().to_owned(),
        reason: entry.reason.as_str().to_owned(),
        sequence: entry.sequence,
        user: entry.user.map(|user| user.to_string()),
    };
    Event::default()
        .id(entry.sequence.to_string())
        .event(REVOCATION_EVENT)
        .data(serde_json::to_string(&data).unwrap_or_default())
}

fn heartbeat_event(sequence: u64) -> Event {
    Event::default()
        .event(HEARTBEAT_EVENT)
        .data(serde_json::to_string(&Heartbeat { sequence }).unwrap_or_default())
}

struct Feed {
    state: AppState,
    /// The token the stream was opened with: the stream lives no longer than it.
    credential: AccessClaims,
    expires: std::pin::Pin<Box<tokio::time::Sleep>>,
    position: u64,
    latest: tokio::sync::watch::Receiver<u64>,
    heartbeat: tokio::time::Interval,
    pending: std::collections::VecDeque<Event>,
}

impl Feed {
    /// The log's sequence, for a heartbeat: the newest this process has applied,
    /// unless the stream is past it. Then either the stream read entries this
    /// process's follower has not reached yet (it polls; another instance may
    /// have appended them), or the client resumed from a position this log never
    /// reached. The store's counter tells the two apart.
    async fn log_sequence(&self) -> u64 {
        let latest = *self.latest.borrow();
        if self.position <= latest {
            return latest;
        }
        match self.state.revocation_log.latest_revocation().await {
            Ok(stored) => stored.max(latest),
            // Unknown: do not send the client into a needless start-over.
            Err(error) => {
                tracing::warn!(%error, "revocation feed cannot read the log's sequence");
                self.position
            }
        }
    }
}

impl Feed {
    /// Whether the token that opened the stream still holds: not revoked (its
    /// session, its user or its client cut off), and its client still exists and
    /// may still read the feed. Checked whenever the stream wakes, so a stream
    /// outlives its credential by at most one heartbeat.
    async fn credential_holds(&self) -> bool {
        // Unknown (the log unreadable) is not the credential's fault.
        if self
            .state
            .own_tokens
            .is_revoked(&self.credential)
            .await
            .unwrap_or(false)
        {
            return false;
        }
        let Some(client) = self
            .credential
            .client_id
            .as_deref()
            .and_then(tessera_core::ClientId::parse)
        else {
            return false;
        };
        match self.state.clients.get(&client).await {
            Ok(Some(client)) => client.scopes.contains(SCOPE),
            Ok(None) => false,
            // Unknown: the store's outage is not the credential's fault.
            Err(_) => true,
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        metrics::gauge!("tessera_revocation_feed_clients").decrement(1.0);
    }
}

fn events(
    state: AppState,
    credential: AccessClaims,
    after: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let latest = state.own_tokens.latest_revocation();
    let mut heartbeat = tokio::time::interval(state.feed_heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let now = tessera_core::Timestamp::now().as_millis();
    let left = u64::try_from(credential.exp.saturating_mul(1000).saturating_sub(now)).unwrap_or(0);
    let expires = Box::pin(tokio::time::sleep(Duration::from_millis(left)));
    let feed = Feed {
        state,
        credential,
        expires,
        position: after,
        latest,
        heartbeat,
        pending: std::collections::VecDeque::new(),
    };
    futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if let Some(event) = feed.pending.pop_front() {
                return Some((Ok(event), feed));
            }
            // Catch up from the store whenever the log is ahead of this stream.
            if *feed.latest.borrow() > feed.position {
                match feed
                    .state
                    .revocation_log
                    .revocations_after(feed.position, PAGE)
                    .await
                {
                    Ok(entries) if !entries.is_empty() => {
                        for entry in &entries {
                            feed.pending.push_back(event_of(entry));
                        }
                        feed.position = entries.last().map_or(feed.position, |e| e.sequence);
                        continue;
                    }
                    // Purged entries leave gaps: nothing left to send up to latest.
                    Ok(_) => feed.position = *feed.latest.borrow(),
                    Err(error) => {
                        tracing::warn!(%error, "revocation feed cannot read the log");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
            tokio::select! {
                () = &mut feed.expires => {
                    tracing::debug!("revocation feed: its token expired; ending the stream");
                    return None;
                }
                changed = feed.latest.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    // A new revocation may be this stream's own credential's.
                    if !feed.credential_holds().await {
                        return None;
                    }
                }
                _ = feed.heartbeat.tick() => {
                    if !feed.credential_holds().await {
                        return None;
                    }
                    let sequence = feed.log_sequence().await;
                    return Some((Ok(heartbeat_event(sequence)), feed));
                }
            }
        }
    })
}
