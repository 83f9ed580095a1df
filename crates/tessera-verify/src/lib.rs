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
pub mod binding;
mod claims;
pub mod dpop;
mod error;
mod jws;
mod keys;
#[cfg(feature = "remote")]
pub mod remote;
mod revocation;
mod verifier;

pub use binding::{Presented, ProofChecker, Scheme};
pub use claims::AccessClaims;
pub use error::{RevokedBy, VerifyError};
pub use keys::VerifyingKeys;
#[cfg(feature = "remote")]
pub use remote::{ClientCredentials, RemoteVerifier, SetupError, WhenStale};
pub use revocation::{RevocationEvent, RevocationSet};
/// The algorithms a [`Policy`] accepts: the wire's one enum. `none` and anything
/// else are refused.
pub use tessera_proto::Algorithm;
pub use verifier::{MAX_LEEWAY, Policy, Verifier};

#[cfg(test)]
mod tests;
