//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): an app sends the
//! browser to `/oauth2/logout` to end the tessera session, and may have it sent
//! back to one of its registered `post_logout_redirect_uris`.
//!
//! The browser is signed out without a question only when the app proves which
//! session it means: an `id_token_hint` that tessera signed for this very session
//! (its `sid`). Anything else gets a confirmation page first, so a link on some
//! page cannot sign a person out behind their back. A `post_logout_redirect_uri`
//! is followed only when it is one the app registered (compared like redirect
//! URIs); an unknown one gets a page, never a redirect.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tessera_core::{ClientId, SessionSecret};
use tessera_store::{Client, StoreError};
use url::Url;

use crate::services::clients::Clients;
use crate::services::id_token_hints::{IdTokenHint, IdTokenHints};
use crate::services::keyring::KeyRing;
use crate::services::sessions::SessionService;

/// The parameters, as sent in the query or the form.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LogoutParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logout_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<String>,
}

/// What to show or where to go.
#[derive(Debug)]
pub enum LogoutStep {
    /// Signed out (or was not signed in): back to the app, or a page saying so.
    Done {
        redirect: Option<Url>,
        /// The session cookie must be cleared.
        ended: bool,
    },
    /// Ask first.
    Confirm(Box<LogoutPrompt>),
}

#[derive(Debug)]
pub struct LogoutPrompt {
    pub username: String,
    /// The app that asked, if known.
    pub client_name: Option<String>,
    pub params: LogoutParams,
    pub csrf: String,
    /// Where the answer leads: the app's registered URI.
    pub leads_to: Option<Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The request cannot be honoured and must not redirect: a page says why.
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct EndSession {
    hints: IdTokenHints,
    clients: Clients,
    sessions: Arc<SessionService>,
}

impl EndSession {
    pub fn new(
        issuer: String,
        keys: Arc<KeyRing>,
        clients: Clients,
        sessions: Arc<SessionService>,
    ) -> Self {
        Self {
            hints: IdTokenHints::new(issuer, keys),
            clients,
            sessions,
        }
    }

    /// A logout request. `confirmed` carries the CSRF token of the confirmation
    /// page's answer; `None` for the request as the app sent it.
    pub async fn log_out(
        &self,
        params: LogoutParams,
        session: Option<&SessionSecret>,
        confirmed: Option<&str>,
        address: std::net::IpAddr,
    ) -> Result<LogoutStep, LogoutError> {
        let hint = params
            .id_token_hint
            .as_deref()
            .map(|token| self.hint(token))
            .transpose()?;
        let client = self.client(&params, hint.as_ref()).await?;
        let redirect = match params.post_logout_redirect_uri.as_deref() {
            Some(asked) => Some(redirect_for(
                client.as_ref(),
                asked,
                params.state.as_deref(),
            )?),
            None => None,
        };
        let session = match session {
            Some(secret) => self.sessions.authenticate(secret).await?,
            None => None,
        };
        let Some(session) = session else {
            return Ok(LogoutStep::Done {
                redirect,
                ended: false,
            });
        };
        let proven = hint
            .as_ref()
            .and_then(|h| h.sid.as_deref())
            .is_some_and(|sid| sid == session.id().as_str());
        let answered = confirmed.is_some_and(|csrf| session.csrf_token().matches(csrf));
        if !(proven || answered) {
            return Ok(LogoutStep::Confirm(Box::new(LogoutPrompt {
                username: session.user().username.to_string(),
                client_name: client.as_ref().map(|c| c.name.to_string()),
                csrf: session.csrf_token().as_str().to_owned(),
                leads_to: redirect.clone(),
                params,
            })));
        }
        self.sessions.log_out(&session, Some(address)).await?;
        metrics::counter!("tessera_rp_initiated_logouts_total").increment(1);
        Ok(LogoutStep::Done {
            redirect,
            ended: true,
        })
    }

    /// An ID token this issuer signed, expired or not (§2: the hint may be old).
    fn hint(&self, token: &str) -> Result<IdTokenHint, LogoutError> {
        self.hints.read(token).ok_or(LogoutError::Invalid(
            "The id_token_hint is not an ID token issued here.",
        ))
    }

    async fn client(
        &self,
        params: &LogoutParams,
        hint: Option<&IdTokenHint>,
    ) -> Result<Option<Client>, LogoutError> {
        let named = match params.client_id.as_deref() {
            Some(id) => Some(ClientId::parse(id).ok_or(LogoutError::Invalid(
                "The client_id is not a client of this server.",
            ))?),
            None => None,
        };
        let id = match (named, hint.map(|h| h.client)) {
            (Some(a), Some(b)) if a != b => {
                return Err(LogoutError::Invalid(
                    "The client_id is not the one the id_token_hint was issued to.",
                ));
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Ok(None),
        };
        match self.clients.get(&id).await? {
            Some(client) => Ok(Some(client)),
            None => Err(LogoutError::Invalid(
                "The application that sent you here is not known to this server.",
            )),
        }
    }
}

/// The registered post-logout URI `asked` names, with `state`.
fn redirect_for(
    client: Option<&Client>,
    asked: &str,
    state: Option<&str>,
) -> Result<Url, LogoutError> {
    let client = client.ok_or(LogoutError::Invalid(
        "A post_logout_redirect_uri needs the id_token_hint or client_id of the application.",
    ))?;
    let mut url = client
        .code_flow
        .post_logout_redirect_uris
        .iter()
        .find_map(|registered| registered.target_for(asked))
        .and_then(|target| Url::parse(&target).ok())
        .ok_or(LogoutError::Invalid(
            "The post_logout_redirect_uri is not one this application registered, so you were \
             not sent back to it.",
        ))?;
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok(url)
}
