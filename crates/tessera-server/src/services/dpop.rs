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
//! process serves and keeps them in memory. (Per-client `--dpop required`,
//! server nonces, and binding refresh tokens and opaque tokens are still to do.)

use std::sync::Arc;

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
    pub fn new(public_url: &str, shared: Option<Arc<dyn CeremonyStore>>) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        Self {
            token_url: format!("{public_url}/oauth2/token"),
            public_url,
            // A minute's window, five seconds of clock ahead, 100,000 proofs
            // remembered: well above what a window of requests brings.
            checker: ProofChecker::default(),
            shared,
        }
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
        let Some(proof) = proof else {
            return Ok(None);
        };
        let now = Self::now();
        let verified = self
            .checker
            .verify(proof, "POST", &self.token_url, None, None, now)
            .map_err(refused)?;
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
pub const CHALLENGE_INVALID_TOKEN: &str =
    r#"DPoP algs="ES256 EdDSA RS256", realm="tessera", error="invalid_token""#;
pub const CHALLENGE_INVALID_PROOF: &str =
    r#"DPoP algs="ES256 EdDSA RS256", realm="tessera", error="invalid_dpop_proof""#;
pub const CHALLENGE_INSUFFICIENT_SCOPE: &str =
    r#"DPoP algs="ES256 EdDSA RS256", realm="tessera", error="insufficient_scope""#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_name_the_algorithms_taken() {
        let algs: Vec<&str> = ALGORITHMS.iter().map(|a| a.as_str()).collect();
        let named = format!(r#"DPoP algs="{}""#, algs.join(" "));
        for challenge in [
            CHALLENGE_INVALID_TOKEN,
            CHALLENGE_INVALID_PROOF,
            CHALLENGE_INSUFFICIENT_SCOPE,
        ] {
            assert!(challenge.starts_with(&named), "{challenge}");
        }
    }
}
