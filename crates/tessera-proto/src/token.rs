//! The answer of `POST /oauth2/token` (RFC 6749 §5.1, with RFC 8693 §2.2.1's
//! `issued_token_type` for a token exchange).

use serde::{Deserialize, Serialize};

/// A token endpoint answer. Absent members are left out when written and default
/// when read (a reader needs only `access_token`); `scope` is left out when empty
/// (no scope was granted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    #[serde(default)]
    pub token_type: String,
    #[serde(default)]
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OpenID Connect Core §3.1.3.3: for a code flow with the `openid` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_answer_is_written_in_rfc_6749_shape_and_read_back() {
        let answer = TokenResponse {
            access_token: "a.b.c".into(),
            token_type: "Bearer".into(),
            expires_in: 300,
            refresh_token: Some("trt_x".into()),
            scope: "read write".into(),
            ..TokenResponse::default()
        };
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            json,
            r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":300,"refresh_token":"trt_x","scope":"read write"}"#
        );
        assert_eq!(
            serde_json::from_str::<TokenResponse>(&json).unwrap(),
            answer
        );
        let exchanged = TokenResponse {
            issued_token_type: Some(crate::token_type::ACCESS_TOKEN_TYPE.into()),
            refresh_token: None,
            scope: String::new(),
            ..answer
        };
        assert_eq!(
            serde_json::to_string(&exchanged).unwrap(),
            r#"{"access_token":"a.b.c","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":300}"#
        );
        let minimal: TokenResponse = serde_json::from_str(r#"{"access_token":"t"}"#).unwrap();
        assert_eq!(minimal.expires_in, 0);
    }
}
