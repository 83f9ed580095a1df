//! `id_token_hint` (OpenID Connect Core §3.1.2.1, RP-Initiated Logout §2): an ID
//! token tessera issued, sent back by the app it was issued to as a hint of who is
//! (or was) signed in. Read at the authorization endpoint (the person it names is
//! the one who must be signed in) and at the end-session endpoint (the session it
//! names may end without a question).

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use tessera_core::ClientId;

use crate::services::keyring::KeyRing;

/// What a valid hint says.
pub struct IdTokenHint {
    /// The app it was issued to (its single audience).
    pub client: ClientId,
    /// The person, as ID tokens name them (`sub`).
    pub subject: String,
    /// The browser session it came from.
    pub sid: Option<String>,
}

#[derive(Deserialize)]
struct HintClaims {
    aud: serde_json::Value,
    sub: String,
    sid: Option<String>,
}

pub struct IdTokenHints {
    issuer: String,
    keys: Arc<KeyRing>,
}

impl IdTokenHints {
    pub fn new(issuer: String, keys: Arc<KeyRing>) -> Self {
        Self { issuer, keys }
    }

    /// `token` if it is an ID token this issuer signed with a key it still
    /// publishes, expired or not (a hint may be old), for one audience: `None`
    /// for anything else, an access token or a logout token included (their
    /// `typ` is not `JWT`).
    pub fn read(&self, token: &str) -> Option<IdTokenHint> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some("JWT") {
            return None;
        }
        let keys = self.keys.current();
        let set: JwkSet = serde_json::from_slice(&keys.jwks).ok()?;
        let jwk = set.find(header.kid.as_deref()?)?;
        let key = DecodingKey::from_jwk(jwk).ok()?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<HintClaims>(token, &key, &validation)
            .ok()?
            .claims;
        let client = match &claims.aud {
            serde_json::Value::String(aud) => ClientId::parse(aud),
            serde_json::Value::Array(auds) if auds.len() == 1 => {
                auds[0].as_str().and_then(ClientId::parse)
            }
            _ => None,
        }?;
        Some(IdTokenHint {
            client,
            subject: claims.sub,
            sid: claims.sid,
        })
    }
}
