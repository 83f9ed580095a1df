//! `GET /v1/revocations`: the revocation feed (`services::feed`) as Server-Sent
//! Events. Each event carries its sequence as the SSE `id`, so a client that
//! reconnects with `Last-Event-ID` resumes exactly after the last event it saw.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::HeaderMap;
use tessera_proto::feed::{HEARTBEAT_EVENT, LAST_EVENT_ID, RECONNECT_EVENT, REVOCATION_EVENT};

use crate::http::error::ApiError;
use crate::http::extract::BearerToken;
use crate::services::feed::{FEED_SCOPE, FeedItem, RevocationFeed};

pub async fn feed(
    State(feed): State<Arc<RevocationFeed>>,
    bearer: BearerToken,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    bearer.require_scope(FEED_SCOPE)?;
    let after = match headers.get(LAST_EVENT_ID) {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a sequence number"))?,
    };
    metrics::gauge!("tessera_revocation_feed_clients").increment(1.0);
    let events = feed
        .follow(bearer.0, after)
        .map(|item| Ok::<_, Infallible>(event_of(&item)));
    Ok(Sse::new(events).into_response())
}

fn event_of(item: &FeedItem) -> Event {
    match item {
        FeedItem::Revocation(entry) => Event::default()
            .id(entry.sequence.to_string())
            .event(REVOCATION_EVENT)
            .data(serde_json::to_string(entry).unwrap_or_default()),
        FeedItem::Heartbeat(heartbeat) => Event::default()
            .event(HEARTBEAT_EVENT)
            .data(serde_json::to_string(heartbeat).unwrap_or_default()),
        // `retry: 0`: an EventSource in a browser reconnects at once too.
        FeedItem::Reconnect => Event::default()
            .event(RECONNECT_EVENT)
            .retry(std::time::Duration::ZERO)
            .data(""),
    }
}
