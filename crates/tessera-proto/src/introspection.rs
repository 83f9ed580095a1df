//! The answer of `POST /oauth2/introspect` (RFC 7662 §2.2), as tessera gives it:
//! `{"active": false}` for anything not live, otherwise the token's claims with
//! `active` and `token_type` (`Bearer` for an access token, `DPoP` for one
//! bound to a key, with its `cnf`, `refresh_token` for a
//! refresh token, which also has `username`).

use serde::{Deserialize, Serialize};

/// An audience: one string when the token has one (as tessera's do), else a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// One audience as a string, several as a list.
    pub fn from_list(mut audiences: Vec<String>) -> Self {
        match audiences.len() {
            1 => OneOrMany::One(audiences.remove(0)),
            _ => OneOrMany::Many(audiences),
        }
    }

    pub fn into_list(self) -> Vec<String> {
        match self {
            OneOrMany::One(audience) => vec![audience],
            OneOrMany::Many(audiences) => audiences,
        }
    }
}

/// An introspection answer. Members absent from a token are left out, and they are
/// written in this order (sorted), as the endpoint always has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introspection {
    pub active: bool,
    /// How strongly the token's user proved who they are (`tessera_proto::acr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How they proved it (RFC 8176).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<OneOrMany>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6.2): a resource
    /// server checks the request's proof against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::Confirmation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Space-separated; present (perhaps empty) for a refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// [`BEARER`](crate::token_type::BEARER), [`DPOP`](crate::token_type::DPOP)
    /// for an access token bound to a key, or
    /// [`REFRESH_TOKEN`](crate::token_type::REFRESH_TOKEN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// A refresh token's user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl Introspection {
    /// `{"active": false}`: forged, expired, revoked, unknown, or not the asker's
    /// to know, with no further detail (RFC 7662 §2.2).
    pub fn inactive() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_inactive_answer_is_pinned() {
        assert_eq!(
            serde_json::to_string(&Introspection::inactive()).unwrap(),
            r#"{"active":false}"#
        );
    }

    #[test]
    fn an_access_token_answer_is_pinned() {
        let answer = Introspection {
            active: true,
            aud: Some(OneOrMany::from_list(vec!["orders".into()])),
            client_id: Some("app".into()),
            exp: Some(1_800_000_300),
            iat: Some(1_800_000_000),
            iss: Some("https://id.example".into()),
            jti: Some("jti-1".into()),
            roles: vec!["admin".into()],
            scope: Some("read write".into()),
            sid: Some("sid-1".into()),
            sub: Some("user-1".into()),
            token_type: Some(crate::token_type::BEARER.into()),
            ..Introspection::default()
        };
        let json = r#"{"active":true,"aud":"orders","client_id":"app","exp":1800000300,"iat":1800000000,"iss":"https://id.example","jti":"jti-1","roles":["admin"],"scope":"read write","sid":"sid-1","sub":"user-1","token_type":"Bearer"}"#;
        assert_eq!(serde_json::to_string(&answer).unwrap(), json);
        assert_eq!(serde_json::from_str::<Introspection>(json).unwrap(), answer);
        let two = Introspection {
            aud: Some(OneOrMany::from_list(vec!["a".into(), "b".into()])),
            ..Introspection::default()
        };
        assert_eq!(
            serde_json::to_string(&two).unwrap(),
            r#"{"active":false,"aud":["a","b"]}"#
        );
    }

    #[test]
    fn a_refresh_token_answer_is_pinned() {
        let answer = Introspection {
            active: true,
            client_id: Some("app".into()),
            exp: Some(1_800_086_400),
            iat: Some(1_800_000_000),
            iss: Some("https://id.example".into()),
            scope: Some(String::new()),
            sid: Some("fam-1".into()),
            sub: Some("user-1".into()),
            token_type: Some(crate::token_type::REFRESH_TOKEN.into()),
            username: Some("erin".into()),
            ..Introspection::default()
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"active":true,"client_id":"app","exp":1800086400,"iat":1800000000,"iss":"https://id.example","scope":"","sid":"fam-1","sub":"user-1","token_type":"refresh_token","username":"erin"}"#
        );
    }
}
