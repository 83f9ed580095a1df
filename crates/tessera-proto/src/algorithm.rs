//! The JOSE signature algorithms (`alg`) tessera signs and verifies with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A signing algorithm, by its JOSE name. A client's JWTs are signed with one; the
/// key ring holds keys for the asymmetric ones; a verifier accepts a set of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519. Read under RFC 9864's fully specified name `Ed25519` too; always
    /// written `EdDSA`, the name every JOSE library knows.
    #[default]
    #[serde(rename = "EdDSA", alias = "Ed25519")]
    EdDSA,
    /// ECDSA with P-256 and SHA-256.
    #[serde(rename = "ES256")]
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    RS256,
    /// HMAC with SHA-256, with the shared secret from configuration; for a single
    /// resource service that holds the same secret. Its key is never generated,
    /// stored or published.
    #[serde(rename = "HS256")]
    HS256,
}

impl Algorithm {
    /// Every algorithm, asymmetric first.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::HS256,
    ];

    /// The algorithms with key pairs: generated, sealed at rest and published in
    /// the JWKS.
    pub const ASYMMETRIC: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

    /// The JOSE name (`alg`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
        }
    }

    /// Whether its keys are pairs (everything but HS256).
    pub const fn is_asymmetric(self) -> bool {
        !matches!(self, Algorithm::HS256)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 9864's name for EdDSA with Ed25519, which is the only EdDSA tessera signs
/// with: the same algorithm as `EdDSA` here.
pub const FULLY_SPECIFIED_ED25519: &str = "Ed25519";

/// A name that is none of [`Algorithm`]'s (names are case-sensitive, as in JOSE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown algorithm {:?} (EdDSA or Ed25519, ES256, RS256 or HS256)",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// The exact JOSE name, or `Ed25519` (RFC 9864) for EdDSA; anything else
    /// (another case, `none`) is refused.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name == FULLY_SPECIFIED_ED25519 {
            return Ok(Algorithm::EdDSA);
        }
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| UnknownAlgorithm(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip_through_str_display_and_json() {
        for algorithm in Algorithm::ALL {
            assert_eq!(algorithm.as_str().parse::<Algorithm>(), Ok(algorithm));
            assert_eq!(algorithm.to_string(), algorithm.as_str());
            let json = serde_json::to_string(&algorithm).unwrap();
            assert_eq!(json, format!("\"{}\"", algorithm.as_str()));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), algorithm);
        }
        assert_eq!(
            serde_json::to_string(&Algorithm::ALL).unwrap(),
            r#"["EdDSA","ES256","RS256","HS256"]"#
        );
    }

    #[test]
    fn the_fully_specified_ed25519_name_reads_as_eddsa_and_writes_as_eddsa() {
        assert_eq!("Ed25519".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
        let read: Algorithm = serde_json::from_str("\"Ed25519\"").unwrap();
        assert_eq!(read, Algorithm::EdDSA);
        assert_eq!(serde_json::to_string(&read).unwrap(), "\"EdDSA\"");
        assert!("ed25519".parse::<Algorithm>().is_err());
    }

    #[test]
    fn only_exact_names_parse() {
        for name in ["eddsa", "none", "HS384", "", " EdDSA"] {
            assert!(name.parse::<Algorithm>().is_err(), "{name:?}");
            assert!(serde_json::from_str::<Algorithm>(&format!("{name:?}")).is_err());
        }
        assert_eq!(Algorithm::default(), Algorithm::EdDSA);
        assert!(!Algorithm::HS256.is_asymmetric());
        assert!(Algorithm::ASYMMETRIC.iter().all(|a| a.is_asymmetric()));
    }
}
