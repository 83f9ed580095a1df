//! The authorization endpoint decided (RFC 6749 §4.1, OpenID Connect Core §3.1.2):
//! which client asks, where the browser may go back to, whether the user must sign
//! in or consent first, and the code it goes back with.
//!
//! Two refusals are never redirected (RFC 6749 §4.1.2.1): an unknown client and a
//! redirect URI the client did not register. Sending the browser to an unchecked
//! URI would make tessera an open redirector, so those get a page. Every other
//! refusal goes back to the client's redirect URI with `error`, `state` and `iss`
//! (RFC 9207), which is how the client learns what happened.
//!
//! Sign-in and consent are steps the route renders: [`Step::SignIn`] sends the
//! browser to `/login` with the request to resume afterwards; [`Step::Consent`]
//! shows the consent page, whose form comes back to [`Authorization::decide`].
//! The request is carried along in the URL (and the consent form), not kept on the
//! server, so any instance can take the next step.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_core::{
    AuthorizationCodeSecret, ClientId, CodeChallenge, GrantType, Scopes, SecretHash, SessionId,
    SessionSecret, Timestamp, UserId,
};
use tessera_proto::error as codes;
use tessera_proto::scope::{PRIVILEGED, oidc};
use tessera_store::{
    Actor, AuthorizationCode, AuthorizationCodeStore, BackchannelStore, Client, Consent, EndReason,
    EventKind, PushedRequest, RefreshStore, StoreError,
};
use url::Url;

use crate::services::accounts::Accounts;
use crate::services::audit::{Audit, event};
use crate::services::clients::{Clients, PresentedClient};
use crate::services::dpop::DpopProofs;
use crate::services::id_token_hints::IdTokenHints;
use crate::services::keyring::KeyRing;
use crate::services::oauth::{OAuthError, authenticate};
use crate::services::sessions::{ActiveSession, SessionService};

/// How long a spent or expired code is remembered, so that a replay is recognised
/// and can revoke what the code gave.
const CODE_MEMORY: std::time::Duration = std::time::Duration::from_secs(600);
/// What RFC 9126 §2.2 says a `request_uri` starts with.
const PUSHED_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may be used: long enough for the sign-in and consent
/// it may lead to (RFC 9126 leaves it to the server, suggesting 5 to 600 s). It
/// gives one code, and is gone then.
const PUSHED_LIFETIME: std::time::Duration = std::time::Duration::from_secs(600);

/// The page for a `request_uri` that cannot give a code.
const PUSHED_GONE: &str = "The request_uri is unknown, has expired or was used already; start again from the application.";
/// Upper bounds on what is echoed or stored: far beyond real values.
const MAX_STATE: usize = 2000;
const MAX_NONCE: usize = 512;
const MAX_LOGIN_HINT: usize = 256;

/// The parameters of an authorization request, as sent in the query or the form.
/// `auth_after` is tessera's own: a resumed request demands a sign-in no older
/// than it (see [`Step::SignIn`]); anyone may send it, and it can only ask for more.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// An ID token tessera issued to this client: the person it names is the one
    /// who must be signed in (OpenID Connect Core §3.1.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_hint: Option<String>,
    /// The `acr` values the client asks for, in its order of preference; `2`
    /// alone (of the values tessera issues) asks for a second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_after: Option<String>,
}

/// What to do with the browser next.
#[derive(Debug)]
pub enum Step {
    /// Back to the client, with a code or an error.
    Redirect(String),
    /// To `/login`, then on to `resume` (this request again, on tessera).
    /// `reauthenticate`: show the form even to a signed-in browser.
    SignIn {
        resume: String,
        reauthenticate: bool,
        login_hint: Option<String>,
        /// The request asks for two factors (`acr_values`): the sign-in asks for
        /// the second, or has one set up.
        second_factor: bool,
    },
    /// Ask the user.
    Consent(Box<ConsentPrompt>),
}

/// What the consent page shows and its form carries back.
#[derive(Debug)]
pub struct ConsentPrompt {
    pub client_name: String,
    pub username: String,
    /// The scopes asked for, in order.
    pub scopes: Vec<String>,
    /// The request, to send back with the decision.
    pub params: AuthorizeParams,
    /// The session's CSRF token, checked when the decision comes back.
    pub csrf: String,
    /// Where the decision's answer leads: the client's redirect URI.
    pub leads_to: Url,
}

/// The answer of `POST /oauth2/par` (RFC 9126 §2.2).
#[derive(Debug, Serialize)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: u64,
}

/// A request that cannot go back to the client: an error page.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Unknown client or unregistered redirect URI: never redirected.
    #[error("{0}")]
    NoRedirect(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// `prompt` (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Default, Clone, Copy)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// A request whose client and redirect URI are known good: anything else wrong
/// with it goes back to the client.
struct Target {
    client: Client,
    /// The registered URI to send the browser to (with a loopback port presented).
    redirect: Url,
    /// As presented: the token request must present the same.
    presented: String,
    state: Option<String>,
}

/// A request checked in full.
struct Checked {
    target: Target,
    /// The pushed request it came from, if it came by reference.
    pushed: Option<SecretHash>,
    asked: Asked,
}

/// A refusal that goes back to the client.
struct Refusal {
    code: &'static str,
    description: String,
}

fn refuse(code: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        code,
        description: description.into(),
    }
}

/// An app a person allowed, as their account shows it.
pub struct AllowedApp {
    pub consent: Consent,
    /// `None` once an admin removed the client.
    pub client: Option<Client>,
    /// When it last got tokens for the person (see `RefreshStore::last_use_by_client`).
    pub last_used: Option<Timestamp>,
}

pub struct Authorization {
    issuer: String,
    clients: Clients,
    sessions: Arc<SessionService>,
    accounts: Accounts,
    codes: Arc<dyn AuthorizationCodeStore>,
    /// How long a code may wait for its exchange (`tokens.code_lifetime`).
    code_lifetime: std::time::Duration,
    audit: Arc<Audit>,
    refresh: Arc<dyn RefreshStore>,
    backchannel: Arc<dyn BackchannelStore>,
    /// A pushed request's DPoP proof (RFC 9449 §10.1).
    dpop: Arc<DpopProofs>,
    hints: IdTokenHints,
}

impl Authorization {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: String,
        clients: Clients,
        sessions: Arc<SessionService>,
        accounts: Accounts,
        codes: Arc<dyn AuthorizationCodeStore>,
        code_lifetime: std::time::Duration,
        audit: Arc<Audit>,
        refresh: Arc<dyn RefreshStore>,
        backchannel: Arc<dyn BackchannelStore>,
        dpop: Arc<DpopProofs>,
        keys: Arc<KeyRing>,
    ) -> Self {
        Self {
            hints: IdTokenHints::new(issuer.clone(), keys),
            dpop,
            issuer,
            clients,
            sessions,
            accounts,
            codes,
            code_lifetime,
            audit,
            refresh,
            backchannel,
        }
    }

    /// Decides an authorization request from a browser with (or without) a session.
    pub async fn authorize(
        &self,
        params: AuthorizeParams,
        session: Option<&SessionSecret>,
    ) -> Result<Step, AuthorizeError> {
        let (params, checked) = match self.prepare(params).await? {
            Ok(prepared) => prepared,
            Err(redirect) => return Ok(Step::Redirect(redirect)),
        };
        let session = match session {
            Some(secret) => self.sessions.authenticate(secret).await?,
            None => None,
        };
        let now = Timestamp::now();
        let session = match session {
            Some(session) if !needs_sign_in(&checked.asked, &session, now) => session,
            signed_in => {
                if checked.asked.prompt.none {
                    let refusal = refuse(codes::LOGIN_REQUIRED, "the user is not signed in");
                    return Ok(Step::Redirect(self.error_url(&checked.target, refusal)));
                }
                return Ok(Step::SignIn {
                    resume: resume_url(&params, &checked, now),
                    reauthenticate: signed_in.is_some(),
                    login_hint: checked.asked.login_hint,
                    second_factor: checked.asked.second_factor,
                });
            }
        };
        if !checked.target.client.code_flow.first_party {
            let consented = self
                .accounts
                .consent(session.user().id, &checked.target.client.id)
                .await?
                .is_some_and(|c| checked.asked.scopes.is_subset(&c.scopes));
            if checked.asked.prompt.consent || !consented {
                if checked.asked.prompt.none {
                    let refusal = refuse(
                        codes::CONSENT_REQUIRED,
                        "the user has not allowed this client these scopes",
                    );
                    return Ok(Step::Redirect(self.error_url(&checked.target, refusal)));
                }
                return Ok(Step::Consent(Box::new(ConsentPrompt {
                    client_name: checked.target.client.name.to_string(),
                    username: session.user().username.to_string(),
                    scopes: checked.asked.scopes.iter().map(str::to_owned).collect(),
                    leads_to: checked.target.redirect.clone(),
                    params,
                    csrf: session.csrf_token().as_str().to_owned(),
                })));
            }
        }
        Ok(Step::Redirect(self.issue_code(&checked, &session).await?))
    }

    /// The user's answer on the consent page for the request in `params`, sent by a
    /// browser with this session and the CSRF token the page carried.
    pub async fn decide(
        &self,
        params: AuthorizeParams,
        session: Option<&SessionSecret>,
        csrf: &str,
        decision: Decision,
    ) -> Result<Step, AuthorizeError> {
        let (params, checked) = match self.prepare(params).await? {
            Ok(prepared) => prepared,
            Err(redirect) => return Ok(Step::Redirect(redirect)),
        };
        let session = match session {
            Some(secret) => self.sessions.authenticate(secret).await?,
            None => None,
        };
        // Signed out meanwhile (or a forged post): start over, signing in again.
        let Some(session) = session.filter(|s| s.csrf_token().matches(csrf)) else {
            return Ok(Step::SignIn {
                resume: resume_url(&params, &checked, Timestamp::now()),
                reauthenticate: false,
                login_hint: checked.asked.login_hint,
                second_factor: checked.asked.second_factor,
            });
        };
        if decision == Decision::Deny {
            let refusal = refuse(codes::ACCESS_DENIED, "the user denied the request");
            return Ok(Step::Redirect(self.error_url(&checked.target, refusal)));
        }
        // What the request asks of the sign-in (`prompt=login`, `max_age`, a second
        // factor) holds here as at the authorization endpoint: a post made straight
        // to this endpoint with a stale or one-factor session (a pushed request's
        // demands cannot be edited out of it) signs in first, as `authorize` would.
        let now = Timestamp::now();
        if needs_sign_in(&checked.asked, &session, now) {
            return Ok(Step::SignIn {
                resume: resume_url(&params, &checked, now),
                reauthenticate: true,
                login_hint: checked.asked.login_hint,
                second_factor: checked.asked.second_factor,
            });
        }
        self.accounts
            .give_consent(
                session.user().id,
                &checked.target.client.id,
                &checked.asked.scopes,
            )
            .await?;
        let user = session.user();
        self.audit
            .record(
                event(EventKind::ConsentGiven, Actor::User(user.id))
                    .user(user.id)
                    .username(user.username.as_str())
                    .target("client", checked.target.client.id)
                    .detail(format!("scopes: {}", checked.asked.scopes)),
            )
            .await;
        Ok(Step::Redirect(self.issue_code(&checked, &session).await?))
    }

    /// What `user` allowed which clients, with each client (`None` once removed).
    pub async fn consents(&self, user: UserId) -> Result<Vec<AllowedApp>, StoreError> {
        let consents = self.accounts.consents(user).await?;
        // Most people allow no app (the consents are cached): no read for them.
        let used = if consents.is_empty() {
            Vec::new()
        } else {
            self.refresh.last_use_by_client(user).await?
        };
        let mut listed = Vec::new();
        for consent in consents {
            let client = self.clients.get(&consent.client_id).await?;
            let last_used = used
                .iter()
                .find(|(id, _)| *id == consent.client_id)
                .map(|(_, at)| *at);
            listed.push(AllowedApp {
                consent,
                client,
                last_used,
            });
        }
        Ok(listed)
    }

    /// Withdraws what `user` allowed `client` (the person removed the app): the
    /// consent page shows again next time, the app's refresh tokens for them end
    /// (logged, so every verifier refuses what carries their ids), and the app
    /// gets a back-channel logout for each session it got tokens from. `false` if
    /// they had allowed it nothing. Its access tokens tied to a browser session
    /// live out their minutes, as the session goes on.
    pub async fn withdraw_consent(
        &self,
        user: UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        let withdrawn = self.accounts.withdraw_consent(user, client).await?;
        if !withdrawn {
            return Ok(false);
        }
        metrics::counter!("tessera_consents_withdrawn_total").increment(1);
        let now = Timestamp::now();
        let families = self
            .refresh
            .revoke_families_of_user(user, Some(*client), EndReason::Revoked, now)
            .await?;
        let logouts = self
            .backchannel
            .queue_client_logouts(user, *client, now)
            .await?;
        if logouts > 0 {
            metrics::counter!("tessera_backchannel_logouts_queued_total").increment(logouts);
        }
        self.audit
            .record(
                event(EventKind::ConsentWithdrawn, Actor::User(user))
                    .user(user)
                    .target("client", client)
                    .detail(format!(
                        "{} refresh token(s) revoked, {logouts} back-channel logout(s) queued",
                        families.len()
                    )),
            )
            .await;
        Ok(true)
    }

    /// Where an answer to the authorization request in `url` (a `return_to` on
    /// tessera) leads, if it is one with a known client and redirect URI: the
    /// sign-in page lets its form lead there.
    pub async fn leads_to(&self, url: &Url) -> Option<Url> {
        if url.path() != "/oauth2/authorize" {
            return None;
        }
        let params: AuthorizeParams =
            serde_urlencoded::from_str(url.query().unwrap_or_default()).ok()?;
        let (effective, _) = self.expand(&params).await.ok()?;
        let target = self.target(&effective).await.ok()?;
        Some(target.redirect)
    }

    /// The request as sent (returned, to resume with) and checked in full, or the
    /// redirect that refuses it. A request by reference (`request_uri`) is checked
    /// as it was pushed.
    async fn prepare(
        &self,
        params: AuthorizeParams,
    ) -> Result<Result<(AuthorizeParams, Checked), String>, AuthorizeError> {
        let (effective, pushed) = self.expand(&params).await?;
        let target = self.target(&effective).await?;
        let mut checked = match check(target, &effective, pushed) {
            Ok(checked) => checked,
            Err((target, refusal)) => return Ok(Err(self.error_url(&target, refusal))),
        };
        if let Some(hint) = effective.id_token_hint.as_deref() {
            // Only an ID token issued here to this app names someone; anything
            // else is refused rather than ignored, as the app meant someone.
            match self.hints.read(hint) {
                Some(hint) if hint.client == checked.target.client.id => {
                    checked.asked.hinted_subject = Some(hint.subject);
                }
                _ => {
                    let refusal = refuse(
                        codes::INVALID_REQUEST,
                        "the id_token_hint is not an ID token issued here to this client",
                    );
                    return Ok(Err(self.error_url(&checked.target, refusal)));
                }
            }
        }
        Ok(Ok((params, checked)))
    }

    /// The parameters to decide by: those sent, or for a `request_uri` those pushed
    /// for it (RFC 9126 §4: nothing else is read), with the hash of the pushed
    /// request. A resumed request's `auth_after` applies to the pushed parameters as
    /// [`resume_url`] would have applied it to sent ones.
    async fn expand(
        &self,
        params: &AuthorizeParams,
    ) -> Result<(AuthorizeParams, Option<SecretHash>), AuthorizeError> {
        let Some(uri) = params.request_uri.as_deref() else {
            return Ok((params.clone(), None));
        };
        let unknown = || AuthorizeError::NoRedirect(PUSHED_GONE.to_owned());
        let hash = pushed_hash(uri);
        let pushed = self
            .codes
            .pushed_request(&hash, Timestamp::now())
            .await?
            .ok_or_else(unknown)?;
        // The pushing client's own: another client cannot use it.
        if params.client_id.as_deref() != Some(pushed.client_id.to_string().as_str()) {
            return Err(unknown());
        }
        let mut effective: AuthorizeParams =
            serde_urlencoded::from_str(&pushed.params).map_err(|_| unknown())?;
        // Only a sign-in after the push answers what the push asked: an earlier
        // `auth_after` (anyone may add one to the URL) would drop its `max_age` or
        // `prompt=login` for nothing.
        let pushed_at = pushed.expires_at.as_millis() / 1000 - PUSHED_LIFETIME.as_secs() as i64;
        if let Some(after) = params
            .auth_after
            .as_deref()
            .filter(|after| after.parse::<i64>().is_ok_and(|after| after >= pushed_at))
        {
            effective.prompt = without_login(effective.prompt.as_deref());
            effective.max_age = None;
            effective.auth_after = Some(after.to_owned());
        }
        Ok((effective, Some(hash)))
    }

    /// `POST /oauth2/par` (RFC 9126): checks the request as the authorization
    /// endpoint would, for the authenticated client, and keeps it under a new
    /// `request_uri`. Refusals are the endpoint's JSON errors, never redirects.
    /// The DPoP nonce pushed-request answers carry, when the server asks for
    /// nonces (its proofs need one as the token endpoint's do).
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop.nonce()
    }

    /// `proof`: a `DPoP` header, which binds the code to its key as `dpop_jkt`
    /// would (RFC 9449 §10.1); with both, they must name the same key.
    pub async fn push(
        &self,
        presented: &PresentedClient,
        mut sent: std::collections::HashMap<String, String>,
        proof: Option<&str>,
    ) -> Result<Pushed, OAuthError> {
        let client = authenticate(&self.clients, presented).await?;
        if let Some(jkt) = self.dpop.bind_pushed(proof).await? {
            match sent.get("dpop_jkt") {
                Some(asked) if *asked != jkt => {
                    return Err(OAuthError::refused(
                        tessera_proto::error::INVALID_DPOP_PROOF,
                        "dpop_jkt names another key than the DPoP proof's",
                    ));
                }
                _ => {
                    sent.insert("dpop_jkt".to_owned(), jkt);
                }
            }
        }
        sent.remove("client_secret");
        if sent.contains_key("request_uri") {
            return Err(OAuthError::invalid_request(
                "a pushed request cannot itself name a request_uri",
            ));
        }
        let mut params: AuthorizeParams = serde_json::to_value(&sent)
            .and_then(serde_json::from_value)
            .map_err(|_| OAuthError::invalid_request("the parameters are malformed"))?;
        params.client_id = Some(client.id.to_string());
        params.auth_after = None;
        let target = self.target(&params).await.map_err(|error| match error {
            AuthorizeError::NoRedirect(why) => OAuthError::invalid_request(why),
            AuthorizeError::Store(e) => OAuthError::Store(e),
        })?;
        check_parameters(&target, &params, true)
            .map_err(|refusal| OAuthError::refused(refusal.code, refusal.description))?;
        let uri = format!(
            "{PUSHED_URI_PREFIX}{}",
            crate::services::tokens::random_id()
        );
        self.codes
            .push_request(PushedRequest {
                hash: pushed_hash(&uri),
                client_id: client.id,
                params: serde_urlencoded::to_string(&params).unwrap_or_default(),
                expires_at: Timestamp::now().saturating_add(PUSHED_LIFETIME),
            })
            .await?;
        metrics::counter!("tessera_pushed_authorization_requests_total").increment(1);
        Ok(Pushed {
            request_uri: uri,
            expires_in: PUSHED_LIFETIME.as_secs(),
        })
    }

    /// The client and the redirect URI, or the page that says which is wrong.
    async fn target(&self, params: &AuthorizeParams) -> Result<Target, AuthorizeError> {
        let no_redirect = |why: &str| Err(AuthorizeError::NoRedirect(why.to_owned()));
        let Some(client_id) = params.client_id.as_deref() else {
            return no_redirect("The request names no client (client_id is missing).");
        };
        let client = match ClientId::parse(client_id) {
            Some(id) => self.clients.get(&id).await?,
            None => None,
        };
        let Some(client) = client else {
            return no_redirect("The application that sent you here is not known to this server.");
        };
        let Some(presented) = params.redirect_uri.as_deref() else {
            return no_redirect("The request names no redirect_uri.");
        };
        let Some(redirect) = client
            .code_flow
            .redirect_uris
            .iter()
            .find_map(|registered| registered.target_for(presented))
            .and_then(|target| Url::parse(&target).ok())
        else {
            return no_redirect(
                "The redirect_uri is not one this application registered, so you were not \
                 sent back to it.",
            );
        };
        Ok(Target {
            client,
            redirect,
            presented: presented.to_owned(),
            state: params.state.clone(),
        })
    }

    /// Issues a code for the checked request in `session` and the URL that takes it
    /// back to the client.
    async fn issue_code(
        &self,
        checked: &Checked,
        session: &ActiveSession,
    ) -> Result<String, AuthorizeError> {
        // Taken before the code is made: of two requests with one request_uri at
        // the same moment, one alone gets a code (RFC 9126 §4).
        if let Some(pushed) = &checked.pushed
            && !self.codes.drop_pushed_request(pushed).await?
        {
            return Err(AuthorizeError::NoRedirect(PUSHED_GONE.to_owned()));
        }
        let secret = AuthorizationCodeSecret::generate();
        let now = Timestamp::now();
        let expires_at = now.saturating_add(self.code_lifetime);
        self.codes
            .store_code(AuthorizationCode {
                hash: secret.hash(),
                client_id: checked.target.client.id,
                user: session.user().id,
                session: *session.id(),
                redirect_uri: checked.target.presented.clone(),
                scopes: checked.asked.scopes.clone(),
                code_challenge: checked
                    .asked
                    .challenge
                    .as_ref()
                    .map(|c| c.as_str().to_owned()),
                nonce: checked.asked.nonce.clone(),
                dpop_jkt: checked.asked.dpop_jkt.clone(),
                auth_time: session.created_at(),
                family: SessionId::time_ordered(),
                jti: crate::services::tokens::random_id(),
                issued_at: now,
                expires_at,
                forget_at: expires_at.saturating_add(CODE_MEMORY),
            })
            .await?;
        metrics::counter!("tessera_authorization_codes_issued_total").increment(1);
        let mut url = checked.target.redirect.clone();
        url.query_pairs_mut()
            .append_pair("code", &secret.expose())
            .extend_pairs(checked.target.state.as_deref().map(|s| ("state", s)))
            .append_pair("iss", &self.issuer);
        Ok(url.into())
    }

    /// The client's redirect URI with the refusal, `state` and `iss`.
    fn error_url(&self, target: &Target, refusal: Refusal) -> String {
        metrics::counter!("tessera_authorization_refusals_total", "error" => refusal.code)
            .increment(1);
        let mut url = target.redirect.clone();
        url.query_pairs_mut()
            .append_pair("error", refusal.code)
            .append_pair("error_description", &refusal.description)
            .extend_pairs(target.state.as_deref().map(|s| ("state", s)))
            .append_pair("iss", &self.issuer);
        url.into()
    }
}

/// Everything but the client and the redirect URI, in the order RFC 6749 §4.1.2.1
/// and OpenID Connect Core §3.1.2.2 suggest.
#[allow(clippy::result_large_err)]
fn check(
    target: Target,
    params: &AuthorizeParams,
    pushed: Option<SecretHash>,
) -> Result<Checked, (Target, Refusal)> {
    match check_parameters(&target, params, pushed.is_some()) {
        Ok(asked) => Ok(Checked {
            target,
            pushed,
            asked,
        }),
        Err(refusal) => Err((target, refusal)),
    }
}

/// What the request asks for, checked.
struct Asked {
    scopes: Scopes,
    challenge: Option<CodeChallenge>,
    nonce: Option<String>,
    dpop_jkt: Option<String>,
    prompt: Prompt,
    max_age: Option<i64>,
    login_hint: Option<String>,
    auth_after: Option<i64>,
    /// The `sub` of a valid `id_token_hint`: only that person's session will do.
    hinted_subject: Option<String>,
    /// `acr_values` leaves only two factors acceptable.
    second_factor: bool,
}

/// `pushed`: the request came through `/oauth2/par`.
fn check_parameters(
    target: &Target,
    params: &AuthorizeParams,
    pushed: bool,
) -> Result<Asked, Refusal> {
    let client = &target.client;
    if params.state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(refuse(
            codes::INVALID_REQUEST,
            format!("state is longer than {MAX_STATE} characters"),
        ));
    }
    if params.request.is_some() {
        return Err(refuse(
            codes::REQUEST_NOT_SUPPORTED,
            "request objects are not supported; send the parameters themselves",
        ));
    }
    if client.code_flow.require_par && !pushed {
        return Err(refuse(
            codes::INVALID_REQUEST,
            "this client must push its authorization requests (RFC 9126)",
        ));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None => return Err(refuse(codes::INVALID_REQUEST, "response_type is missing")),
        Some(_) => {
            return Err(refuse(
                codes::UNSUPPORTED_RESPONSE_TYPE,
                "only response_type=code is supported",
            ));
        }
    }
    if !client.grants.contains(&GrantType::AuthorizationCode) {
        return Err(refuse(
            codes::UNAUTHORIZED_CLIENT,
            "this client may not use the authorization_code grant",
        ));
    }
    if params
        .response_mode
        .as_deref()
        .is_some_and(|m| m != "query")
    {
        return Err(refuse(
            codes::INVALID_REQUEST,
            "only response_mode=query is supported",
        ));
    }
    let scopes = granted_scopes(client, params.scope.as_deref())?;
    let challenge = match params.code_challenge.as_deref() {
        Some(challenge) => Some(
            CodeChallenge::parse(challenge, params.code_challenge_method.as_deref())
                .map_err(|e| refuse(codes::INVALID_REQUEST, e.to_string()))?,
        ),
        // PKCE is required of every client, confidential ones too: it also stops a
        // code injected into a client's own callback (RFC 9700 §2.1.1).
        None => {
            return Err(refuse(
                codes::INVALID_REQUEST,
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
    };
    let nonce = params.nonce.clone();
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(refuse(
            codes::INVALID_REQUEST,
            format!("nonce is longer than {MAX_NONCE} characters"),
        ));
    }
    // An RFC 7638 SHA-256 thumbprint: 32 bytes, base64url without padding.
    let dpop_jkt = params.dpop_jkt.clone();
    if dpop_jkt.as_deref().is_some_and(|jkt| {
        jkt.len() != 43
            || !jkt
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return Err(refuse(
            codes::INVALID_REQUEST,
            "dpop_jkt must be the base64url SHA-256 thumbprint of the client's DPoP key \
             (43 characters, RFC 9449 §10)",
        ));
    }
    let prompt = parse_prompt(params.prompt.as_deref())?;
    let max_age = parse_seconds(params.max_age.as_deref(), "max_age")?;
    let auth_after = parse_seconds(params.auth_after.as_deref(), "auth_after")?;
    let login_hint = params
        .login_hint
        .clone()
        .filter(|h| !h.is_empty() && h.len() <= MAX_LOGIN_HINT);
    Ok(Asked {
        scopes,
        challenge,
        nonce,
        dpop_jkt,
        prompt,
        max_age,
        login_hint,
        auth_after,
        // Read with the keys, in `Authorization::prepare`.
        hinted_subject: None,
        second_factor: asks_for_two_factors(params.acr_values.as_deref()),
    })
}

/// The scopes asked for, which must be OpenID Connect's standard ones or the
/// client's; `offline_access` only for a client registered with it (and allowed to
/// refresh); tessera's own scopes never, as a person's consent cannot give a third
/// party the admin API. With no `scope`, the client's non-privileged scopes.
fn granted_scopes(client: &Client, asked: Option<&str>) -> Result<Scopes, Refusal> {
    let asked = match asked {
        Some(asked) => {
            Scopes::parse(asked).map_err(|e| refuse(codes::INVALID_SCOPE, e.to_string()))?
        }
        None => client.scopes.defaults(),
    };
    if asked.any_privileged() {
        return Err(refuse(
            codes::INVALID_SCOPE,
            format!(
                "tessera's own scopes ({}) are not granted through the browser flow",
                PRIVILEGED.join(", ")
            ),
        ));
    }
    let offline_allowed = client.scopes.contains(oidc::OFFLINE_ACCESS)
        && client.grants.contains(&GrantType::RefreshToken);
    if let Some(unknown) = asked.iter().find(|s| {
        !(oidc::STANDARD.contains(s) || client.scopes.contains(s) || *s == oidc::OFFLINE_ACCESS)
    }) {
        return Err(refuse(
            codes::INVALID_SCOPE,
            format!("this client may not ask for the scope {unknown:?}"),
        ));
    }
    // OpenID Connect Core §11: a request for offline access the client may not
    // have is not an error; it is just not granted.
    Ok(asked.filtered(|s| s != oidc::OFFLINE_ACCESS || offline_allowed))
}

fn parse_prompt(prompt: Option<&str>) -> Result<Prompt, Refusal> {
    let mut parsed = Prompt::default();
    for value in prompt
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => parsed.none = true,
            "login" => parsed.login = true,
            "consent" => parsed.consent = true,
            // One account per browser: there is nothing to select.
            "select_account" => {}
            other => {
                return Err(refuse(
                    codes::INVALID_REQUEST,
                    format!("unknown prompt value {other:?}"),
                ));
            }
        }
    }
    if parsed.none && (parsed.login || parsed.consent) {
        return Err(refuse(
            codes::INVALID_REQUEST,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(parsed)
}

fn parse_seconds(value: Option<&str>, name: &str) -> Result<Option<i64>, Refusal> {
    value
        .map(|v| {
            v.parse::<u32>().map(i64::from).map_err(|_| {
                refuse(
                    codes::INVALID_REQUEST,
                    format!("{name} must be a number of seconds"),
                )
            })
        })
        .transpose()
}

/// Whether `acr_values` (OpenID Connect Core §3.1.2.1: voluntary, in order of
/// preference) leaves only a sign-in with two factors acceptable: of the values
/// tessera issues (`tessera_core::ACR_VALUES`) it names the two-factor one and not
/// the one-factor one. Values tessera does not issue are passed over, as the
/// specification lets a provider do; the ID token's `acr` says what was done.
fn asks_for_two_factors(acr_values: Option<&str>) -> bool {
    let asked: Vec<&str> = acr_values.unwrap_or_default().split(' ').collect();
    asked.contains(&tessera_core::ACR_TWO_FACTORS) && !asked.contains(&tessera_core::ACR_ONE_FACTOR)
}

/// Whether the browser must sign in (again) first: no session, or `prompt=login`,
/// or a sign-in older than `max_age` or than a resumed request's `auth_after`, or
/// with one factor where the request asks for two.
fn needs_sign_in(asked: &Asked, session: &ActiveSession, now: Timestamp) -> bool {
    let auth_time = session.created_at().as_millis();
    let elapsed = now.as_millis() - auth_time;
    (asked.second_factor && !session.methods().is_multi_factor())
        || asked.prompt.login
        || asked
            .max_age
            .is_some_and(|max| elapsed > max.saturating_mul(1000))
        || asked
            .auth_after
            .is_some_and(|after| auth_time / 1000 < after)
        || asked
            .hinted_subject
            .as_deref()
            .is_some_and(|subject| subject != session.user().id.to_string())
}

/// `prompt` without `login`, which a fresh sign-in has answered.
fn without_login(prompt: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = prompt
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty() && *v != "login")
        .collect();
    (!kept.is_empty()).then(|| kept.join(" "))
}

/// The SHA-256 of a `request_uri`, under which its request is kept.
fn pushed_hash(uri: &str) -> SecretHash {
    use sha2::Digest;
    SecretHash::from_bytes(sha2::Sha256::digest(uri.as_bytes()).into())
}

/// This request again, as `/login` resumes it: a fresh sign-in demanded by
/// `prompt=login` or `max_age` becomes `auth_after=now`, which the new session
/// meets and which cannot send the browser back to `/login` once more.
fn resume_url(params: &AuthorizeParams, checked: &Checked, now: Timestamp) -> String {
    let mut resumed = params.clone();
    if checked.asked.prompt.login || checked.asked.max_age.is_some() {
        resumed.prompt = params.prompt.as_deref().and_then(|p| {
            let kept: Vec<&str> = p
                .split(' ')
                .filter(|v| !v.is_empty() && *v != "login")
                .collect();
            (!kept.is_empty()).then(|| kept.join(" "))
        });
        resumed.max_age = None;
        resumed.auth_after = Some((now.as_millis() / 1000).to_string());
    }
    format!(
        "/oauth2/authorize?{}",
        serde_urlencoded::to_string(&resumed).unwrap_or_default()
    )
}
