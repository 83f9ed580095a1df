//! The token endpoint's decisions (RFC 6749 §4, RFC 8693, RFC 8707): which client
//! asks, whether it may use the grant, which scopes and audience it gets, and the
//! tokens it is given. The route parses the form into a [`GrantRequest`]; everything
//! past that is decided here.

use std::net::IpAddr;
use std::sync::Arc;
use tessera_proto::error as codes;

use tessera_core::{
    Audience, AuthMethods, GrantType, Password, Scopes, SessionSecret, Timestamp, UserId, Username,
};
use tessera_store::{Actor, Client, EventKind, User};

use tessera_proto::scope::oidc;

use crate::config::MfaPolicy;
use crate::services::accounts::{Accounts, LoginError};
use crate::services::audit::{Audit, event};
use crate::services::clients::{Clients, PresentedClient};
use crate::services::codes::{CodeExchange, Codes, Redeemed};
use crate::services::dpop::DpopProofs;
use crate::services::id_tokens::{self, IdTokenRequest};
use crate::services::oauth::{OAuthError, authenticate, default_audience};
use crate::services::presence::Presence;
use crate::services::refresh::{FamilyStart, RefreshError, RefreshTokens};
use crate::services::second_factor::SecondFactors;
use crate::services::sessions::{ActiveSession, SessionService};
use crate::services::throttle::Throttle;
use crate::services::tokens::{IssueError, IssuedToken, Subject, TokenIssuer, TokenRequest};

/// A token request, parsed: one variant a grant type, each with what it needs.
/// `scope: None` is a request that names no scope (it gets the defaults);
/// `Some(empty)` asks for none. `target` is the `audience` or `resource` asked for.
pub enum GrantRequest {
    ClientCredentials {
        scope: Option<Scopes>,
        target: Option<String>,
    },
    Password {
        username: Username,
        password: Password,
        scope: Option<Scopes>,
        target: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<Scopes>,
    },
    /// A code from the authorization endpoint (RFC 6749 §4.1.3).
    AuthorizationCode(CodeExchange),
    /// A live browser session exchanged for an access token (RFC 8693).
    TokenExchange {
        session: SessionSecret,
        scope: Option<Scopes>,
        target: Option<String>,
    },
}

/// What a grant gives: the answer of RFC 6749 §5.1.
pub struct Granted {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    /// For a code flow with the `openid` scope.
    pub id_token: Option<String>,
    pub scopes: Scopes,
    /// Set for a token exchange (RFC 8693 §2.2.1).
    pub exchanged: bool,
    /// The access token is bound to a DPoP key (`token_type: DPoP`).
    pub bound: bool,
}

pub struct Grants {
    dpop: Arc<DpopProofs>,
    clients: Clients,
    codes: Codes,
    accounts: Accounts,
    sessions: Arc<SessionService>,
    refresh: Arc<RefreshTokens>,
    presence: Arc<Presence>,
    tokens: Arc<TokenIssuer>,
    throttle: Arc<Throttle>,
    audit: Arc<Audit>,
    second_factors: Arc<SecondFactors>,
    mfa: MfaPolicy,
}

impl Grants {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        clients: Clients,
        codes: Codes,
        accounts: Accounts,
        sessions: Arc<SessionService>,
        refresh: Arc<RefreshTokens>,
        presence: Arc<Presence>,
        tokens: Arc<TokenIssuer>,
        throttle: Arc<Throttle>,
        audit: Arc<Audit>,
        second_factors: Arc<SecondFactors>,
        mfa: MfaPolicy,
        dpop: Arc<DpopProofs>,
    ) -> Self {
        Self {
            dpop,
            mfa,
            second_factors,
            clients,
            codes,
            accounts,
            sessions,
            refresh,
            presence,
            tokens,
            throttle,
            audit,
        }
    }

    /// The DPoP nonce token answers carry, when the server asks for nonces.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.nonce()
    }

    /// Decides a token request for `grant` from `address`: the client
    /// authenticated first, then allowed the grant type, then the grant itself.
    /// `request` comes parsed from the edge, but a refusal of its parameters is
    /// told only to a client that is authenticated and may use the grant type: a
    /// caller learns nothing about a grant it may not use.
    pub async fn grant(
        &self,
        presented: &PresentedClient,
        grant: GrantType,
        request: Result<GrantRequest, OAuthError>,
        address: IpAddr,
        proof: Option<&str>,
    ) -> Result<Granted, OAuthError> {
        let client = authenticate(&self.clients, presented).await?;
        if !client.grants.contains(&grant) {
            return Err(OAuthError::refused(
                codes::UNAUTHORIZED_CLIENT,
                format!("this client may not use the {} grant", grant.as_str()),
            ));
        }
        // Checked (and its jti spent) before the grant, so that a refused proof
        // spends no code or refresh token.
        let jkt = self.dpop.bind(proof).await?;
        let jkt = jkt.as_deref();
        if jkt.is_none() && client.dpop_bound_access_tokens {
            return Err(OAuthError::refused(
                codes::INVALID_DPOP_PROOF,
                "this client's access tokens must be bound to its key: send a DPoP proof \
                 (RFC 9449) with every token request",
            ));
        }
        let granted = match request? {
            GrantRequest::ClientCredentials { scope, target } => {
                let scopes = granted_scopes(&client.scopes, client.scopes.defaults(), scope)?;
                let audience = self.granted_audience(&client, &scopes, target.as_deref())?;
                let issued = self
                    .issue(
                        &client,
                        Subject::Client,
                        audience.as_ref(),
                        &scopes,
                        None,
                        jkt,
                    )
                    .await?;
                Granted::new(issued, scopes, None)
            }
            GrantRequest::Password {
                username,
                password,
                scope,
                target,
            } => {
                let scopes = granted_scopes(&client.scopes, client.scopes.defaults(), scope)?;
                let audience = self.granted_audience(&client, &scopes, target.as_deref())?;
                let user = self
                    .password_user(&client, &username, password, address)
                    .await?;
                // A client allowed to refresh gets a family; its id is the tokens' sid.
                let (refresh_token, sid) = if client.grants.contains(&GrantType::RefreshToken) {
                    let (token, family) = self
                        .refresh
                        .start(&client, &user, &scopes, audience.as_ref(), jkt)
                        .await
                        .map_err(refresh_error)?;
                    self.presence.observe(family, user.id, Timestamp::now());
                    (Some(token.expose()), Some(family))
                } else {
                    (None, None)
                };
                let subject = Subject::User {
                    user: &user,
                    session: sid,
                    methods: Some(AuthMethods::password()),
                };
                let issued = self
                    .issue(&client, subject, audience.as_ref(), &scopes, None, jkt)
                    .await?;
                Granted::new(issued, scopes, refresh_token)
            }
            GrantRequest::RefreshToken {
                refresh_token,
                scope,
            } => {
                // RFC 6749 §6: a refresh may narrow the scope, never widen it; checked
                // before the token is spent, as is the key of a bound family (a
                // thief holding the token alone spends nothing).
                let family = match self.refresh.peek(&client, &refresh_token, jkt).await {
                    Ok(family) => family,
                    Err(RefreshError::Leaked(family)) => {
                        self.presence.forget(&[family]).await;
                        return Err(refresh_error(RefreshError::Leaked(family)));
                    }
                    Err(error) => return Err(refresh_error(error)),
                };
                // A family exchanged from a sign-in lasts as long as it: refused at
                // once when it ended, though its revocation may not be logged yet.
                let sign_in = match &family.session {
                    Some(session) => match self.sessions.live(session).await? {
                        Some(live) => Some(live.methods()),
                        None => {
                            return Err(OAuthError::invalid_grant(
                                "the sign-in session this refresh token came from has ended",
                            ));
                        }
                    },
                    // A family of its own (the password grant's, `offline_access`)
                    // does not record how it began: its tokens carry no `amr`.
                    None => None,
                };
                // Absent, it is the scope of the grant, as first asked for (§6).
                let scopes = granted_scopes(&family.scopes, family.scopes.clone(), scope)?;
                let (family, next) = self
                    .refresh
                    .rotate(&client, &refresh_token)
                    .await
                    .map_err(refresh_error)?;
                self.presence
                    .observe(family.id, family.user.id, Timestamp::now());
                let subject = Subject::User {
                    user: &family.user,
                    session: Some(family.id),
                    methods: sign_in,
                };
                let issued = self
                    .issue(
                        &client,
                        subject,
                        family.audience.as_ref(),
                        &scopes,
                        None,
                        jkt,
                    )
                    .await?;
                Granted::new(issued, scopes, Some(next.expose()))
            }
            GrantRequest::AuthorizationCode(exchange) => {
                self.code_grant(&client, &exchange, jkt).await?
            }
            GrantRequest::TokenExchange {
                session,
                scope,
                target,
            } => {
                let scopes = granted_scopes(&client.scopes, client.scopes.defaults(), scope)?;
                let audience = self.granted_audience(&client, &scopes, target.as_deref())?;
                let session = self.exchanged_session(&session).await?;
                // The token carries the session's id as `sid`, so logging out,
                // deleting the session or disabling the user revokes it everywhere.
                let subject = Subject::User {
                    user: session.user(),
                    session: Some(*session.id()),
                    methods: Some(session.methods()),
                };
                let issued = self
                    .issue(&client, subject, audience.as_ref(), &scopes, None, jkt)
                    .await?;
                Granted {
                    exchanged: true,
                    ..Granted::new(issued, scopes, None)
                }
            }
        };
        metrics::counter!("tessera_token_requests_total", "outcome" => "issued").increment(1);
        Ok(Granted {
            bound: jkt.is_some(),
            ..granted
        })
    }

    /// The tokens for a code: an access token whose `sid` is the browser session
    /// (so that its end revokes the token), an ID token for `openid`, and for a
    /// client that may refresh, a family tied to that session unless
    /// `offline_access` was granted. The access token's `jti` and the family's id
    /// are the ones chosen with the code, so that a replay of it revokes them.
    async fn code_grant(
        &self,
        client: &Client,
        exchange: &CodeExchange,
        jkt: Option<&str>,
    ) -> Result<Granted, OAuthError> {
        let start = client
            .grants
            .contains(&GrantType::RefreshToken)
            .then(|| self.refresh.prepare(client, jkt));
        let Redeemed {
            code,
            session,
            family,
        } = self
            .codes
            .redeem(
                client,
                exchange,
                start.as_ref().map(FamilyStart::template),
                jkt,
            )
            .await?;
        let user = session.user();
        let scopes = code.scopes;
        let audience = self.granted_audience(client, &scopes, None)?;
        let refresh_token = match (start, family) {
            (Some(start), Some(started)) => {
                let token = RefreshTokens::started(start, started).map_err(refresh_error)?;
                self.presence
                    .observe(code.family, user.id, Timestamp::now());
                Some(token.expose())
            }
            (None, _) => None,
            // A code that passed every check has its family planned.
            (Some(_), None) => {
                return Err(OAuthError::from(tessera_store::StoreError::Other(
                    "the code's refresh family was not started".into(),
                )));
            }
        };
        let subject = Subject::User {
            user,
            session: Some(code.session),
            methods: Some(session.methods()),
        };
        let issued = self
            .issue(
                client,
                subject,
                audience.as_ref(),
                &scopes,
                Some(&code.jti),
                jkt,
            )
            .await?;
        let id_token = if scopes.contains(oidc::OPENID) {
            let profile = if scopes.contains(oidc::PROFILE) || scopes.contains(oidc::EMAIL) {
                self.accounts.profile(user.id).await?
            } else {
                None
            };
            Some(
                id_tokens::issue(
                    &self.tokens,
                    &IdTokenRequest {
                        client,
                        user,
                        profile: profile.as_ref(),
                        scopes: &scopes,
                        session: &code.session,
                        methods: session.methods(),
                        auth_time: code.auth_time,
                        nonce: code.nonce.as_deref(),
                        access_token: &issued.access_token,
                    },
                )
                .map_err(issue_error)?,
            )
        } else {
            None
        };
        metrics::counter!("tessera_code_exchanges_total").increment(1);
        Ok(Granted {
            id_token,
            ..Granted::new(issued, scopes, refresh_token)
        })
    }

    /// The live browser session a token exchange presents as its subject token.
    async fn exchanged_session(
        &self,
        secret: &SessionSecret,
    ) -> Result<Arc<ActiveSession>, OAuthError> {
        self.sessions
            .authenticate(secret)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the session has ended or expired"))
    }

    /// The user of a password grant: credentials checked, throttled like a login.
    async fn password_user(
        &self,
        client: &Client,
        username: &Username,
        password: Password,
        address: IpAddr,
    ) -> Result<User, OAuthError> {
        let checked = match self.throttle.login(username, address).await {
            Err(wait) => Err((OAuthError::Throttled(wait), "too many attempts")),
            Ok(()) => match self.accounts.check_password(username, password).await {
                // The grant cannot ask for a second factor; an account that has
                // one signs in where it is asked (the authorization code flow).
                Ok(user)
                    if self.mfa.requires(&user.roles)
                        || self.has_second_factor(user.id).await? =>
                {
                    Err((
                        OAuthError::invalid_grant(
                            "this account signs in with a second factor, which the password \
                             grant cannot ask for: sign in through the authorization code flow",
                        ),
                        "the account signs in with a second factor",
                    ))
                }
                Ok(user) => Ok(user),
                Err(LoginError::InvalidCredentials) => Err((
                    OAuthError::invalid_grant("invalid username or password"),
                    "invalid username or password",
                )),
                Err(LoginError::Disabled) => Err((
                    OAuthError::invalid_grant("this account is disabled"),
                    "the account is disabled",
                )),
                // Not an outcome of the attempt: tessera could not decide it.
                Err(LoginError::Hash(e)) => return Err(OAuthError::Hash(e)),
                Err(LoginError::Store(e)) => return Err(e.into()),
            },
        };
        let (actor, user) = match &checked {
            Ok(user) => (Actor::User(user.id), Some(user.id)),
            Err(_) => (Actor::Anonymous, self.accounts.id_of(username).await),
        };
        let mut login = event(EventKind::Login, actor)
            .username(username.as_str())
            .address(Some(address))
            .target("client", client.id);
        if let Some(user) = user {
            login = login.user(user).detail("password grant");
        }
        match checked {
            Ok(user) => {
                self.audit.record(login).await;
                Ok(user)
            }
            Err((error, why)) => {
                self.audit
                    .record(login.failed().detail(format!("password grant: {why}")))
                    .await;
                Err(error)
            }
        }
    }

    /// Whether the account has a second factor; one whose credential does not
    /// open counts as having it.
    async fn has_second_factor(&self, user: UserId) -> Result<bool, OAuthError> {
        Ok(self.second_factors.factors(user).await?.any())
    }

    /// An access token; `jti` when it was chosen beforehand (a code's exchange).
    async fn issue(
        &self,
        client: &Client,
        subject: Subject<'_>,
        audience: Option<&Audience>,
        scopes: &Scopes,
        jti: Option<&str>,
        jkt: Option<&str>,
    ) -> Result<IssuedToken, OAuthError> {
        let request = TokenRequest {
            client,
            subject,
            audience,
            scopes,
            jti,
            jkt,
        };
        self.tokens.issue(&request).await.map_err(issue_error)
    }

    /// The audience to grant (`None`: tessera itself, the issuer). Asked for with
    /// `audience` (RFC 8693) or `resource` (RFC 8707), it must be one of the
    /// client's audiences or the issuer; by default it is the client's first
    /// audience, or the issuer for a client without audiences. tessera's own
    /// scopes go only into tokens for tessera: a request for them defaults to the
    /// issuer, and naming another audience with them is refused, so a token a
    /// resource service receives can never act on tessera.
    fn granted_audience(
        &self,
        client: &Client,
        scopes: &Scopes,
        asked: Option<&str>,
    ) -> Result<Option<Audience>, OAuthError> {
        let issuer = self.tokens.issuer();
        let Some(asked) = asked else {
            return Ok(default_audience(client, scopes));
        };
        if asked == issuer {
            return Ok(None);
        }
        if scopes.any_privileged() {
            return Err(OAuthError::refused(
                codes::INVALID_TARGET,
                format!(
                    "tessera's own scopes ({}) are granted only in tokens for tessera \
                     itself; ask for them without an audience, or for {issuer}",
                    tessera_proto::scope::PRIVILEGED.join(", "),
                ),
            ));
        }
        client
            .audiences
            .iter()
            .find(|a| a.as_str() == asked)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                OAuthError::refused(
                    codes::INVALID_TARGET,
                    format!("this client may not get tokens for the audience {asked:?}"),
                )
            })
    }
}

impl Granted {
    fn new(issued: IssuedToken, scopes: Scopes, refresh_token: Option<String>) -> Self {
        Self {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            refresh_token,
            id_token: None,
            scopes,
            exchanged: false,
            bound: false,
        }
    }
}

/// The scopes to grant: those asked for, which must all be in `allowed` (the
/// client's, or on refresh the grant's), or `default` when the request names none.
fn granted_scopes(
    allowed: &Scopes,
    default: Scopes,
    asked: Option<Scopes>,
) -> Result<Scopes, OAuthError> {
    let Some(asked) = asked else {
        return Ok(default);
    };
    if !asked.is_subset(allowed) {
        return Err(OAuthError::refused(
            codes::INVALID_SCOPE,
            format!(
                "the scope may include only: {}",
                if allowed.is_empty() {
                    "no scopes".to_owned()
                } else {
                    allowed.to_string()
                }
            ),
        ));
    }
    Ok(asked)
}

fn issue_error(error: IssueError) -> OAuthError {
    tracing::error!(%error, "could not issue a token");
    match error {
        IssueError::Store(e) => OAuthError::Store(e),
        IssueError::NoKey(_) | IssueError::Sign => OAuthError::NoSigningKey,
    }
}

fn refresh_error(error: RefreshError) -> OAuthError {
    match error {
        RefreshError::Store(e) => e.into(),
        RefreshError::KeyNotProven => OAuthError::refused(
            codes::INVALID_DPOP_PROOF,
            RefreshError::KeyNotProven.to_string(),
        ),
        other => OAuthError::invalid_grant(other.to_string()),
    }
}
