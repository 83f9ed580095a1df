//! What tessera says about a token it issued (RFC 7662), and revoking one
//! (RFC 7009): the refresh store, the opaque-token store and its cache, and the
//! revocation log, reached from here only. A presented token is classified once
//! ([`PresentedToken`]) and looked up where that kind lives.

use std::sync::Arc;
use tessera_proto::error as codes;

use tessera_core::{ClientId, PresentedToken, Timestamp, UserId};
use tessera_store::{
    Client, EndReason, OpaqueToken, OpaqueTokenStore, RefreshFamily, RefreshStore, RevocationLog,
    Revoked,
};
use tessera_verify::{AccessClaims, VerifyError};

use crate::services::clients::{Clients, PresentedClient};
use crate::services::oauth::{OAuthError, authenticate};
use crate::services::own_tokens::OwnTokens;
use crate::services::presence::Presence;
use crate::services::refresh::family_of;

/// The scope a client needs to introspect tokens issued to other clients.
pub const INTROSPECT_SCOPE: &str = tessera_proto::scope::INTROSPECT;

/// How many opaque token records introspection keeps in memory.
const OPAQUE_CACHE_ENTRIES: usize = 100_000;

/// A live token, as introspection describes it.
pub enum Description {
    /// A refresh token: described only to the client it was issued to.
    Refresh(RefreshFamily),
    /// An access token (a JWT or an opaque one), by its claims.
    Access(AccessClaims),
}

pub struct Introspection {
    issuer: String,
    clients: Clients,
    own_tokens: Arc<OwnTokens>,
    presence: Arc<Presence>,
    refresh: Arc<dyn RefreshStore>,
    opaque: Arc<dyn OpaqueTokenStore>,
    /// Opaque token records by the SHA-256 of the token, so introspection needs no
    /// store read. Safe because a record never changes: its revocation comes
    /// through the revocation log (checked on every use), and this process's own
    /// revocations also evict the entry at once.
    opaque_cache: quick_cache::sync::Cache<[u8; 32], Arc<OpaqueToken>>,
    log: Arc<dyn RevocationLog>,
}

impl Introspection {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: String,
        clients: Clients,
        own_tokens: Arc<OwnTokens>,
        presence: Arc<Presence>,
        refresh: Arc<dyn RefreshStore>,
        opaque: Arc<dyn OpaqueTokenStore>,
        log: Arc<dyn RevocationLog>,
    ) -> Self {
        Self {
            issuer,
            clients,
            own_tokens,
            presence,
            refresh,
            opaque,
            opaque_cache: quick_cache::sync::Cache::new(OPAQUE_CACHE_ENTRIES),
            log,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The live token `token` is, or `None` for anything forged, expired, revoked
    /// or unknown (RFC 7662 §2.2: no further detail). Only confidential clients may
    /// ask, and only about their own tokens unless they have the `introspect`
    /// scope; refresh tokens are described only to the client they were issued to.
    pub async fn introspect(
        &self,
        presented: &PresentedClient,
        token: &str,
    ) -> Result<Option<Description>, OAuthError> {
        let client = authenticate(&self.clients, presented).await?;
        if client.secret_hash.is_none() {
            return Err(OAuthError::Forbidden {
                code: codes::UNAUTHORIZED_CLIENT,
                description: "introspection is for confidential clients".into(),
            });
        }
        metrics::counter!("tessera_introspections_total").increment(1);
        if !self.own_tokens.is_fresh() {
            return Err(OAuthError::Stale);
        }
        let (issued_to, description) = self.describe(&client, token).await?;
        // Other clients' tokens are described only to a client trusted with that
        // (a resource service checking the tokens it is sent); anything else learns
        // nothing, not even whether the token is live.
        if !client.scopes.contains(INTROSPECT_SCOPE) && issued_to != Some(client.id) {
            return Err(OAuthError::Forbidden {
                code: codes::INSUFFICIENT_SCOPE,
                description:
                    "introspecting tokens issued to other clients needs the introspect scope".into(),
            });
        }
        Ok(description)
    }

    /// The client a token was issued to (when it is one of ours, live or not) and
    /// its description if it is live.
    async fn describe(
        &self,
        client: &Client,
        token: &str,
    ) -> Result<(Option<ClientId>, Option<Description>), OAuthError> {
        match PresentedToken::classify(token) {
            PresentedToken::Malformed => Ok((None, None)),
            PresentedToken::Refresh(secret) => {
                let Some(family) = family_of(self.refresh.as_ref(), &secret).await? else {
                    return Ok((None, None));
                };
                let issued_to = Some(family.client_id);
                let live = family.expires_at > Timestamp::now() && !family.user.disabled;
                // Refresh tokens are described only to the client they were issued to.
                if !live || family.client_id != client.id {
                    return Ok((issued_to, None));
                }
                Ok((issued_to, Some(Description::Refresh(family))))
            }
            PresentedToken::Opaque(_) | PresentedToken::Jwt(_) => self.access(token).await,
        }
    }

    /// The claims of `token` if it is one of this issuer's access tokens, live and
    /// unrevoked, whatever its audience, with the client it was issued to (known
    /// also for a token that is no longer live). `Stale` while this instance cannot
    /// tell what was revoked.
    pub async fn access(
        &self,
        token: &str,
    ) -> Result<(Option<ClientId>, Option<Description>), OAuthError> {
        match PresentedToken::classify(token) {
            PresentedToken::Malformed | PresentedToken::Refresh(_) => Ok((None, None)),
            PresentedToken::Opaque(secret) => {
                let hash = secret.hash();
                let record = match self.opaque_cache.get(hash.as_bytes()) {
                    Some(record) => record,
                    None => {
                        let Some(record) = self.opaque.opaque_token(&hash).await? else {
                            return Ok((None, None));
                        };
                        let record = Arc::new(record);
                        self.opaque_cache.insert(*hash.as_bytes(), record.clone());
                        record
                    }
                };
                let issued_to = Some(record.client_id);
                if record.expires_at <= Timestamp::now() {
                    return Ok((issued_to, None));
                }
                let claims = self.claims_of(&record);
                if self
                    .own_tokens
                    .is_revoked(&claims)
                    .await
                    .map_err(|_| OAuthError::Stale)?
                {
                    return Ok((issued_to, None));
                }
                Ok((issued_to, Some(Description::Access(claims))))
            }
            PresentedToken::Jwt(token) => match self.own_tokens.verify(token).await {
                Ok(claims) => Ok((issued_client(&claims), Some(Description::Access(claims)))),
                Err(VerifyError::Stale) => Err(OAuthError::Stale),
                // Ours but not live (expired, revoked): whose it was still decides
                // who may ask.
                Err(_) => Ok((
                    self.own_tokens
                        .verify_signed(token)
                        .ok()
                        .and_then(|claims| issued_client(&claims)),
                    None,
                )),
            },
        }
    }

    /// An opaque token's record as the claims a JWT for it would carry.
    fn claims_of(&self, record: &OpaqueToken) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            sub: record.subject.clone(),
            aud: vec![
                record
                    .audience
                    .as_ref()
                    .map_or_else(|| self.issuer.clone(), |a| a.as_str().to_owned()),
            ],
            exp: record.expires_at.as_millis() / 1000,
            iat: Some(record.issued_at.as_millis() / 1000),
            nbf: None,
            jti: Some(record.jti.clone()),
            client_id: Some(record.client_id.to_string()),
            scope: (!record.scopes.is_empty()).then(|| record.scopes.to_string()),
            sid: record.session.map(|s| s.as_str().to_owned()),
            roles: record.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            acr: record.methods.map(|m| m.acr().to_owned()),
            amr: record
                .methods
                .map(|m| m.amr().into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
            cnf: record
                .dpop_jkt
                .as_ref()
                .map(|jkt| tessera_proto::Confirmation { jkt: jkt.clone() }),
            kid: None,
        }
    }

    /// Revokes a refresh token (its whole family, with the session it came from),
    /// an opaque token, or a JWT (by `jti`, for verifiers following the revocation
    /// feed). Per RFC 7009 §2.2 an unknown or invalid token is no error; a client
    /// may revoke only its own tokens (another's is refused with
    /// `unauthorized_client`, §2.1, and stays live). When this returns, this
    /// instance already refuses what it revoked (`OwnTokens` reads the log before
    /// its next answer); other instances follow the feed.
    pub async fn revoke(&self, presented: &PresentedClient, token: &str) -> Result<(), OAuthError> {
        let client = authenticate(&self.clients, presented).await?;
        let not_yours = || {
            OAuthError::refused(
                codes::UNAUTHORIZED_CLIENT,
                "this token was issued to another client; only that client may revoke it",
            )
        };
        let now = Timestamp::now();
        match PresentedToken::classify(token) {
            PresentedToken::Malformed => {}
            PresentedToken::Refresh(secret) => {
                if let Some(family) = family_of(self.refresh.as_ref(), &secret).await? {
                    if family.client_id != client.id {
                        return Err(not_yours());
                    }
                    self.refresh
                        .revoke_family(&family.id, Some(family.user.id), EndReason::Revoked, now)
                        .await?;
                    self.presence.forget(&[family.id]).await;
                    metrics::counter!("tessera_revocations_total", "kind" => "refresh")
                        .increment(1);
                }
            }
            PresentedToken::Opaque(secret) => {
                let hash = secret.hash();
                if let Some(record) = self.opaque.opaque_token(&hash).await? {
                    if record.client_id != client.id {
                        return Err(not_yours());
                    }
                    if self
                        .opaque
                        .revoke_opaque_token(&hash, &client.id, now)
                        .await?
                    {
                        // Before answering, so the next introspection here cannot
                        // find it cached.
                        self.opaque_cache.remove(hash.as_bytes());
                        metrics::counter!("tessera_revocations_total", "kind" => "opaque")
                            .increment(1);
                    }
                }
            }
            PresentedToken::Jwt(token) => {
                if let Ok(claims) = self.own_tokens.verify_signed(token) {
                    if issued_client(&claims) != Some(client.id) {
                        return Err(not_yours());
                    }
                    if let Some(jti) = claims.jti {
                        let expires = Timestamp::from_millis(claims.exp.saturating_mul(1000));
                        self.log
                            .append_revocation(
                                Revoked::Token(jti),
                                UserId::parse(&claims.sub),
                                EndReason::Revoked,
                                now,
                                expires,
                            )
                            .await?;
                        metrics::counter!("tessera_revocations_total", "kind" => "jwt")
                            .increment(1);
                    }
                }
            }
        }
        Ok(())
    }
}

fn issued_client(claims: &AccessClaims) -> Option<ClientId> {
    claims.client_id.as_deref().and_then(ClientId::parse)
}
