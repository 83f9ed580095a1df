//! Issuing access tokens: RFC 9068 JWTs signed by the key ring's current signer for
//! the client's algorithm (or the configured HS256 secret).

use std::sync::Arc;

use serde::Serialize;
use tessera_core::{
    AccessTokenSecret, Audience, AuthMethods, Roles, Scopes, SessionId, Timestamp, TokenFormat,
};
use tessera_keys::HmacKey;
use tessera_proto::{Algorithm, Confirmation};
use tessera_store::{Client, OpaqueToken, OpaqueTokenStore, StoreError, User};

use crate::services::keyring::KeyRing;

/// Who a token speaks for.
pub enum Subject<'a> {
    /// A user, through a client (password grant, refresh, token exchange).
    User {
        user: &'a User,
        session: Option<SessionId>,
        /// How the user proved who they are, when a sign-in is behind the token
        /// (its `amr` and `acr`); `None` for a refresh family that outlives its
        /// sign-in (`offline_access`).
        methods: Option<AuthMethods>,
    },
    /// The client itself (client credentials).
    Client,
}

pub struct TokenRequest<'a> {
    pub client: &'a Client,
    pub subject: Subject<'a>,
    /// `None`: the token is for tessera itself (the issuer is the audience).
    pub audience: Option<&'a Audience>,
    pub scopes: &'a Scopes,
    /// The `jti` to give the token, when it was chosen beforehand (a code's
    /// exchange, so that a replay of the code can revoke it); a new one otherwise.
    pub jti: Option<&'a str>,
    /// The thumbprint of the key the client proved it holds (DPoP): the token
    /// is bound to it (`cnf.jkt`).
    pub jkt: Option<&'a str>,
}

pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: u64,
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no signing key is available for {0}")]
    NoKey(Algorithm),
    #[error("signing failed")]
    Sign,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The claims of an access token (RFC 9068 §2.2), with `sid` and `roles` when a user
/// session is behind it.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    amr: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'static str>,
    /// RFC 9449 §6.1: the key a DPoP-bound token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// Tokens over this size are likely to be cut by a proxy's header limit.
pub const LARGE_TOKEN_BYTES: usize = 4096;

pub struct TokenIssuer {
    issuer: String,
    keys: Arc<KeyRing>,
    hmac: Option<HmacKey>,
    opaque: Arc<dyn OpaqueTokenStore>,
}

impl TokenIssuer {
    pub fn new(
        issuer: String,
        keys: Arc<KeyRing>,
        hmac: Option<HmacKey>,
        opaque: Arc<dyn OpaqueTokenStore>,
    ) -> Self {
        Self {
            issuer,
            keys,
            hmac,
            opaque,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub async fn issue(&self, request: &TokenRequest<'_>) -> Result<IssuedToken, IssueError> {
        if request.client.token_format == TokenFormat::Opaque {
            return self.issue_opaque(request).await;
        }
        self.issue_jwt(request)
    }

    /// A `tat_…` handle; what it stands for is kept in the store for introspection.
    async fn issue_opaque(&self, request: &TokenRequest<'_>) -> Result<IssuedToken, IssueError> {
        let client = request.client;
        let secret = AccessTokenSecret::generate();
        let now = Timestamp::now();
        let ttl = client.access_ttl;
        let (subject, user, session, roles, methods) = match &request.subject {
            Subject::User {
                user,
                session,
                methods,
            } => (
                user.id.to_string(),
                Some(user.id),
                *session,
                user.roles.clone(),
                *methods,
            ),
            Subject::Client => (client.id.to_string(), None, None, Roles::default(), None),
        };
        let jti = request.jti.map_or_else(random_id, str::to_owned);
        self.opaque
            .store_opaque_token(OpaqueToken {
                hash: secret.hash(),
                jti: jti.clone(),
                client_id: client.id,
                subject,
                user,
                scopes: request.scopes.clone(),
                audience: request.audience.cloned(),
                session,
                roles,
                methods,
                dpop_jkt: request.jkt.map(str::to_owned),
                issued_at: now,
                expires_at: now.saturating_add(ttl),
            })
            .await?;
        metrics::counter!("tessera_tokens_issued_total", "kind" => "access_opaque").increment(1);
        Ok(IssuedToken {
            access_token: secret.expose(),
            expires_in: ttl.as_secs(),
            jti,
        })
    }

    fn issue_jwt(&self, request: &TokenRequest<'_>) -> Result<IssuedToken, IssueError> {
        let client = request.client;
        let now = Timestamp::now();
        let iat = now.as_millis() / 1000;
        let ttl = client.access_ttl.as_secs();
        let jti = request.jti.map_or_else(random_id, str::to_owned);
        let scope = request.scopes.to_string();
        let (sub, sid, roles, methods) = match &request.subject {
            Subject::User {
                user,
                session,
                methods,
            } => (
                user.id.to_string(),
                session.as_ref().map(SessionId::as_str),
                user.roles.iter().map(|r| r.as_str()).collect(),
                *methods,
            ),
            Subject::Client => (client.id.to_string(), None, Vec::new(), None),
        };
        let claims = AccessClaims {
            iss: &self.issuer,
            sub,
            aud: request
                .audience
                .map_or(self.issuer.as_str(), Audience::as_str),
            exp: iat.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iat,
            jti: &jti,
            client_id: client.id.to_string(),
            scope: &scope,
            sid,
            roles,
            amr: methods.map(AuthMethods::amr).unwrap_or_default(),
            acr: methods.map(AuthMethods::acr),
            cnf: request.jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        let claims = serde_json::to_vec(&claims).map_err(|_| IssueError::Sign)?;
        let access_token = match client.algorithm {
            Algorithm::HS256 => self
                .hmac
                .as_ref()
                .ok_or(IssueError::NoKey(Algorithm::HS256))?
                .sign_access_token(&claims),
            algorithm => {
                let keys = self.keys.current();
                let key = keys.signer(algorithm).ok_or(IssueError::NoKey(algorithm))?;
                key.sign_access_token(&claims)
                    .map_err(|_| IssueError::Sign)?
            }
        };
        if access_token.len() > LARGE_TOKEN_BYTES {
            tracing::warn!(
                bytes = access_token.len(),
                client = %client.id,
                "issued an access token over 4 KB; proxies may refuse it"
            );
            metrics::counter!("tessera_large_tokens_total").increment(1);
        }
        metrics::counter!("tessera_tokens_issued_total", "kind" => "access_jwt").increment(1);
        Ok(IssuedToken {
            access_token,
            expires_in: ttl,
            jti,
        })
    }
}

/// A token id: 128 random bits, base64url.
pub fn random_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tessera_core::random_bytes::<16>())
}

/// The tokens of the token cookie (`POST /v1/session/token`): issued for a browser
/// session, as the in-memory client `ClientId::web_session`, so that they carry the
/// session as `sid` and end with it.
pub struct SessionTokens {
    issuer: Arc<TokenIssuer>,
    client: Client,
}

impl SessionTokens {
    pub fn new(issuer: Arc<TokenIssuer>, client: Client) -> Self {
        Self { issuer, client }
    }

    pub async fn issue(
        &self,
        session: &crate::services::sessions::ActiveSession,
    ) -> Result<IssuedToken, IssueError> {
        let issued = self
            .issuer
            .issue(&TokenRequest {
                client: &self.client,
                subject: Subject::User {
                    user: session.user(),
                    session: Some(*session.id()),
                    methods: Some(session.methods()),
                },
                audience: self.client.audiences.first(),
                scopes: &self.client.scopes,
                jti: None,
                jkt: None,
            })
            .await?;
        metrics::counter!("tessera_session_tokens_total").increment(1);
        Ok(issued)
    }

    /// How long they live.
    pub fn ttl(&self) -> std::time::Duration {
        self.client.access_ttl
    }
}
