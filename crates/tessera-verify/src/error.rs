//! Why a token was refused.

/// What a token was refused for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedBy {
    /// Its session or refresh family (`sid`) ended.
    Session,
    /// It was revoked by `jti`.
    Token,
    /// Its signing key was retired.
    Key,
    /// Its subject was cut off: every token issued to them up to a time is refused.
    User,
    /// Its client was removed: every token issued to it up to a time is refused.
    Client,
}

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
    /// A token bound to a key (DPoP) presented as a bearer token: a copy being
    /// used without the key.
    #[error(
        "the token is bound to a key (DPoP): send it as Authorization: DPoP <token>, with a DPoP proof"
    )]
    BoundToKey,
    #[error("the token is not bound to a key: send it as Authorization: Bearer <token>")]
    NotBound,
    /// The DPoP proof a bound token came with was refused.
    #[error(transparent)]
    Proof(DpopError),
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
            VerifyError::BoundToKey => "bound_to_key",
            VerifyError::NotBound => "not_bound",
            VerifyError::Proof(error) => error.code(),
        }
    }

    /// Whether the fault is on the verifier's side (retry later) rather than the
    /// token's: such refusals are 503s, not 401s.
    pub fn is_temporary(&self) -> bool {
        matches!(self, VerifyError::Stale | VerifyError::Unavailable)
    }
}

/// Why a proof is refused; each is `invalid_dpop_proof` on the wire (§7.1),
/// except [`DpopError::UseNonce`] (`use_dpop_nonce`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    #[error("the DPoP proof has a duplicate JSON key")]
    DuplicateKey,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's algorithm is not accepted (ES256, EdDSA or RS256)")]
    AlgorithmNotAllowed,
    #[error(
        "the DPoP proof's jwk is missing, not a public key of its algorithm, or holds a private key"
    )]
    BadKey,
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    #[error("the DPoP proof has no {0} claim")]
    MissingClaim(&'static str),
    #[error("the DPoP proof is for another HTTP method")]
    WrongMethod,
    #[error("the DPoP proof is for another URL")]
    WrongUrl,
    #[error("the DPoP proof was not made just now (iat)")]
    NotFresh,
    #[error("the DPoP proof is not for this access token (ath)")]
    WrongTokenHash,
    #[error("the DPoP proof must carry the nonce this server gave")]
    UseNonce,
    #[error("the DPoP proof was used already")]
    Replayed,
    #[error("a token bound to a key needs a DPoP proof: send one in the DPoP header")]
    Missing,
    #[error("the DPoP proof is signed by another key than the one the token is bound to")]
    WrongKey,
}

impl DpopError {
    /// The error code on the wire (§7.1): `use_dpop_nonce` when the server wants
    /// its nonce, `invalid_dpop_proof` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            DpopError::UseNonce => tessera_proto::error::USE_DPOP_NONCE,
            _ => tessera_proto::error::INVALID_DPOP_PROOF,
        }
    }
}
