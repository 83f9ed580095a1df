//! Proof Key for Code Exchange (RFC 7636): the challenge an authorization request
//! sends, and the check of the verifier the token request sends. Only `S256`:
//! `plain` would put the verifier itself in the browser's URL, which is what PKCE
//! is there to keep out of it (RFC 9700 §2.1.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The only method tessera accepts.
pub const S256: &str = "S256";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256 (plain is refused)")]
    Method,
    #[error("code_challenge must be the 43-character base64url SHA-256 of the code_verifier")]
    Challenge,
    #[error("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~")]
    Verifier,
}

/// An `S256` code challenge: the base64url SHA-256 of a verifier, 43 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The challenge and its method as an authorization request gives them; a
    /// missing method means `plain` (RFC 7636 §4.3), so it is refused too.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, PkceError> {
        if method != Some(S256) {
            return Err(PkceError::Method);
        }
        let decoded = URL_SAFE_NO_PAD
            .decode(challenge)
            .map_err(|_| PkceError::Challenge)?;
        if challenge.len() != 43 || decoded.len() != 32 {
            return Err(PkceError::Challenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// A challenge as stored, from a challenge `parse` accepted.
    pub fn from_stored(challenge: &str) -> Option<Self> {
        Self::parse(challenge, Some(S256)).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` is the one this challenge was made from. A malformed
    /// verifier is an error rather than `false`, so that the client is told why.
    pub fn verify(&self, verifier: &str) -> Result<bool, PkceError> {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !well_formed {
            return Err(PkceError::Verifier);
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(bool::from(computed.as_bytes().ct_eq(self.0.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies() {
        let challenge = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert_eq!(challenge.verify(VERIFIER), Ok(true));
        assert_eq!(challenge.verify(&VERIFIER.replace('d', "e")), Ok(false));
        assert_eq!(
            CodeChallenge::from_stored(challenge.as_str()),
            Some(challenge)
        );
    }

    #[test]
    fn plain_and_malformed_challenges_are_refused() {
        assert_eq!(
            CodeChallenge::parse(VERIFIER, Some("plain")),
            Err(PkceError::Method)
        );
        assert_eq!(
            CodeChallenge::parse(CHALLENGE, None),
            Err(PkceError::Method)
        );
        assert_eq!(
            CodeChallenge::parse(CHALLENGE, Some("s256")),
            Err(PkceError::Method)
        );
        for bad in [
            "",
            &CHALLENGE[..42],
            &format!("{CHALLENGE}A"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        ] {
            assert_eq!(
                CodeChallenge::parse(bad, Some("S256")),
                Err(PkceError::Challenge),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_verifiers_are_refused() {
        let challenge = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        for bad in [
            &VERIFIER[..42],
            &"a".repeat(129),
            "dBjftJeZ4CVP+mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "dBjftJeZ4CVP mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ] {
            assert_eq!(challenge.verify(bad), Err(PkceError::Verifier), "{bad}");
        }
    }
}
