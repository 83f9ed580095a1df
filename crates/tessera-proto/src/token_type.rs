//! What tokens are called on the wire: the token-type and grant-type URNs of
//! token exchange (RFC 8693), the JWT `typ` of access tokens (RFC 9068), the
//! `token_type` of token and introspection answers, and the prefixes of tessera's
//! opaque secrets.

/// The grant type of token exchange (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type of an access token (RFC 8693 §3): what token exchange issues.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The token type of a tessera session (its cookie's value), the subject token the
/// gateway exchanges.
pub const SESSION_TOKEN_TYPE: &str = "urn:tessera:params:oauth:token-type:session";

/// The JWS `typ` of tessera's access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_JWT_TYPE: &str = "at+jwt";

/// The `token_type` of an access token in token and introspection answers.
pub const BEARER: &str = "Bearer";
/// RFC 9449 §5: an access token bound to the client's DPoP key.
pub const DPOP: &str = "DPoP";
/// The request header that carries a DPoP proof (RFC 9449 §4.1), as `http`
/// names headers (lower case).
pub const DPOP_HEADER: &str = "dpop";
/// The response header with the nonce a server wants in the next proof (§8).
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";

/// The `token_type` of a refresh token in an introspection answer.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// The `token_type_hint` (RFC 7662 §2.1) for an access token.
pub const ACCESS_TOKEN_HINT: &str = "access_token";

/// The prefix of a refresh token (`trt_` and 43 base64url characters).
pub const REFRESH_TOKEN_PREFIX: &str = "trt_";

/// The prefix of an opaque access token (`tat_` and 43 base64url characters),
/// which only its issuer can describe (by introspection).
pub const OPAQUE_ACCESS_TOKEN_PREFIX: &str = "tat_";
