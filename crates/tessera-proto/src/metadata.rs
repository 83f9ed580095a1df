//! The authorization server metadata (RFC 8414 §2), served at
//! `/.well-known/oauth-authorization-server` and, the same document, as OpenID
//! Connect Discovery 1.0's `/.well-known/openid-configuration`; `tessera-verify`
//! reads it to find the keys, the revocation feed and introspection. Lists of names are strings, not
//! this crate's enums, so that a reader is not broken by a value it does not know
//! (another issuer's `PS256`, a grant tessera does not offer).

use serde::{Deserialize, Serialize};

/// The metadata document. Members tessera does not publish are left out, except
/// `response_types_supported`, which RFC 8414 requires.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// OpenID Connect's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// RFC 9126's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// OpenID Connect RP-Initiated Logout 1.0's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// tessera's extension: the revocation feed `tessera-verify` follows;
    /// `{issuer}/v1/revocations` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_feed_endpoint: Option<String>,
    /// tessera's extension: where resource services report the sessions they saw;
    /// `{issuer}/v1/activity` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9068's member: the algorithms access tokens may be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_token_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: every authorization response carries `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// OpenID Connect Discovery's (`public`: `sub` is the user's id, the same for
    /// every client).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_values_supported: Vec<String>,
    /// The `acr` values issued, weakest first (`1`: one factor, `2`: two).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values_supported: Vec<String>,
    /// RFC 9449 §5.1: the algorithms a DPoP proof may be signed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_parameter_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    /// RFC 9126: whether every client must push its requests (per client here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// OpenID Connect Back-Channel Logout 1.0's: logout tokens are sent, with `sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
}

/// Client authentication at an endpoint (RFC 8414 §2, from the IANA registry).
pub mod auth_method {
    pub const CLIENT_SECRET_BASIC: &str = "client_secret_basic";
    pub const CLIENT_SECRET_POST: &str = "client_secret_post";
    /// A public client, which sends its id alone.
    pub const NONE: &str = "none";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_document_leaves_out_what_is_not_published() {
        let minimal = ServerMetadata {
            issuer: "https://id.example".into(),
            jwks_uri: "https://id.example/.well-known/jwks.json".into(),
            ..ServerMetadata::default()
        };
        assert_eq!(
            serde_json::to_string(&minimal).unwrap(),
            r#"{"issuer":"https://id.example","jwks_uri":"https://id.example/.well-known/jwks.json","response_types_supported":[]}"#
        );
    }

    #[test]
    fn a_reader_takes_members_it_knows_and_values_it_does_not() {
        let read: ServerMetadata = serde_json::from_str(
            r#"{"issuer":"https://a","jwks_uri":"https://a/k","token_endpoint":"https://a/t",
                "access_token_signing_alg_values_supported":["PS256"],"frobnicate":1}"#,
        )
        .unwrap();
        assert_eq!(read.token_endpoint.as_deref(), Some("https://a/t"));
        assert_eq!(read.access_token_signing_alg_values_supported, ["PS256"]);
        assert_eq!(read.revocation_feed_endpoint, None);
    }
}
