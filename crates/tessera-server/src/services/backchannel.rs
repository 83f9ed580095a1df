//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a browser
//! session ends, for whatever reason, every client that got tokens from it and
//! registered a `backchannel_logout_uri` is sent a logout token.
//!
//! Every way a session ends (logout, RP-initiated logout, kick, disable, deletion,
//! a refresh token reused) already appends to the revocation log, so this follows
//! the log rather than each of those paths: from the position kept in the store it
//! first ends the refresh families exchanged from each ended session (the code
//! flow's, which live only as long as the sign-in; logged, so their access tokens
//! end everywhere too), then queues a logout per client and session (`BackchannelStore::queue_logouts`, once
//! however many instances read the same entries), then delivers what is due.
//! Deliveries are claimed with a lease, so one instance sends each; a failure is
//! retried with exponential back-off until `tokens.backchannel_retry_for` has
//! passed since the session ended. The queue is in the database: a restart, or a
//! client down for a while, loses nothing.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{SessionId, Timestamp, UserId};
use tessera_store::{
    BackchannelStore, LogoutDelivery, RefreshStore, RevocationLog, Revoked, StoreError,
};

use crate::services::clients::Clients;
use crate::services::id_tokens;
use crate::services::tokens::TokenIssuer;

/// How often the log is read and the queue looked at.
const TICK: Duration = Duration::from_millis(500);
/// Log entries read at a time.
const PAGE: u32 = 1000;
/// Deliveries taken at a time, sent concurrently.
const BATCH: u32 = 32;
/// How long a claimed delivery is this instance's: well over the request timeout.
const LEASE: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct Backchannel {
    store: Arc<dyn BackchannelStore>,
    refresh: Arc<dyn RefreshStore>,
    log: Arc<dyn RevocationLog>,
    clients: Clients,
    tokens: Arc<TokenIssuer>,
    http: reqwest::Client,
    retry_for: Duration,
}

/// What came of one attempt.
enum Outcome {
    Delivered,
    /// Not now; `why` is logged.
    Failed(String),
    /// Nobody to deliver to any more (the client was removed or its URI dropped).
    Moot,
}

impl Backchannel {
    pub fn new(
        store: Arc<dyn BackchannelStore>,
        refresh: Arc<dyn RefreshStore>,
        log: Arc<dyn RevocationLog>,
        clients: Clients,
        tokens: Arc<TokenIssuer>,
        retry_for: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            // A logout endpoint answers; it does not send tessera elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            refresh,
            log,
            clients,
            tokens,
            http,
            retry_for,
        })
    }

    /// Runs for the life of the process.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            if let Err(error) = self.queue().await {
                tracing::warn!(%error, "back-channel logout: cannot read the revocation log");
            }
            if let Err(error) = self.deliver_due().await {
                tracing::warn!(%error, "back-channel logout: cannot reach the queue");
            }
            rounds += 1;
            if rounds.is_multiple_of(20)
                && let Ok(pending) = self.store.pending_logouts().await
            {
                metrics::gauge!("tessera_backchannel_logouts_pending").set(pending as f64);
            }
        }
    }

    /// Queues logouts for the sessions and users the log ended since the position.
    async fn queue(&self) -> Result<(), StoreError> {
        loop {
            let position = self.store.logout_position().await?;
            let entries = self.log.revocations_after(position, PAGE).await?;
            let Some(last) = entries.last().map(|e| e.sequence) else {
                return Ok(());
            };
            let mut ended: Vec<SessionId> = Vec::new();
            let mut users: Vec<UserId> = Vec::new();
            for entry in &entries {
                match &entry.revoked {
                    Revoked::Session(id) => {
                        // Before the position moves past the entry: a crash here
                        // repeats it, and a repeat finds nothing left to revoke.
                        self.refresh
                            .revoke_families_of_session(id, entry.reason, Timestamp::now())
                            .await?;
                        ended.push(*id);
                    }
                    Revoked::User(id) => users.push(*id),
                    Revoked::Token(_) | Revoked::Key(_) | Revoked::Client(_) => {}
                }
            }
            let queued = self
                .store
                .queue_logouts(&ended, &users, last, Timestamp::now())
                .await?;
            if queued > 0 {
                metrics::counter!("tessera_backchannel_logouts_queued_total").increment(queued);
            }
            if entries.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    async fn deliver_due(&self) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let due = self
            .store
            .claim_logouts(now, now.saturating_add(LEASE), BATCH)
            .await?;
        let attempts = due.iter().map(|delivery| async move {
            let outcome = self.attempt(delivery).await;
            self.settle(delivery, outcome).await
        });
        for result in futures::future::join_all(attempts).await {
            result?;
        }
        Ok(())
    }

    async fn attempt(&self, delivery: &LogoutDelivery) -> Outcome {
        let client = match self.clients.get(&delivery.client_id).await {
            Ok(Some(client)) => client,
            Ok(None) => return Outcome::Moot,
            Err(error) => return Outcome::Failed(format!("cannot read the client: {error}")),
        };
        let Some(uri) = client.code_flow.backchannel_logout_uri.clone() else {
            return Outcome::Moot;
        };
        let token =
            match id_tokens::logout_token(&self.tokens, &client, &delivery.user, &delivery.session)
            {
                Ok(token) => token,
                Err(error) => {
                    return Outcome::Failed(format!("cannot sign the logout token: {error}"));
                }
            };
        let sent = self
            .http
            .post(uri.as_str())
            .form(&[("logout_token", token.as_str())])
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Outcome::Delivered,
            Ok(response) => Outcome::Failed(format!("it answered {}", response.status())),
            Err(error) => Outcome::Failed(error.to_string()),
        }
    }

    async fn settle(&self, delivery: &LogoutDelivery, outcome: Outcome) -> Result<(), StoreError> {
        let outcome_name = match outcome {
            Outcome::Delivered | Outcome::Moot => {
                self.store.finish_logout(delivery.id).await?;
                if matches!(outcome, Outcome::Delivered) {
                    "delivered"
                } else {
                    "moot"
                }
            }
            Outcome::Failed(why) => {
                let now = Timestamp::now();
                let waited = Duration::from_millis(
                    u64::try_from(now.as_millis() - delivery.queued_at.as_millis())
                        .unwrap_or_default(),
                );
                if waited >= self.retry_for {
                    tracing::warn!(
                        client = %delivery.client_id,
                        session = %delivery.session,
                        attempts = delivery.attempts,
                        reason = %why,
                        "back-channel logout abandoned after {:?}",
                        self.retry_for
                    );
                    self.store.finish_logout(delivery.id).await?;
                    "abandoned"
                } else {
                    tracing::info!(
                        client = %delivery.client_id,
                        attempts = delivery.attempts,
                        reason = %why,
                        "back-channel logout failed; it will be retried"
                    );
                    let next = now.saturating_add(backoff(delivery.attempts));
                    self.store.retry_logout(delivery.id, next).await?;
                    "failed"
                }
            }
        };
        metrics::counter!("tessera_backchannel_logouts_total", "outcome" => outcome_name)
            .increment(1);
        Ok(())
    }
}

/// 1 s after the first failure, doubling, at most [`MAX_BACKOFF`].
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let waits: Vec<u64> = (1..=12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
