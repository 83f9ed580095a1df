//! The [`Verifier`]: a [`Policy`], the keys it trusts and the revocation set, and
//! the checks a token passes, in order.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera_proto::Algorithm;

use crate::binding::{Presented, ProofChecker};
use crate::claims::{self, AccessClaims};
use crate::error::{RevokedBy, VerifyError};
use crate::jws;
use crate::keys::VerifyingKeys;
use crate::revocation::RevocationSet;

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
            algorithms: Algorithm::ASYMMETRIC.to_vec(),
            leeway: Duration::from_secs(30),
            max_token_bytes: 8192,
        }
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

    /// Verifies a token presented as a bearer token: one bound to a key (DPoP,
    /// `cnf`) is refused, since whoever presents it this way shows no key. A
    /// request's credentials, either scheme, go through [`Self::verify_presented`].
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let claims = self.verify_token(token)?;
        if claims.cnf.is_some() {
            return Err(VerifyError::BoundToKey);
        }
        Ok(claims)
    }

    /// Verifies a token whatever it is bound to, for a caller that reports the
    /// binding rather than enforces it (introspection, `tessera token verify`).
    pub fn verify_token(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        self.verify_at(token, unix_now())
    }

    /// Verifies the token a request presented, and its DPoP proof when the
    /// token is bound to a key (see [`crate::binding`]), for a request of
    /// `method` to `url` (the URL the client called, as it wrote it).
    pub fn verify_presented(
        &self,
        presented: &Presented<'_>,
        method: &str,
        url: &str,
        proofs: &ProofChecker,
    ) -> Result<AccessClaims, VerifyError> {
        let now = unix_now();
        let claims = self.verify_at(presented.token, now)?;
        proofs.check(&claims, presented, method, url, now)?;
        Ok(claims)
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
        let parsed = jws::parse(
            token,
            self.policy.max_token_bytes,
            &mut scratch,
            |segment| keys.known_header(segment),
        )?;
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
