//! How a request presents its access token (RFC 6750 `Bearer`, RFC 9449 `DPoP`),
//! and what a token bound to a key needs besides: the one check every resource
//! server runs, the same in [`RemoteVerifier`](crate::RemoteVerifier), the axum
//! layer, tessera's own endpoints and the gateway.
//!
//! The rule (RFC 9449 §7.1):
//! - a token without `cnf` is a bearer token: `Authorization: Bearer`, nothing
//!   more (a `DPoP` header beside it is not looked at);
//! - a token with `cnf.jkt` is good only as `Authorization: DPoP <token>` with a
//!   `DPoP` proof for this method and URL, carrying the token's hash (`ath`),
//!   signed by that very key, and not seen before. Sent as `Bearer` it is
//!   refused: that is a copied token being used without its key;
//! - an unbound token sent as `DPoP` is refused too, so that a client that asked
//!   for binding learns it did not get it instead of believing itself protected.

use std::time::Duration;

use crate::claims::AccessClaims;
use crate::dpop::{DpopError, ProofKeys, ProofRequest, ReplayCache, VerifiedProof};
use crate::error::VerifyError;

/// The scheme of an `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// An access token as a request presented it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
    /// The `DPoP` header's value, when there was one.
    pub proof: Option<&'a str>,
}

impl<'a> Presented<'a> {
    /// A token presented as a bearer token (a cookie's, say): never with a proof.
    pub fn bearer(token: &'a str) -> Self {
        Self {
            scheme: Scheme::Bearer,
            token,
            proof: None,
        }
    }

    /// A request's credentials from the values of its `Authorization` and `DPoP`
    /// headers, as sent: `Ok(None)` without an `Authorization` header. More than
    /// one of either (§4.3 item 1) is refused, and so is a value that is not
    /// header text (visible ASCII). The refusal says what to send instead.
    pub fn from_headers(
        mut authorization: impl Iterator<Item = &'a [u8]>,
        mut proofs: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<Self>, &'static str> {
        let Some(value) = authorization.next() else {
            return Ok(None);
        };
        if authorization.next().is_some() {
            return Err("send one Authorization header");
        }
        let value = header_text(value).ok_or(SHAPE)?;
        let proof = proofs
            .next()
            .map(|proof| header_text(proof).ok_or("the DPoP header must be a compact JWS"))
            .transpose()?;
        if proofs.next().is_some() {
            return Err("send one DPoP header");
        }
        Self::parse(value, proof).map(Some)
    }

    /// `Authorization: Bearer <token>` or `DPoP <token>` (the scheme in any case),
    /// with the `DPoP` header's value.
    pub fn parse(authorization: &'a str, proof: Option<&'a str>) -> Result<Self, &'static str> {
        let (scheme, token) = authorization.split_once(' ').ok_or(SHAPE)?;
        let token = token.trim_matches(' ');
        if token.is_empty() || token.contains(' ') {
            return Err(SHAPE);
        }
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Scheme::Dpop
        } else {
            return Err(SHAPE);
        };
        Ok(Self {
            scheme,
            token,
            proof,
        })
    }
}

const SHAPE: &str = "the Authorization header must be: Bearer <token> or DPoP <token>";

/// `bytes` as text, if they are what a header may hold as such: visible ASCII,
/// spaces and tabs (as `http`'s `HeaderValue::to_str` reads them).
fn header_text(bytes: &[u8]) -> Option<&str> {
    bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
}

/// How old a proof may be at a resource server, and how far ahead its clock.
pub const DEFAULT_PROOF_MAX_AGE: Duration = Duration::from_secs(60);
pub const DEFAULT_PROOF_LEEWAY: Duration = Duration::from_secs(5);
/// Proofs remembered against replay by default.
pub const DEFAULT_REPLAY_ENTRIES: usize = 100_000;
/// Distinct client keys whose parse is kept.
const KEYS_KEPT: usize = 4096;

/// The checks of DPoP proofs for one place that takes them: its window, the keys
/// of recent proofs ([`ProofKeys`]) and the proofs seen ([`ReplayCache`], this
/// process's; a caller whose instances share traffic keeps replays in a shared
/// store instead, with [`Self::bound_proof`] and [`Self::remember_until`]).
pub struct ProofChecker {
    keys: ProofKeys,
    replay: ReplayCache,
    max_age: i64,
    leeway: i64,
}

impl Default for ProofChecker {
    fn default() -> Self {
        Self::new(
            DEFAULT_PROOF_MAX_AGE,
            DEFAULT_PROOF_LEEWAY,
            DEFAULT_REPLAY_ENTRIES,
        )
    }
}

impl ProofChecker {
    pub fn new(max_age: Duration, leeway: Duration, replay_entries: usize) -> Self {
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            keys: ProofKeys::new(KEYS_KEPT),
            replay: ReplayCache::new(replay_entries),
            max_age: seconds(max_age),
            leeway: seconds(leeway),
        }
    }

    /// Every check of `proof` but replay, for a request of `method` to `url` at
    /// `now` (seconds); `access_token` is the token it comes with (its hash must
    /// be the proof's `ath`), `nonce` the one this server asks for.
    pub fn verify(
        &self,
        proof: &str,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        now: i64,
    ) -> Result<VerifiedProof, DpopError> {
        self.keys.verify(
            proof,
            &ProofRequest {
                method,
                url,
                now,
                max_age: self.max_age,
                leeway: self.leeway,
                access_token,
                nonce,
            },
        )
    }

    /// Until when a replay of `proof` must be refused: past that its `iat` is
    /// refused anyway.
    pub fn remember_until(&self, proof: &VerifiedProof) -> i64 {
        proof
            .iat
            .saturating_add(self.max_age)
            .saturating_add(self.leeway)
    }

    /// Refuses `proof` if this process saw it before.
    pub fn first_use(&self, proof: &VerifiedProof, now: i64) -> Result<(), DpopError> {
        self.replay
            .first_use(proof, self.remember_until(proof), now)
    }

    /// Whether `presented` may use the token whose `claims` these are for a
    /// request of `method` to `url` (see the module's rule), replays included.
    pub fn check(
        &self,
        claims: &AccessClaims,
        presented: &Presented<'_>,
        method: &str,
        url: &str,
        now: i64,
    ) -> Result<(), VerifyError> {
        if let Some(proof) = self.bound_proof(claims, presented, method, url, now)? {
            self.first_use(&proof, now).map_err(VerifyError::Proof)?;
        }
        Ok(())
    }

    /// [`Self::check`] but for replays: the proof a bound token came with, which
    /// the caller must refuse if its [`VerifiedProof::replay_key`] was seen before
    /// [`Self::remember_until`]; `None` for a bearer token.
    pub fn bound_proof(
        &self,
        claims: &AccessClaims,
        presented: &Presented<'_>,
        method: &str,
        url: &str,
        now: i64,
    ) -> Result<Option<VerifiedProof>, VerifyError> {
        let Some(jkt) = claims.jkt() else {
            return match presented.scheme {
                Scheme::Bearer => Ok(None),
                Scheme::Dpop => Err(VerifyError::NotBound),
            };
        };
        if presented.scheme == Scheme::Bearer {
            return Err(VerifyError::BoundToKey);
        }
        let proof = presented
            .proof
            .ok_or(VerifyError::Proof(DpopError::Missing))?;
        let verified = self
            .verify(proof, method, url, Some(presented.token), None, now)
            .map_err(VerifyError::Proof)?;
        if verified.jkt != jkt {
            return Err(VerifyError::Proof(DpopError::WrongKey));
        }
        Ok(Some(verified))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<'a>(
        authorization: &[&'a [u8]],
        proofs: &[&'a [u8]],
    ) -> Result<Option<Presented<'a>>, &'static str> {
        Presented::from_headers(authorization.iter().copied(), proofs.iter().copied())
    }

    #[test]
    fn credentials_are_one_authorization_and_at_most_one_proof() {
        assert_eq!(read(&[], &[b"a.b.c"]), Ok(None));
        assert_eq!(
            read(&[b"dpop  t "], &[b"a.b.c"]),
            Ok(Some(Presented {
                scheme: Scheme::Dpop,
                token: "t",
                proof: Some("a.b.c"),
            }))
        );
        for (authorization, proofs) in [
            (&[&b"Bearer a"[..], b"Bearer b"][..], &[][..]),
            (&[&b"DPoP t"[..]][..], &[&b"a.b.c"[..], b"d.e.f"][..]),
            (&[&b"Bearer t\xc3\xa9"[..]][..], &[][..]),
            (&[&b"Bearer t\n"[..]][..], &[][..]),
            (&[&b"DPoP t"[..]][..], &[&b"a.b.\xff"[..]][..]),
            (&[&b"Basic dXNlcjpwYXNz"[..]][..], &[][..]),
            (&[&b"Bearer a b"[..]][..], &[][..]),
        ] {
            assert!(
                read(authorization, proofs).is_err(),
                "{authorization:?} {proofs:?}"
            );
        }
    }
}
