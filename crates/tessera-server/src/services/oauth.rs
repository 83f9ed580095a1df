//! What the OAuth services (grants, introspection, revocation) refuse with, in the
//! vocabulary of RFC 6749 §5.2, RFC 7009, RFC 7662 and RFC 8707. `http::error` turns
//! it into a status and a body; the services never see HTTP.

use std::borrow::Cow;
use tessera_proto::error as codes;

use tessera_store::StoreError;

use crate::services::clients::{ClientAuthError, Clients, PresentedClient};
use crate::services::passwords::HashError;
use crate::services::throttle::Throttled;

#[derive(Debug)]
pub enum OAuthError {
    /// 400 with an RFC 6749 §5.2 (or RFC 8707) error code.
    Refused {
        code: &'static str,
        description: Cow<'static, str>,
    },
    /// 401 `invalid_client`: unknown client, wrong secret, or none given. One
    /// answer for all, so nothing is learnt by probing.
    InvalidClient,
    /// 403: the client is known but may not do this (RFC 7662 §4).
    Forbidden {
        code: &'static str,
        description: Cow<'static, str>,
    },
    Throttled(Throttled),
    /// This instance cannot tell what was revoked (its caches are too old).
    Stale,
    /// No signing key is available for the client's algorithm.
    NoSigningKey,
    Hash(HashError),
    Store(StoreError),
}

impl OAuthError {
    pub fn refused(code: &'static str, description: impl Into<Cow<'static, str>>) -> Self {
        Self::Refused {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::refused(codes::INVALID_REQUEST, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::refused(codes::INVALID_GRANT, description)
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The client an OAuth request comes from, authenticated: the first thing every
/// OAuth endpoint decides, before it looks at what the request asks for.
pub(crate) async fn authenticate(
    clients: &Clients,
    presented: &PresentedClient,
) -> Result<tessera_store::Client, OAuthError> {
    match clients.authenticate(presented).await {
        Ok(client) => Ok(client),
        Err(ClientAuthError::Failed) => {
            metrics::counter!("tessera_client_auth_failures_total").increment(1);
            Err(OAuthError::InvalidClient)
        }
        Err(ClientAuthError::Store(e)) => Err(e.into()),
    }
}

/// The audience of a token for which none was asked: tessera itself for its own
/// (privileged) scopes, else the client's first audience, if it has any.
pub(crate) fn default_audience(
    client: &tessera_store::Client,
    scopes: &tessera_core::Scopes,
) -> Option<tessera_core::Audience> {
    if scopes.any_privileged() {
        return None;
    }
    client.audiences.first().cloned()
}
