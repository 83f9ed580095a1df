//! Error answers: the body `{"error": "<code>", "error_description": "<text>"}`
//! that tessera (and the gateway, in its own answers) sends, and the codes it
//! uses. The OAuth ones are RFC 6749 §5.2, RFC 6750 §3.1, RFC 8693 §2.2.2 and
//! RFC 7009 §2.2.1; the rest are tessera's own.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The request is malformed or missing something.
pub const INVALID_REQUEST: &str = "invalid_request";
/// Client authentication failed.
pub const INVALID_CLIENT: &str = "invalid_client";
/// The grant (credentials, refresh token, subject token) is invalid or has ended.
pub const INVALID_GRANT: &str = "invalid_grant";
/// The client may not use this grant or endpoint.
pub const UNAUTHORIZED_CLIENT: &str = "unauthorized_client";
/// The grant type is not one tessera knows.
pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
/// A scope asked for is malformed or not the client's.
pub const INVALID_SCOPE: &str = "invalid_scope";
/// The audience asked for is not the client's (token exchange).
pub const INVALID_TARGET: &str = "invalid_target";
/// The bearer token is missing, malformed, expired or revoked.
pub const INVALID_TOKEN: &str = "invalid_token";
/// RFC 9449 §5: the `DPoP` proof is missing a check, or not for this request.
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
/// RFC 9449 §8: the proof must carry the nonce the server gives in `DPoP-Nonce`.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// The bearer token lacks a scope the request needs.
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";
/// The token's sign-in was not strong enough for the request: its `acr` or
/// `amr` (RFC 9470 §3); the challenge says what is needed.
pub const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";
/// Try again shortly (comes with `Retry-After`).
pub const TEMPORARILY_UNAVAILABLE: &str = "temporarily_unavailable";
/// The authorization endpoint answers only `response_type=code` (RFC 6749 §4.1.2.1).
pub const UNSUPPORTED_RESPONSE_TYPE: &str = "unsupported_response_type";
/// The user (or tessera on their behalf) refused the authorization request.
pub const ACCESS_DENIED: &str = "access_denied";
/// `prompt=none`, but the user must sign in (OpenID Connect Core §3.1.2.6).
pub const LOGIN_REQUIRED: &str = "login_required";
/// `prompt=none`, but the user must consent.
pub const CONSENT_REQUIRED: &str = "consent_required";
/// A request object (`request`) was sent; tessera takes none.
pub const REQUEST_NOT_SUPPORTED: &str = "request_not_supported";
/// The `request_uri` is unknown, expired, used, or another client's (RFC 9126).
pub const INVALID_REQUEST_URI: &str = "invalid_request_uri";
/// The server failed.
pub const SERVER_ERROR: &str = "server_error";

/// No bearer token was sent (a resource service's answer, from `tessera-verify`).
pub const UNAUTHORIZED: &str = "unauthorized";
/// No valid session (tessera's own API).
pub const UNAUTHENTICATED: &str = "unauthenticated";
/// No such resource.
pub const NOT_FOUND: &str = "not_found";
/// The method is not allowed on this path.
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// The request took too long to arrive.
pub const REQUEST_TIMEOUT: &str = "request_timeout";
/// The request body is too large.
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// The request body's content type is not one this endpoint reads.
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";

/// The body of every error answer. Read, it owns its text (`ErrorBody<'static>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody<'a> {
    /// The code: one of this module's constants.
    pub error: Cow<'a, str>,
    /// Text for people; safe to show to the client.
    #[serde(default)]
    pub error_description: Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    pub fn new(error: impl Into<Cow<'a, str>>, description: impl Into<Cow<'a, str>>) -> Self {
        Self {
            error: error.into(),
            error_description: description.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_error_body_shape_is_pinned() {
        let body = ErrorBody::new(INVALID_GRANT, "the session has ended or expired");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"invalid_grant","error_description":"the session has ended or expired"}"#
        );
        let read: ErrorBody<'_> =
            serde_json::from_str(r#"{"error":"invalid_client","extra":1}"#).unwrap();
        assert_eq!(read, ErrorBody::new(INVALID_CLIENT, ""));
    }
}
