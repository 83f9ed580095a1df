//! Verifying the access tokens this issuer signed (for introspection and
//! revocation), with the same `tessera-verify` code path resource services use.
//! Keys follow the key ring; revocations follow the revocation log.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

use tessera_proto::Algorithm;
use tessera_store::{RevocationLog, RevocationsAppended, Revoked, StoreError};
use tessera_verify::{AccessClaims, Policy, RevocationEvent, Verifier, VerifyError, VerifyingKeys};

use crate::services::keyring::KeyRing;

/// How often the revocation log is polled.
const POLL: Duration = Duration::from_millis(100);
/// Log entries read at a time.
const PAGE: u32 = 1000;

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
    contact: Arc<crate::services::contact::Contact>,
    log: Arc<dyn RevocationLog>,
    appended: Arc<RevocationsAppended>,
    /// The appends counted before the last complete read of the log: when
    /// `appended` counts more, something was revoked that the set may not hold yet.
    applied: AtomicU64,
    /// One reader of the log at a time; the others wait for its result.
    reading: tokio::sync::Mutex<()>,
    /// Claims whose signature verified, by the SHA-256 of the whole token: a token
    /// presented again (a resource server introspecting on every call, an app
    /// asking userinfo) is hashed instead of verified again, about a twentieth of an
    /// EdDSA verification. Only the signature is taken from here: time, issuer,
    /// audience and every revocation (its session, jti, key, user, client) are
    /// checked on each use as for a fresh token, and the whole cache is dropped
    /// when the keys change.
    verified: quick_cache::sync::Cache<[u8; 32], Arc<AccessClaims>>,
}

/// How many verified tokens [`OwnTokens`] keeps (a few hundred bytes each).
const VERIFIED_TOKENS: usize = 16 * 1024;

impl OwnTokens {
    pub fn new(
        issuer: &str,
        keys: Arc<KeyRing>,
        hs256: Option<Vec<u8>>,
        contact: Arc<crate::services::contact::Contact>,
        log: Arc<dyn RevocationLog>,
        appended: Arc<RevocationsAppended>,
    ) -> Self {
        let mut policy = Policy::new(issuer, "");
        // Introspection answers for tokens of every audience; tessera's own
        // endpoints narrow this down with `verify_for_tessera`.
        policy.any_audience = true;
        policy.algorithms.push(Algorithm::HS256);
        let own = Self {
            verifier: Verifier::new(policy, VerifyingKeys::default()),
            keys,
            hs256,
            loaded: ArcSwap::from_pointee(String::new()),
            latest: tokio::sync::watch::Sender::new(0),
            contact,
            log,
            appended,
            applied: AtomicU64::new(0),
            reading: tokio::sync::Mutex::new(()),
            verified: quick_cache::sync::Cache::new(VERIFIED_TOKENS),
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
        self.verified.clear();
        self.loaded.store(Arc::new(set.jwks_etag.clone()));
    }

    /// A live, unrevoked token of this issuer, for any audience (introspection);
    /// `Stale` while this instance is out of touch with the revocation log.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.settle().await?;
        self.sync_keys();
        let claims = self.verified_signature(token)?;
        if !self.contact.is_fresh() {
            return Err(VerifyError::Stale);
        }
        Ok(claims)
    }

    /// `token`'s claims, live and unrevoked: its signature verified now or found
    /// verified in [`Self::verified`], its claims checked now either way.
    fn verified_signature(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            self.verifier.check_claims(&claims)?;
            return Ok(AccessClaims::clone(&claims));
        }
        let claims = self.verifier.verify_token(token)?;
        self.verified.insert(digest, Arc::new(claims.clone()));
        Ok(claims)
    }

    /// A live, unrevoked token meant for tessera itself, for its own bearer
    /// endpoints: its audience is the issuer, and it is signed by one of the
    /// published keys. A token for a resource service must never act on tessera,
    /// and HS256's secret is shared with whoever verifies it, so it could be forged.
    pub async fn verify_for_tessera(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify(token).await?;
        // HS256 tokens are the only ones without a `kid`.
        if claims.kid.is_none() {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        if !claims
            .aud
            .iter()
            .any(|a| *a == self.verifier.policy().issuer)
        {
            return Err(VerifyError::WrongAudience);
        }
        Ok(claims)
    }

    /// Whether the revocation set can be trusted now (see [`crate::services::contact`]).
    pub fn is_fresh(&self) -> bool {
        self.contact.is_fresh()
    }

    /// Whether `claims` (of an opaque token) are revoked, counting every revocation
    /// this process has committed so far; `Stale` when that cannot be told.
    pub async fn is_revoked(&self, claims: &AccessClaims) -> Result<bool, VerifyError> {
        self.settle().await?;
        Ok(self.verifier.revocation_of(claims).is_some())
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

    /// Makes sure every revocation committed so far by this process (and any other
    /// the store has told of) is in the set before an answer relies on it: the
    /// instance that answered a revoke, logout or kick refuses what it ended in its
    /// very next answer. Costs one atomic load when nothing was appended.
    /// `Stale` when the log cannot be read: an answer without what was just
    /// revoked would be the very window this closes.
    async fn settle(&self) -> Result<(), VerifyError> {
        if self.applied.load(Ordering::SeqCst) >= self.appended.count() {
            return Ok(());
        }
        self.catch_up(false).await.map_err(|error| {
            tracing::warn!(%error, "cannot read the revocation log");
            VerifyError::Stale
        })
    }

    /// Reads the log from the set's position to its end and applies it; unless
    /// `always`, only if something was appended since the last read.
    async fn catch_up(&self, always: bool) -> Result<(), StoreError> {
        let wanted = self.appended.count();
        let _reading = self.reading.lock().await;
        // Another caller may have read everything we wanted while we waited.
        if !always && self.applied.load(Ordering::SeqCst) >= wanted {
            return Ok(());
        }
        // Counted before the read, so the read includes every append it counts.
        let counted = self.appended.count();
        while !self.apply_page().await? {}
        self.applied.fetch_max(counted, Ordering::SeqCst);
        self.contact.heard();
        Ok(())
    }

    /// Applies the next page of the log; whether the log's end was reached.
    async fn apply_page(&self) -> Result<bool, StoreError> {
        let after = self.verifier.update_revocations(|set| set.position());
        let entries = self.log.revocations_after(after, PAGE).await?;
        let caught_up = entries.len() < PAGE as usize;
        let key_retired = entries.iter().any(|e| matches!(e.revoked, Revoked::Key(_)));
        // A retired key must stop signing here now, not at the next periodic
        // reload; reloaded first, so that nothing observes the key refused while
        // it still signs.
        if key_retired && let Err(error) = self.keys.reload().await {
            tracing::warn!(%error, "could not reload the signing keys");
        }
        let newest = entries.last().map(|e| e.sequence);
        self.verifier.update_revocations(|set| {
            for entry in entries {
                let event = RevocationEvent::new(
                    entry.revoked.kind(),
                    entry.revoked.target(),
                    entry.at.as_millis() / 1000,
                );
                set.apply(entry.sequence, event, entry.expires_at.as_millis() / 1000);
            }
        });
        if let Some(newest) = newest {
            self.latest.send_replace(newest);
        }
        Ok(caught_up)
    }

    /// Applies the revocation log as it grows, until the task is dropped.
    /// Wakes at once when the store signals an append (by this process, or by
    /// another one it hears of), else every [`POLL`] (one made by a process the
    /// store cannot hear: the CLI on SQLite).
    pub async fn follow(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut polls: u32 = 0;
        // Entries may all have been purged: the counter still says where the log is.
        // The revocation set itself starts at 0: it reads the whole log first. A
        // process follows the one store it opened, so a log replaced under it (a
        // migration, a restored backup) comes with a restart, and positions from
        // another log never reach this one; only external verifiers, which outlive
        // the issuer's restarts, must notice (from the feed's heartbeat).
        if let Ok(latest) = self.log.latest_revocation().await {
            self.latest.send_replace(latest);
        }
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.appended.notified() => {}
            }
            // A poll reads even when nothing was signalled: the CLI's appends are not.
            if let Err(error) = self.catch_up(true).await {
                tracing::warn!(%error, "cannot read the revocation log");
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(600) {
                let now = tessera_core::Timestamp::now().as_millis() / 1000;
                self.verifier.update_revocations(|set| set.prune(now));
            }
        }
    }
}
