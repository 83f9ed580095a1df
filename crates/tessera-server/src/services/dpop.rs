//! DPoP (RFC 9449, issue 17) on this server, both sides of it:
//! - at the token endpoint (§5), a `DPoP` proof with a token request binds the
//!   access token to the proof's key (`cnf.jkt`, `token_type: DPoP`);
//! - at tessera's own protected endpoints (userinfo, the admin API, the
//!   revocation feed, activity reports: §7), a bound token is taken only as
//!   `Authorization: DPoP` with a proof for that request signed by its key
//!   (`tessera_verify::binding`'s rule, the one resource services apply).
//!
//! The proofs' checks are `tessera_verify`'s ([`ProofChecker`]); a proof is
//! good once, wherever it is shown. Where several instances may serve (Redis
//! or PostgreSQL configured), the proofs seen are kept in the shared
//! [`CeremonyStore`] (kind `dpop_proof`, until the proof's window closes), so a
//! proof used on one instance is refused on every other; on SQLite alone, one
//! process serves and keeps them in memory.
//!
//! Server nonces (§8, `tokens.dpop_nonce`): the token endpoint then takes only
//! proofs carrying a nonce it gave in a `DPoP-Nonce` header. A nonce is the
//! current minute sealed under the master key (AES-256-GCM, so it cannot be
//! forged or foreseen), and is taken during its minute and the next: no state,
//! and every instance with the same master key takes every other's nonces.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_keys::MasterKey;

use sha2::{Digest, Sha256};
use tessera_core::{SecretHash, Timestamp};
use tessera_store::{Ceremony, CeremonyKind, CeremonyStore, StoreError};
use tessera_verify::dpop::{DpopError, VerifiedProof};
use tessera_verify::{AccessClaims, Presented, ProofChecker, VerifyError};

use crate::services::oauth::OAuthError;

/// What a proof may be signed with (discovery's `dpop_signing_alg_values_supported`).
pub use tessera_verify::dpop::DPOP_ALGORITHMS as ALGORITHMS;

pub struct DpopProofs {
    /// The public URL, which a proof's `htu` names with the request's path.
    public_url: String,
    token_url: String,
    checker: ProofChecker,
    /// Where the proofs seen are kept when instances share the work; `None`:
    /// in the checker's memory.
    shared: Option<Arc<dyn CeremonyStore>>,
    /// When the token endpoint asks for nonces.
    nonces: Option<Nonces>,
}

/// How long one nonce is handed out; it is taken for twice that at most.
const NONCE_PERIOD_SECONDS: i64 = 60;
/// What a nonce is sealed for (the associated data), so that nothing else the
/// master key seals can pass for one.
const NONCE_PURPOSE: &[u8] = b"tessera dpop nonce";

/// Server nonces: the current period's number, sealed.
struct Nonces {
    key: MasterKey,
    /// The nonce of the current period, made once per period.
    current: Mutex<(i64, String)>,
}

impl Nonces {
    fn period(now: i64) -> i64 {
        now.div_euclid(NONCE_PERIOD_SECONDS)
    }

    fn current(&self, now: i64) -> Option<String> {
        let period = Self::period(now);
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.0 != period || current.1.is_empty() {
            let sealed = self
                .key
                .seal_bytes(NONCE_PURPOSE, &period.to_be_bytes())
                .ok()?;
            *current = (period, URL_SAFE_NO_PAD.encode(sealed));
        }
        Some(current.1.clone())
    }

    /// Whether `nonce` was made here (or by an instance with the same key) in
    /// this period or the one before.
    fn accepts(&self, nonce: &str, now: i64) -> bool {
        let Ok(sealed) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Ok(plain) = self.key.open_bytes(NONCE_PURPOSE, &sealed) else {
            return false;
        };
        let Ok(bytes) = <[u8; 8]>::try_from(plain.as_slice()) else {
            return false;
        };
        let made = i64::from_be_bytes(bytes);
        let period = Self::period(now);
        made == period || made == period - 1
    }
}

/// Why a proof could not be taken.
enum Refused {
    Proof(DpopError),
    /// The shared set of proofs seen did not answer.
    Store(StoreError),
}

impl DpopProofs {
    /// For proofs of requests to this server at `public_url`; the proofs seen
    /// kept in `shared` when given.
    /// `nonces`: the key that seals server nonces, when the token endpoint asks
    /// for them.
    pub fn new(
        public_url: &str,
        shared: Option<Arc<dyn CeremonyStore>>,
        nonces: Option<MasterKey>,
        replay_entries: usize,
    ) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        Self {
            token_url: format!("{public_url}/oauth2/token"),
            public_url,
            // A minute's window, five seconds of clock ahead.
            checker: ProofChecker::new(
                tessera_verify::binding::DEFAULT_PROOF_MAX_AGE,
                tessera_verify::binding::DEFAULT_PROOF_LEEWAY,
                replay_entries,
            ),
            shared,
            nonces: nonces.map(|key| Nonces {
                key,
                current: Mutex::new((0, String::new())),
            }),
        }
    }

    /// The nonce to send in `DPoP-Nonce` with token endpoint answers; `None`
    /// when nonces are off.
    pub fn nonce(&self) -> Option<String> {
        self.nonces.as_ref()?.current(Self::now())
    }

    /// Refuses `proof` if it was seen before, here or (when shared) on any
    /// instance.
    async fn first_use(&self, proof: &VerifiedProof, now: i64) -> Result<(), Refused> {
        let Some(shared) = &self.shared else {
            return self.checker.first_use(proof, now).map_err(Refused::Proof);
        };
        let hash: [u8; 32] = Sha256::digest(proof.replay_key().as_bytes()).into();
        let until = self.checker.remember_until(proof);
        let seen = Ceremony {
            hash: SecretHash::from_bytes(hash),
            kind: CeremonyKind::DpopProof,
            user: None,
            state: String::new(),
            expires_at: Timestamp::from_millis(until.saturating_add(1).saturating_mul(1000)),
        };
        match shared.begin_ceremony(seen).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_)) => Err(Refused::Proof(DpopError::Replayed)),
            Err(error) => Err(Refused::Store(error)),
        }
    }

    fn now() -> i64 {
        Timestamp::now().as_millis() / 1000
    }

    /// The key a token request's `DPoP` proof binds its tokens to; `None`
    /// without a proof.
    pub async fn bind(&self, proof: Option<&str>) -> Result<Option<String>, OAuthError> {
        self.key_of(proof, &self.token_url).await
    }

    /// The key a pushed authorization request's `DPoP` proof binds its code to
    /// (RFC 9449 §10.1); `None` without a proof.
    pub async fn bind_pushed(&self, proof: Option<&str>) -> Result<Option<String>, OAuthError> {
        let url = format!("{}/oauth2/par", self.public_url);
        self.key_of(proof, &url).await
    }

    /// The key of a proof for a `POST` to `url` (nonce and replay checked).
    async fn key_of(&self, proof: Option<&str>, url: &str) -> Result<Option<String>, OAuthError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let now = Self::now();
        let verified = self
            .checker
            .verify(proof, "POST", url, None, None, now)
            .map_err(refused)?;
        if let Some(nonces) = &self.nonces
            && !verified
                .nonce
                .as_deref()
                .is_some_and(|nonce| nonces.accepts(nonce, now))
        {
            return Err(refused(DpopError::UseNonce));
        }
        match self.first_use(&verified, now).await {
            Ok(()) => Ok(Some(verified.jkt)),
            Err(Refused::Proof(error)) => Err(refused(error)),
            Err(Refused::Store(error)) => Err(error.into()),
        }
    }

    /// Whether `presented` may use the token whose `claims` these are, for a
    /// request of `method` to `path` here: a bound token needs its proof.
    pub async fn check(
        &self,
        claims: &AccessClaims,
        presented: &Presented<'_>,
        method: &str,
        path: &str,
    ) -> Result<(), VerifyError> {
        let url = format!("{}{path}", self.public_url);
        let now = Self::now();
        let Some(proof) = self
            .checker
            .bound_proof(claims, presented, method, &url, now)?
        else {
            return Ok(());
        };
        match self.first_use(&proof, now).await {
            Ok(()) => Ok(()),
            Err(Refused::Proof(error)) => Err(VerifyError::Proof(error)),
            Err(Refused::Store(error)) => {
                tracing::warn!(%error, "cannot check a DPoP proof against those seen");
                Err(VerifyError::Unavailable)
            }
        }
    }
}

fn refused(error: DpopError) -> OAuthError {
    OAuthError::refused(error.code(), error.to_string())
}

/// `WWW-Authenticate` for a refusal in the `DPoP` scheme (§7.1), naming the
/// algorithms a proof may use (checked against [`ALGORITHMS`] in a test).
pub const CHALLENGE_MISSING: &str = r#"DPoP algs="ES256 EdDSA RS256", realm="tessera""#;
pub const CHALLENGE_INVALID_TOKEN: &str =
    r#"DPoP algs="ES256 EdDSA RS256", realm="tessera", error="invalid_token""#;
pub const CHALLENGE_INVALID_PROOF: &str =
    r#"DPoP algs="ES256 EdDSA RS256", realm="tessera", error="invalid_dpop_proof""#;
pub const CHALLENGE_INSUFFICIENT_SCOPE: &str =
    r#"DPoP algs="ES256 EdDSA RS256", realm="tessera", error="insufficient_scope""#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nonces_are_taken_in_their_period_and_the_next_only() {
        let nonces = Nonces {
            key: MasterKey::random().unwrap(),
            current: Mutex::new((0, String::new())),
        };
        let now = 1_800_000_000;
        let nonce = nonces.current(now).unwrap();
        assert_eq!(nonces.current(now + 1).as_deref(), Some(nonce.as_str()));
        assert!(nonces.accepts(&nonce, now));
        assert!(nonces.accepts(&nonce, now + NONCE_PERIOD_SECONDS));
        assert!(!nonces.accepts(&nonce, now + 2 * NONCE_PERIOD_SECONDS));
        assert!(!nonces.accepts(&nonce, now - NONCE_PERIOD_SECONDS));
        // Another key's nonce, a forged one, a damaged one.
        let other = Nonces {
            key: MasterKey::random().unwrap(),
            current: Mutex::new((0, String::new())),
        };
        assert!(!nonces.accepts(&other.current(now).unwrap(), now));
        let period = URL_SAFE_NO_PAD.encode(Nonces::period(now).to_be_bytes());
        assert!(!nonces.accepts(&period, now));
        let mut damaged = nonce.clone();
        damaged.replace_range(10..11, if &nonce[10..11] == "A" { "B" } else { "A" });
        assert!(!nonces.accepts(&damaged, now));
    }

    #[test]
    fn challenges_name_the_algorithms_taken() {
        let algs: Vec<&str> = ALGORITHMS.iter().map(|a| a.as_str()).collect();
        let named = format!(r#"DPoP algs="{}""#, algs.join(" "));
        for challenge in [
            CHALLENGE_MISSING,
            CHALLENGE_INVALID_TOKEN,
            CHALLENGE_INVALID_PROOF,
            CHALLENGE_INSUFFICIENT_SCOPE,
        ] {
            assert!(challenge.starts_with(&named), "{challenge}");
        }
    }
}
