//! Redeeming authorization codes (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is spent
//! by its first presentation, whatever comes of it, and is good only for the client,
//! redirect URI and PKCE verifier it was issued with, within its minute, while the
//! browser session it came from lasts. A code presented again revokes what its
//! exchange gave (RFC 6749 §4.1.2): someone else had it.

use std::sync::Arc;

use tessera_core::{AuthorizationCodeSecret, CodeChallenge, MAX_ACCESS_TTL, Timestamp};
use tessera_proto::scope::oidc;
use tessera_store::{
    Actor, AuthorizationCode, Client, CodeExchangeStore, CodeFollowUp, CreateSessionError,
    EndReason, EventKind, Redemption, RefreshStore, RevocationLog, Revoked, SessionClient,
};

use crate::services::audit::{Audit, event};
use crate::services::oauth::{OAuthError, default_audience};
use crate::services::refresh::{FamilyOf, FamilyTemplate};
use crate::services::sessions::{ActiveSession, SessionService};

/// What a token request presents with `grant_type=authorization_code`.
#[derive(Clone)]
pub struct CodeExchange {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// A code redeemed: the code, the live session it came from (whose user it speaks
/// for), and how starting its refresh family went, if one was asked for.
pub struct Redeemed {
    pub code: AuthorizationCode,
    pub session: Arc<ActiveSession>,
    pub family: Option<Result<(), CreateSessionError>>,
}

pub struct Codes {
    exchange: Arc<dyn CodeExchangeStore>,
    refresh: Arc<dyn RefreshStore>,
    log: Arc<dyn RevocationLog>,
    sessions: Arc<SessionService>,
    audit: Arc<Audit>,
}

const INVALID: &str = "the authorization code is invalid, expired or was issued to another client";

impl Codes {
    pub fn new(
        exchange: Arc<dyn CodeExchangeStore>,
        refresh: Arc<dyn RefreshStore>,
        log: Arc<dyn RevocationLog>,
        sessions: Arc<SessionService>,
        audit: Arc<Audit>,
    ) -> Self {
        Self {
            exchange,
            refresh,
            log,
            sessions,
            audit,
        }
    }

    /// The code `exchange` presents, spent, if `client` may have what it stands for,
    /// with the live browser session it came from. With `family`, the code's
    /// refresh family (its id chosen with the code) starts in the same write that
    /// spends the code, as does the record of the session for a client with a
    /// back-channel logout URI; both only when the code passes every check.
    /// `jkt`: the key the token request's DPoP proof was signed with, which a
    /// code bound by `dpop_jkt` must name.
    pub async fn redeem(
        &self,
        client: &Client,
        exchange: &CodeExchange,
        family: Option<FamilyTemplate>,
        jkt: Option<&str>,
    ) -> Result<Redeemed, OAuthError> {
        let secret = AuthorizationCodeSecret::parse(&exchange.code)
            .ok_or_else(|| OAuthError::invalid_grant(INVALID))?;
        let now = Timestamp::now();
        let plan = {
            let (client, exchange) = (client.clone(), exchange.clone());
            let jkt = jkt.map(str::to_owned);
            let absolute_lifetime = self.sessions.policy().absolute_lifetime;
            Box::new(move |code: &AuthorizationCode| {
                // The checks that follow, run first: a refused code starts nothing.
                if check(code, &client, &exchange, jkt.as_deref(), now).is_err() {
                    return CodeFollowUp::default();
                }
                CodeFollowUp {
                    session_client: client.code_flow.backchannel_logout_uri.is_some().then(|| {
                        SessionClient {
                            session: code.session,
                            client_id: client.id,
                            user: code.user,
                            forget_at: code.auth_time.saturating_add(absolute_lifetime),
                        }
                    }),
                    family: family.map(|template| {
                        template.family(FamilyOf {
                            id: code.family,
                            client_id: client.id,
                            user_id: code.user,
                            scopes: code.scopes.clone(),
                            audience: default_audience(&client, &code.scopes),
                            // Tied to the browser session unless granted offline.
                            session: (!code.scopes.contains(oidc::OFFLINE_ACCESS))
                                .then_some(code.session),
                        })
                    }),
                }
            })
        };
        let exchanged = self
            .exchange
            .exchange_code(&secret.hash(), now, plan)
            .await?;
        let code = match exchanged.redemption {
            Redemption::First(code) => code,
            Redemption::Unknown => return Err(OAuthError::invalid_grant(INVALID)),
            Redemption::Again(code) => {
                self.revoke_what_it_gave(&code, now).await?;
                return Err(OAuthError::invalid_grant(
                    "the authorization code was used already; what it gave is revoked",
                ));
            }
        };
        check(&code, client, exchange, jkt, now)?;
        // The session-client record was written before this check: should the
        // session end meanwhile, its log entry comes after the record, and the
        // client hears of it.
        let Some(session) = self.sessions.live(&code.session).await? else {
            if matches!(exchanged.family, Some(Ok(()))) {
                // Nobody holds its token; ended so that no listing shows it.
                self.refresh
                    .revoke_family(&code.family, None, EndReason::Logout, now)
                    .await?;
            }
            return Err(OAuthError::invalid_grant(
                "the sign-in session the code came from has ended",
            ));
        };
        Ok(Redeemed {
            code,
            session,
            family: exchanged.family,
        })
    }

    /// Ends the refresh family and the access token a code's exchange issued, under
    /// the ids chosen with the code. Harmless if the exchange never happened.
    async fn revoke_what_it_gave(
        &self,
        code: &AuthorizationCode,
        now: Timestamp,
    ) -> Result<(), OAuthError> {
        tracing::warn!(client = %code.client_id, user = %code.user, "an authorization code was replayed; what it gave is revoked");
        metrics::counter!("tessera_authorization_code_replays_total").increment(1);
        self.refresh
            .revoke_family(&code.family, None, EndReason::CodeReplay, now)
            .await?;
        self.log
            .append_revocation(
                Revoked::Token(code.jti.clone()),
                Some(code.user),
                EndReason::CodeReplay,
                now,
                now.saturating_add(MAX_ACCESS_TTL),
            )
            .await?;
        self.audit
            .record(
                event(EventKind::SessionEnded, Actor::System)
                    .user(code.user)
                    .target("session", code.family)
                    .detail(format!(
                        "an authorization code was presented again: what its exchange \
                         gave is revoked (client {})",
                        code.client_id
                    )),
            )
            .await;
        Ok(())
    }
}

/// Whether `client` may redeem `code` as `exchange` presents it, at `now`: the code
/// is its own, unexpired, for the same redirect URI and PKCE verifier. Spent all the
/// same when refused: another client's exchange that fails leaves the code spent,
/// so its own client's fails too, as it should after a leak.
fn check(
    code: &AuthorizationCode,
    client: &Client,
    exchange: &CodeExchange,
    jkt: Option<&str>,
    now: Timestamp,
) -> Result<(), OAuthError> {
    // Another client's code: it learns nothing of it.
    if code.client_id != client.id || code.expires_at <= now {
        return Err(OAuthError::invalid_grant(INVALID));
    }
    // A code bound to a key (RFC 9449 §10) is exchanged only with a proof of it:
    // a code stolen on its way back through the browser is useless.
    if let Some(bound) = &code.dpop_jkt
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::refused(
            tessera_proto::error::INVALID_DPOP_PROOF,
            "this code is bound to a key (dpop_jkt): exchange it with a DPoP proof signed by it",
        ));
    }
    // The authorization request always names its redirect URI, so the token
    // request must name the same (RFC 6749 §4.1.3).
    if exchange.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must be the one the authorization request gave",
        ));
    }
    match (
        code.code_challenge
            .as_deref()
            .and_then(CodeChallenge::from_stored),
        exchange.code_verifier.as_deref(),
    ) {
        (Some(challenge), Some(verifier)) => {
            let verified = challenge
                .verify(verifier)
                .map_err(|e| OAuthError::invalid_grant(e.to_string()))?;
            if !verified {
                return Err(OAuthError::invalid_grant(
                    "the code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is missing (the authorization request sent a code_challenge)",
            ));
        }
        // A verifier for a code issued without a challenge: a downgrade attempt
        // (RFC 9700 §2.1.1).
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier was sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    Ok(())
}
