//! ID tokens (OpenID Connect Core §2): what the code flow tells the client about the
//! sign-in, signed with the client's ID-token algorithm (RS256 unless it chose
//! ES256 or EdDSA) by the key ring's current key for it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};
use tessera_core::{AuthMethods, Scopes, SessionId, Timestamp};
use tessera_proto::Algorithm;
use tessera_proto::scope::oidc;
use tessera_store::{Client, Profile, User};

use crate::services::tokens::{IssueError, TokenIssuer};

/// What an ID token is about.
pub struct IdTokenRequest<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    /// Read only when the scopes ask for profile or email claims.
    pub profile: Option<&'a Profile>,
    pub scopes: &'a Scopes,
    /// The browser session: `sid`, as back-channel logout names it.
    pub session: &'a SessionId,
    pub auth_time: Timestamp,
    /// How the user proved who they are in the session: `amr` and `acr`.
    pub methods: AuthMethods,
    pub nonce: Option<&'a str>,
    /// The access token issued beside it, for `at_hash`.
    pub access_token: &'a str,
}

/// The claims (Core §2, §5.1). `amr` and `acr` say how the session's user proved
/// who they are (see `tessera_core::AuthMethods`).
#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    sid: &'a str,
    azp: String,
    amr: Vec<&'static str>,
    acr: &'static str,
    at_hash: String,
    #[serde(flatten)]
    profile: ProfileClaims<'a>,
}

/// The standard claims the scopes allow (Core §5.4), in ID tokens and userinfo.
#[derive(Serialize, Default)]
pub struct ProfileClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl<'a> ProfileClaims<'a> {
    /// `profile` gives the name, username and when they changed; `email` the
    /// address and whether it is verified. A claim with no value is left out.
    pub fn of(scopes: &Scopes, user: &'a User, profile: Option<&'a Profile>) -> Self {
        let mut claims = Self::default();
        if scopes.contains(oidc::PROFILE) {
            claims.preferred_username = Some(user.username.as_str());
            claims.name = profile.and_then(|p| p.name.as_ref()).map(|n| n.as_str());
            claims.updated_at = Some(
                profile
                    .and_then(|p| p.updated_at)
                    .unwrap_or(user.created_at)
                    .as_millis()
                    / 1000,
            );
        }
        if scopes.contains(oidc::EMAIL)
            && let Some(email) = profile.and_then(|p| p.email.as_ref())
        {
            claims.email = Some(email.as_str());
            claims.email_verified = profile.map(|p| p.email_verified);
        }
        claims
    }
}

/// `at_hash` (Core §3.1.3.6): the left half of the access token's hash, with the
/// hash of the ID token's algorithm: SHA-256 for RS256 and ES256, SHA-512 for
/// Ed25519 (as its signature uses).
fn at_hash(algorithm: Algorithm, access_token: &str) -> String {
    let digest: Vec<u8> = match algorithm {
        Algorithm::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Signs an ID token for `request`, valid as long as the client's access tokens.
pub fn issue(tokens: &TokenIssuer, request: &IdTokenRequest<'_>) -> Result<String, IssueError> {
    let algorithm = request.client.code_flow.id_token_algorithm;
    let iat = Timestamp::now().as_millis() / 1000;
    let ttl = i64::try_from(request.client.access_ttl.as_secs()).unwrap_or(i64::MAX);
    let claims = IdClaims {
        iss: tokens.issuer(),
        sub: request.user.id.to_string(),
        aud: request.client.id.to_string(),
        exp: iat.saturating_add(ttl),
        iat,
        auth_time: request.auth_time.as_millis() / 1000,
        nonce: request.nonce,
        sid: request.session.as_str(),
        azp: request.client.id.to_string(),
        amr: request.methods.amr(),
        acr: request.methods.acr(),
        at_hash: at_hash(algorithm, request.access_token),
        profile: ProfileClaims::of(request.scopes, request.user, request.profile),
    };
    let token = sign(tokens, algorithm, "JWT", &claims)?;
    metrics::counter!("tessera_tokens_issued_total", "kind" => "id_token").increment(1);
    Ok(token)
}

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4): like an ID token's
/// but with `events` and never a `nonce`.
#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    sid: &'a str,
    events: serde_json::Value,
}

/// How long a logout token is good for: its delivery is immediate, retries sign anew.
const LOGOUT_TOKEN_SECONDS: i64 = 120;

/// Signs the logout token telling `client` that `user`'s session `session` ended,
/// with the client's ID-token algorithm and `typ: logout+jwt` (§2.4, so that it can
/// never pass for an ID token).
pub fn logout_token(
    tokens: &TokenIssuer,
    client: &Client,
    user: &tessera_core::UserId,
    session: &SessionId,
) -> Result<String, IssueError> {
    let iat = Timestamp::now().as_millis() / 1000;
    let claims = LogoutClaims {
        iss: tokens.issuer(),
        sub: user.to_string(),
        aud: client.id.to_string(),
        iat,
        exp: iat + LOGOUT_TOKEN_SECONDS,
        jti: crate::services::tokens::random_id(),
        sid: session.as_str(),
        events: serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} }),
    };
    sign(
        tokens,
        client.code_flow.id_token_algorithm,
        "logout+jwt",
        &claims,
    )
}

/// A compact JWS of `claims` by the key ring's current key for `algorithm`.
fn sign(
    tokens: &TokenIssuer,
    algorithm: Algorithm,
    typ: &str,
    claims: &impl Serialize,
) -> Result<String, IssueError> {
    let keys = tokens.keys().current();
    let key = keys.signer(algorithm).ok_or(IssueError::NoKey(algorithm))?;
    let header = serde_json::json!({ "alg": algorithm.as_str(), "typ": typ, "kid": key.kid() });
    let payload = serde_json::to_vec(claims).map_err(|_| IssueError::Sign)?;
    key.sign_jws(header.to_string().as_bytes(), &payload)
        .map_err(|_| IssueError::Sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core's example (§A.3): at_hash of this token is 77QmUPtjPfzWtF2AnpK9RQ.
        assert_eq!(
            at_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(Algorithm::EdDSA, "x").len(), 43);
    }
}
