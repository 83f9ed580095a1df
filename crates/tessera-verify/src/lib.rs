//! Local verification of tessera access tokens (RFC 9068 JWTs), for resource
//! services and for tessera itself (introspection).
//!
//! What a token must pass, in order, each refusal with its own [`VerifyError`]:
//! size; three base64url parts; header and payload JSON objects with no key twice;
//! no embedded or remote key (`jwk`, `jku`, `x5u`, `x5c`) and no `crit`; an `alg`
//! the policy allows; a trusted key found by `kid` whose own algorithm is exactly
//! `alg` (the algorithm comes from the key, never from the token); the signature;
//! `typ: at+jwt`; `exp` (required), `nbf` and `iat` with bounded leeway; `iss`;
//! `aud`; and finally the revocation set (`sid`, `jti`, `kid`).
//!
//! Signatures are checked with keys parsed once (`aws-lc-rs` `ParsedPublicKey`),
//! and the claims are read once, so a verification costs little beyond the
//! signature itself.

#[cfg(feature = "axum")]
pub mod axum;
mod claims;
mod jws;
mod keys;
#[cfg(feature = "remote")]
pub mod remote;
mod revocation;

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use keys::VerifyingKeys;
#[cfg(feature = "remote")]
pub use remote::{ClientCredentials, RemoteVerifier, SetupError, WhenStale};
pub use revocation::{RevocationEvent, RevocationSet, RevokedBy};
/// The algorithms a [`Policy`] accepts: the wire's one enum. `none` and anything
/// else are refused.
pub use tessera_proto::Algorithm;

/// Why a token was refused. The `Display` text is safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is too large")]
    TooLarge,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token has a duplicate JSON key")]
    DuplicateKey,
    #[error("the token embeds or points to its own key")]
    EmbeddedKey,
    #[error("the token requires an extension this verifier does not know")]
    UnknownCritical,
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token's key is unknown")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token is not an access token (typ at+jwt)")]
    WrongType,
    #[error("the token has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token has been revoked")]
    Revoked(RevokedBy),
    /// The verifier has not heard from the revocation feed within its staleness
    /// bound, so it cannot tell whether the token was revoked (fail closed).
    #[error("revocations could not be checked recently enough; try again shortly")]
    Stale,
    /// An opaque token could not be introspected (the issuer is unreachable, or
    /// this verifier has no introspection client).
    #[error("the token could not be checked with its issuer")]
    Unavailable,
}

impl VerifyError {
    /// A stable, machine-readable name for the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::TooLarge => "too_large",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::DuplicateKey => "duplicate_key",
            VerifyError::EmbeddedKey => "embedded_key",
            VerifyError::UnknownCritical => "unknown_critical",
            VerifyError::AlgorithmNotAllowed => "algorithm_not_allowed",
            VerifyError::UnknownKey => "unknown_key",
            VerifyError::AlgorithmMismatch => "algorithm_mismatch",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::WrongType => "wrong_type",
            VerifyError::MissingClaim(_) => "missing_claim",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::Revoked(RevokedBy::Session) => "revoked_session",
            VerifyError::Revoked(RevokedBy::Token) => "revoked_token",
            VerifyError::Revoked(RevokedBy::Key) => "revoked_key",
            VerifyError::Revoked(RevokedBy::User) => "revoked_user",
            VerifyError::Revoked(RevokedBy::Client) => "revoked_client",
            VerifyError::Stale => "stale_revocations",
            VerifyError::Unavailable => "issuer_unavailable",
        }
    }

    /// Whether the fault is on the verifier's side (retry later) rather than the
    /// token's: such refusals are 503s, not 401s.
    pub fn is_temporary(&self) -> bool {
        matches!(self, VerifyError::Stale | VerifyError::Unavailable)
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone)]
pub struct Policy {
    pub issuer: String,
    /// A token must name at least one of these in `aud`.
    pub audiences: Vec<String>,
    /// Accept any audience. Only for the issuer itself (introspection answers for
    /// tokens of every audience); a resource service must name its own.
    pub any_audience: bool,
    pub algorithms: Vec<Algorithm>,
    /// Allowed clock difference for `exp`, `nbf` and `iat`; at most five minutes.
    pub leeway: Duration,
    pub max_token_bytes: usize,
}

pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

impl Policy {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            any_audience: false,
            algorithms: vec![Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256],
            leeway: Duration::from_secs(30),
            max_token_bytes: 8192,
        }
    }
}

/// The verified claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The key that signed it (from the header); `None` for HS256.
    #[serde(skip)]
    pub kid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

/// Verifies tokens against a policy, a key set and a revocation set; keys and
/// revocations can be replaced while requests are being verified.
pub struct Verifier {
    policy: Policy,
    keys: RwLock<Arc<VerifyingKeys>>,
    revocations: RwLock<RevocationSet>,
}

impl Verifier {
    pub fn new(mut policy: Policy, keys: VerifyingKeys) -> Self {
        policy.leeway = policy.leeway.min(MAX_LEEWAY);
        Self {
            policy,
            keys: RwLock::new(Arc::new(keys)),
            revocations: RwLock::new(RevocationSet::default()),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn replace_keys(&self, keys: VerifyingKeys) {
        if let Ok(mut current) = self.keys.write() {
            *current = Arc::new(keys);
        }
    }

    pub fn keys(&self) -> Arc<VerifyingKeys> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies `update` to the revocation set.
    pub fn update_revocations<T>(&self, update: impl FnOnce(&mut RevocationSet) -> T) -> T {
        match self.revocations.write() {
            Ok(mut set) => update(&mut set),
            Err(poisoned) => update(&mut poisoned.into_inner()),
        }
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_at(token, unix_now())
    }

    /// Verifies as of `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify_signed_at(token, now)?;
        match self.revocation_of(&claims) {
            Some(by) => Err(VerifyError::Revoked(by)),
            None => Ok(claims),
        }
    }

    /// Whether claims from elsewhere (an opaque token's record, say) are revoked.
    pub fn revocation_of(&self, claims: &AccessClaims) -> Option<RevokedBy> {
        match self.revocations.read() {
            Ok(set) => set.check(claims),
            Err(poisoned) => poisoned.into_inner().check(claims),
        }
    }

    /// Everything but the revocation check.
    pub fn verify_signed_at(&self, token: &str, now: i64) -> Result<AccessClaims, VerifyError> {
        let keys = self.keys();
        let mut scratch = Vec::new();
        let parsed = jws::parse(token, self.policy.max_token_bytes, &mut scratch, &keys)?;
        let algorithm = parsed
            .header
            .alg
            .parse::<Algorithm>()
            .map_err(|_| VerifyError::AlgorithmNotAllowed)?;
        if !self.policy.algorithms.contains(&algorithm) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let key = match parsed.key {
            Some(key) => key,
            None => keys
                .find(parsed.header.kid.as_deref())
                .ok_or(VerifyError::UnknownKey)?,
        };
        if key.algorithm != algorithm {
            return Err(VerifyError::AlgorithmMismatch);
        }
        if !key.verify(parsed.signing_input, parsed.signature) {
            return Err(VerifyError::BadSignature);
        }
        if !parsed.header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(tessera_proto::token_type::ACCESS_TOKEN_JWT_TYPE)
                || t.eq_ignore_ascii_case("application/at+jwt")
        }) {
            return Err(VerifyError::WrongType);
        }
        let claims = claims::parse(parsed.payload, parsed.header.kid.map(Cow::into_owned))?;
        self.check_claims_at(&claims, now)?;
        Ok(claims)
    }

    /// The checks of time, issuer and audience, and the revocation set, for
    /// claims that came from somewhere other than a JWT (an introspection answer).
    pub fn check_claims(&self, claims: &AccessClaims) -> Result<(), VerifyError> {
        self.check_claims_at(claims, unix_now())?;
        match self.revocation_of(claims) {
            Some(by) => Err(VerifyError::Revoked(by)),
            None => Ok(()),
        }
    }

    fn check_claims_at(&self, claims: &AccessClaims, now: i64) -> Result<(), VerifyError> {
        let leeway = i64::try_from(self.policy.leeway.as_secs()).unwrap_or(0);
        if claims.exp <= now.saturating_sub(leeway) {
            return Err(VerifyError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
            || claims
                .iat
                .is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return Err(VerifyError::NotYetValid);
        }
        if claims.iss != self.policy.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if !self.policy.any_audience
            && !claims.aud.iter().any(|a| self.policy.audiences.contains(a))
        {
            return Err(VerifyError::WrongAudience);
        }
        Ok(())
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
