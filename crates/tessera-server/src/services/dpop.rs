//! DPoP (RFC 9449, issue 17) on this server, both sides of it:
//! - at the token endpoint (§5), a `DPoP` proof with a token request binds the
//!   access token to the proof's key (`cnf.jkt`, `token_type: DPoP`);
//! - at tessera's own protected endpoints (userinfo, the admin API, the
//!   revocation feed, activity reports: §7), a bound token is taken only as
//!   `Authorization: DPoP` with a proof for that request signed by its key
//!   (`tessera_verify::binding`'s rule, the one resource services apply).
//!
//! The proofs' checks are `tessera_verify`'s ([`ProofChecker`]); a proof is
//! good once, wherever it is shown here. (Sharing the proofs seen through Redis,
//! per-client `--dpop required`, server nonces, and binding refresh tokens and
//! opaque tokens are still to do.)

use tessera_core::Timestamp;
use tessera_verify::dpop::DpopError;
use tessera_verify::{AccessClaims, Presented, ProofChecker, VerifyError};

use crate::services::oauth::OAuthError;

/// What a proof may be signed with (discovery's `dpop_signing_alg_values_supported`).
pub use tessera_verify::dpop::DPOP_ALGORITHMS as ALGORITHMS;

pub struct DpopProofs {
    /// The public URL, which a proof's `htu` names with the request's path.
    public_url: String,
    token_url: String,
    checker: ProofChecker,
}

impl DpopProofs {
    /// For proofs of requests to this server at `public_url`.
    pub fn new(public_url: &str) -> Self {
        let public_url = public_url.trim_end_matches('/').to_owned();
        Self {
            token_url: format!("{public_url}/oauth2/token"),
            public_url,
            // A minute's window, five seconds of clock ahead, 100,000 proofs
            // remembered: well above what a window of requests brings.
            checker: ProofChecker::default(),
        }
    }

    fn now() -> i64 {
        Timestamp::now().as_millis() / 1000
    }

    /// The key a token request's `DPoP` proof binds its tokens to; `None`
    /// without a proof.
    pub fn bind(&self, proof: Option<&str>) -> Result<Option<String>, OAuthError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let now = Self::now();
        let verified = self
            .checker
            .verify(proof, "POST", &self.token_url, None, None, now)
            .map_err(refused)?;
        self.checker.first_use(&verified, now).map_err(refused)?;
        Ok(Some(verified.jkt))
    }

    /// Whether `presented` may use the token whose `claims` these are, for a
    /// request of `method` to `path` here: a bound token needs its proof.
    pub fn check(
        &self,
        claims: &AccessClaims,
        presented: &Presented<'_>,
        method: &str,
        path: &str,
    ) -> Result<(), VerifyError> {
        let url = format!("{}{path}", self.public_url);
        self.checker
            .check(claims, presented, method, &url, Self::now())
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
