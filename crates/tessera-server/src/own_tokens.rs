//! Verifying the access tokens this issuer signed (for introspection and
//! revocation), with the same `tessera-verify` code path resource services use.
//! Keys follow the key ring; revocations follow the revocation log.

use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use tessera_store::{RevocationLog, Revoked};
use tessera_verify::{
    AccessClaims, Algorithm, Policy, RevocationEvent, Verifier, VerifyError, VerifyingKeys,
};

use crate::keyring::KeyRing;

/// How often the revocation log is polled.
const POLL: Duration = Duration::from_millis(100);

pub struct OwnTokens {
    verifier: Verifier,
    keys: Arc<KeyRing>,
    hs256: Option<Vec<u8>>,
    /// The JWKS ETag the verifier's keys were built from. Read on every
    /// verification, so lock-free; two threads rebuilding at once is harmless.
    loaded: ArcSwap<String>,
    /// The newest revocation sequence seen; the revocation feed waits on it.
    latest: tokio::sync::watch::Sender<u64>,
    /// Past its bound, the revocation set may miss revocations: refuse to answer.
    contact: Arc<crate::contact::Contact>,
}

impl OwnTokens {
    pub fn new(
        issuer: &str,
        keys: Arc<KeyRing>,
        hs256: Option<Vec<u8>>,
        contact: Arc<crate::contact::Contact>,
    ) -> Self {
        let mut policy = Policy::new(issuer, "");
        policy.any_audience = true;
        policy.algorithms.push(Algorithm::HS256);
        let own = Self {
            verifier: Verifier::new(policy, VerifyingKeys::default()),
            keys,
            hs256,
            loaded: ArcSwap::from_pointee(String::new()),
            latest: tokio::sync::watch::Sender::new(0),
            contact,
        };
        own.sync_keys();
        own
    }

    /// Rebuilds the verifying keys when the published set changed.
    fn sync_keys(&self) {
        let set = self.keys.current();
        if **self.loaded.load() == set.jwks_etag {
            return;
        }
        let Ok(jwks) = serde_json::from_slice(&set.jwks) else {
            return;
        };
        let mut keys = VerifyingKeys::from_jwks(&jwks, false);
        if let Some(secret) = &self.hs256 {
            keys = keys.with_hs256_secret(secret);
        }
        self.verifier.replace_keys(keys);
        self.loaded.store(Arc::new(set.jwks_etag.clone()));
    }

    /// A live, unrevoked token of this issuer; `Stale` while this instance is out of
    /// touch with the revocation log.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.sync_keys();
        let claims = self.verifier.verify(token)?;
        if !self.contact.is_fresh() {
            return Err(VerifyError::Stale);
        }
        Ok(claims)
    }

    /// Whether the revocation set can be trusted now (see [`crate::contact`]).
    pub fn is_fresh(&self) -> bool {
        self.contact.is_fresh()
    }

    pub fn is_revoked(&self, claims: &AccessClaims) -> bool {
        self.verifier.revocation_of(claims).is_some()
    }

    /// Signature and claims only: whether the token is ours, revoked or not.
    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.sync_keys();
        let now = tessera_core::Timestamp::now().as_millis() / 1000;
        self.verifier.verify_signed_at(token, now)
    }

    /// The newest revocation sequence applied, updated as the log grows.
    pub fn latest_revocation(&self) -> tokio::sync::watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Applies the revocation log as it grows, until the task is dropped.
    /// Wakes at once when `appended` is notified (a revocation made by this
    /// process), else every [`POLL`] (one made by another process: the CLI).
    pub async fn follow(
        self: Arc<Self>,
        log: Arc<dyn RevocationLog>,
        appended: Arc<tokio::sync::Notify>,
    ) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut polls: u32 = 0;
        // Entries may all have been purged: the counter still says where the log is.
        // The revocation set itself starts at 0: it reads the whole log first. A
        // process follows the one store it opened, so a log replaced under it (a
        // migration, a restored backup) comes with a restart, and positions from
        // another log never reach this one; only external verifiers, which outlive
        // the issuer's restarts, must notice (from the feed's heartbeat).
        if let Ok(latest) = log.latest_revocation().await {
            self.latest.send_replace(latest);
        }
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = appended.notified() => {}
            }
            let after = self.verifier.update_revocations(|set| set.position());
            match log.revocations_after(after, 1000).await {
                Ok(entries) => {
                    let caught_up = entries.len() < 1000;
                    let key_retired = entries.iter().any(|e| matches!(e.revoked, Revoked::Key(_)));
                    // A retired key must stop signing here now, not at the next
                    // periodic reload; reloaded first, so that nothing observes the key
                    // refused while it still signs.
                    if key_retired && let Err(error) = self.keys.reload().await {
                        tracing::warn!(%error, "could not reload the signing keys");
                    }
                    let newest = entries.last().map(|e| e.sequence);
                    self.verifier.update_revocations(|set| {
                        for entry in entries {
                            let event = match entry.revoked {
                                Revoked::Session(id) => {
                                    RevocationEvent::Session(id.as_str().to_owned())
                                }
                                Revoked::Token(jti) => RevocationEvent::Token(jti),
                                Revoked::Key(kid) => RevocationEvent::Key(kid),
                                Revoked::User(id) => RevocationEvent::User {
                                    id: id.to_string(),
                                    before: entry.at.as_millis() / 1000,
                                },
                            };
                            set.apply(entry.sequence, event, entry.expires_at.as_millis() / 1000);
                        }
                    });
                    if let Some(newest) = newest {
                        self.latest.send_replace(newest);
                    }
                    if caught_up {
                        self.contact.heard();
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot read the revocation log"),
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(600) {
                let now = tessera_core::Timestamp::now().as_millis() / 1000;
                self.verifier.update_revocations(|set| set.prune(now));
            }
        }
    }
}
