//! The revocation feed: the log from a position on, then heartbeats, for as long as
//! the credential that opened it holds. `routes::revocations` serves it as
//! Server-Sent Events.
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

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tessera_proto::feed::{Heartbeat, RevocationEntry};
use tessera_store::{Revocation, RevocationLog};
use tessera_verify::AccessClaims;

use crate::services::clients::Clients;
use crate::services::own_tokens::OwnTokens;

/// The scope a token needs to read the feed.
pub const FEED_SCOPE: &str = tessera_proto::scope::REVOCATIONS;
const PAGE: u32 = 500;

/// What the feed sends, in the wire vocabulary.
pub enum FeedItem {
    Revocation(RevocationEntry),
    /// The log's sequence: the stream has caught up to it.
    Heartbeat(Heartbeat),
    /// The last item of a stream whose instance is stopping: reconnect elsewhere.
    Reconnect,
}

fn entry_of(entry: Revocation) -> RevocationEntry {
    RevocationEntry {
        at: entry.at.to_rfc3339(),
        expires_at: entry.expires_at.as_millis() / 1000,
        id: entry.revoked.target(),
        kind: entry.revoked.kind().as_str().to_owned(),
        reason: entry.reason.as_str().to_owned(),
        sequence: entry.sequence,
        user: entry.user.map(|user| user.to_string()),
    }
}

pub struct RevocationFeed {
    log: Arc<dyn RevocationLog>,
    own_tokens: Arc<OwnTokens>,
    clients: Clients,
    heartbeat: Duration,
    /// Turns true when the process stops: every stream then ends at once with a
    /// `reconnect` event, rather than holding the shutdown for its whole grace.
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl RevocationFeed {
    pub fn new(
        log: Arc<dyn RevocationLog>,
        own_tokens: Arc<OwnTokens>,
        clients: Clients,
        heartbeat: Duration,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            log,
            own_tokens,
            clients,
            heartbeat,
            stopping,
        }
    }
}

struct Feed {
    service: Arc<RevocationFeed>,
    /// The token the stream was opened with: the stream lives no longer than it.
    credential: AccessClaims,
    expires: std::pin::Pin<Box<tokio::time::Sleep>>,
    position: u64,
    latest: tokio::sync::watch::Receiver<u64>,
    heartbeat: tokio::time::Interval,
    pending: std::collections::VecDeque<FeedItem>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The `reconnect` item went out: the stream ends.
    ended: bool,
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
        match self.service.log.latest_revocation().await {
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
            .service
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
        match self.service.clients.get(&client).await {
            Ok(Some(client)) => client.scopes.contains(FEED_SCOPE),
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

impl RevocationFeed {
    /// The feed from after `after`, for as long as `credential` holds.
    pub fn follow(
        self: &Arc<Self>,
        credential: AccessClaims,
        after: u64,
    ) -> impl Stream<Item = FeedItem> + use<> {
        events(self.clone(), credential, after)
    }
}

fn events(
    service: Arc<RevocationFeed>,
    credential: AccessClaims,
    after: u64,
) -> impl Stream<Item = FeedItem> {
    let latest = service.own_tokens.latest_revocation();
    let mut heartbeat = tokio::time::interval(service.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let now = tessera_core::Timestamp::now().as_millis();
    let left = u64::try_from(credential.exp.saturating_mul(1000).saturating_sub(now)).unwrap_or(0);
    let expires = Box::pin(tokio::time::sleep(Duration::from_millis(left)));
    let stopping = service.stopping.clone();
    let feed = Feed {
        service,
        credential,
        expires,
        position: after,
        latest,
        heartbeat,
        pending: std::collections::VecDeque::new(),
        stopping,
        ended: false,
    };
    futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if feed.ended {
                return None;
            }
            if *feed.stopping.borrow() {
                feed.ended = true;
                return Some((FeedItem::Reconnect, feed));
            }
            if let Some(event) = feed.pending.pop_front() {
                return Some((event, feed));
            }
            // Catch up from the store whenever the log is ahead of this stream.
            if *feed.latest.borrow() > feed.position {
                match feed
                    .service
                    .log
                    .revocations_after(feed.position, PAGE)
                    .await
                {
                    Ok(entries) if !entries.is_empty() => {
                        feed.position = entries.last().map_or(feed.position, |e| e.sequence);
                        feed.pending.extend(
                            entries
                                .into_iter()
                                .map(|e| FeedItem::Revocation(entry_of(e))),
                        );
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
                // The loop's head sends the `reconnect` item.
                changed = feed.stopping.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
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
                    return Some((FeedItem::Heartbeat(Heartbeat { sequence }), feed));
                }
            }
        }
    })
}
