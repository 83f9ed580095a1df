//! Refresh tokens (`trt_…`): one family per grant, rotated on every use.
//!
//! A family's id is the `sid` of the access tokens issued through it, so revoking
//! the family (reuse, revocation, the user disabled) reaches verifiers through the
//! revocation log exactly like the end of a browser session.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{Audience, RefreshTokenSecret, Scopes, SessionId, Timestamp};
use tessera_store::{
    Client, CreateSessionError, EndReason, NewRefreshFamily, RefreshFamily, RefreshOutcome,
    RefreshStore, StoreError, User,
};

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired, issued to another client, or its user is disabled.
    #[error("the refresh token is invalid or expired")]
    Invalid,
    /// Presented again after it was exchanged: the family is now revoked.
    #[error("the refresh token was already used; the grant has been revoked")]
    Reused,
    /// Presented twice at nearly the same moment: the other request won.
    #[error("the refresh token was just used by another request")]
    RaceLost,
    #[error("the account is disabled")]
    UserDisabled,
    /// Presented by a client it was not issued to: it leaked, so its family (and
    /// the session it came from) is now revoked (RFC 9700 §4.14.2).
    #[error("the refresh token was issued to another client; the grant has been revoked")]
    Leaked(SessionId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct RefreshTokens {
    store: Arc<dyn RefreshStore>,
    lifetime: Duration,
    reuse_grace: Duration,
}

impl RefreshTokens {
    pub fn new(store: Arc<dyn RefreshStore>, lifetime: Duration, reuse_grace: Duration) -> Self {
        Self {
            store,
            lifetime,
            reuse_grace,
        }
    }

    /// Starts a family and returns its first token and its id (the tokens' `sid`):
    /// `id` when it was chosen beforehand (by an authorization code), else a new one.
    pub async fn start(
        &self,
        client: &Client,
        user: &User,
        scopes: &Scopes,
        audience: Option<&Audience>,
        session: Option<SessionId>,
        id: Option<SessionId>,
    ) -> Result<(RefreshTokenSecret, SessionId), RefreshError> {
        let token = RefreshTokenSecret::generate();
        // Ids lead with the time, then 80 random bits: see `SessionId::time_ordered`.
        let id = id.unwrap_or_else(SessionId::time_ordered);
        let now = Timestamp::now();
        let family = NewRefreshFamily {
            id,
            client_id: client.id,
            user_id: user.id,
            scopes: scopes.clone(),
            audience: audience.cloned(),
            session,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now.saturating_add(self.lifetime),
        };
        match self.store.create_family(family).await {
            Ok(()) => {
                metrics::counter!("tessera_tokens_issued_total", "kind" => "refresh").increment(1);
                Ok((token, id))
            }
            Err(CreateSessionError::UserDisabled) => Err(RefreshError::UserDisabled),
            Err(CreateSessionError::Store(e)) => Err(e.into()),
        }
    }

    /// The live family `presented` belongs to, if it was issued to `client`; nothing
    /// is spent. Lets the caller refuse a request (a wider scope, say) before
    /// [`Self::rotate`] spends the token.
    pub async fn peek(
        &self,
        client: &Client,
        presented: &str,
    ) -> Result<RefreshFamily, RefreshError> {
        let hash = RefreshTokenSecret::parse(presented)
            .ok_or(RefreshError::Invalid)?
            .hash();
        match self.store.family_by_token(&hash).await? {
            Some(family) if family.client_id == client.id => Ok(family),
            // Unknown here may still be a spent token: rotation tells reuse apart.
            None => self
                .rotate(client, presented)
                .await
                .map(|(family, _)| family),
            Some(family) => Err(self.leaked(&family, client).await),
        }
    }

    /// Ends the family of a refresh token that `client` presented though it was
    /// issued to another client: whoever holds it should not.
    async fn leaked(&self, family: &RefreshFamily, client: &Client) -> RefreshError {
        tracing::warn!(
            family = %family.id,
            user = %family.user.id,
            issued_to = %family.client_id,
            presented_by = %client.id,
            "a refresh token was presented by another client; its family is revoked"
        );
        metrics::counter!("tessera_refresh_leaked_total").increment(1);
        match self
            .store
            .revoke_family(&family.id, None, EndReason::TokenLeaked, Timestamp::now())
            .await
        {
            Ok(_) => RefreshError::Leaked(family.id),
            Err(e) => RefreshError::Store(e),
        }
    }

    /// Exchanges `presented` (issued to `client`) for a new token of the same family.
    pub async fn rotate(
        &self,
        client: &Client,
        presented: &str,
    ) -> Result<(RefreshFamily, RefreshTokenSecret), RefreshError> {
        let presented = RefreshTokenSecret::parse(presented)
            .ok_or(RefreshError::Invalid)?
            .hash();
        // Checked before rotating, so another client's token is not spent on it
        // (its family ends all the same).
        if let Some(family) = self.store.family_by_token(&presented).await?
            && family.client_id != client.id
        {
            return Err(self.leaked(&family, client).await);
        }
        let next = RefreshTokenSecret::generate();
        let now = Timestamp::now();
        let outcome = self
            .store
            .rotate_refresh_token(
                &presented,
                &next.hash(),
                now,
                now.saturating_sub(self.reuse_grace),
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated(family) if family.client_id == client.id => {
                metrics::counter!("tessera_tokens_issued_total", "kind" => "refresh").increment(1);
                Ok((family, next))
            }
            // Issued to another client, and rotated by a concurrent request.
            RefreshOutcome::Rotated(family) => Err(self.leaked(&family, client).await),
            RefreshOutcome::Invalid => Err(RefreshError::Invalid),
            RefreshOutcome::RaceLost => Err(RefreshError::RaceLost),
            RefreshOutcome::Reused { family, user } => {
                tracing::warn!(%family, %user, "a refresh token was reused; its family is revoked");
                metrics::counter!("tessera_refresh_reuse_total").increment(1);
                Err(RefreshError::Reused)
            }
        }
    }
}
