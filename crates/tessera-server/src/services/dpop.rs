//! DPoP at the token endpoint (RFC 9449 §5, issue 17): a `DPoP` proof with a
//! token request binds the access token to the proof's key (`cnf.jkt`,
//! `token_type: DPoP`). The proof's checks are `tessera_verify::dpop`'s; the
//! `jti`s seen are kept here for the proofs' window, so a proof is used once on
//! this instance. (Sharing them through Redis, per-client `--dpop required`,
//! server nonces, and binding refresh tokens and opaque tokens are still to do.)

use tessera_core::Timestamp;
use tessera_proto::error as codes;
use tessera_verify::dpop::{DpopError, ProofKeys, ProofRequest, ReplayCache};

use crate::services::oauth::OAuthError;

/// What a proof may be signed with (discovery's `dpop_signing_alg_values_supported`).
pub use tessera_verify::dpop::DPOP_ALGORITHMS as ALGORITHMS;

/// How old a proof may be; a clock this far ahead is forgiven too.
const MAX_AGE_SECONDS: i64 = 60;
const LEEWAY_SECONDS: i64 = 5;
/// Proofs remembered at once: well above what a window of token requests brings.
const REMEMBERED: usize = 100_000;
/// Distinct proof headers (client keys) whose parse is kept.
const KEYS_KEPT: usize = 4096;

pub struct DpopProofs {
    token_url: String,
    keys: ProofKeys,
    replay: ReplayCache,
}

impl DpopProofs {
    /// For proofs of requests to `token_url` (the public URL's token endpoint).
    pub fn new(token_url: String) -> Self {
        Self {
            token_url,
            keys: ProofKeys::new(KEYS_KEPT),
            replay: ReplayCache::new(REMEMBERED),
        }
    }

    /// The key a token request's `DPoP` proof binds its tokens to; `None`
    /// without a proof.
    pub fn bind(&self, proof: Option<&str>) -> Result<Option<String>, OAuthError> {
        let Some(proof) = proof else {
            return Ok(None);
        };
        let now = Timestamp::now().as_millis() / 1000;
        let request = ProofRequest {
            method: "POST",
            url: &self.token_url,
            now,
            max_age: MAX_AGE_SECONDS,
            leeway: LEEWAY_SECONDS,
            access_token: None,
            nonce: None,
        };
        let verified = self.keys.verify(proof, &request).map_err(refused)?;
        self.replay
            .first_use(
                &verified,
                verified.iat + MAX_AGE_SECONDS + LEEWAY_SECONDS,
                now,
            )
            .map_err(refused)?;
        Ok(Some(verified.jkt))
    }
}

fn refused(error: DpopError) -> OAuthError {
    OAuthError::refused(codes::INVALID_DPOP_PROOF, error.to_string())
}
