//! Refresh tokens (`trt_…`): one family per grant, rotated on every use.
//!
//! A family's id is the `sid` of the access tokens issued through it, so revoking
//! the family (reuse, revocation, the user disabled) reaches verifiers through the
//! revocation log exactly like the end of a browser session.

use std::sync::Arc;
use std::time::Duration;

use crate::services::audit::{Audit, event};

use tessera_core::{Audience, ClientId, RefreshTokenSecret, Scopes, SessionId, Timestamp, UserId};
use tessera_store::{
    Actor, Client, CreateSessionError, EndReason, EventKind, NewRefreshFamily, RefreshFamily,
    RefreshOutcome, RefreshStore, StoreError, User,
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
    /// The family is bound to a DPoP key (a public client's, RFC 9449 §5) that
    /// the request did not prove.
    #[error("this refresh token is bound to a key: send a DPoP proof signed by it")]
    KeyNotProven,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A family about to start: its first token, kept here until the family is written.
pub struct FamilyStart {
    token: RefreshTokenSecret,
    template: FamilyTemplate,
}

impl FamilyStart {
    pub fn template(&self) -> FamilyTemplate {
        self.template.clone()
    }
}

/// What a family's record takes from [`RefreshTokens`]: the hash of its first token
/// and its lifetime, and the key it is bound to. Plain data, so the store can make
/// the record inside its write.
#[derive(Clone)]
pub struct FamilyTemplate {
    token_hash: tessera_core::SecretHash,
    lifetime: Duration,
    dpop_jkt: Option<String>,
}

/// Whose family it is, and what it grants.
pub struct FamilyOf {
    pub id: SessionId,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scopes: Scopes,
    pub audience: Option<Audience>,
    /// The browser session whose end ends the family (none for `offline_access`).
    pub session: Option<SessionId>,
}

impl FamilyTemplate {
    /// The family's record, starting now.
    pub fn family(self, of: FamilyOf) -> NewRefreshFamily {
        let now = Timestamp::now();
        NewRefreshFamily {
            id: of.id,
            client_id: of.client_id,
            user_id: of.user_id,
            scopes: of.scopes,
            audience: of.audience,
            session: of.session,
            token_hash: self.token_hash,
            created_at: now,
            expires_at: now.saturating_add(self.lifetime),
            dpop_jkt: self.dpop_jkt,
        }
    }
}

/// The family whose live token is `token`, if any (expired ones included): under
/// its hash, or for a token issued before refresh tokens led with their time,
/// under its plain SHA-256 (see `SecretKind::TIME_ORDERED`).
pub async fn family_of(
    store: &dyn RefreshStore,
    token: &RefreshTokenSecret,
) -> Result<Option<RefreshFamily>, StoreError> {
    if let Some(family) = store.family_by_token(&token.hash()).await? {
        return Ok(Some(family));
    }
    match token.unordered_hash() {
        Some(unordered) => store.family_by_token(&unordered).await,
        None => Ok(None),
    }
}

pub struct RefreshTokens {
    store: Arc<dyn RefreshStore>,
    lifetime: Duration,
    reuse_grace: Duration,
    audit: Arc<Audit>,
}

impl RefreshTokens {
    pub fn new(
        store: Arc<dyn RefreshStore>,
        lifetime: Duration,
        reuse_grace: Duration,
        audit: Arc<Audit>,
    ) -> Self {
        Self {
            store,
            lifetime,
            reuse_grace,
            audit,
        }
    }

    /// tessera ended a family on its own: someone else holds its token.
    async fn record_theft(&self, family: SessionId, user: UserId, client: ClientId, why: &str) {
        self.audit
            .record(
                event(EventKind::SessionEnded, Actor::System)
                    .user(user)
                    .target("session", family)
                    .detail(format!("{why} (client {client})")),
            )
            .await;
    }

    /// Starts a family tied to no browser session (a code's exchange starts its
    /// own through [`Self::prepare`]) and returns its first token and its id (the
    /// tokens' `sid`).
    pub async fn start(
        &self,
        client: &Client,
        user: &User,
        scopes: &Scopes,
        audience: Option<&Audience>,
        jkt: Option<&str>,
    ) -> Result<(RefreshTokenSecret, SessionId), RefreshError> {
        let start = self.prepare(client, jkt);
        // Ids lead with the time, then 80 random bits: see `SessionId::time_ordered`.
        let id = SessionId::time_ordered();
        let family = start.template().family(FamilyOf {
            id,
            client_id: client.id,
            user_id: user.id,
            scopes: scopes.clone(),
            audience: audience.cloned(),
            session: None,
        });
        let started = self.store.create_family(family).await;
        Ok((Self::started(start, started)?, id))
    }

    /// A family's first token, before the family is written (a code's exchange
    /// writes it with the code's redemption). `jkt`: the key the token request
    /// proved (DPoP). A public client's family is bound to it (RFC 9449 §5), since
    /// nothing else ties its refresh token to the client; a confidential client's
    /// is bound by its authentication, and may change keys.
    pub fn prepare(&self, client: &Client, jkt: Option<&str>) -> FamilyStart {
        let token = RefreshTokenSecret::generate();
        let public = client.secret_hash.is_none();
        FamilyStart {
            template: FamilyTemplate {
                token_hash: token.hash(),
                lifetime: self.lifetime,
                dpop_jkt: jkt.filter(|_| public).map(str::to_owned),
            },
            token,
        }
    }

    /// The first token of `start`, if the store's `started` says its family began.
    pub fn started(
        start: FamilyStart,
        started: Result<(), CreateSessionError>,
    ) -> Result<RefreshTokenSecret, RefreshError> {
        match started {
            Ok(()) => {
                metrics::counter!("tessera_tokens_issued_total", "kind" => "refresh").increment(1);
                Ok(start.token)
            }
            Err(CreateSessionError::UserDisabled) => Err(RefreshError::UserDisabled),
            Err(CreateSessionError::Store(e)) => Err(e.into()),
        }
    }

    /// The live family `presented` belongs to, if it was issued to `client` and,
    /// when bound to a key, `jkt` is that key; nothing is spent. Lets the caller
    /// refuse a request (a wider scope, say) before [`Self::rotate`] spends the
    /// token.
    pub async fn peek(
        &self,
        client: &Client,
        presented: &str,
        jkt: Option<&str>,
    ) -> Result<RefreshFamily, RefreshError> {
        let token = RefreshTokenSecret::parse(presented).ok_or(RefreshError::Invalid)?;
        let family = match family_of(self.store.as_ref(), &token).await? {
            Some(family) => family,
            // Unknown here may still be a spent token: rotation tells reuse apart.
            None => self.rotate(client, presented).await?.0,
        };
        // Bound to a key this request does not prove (RFC 9449 §5): refused first,
        // whoever presents it. Useless to a thief, so nothing ends: ending its
        // family as leaked would only let a thief sign its owner out.
        if family
            .dpop_jkt
            .as_deref()
            .is_some_and(|bound| jkt != Some(bound))
        {
            return Err(RefreshError::KeyNotProven);
        }
        if family.client_id != client.id {
            return Err(self.leaked(&family, client).await);
        }
        Ok(family)
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
            Ok(_) => {
                self.record_theft(
                    family.id,
                    family.user.id,
                    client.id,
                    "a refresh token was presented by a client it was not issued to",
                )
                .await;
                RefreshError::Leaked(family.id)
            }
            Err(e) => RefreshError::Store(e),
        }
    }

    /// Exchanges `presented` (issued to `client`) for a new token of the same family.
    pub async fn rotate(
        &self,
        client: &Client,
        presented: &str,
    ) -> Result<(RefreshFamily, RefreshTokenSecret), RefreshError> {
        let presented = RefreshTokenSecret::parse(presented).ok_or(RefreshError::Invalid)?;
        // Checked before rotating, so another client's token is not spent on it
        // (its family ends all the same).
        if let Some(family) = family_of(self.store.as_ref(), &presented).await?
            && family.client_id != client.id
        {
            return Err(self.leaked(&family, client).await);
        }
        let next = RefreshTokenSecret::generate();
        let now = Timestamp::now();
        let grace_cutoff = now.saturating_sub(self.reuse_grace);
        let mut outcome = self
            .store
            .rotate_refresh_token(&presented.hash(), &next.hash(), now, grace_cutoff)
            .await?;
        // Unknown under its hash: a token issued before refresh tokens led with
        // their time is kept (live or spent) under its plain SHA-256.
        if let (RefreshOutcome::Invalid, Some(unordered)) = (&outcome, presented.unordered_hash()) {
            outcome = self
                .store
                .rotate_refresh_token(&unordered, &next.hash(), now, grace_cutoff)
                .await?;
        }
        match outcome {
            RefreshOutcome::Rotated(family) if family.client_id == client.id => {
                metrics::counter!("tessera_tokens_issued_total", "kind" => "refresh").increment(1);
                Ok((*family, next))
            }
            // Issued to another client, and rotated by a concurrent request.
            RefreshOutcome::Rotated(family) => Err(self.leaked(&family, client).await),
            RefreshOutcome::Invalid => Err(RefreshError::Invalid),
            RefreshOutcome::RaceLost => Err(RefreshError::RaceLost),
            RefreshOutcome::Reused { family, user } => {
                tracing::warn!(%family, %user, "a refresh token was reused; its family is revoked");
                metrics::counter!("tessera_refresh_reuse_total").increment(1);
                self.record_theft(
                    family,
                    user,
                    client.id,
                    "a refresh token was presented again after its rotation",
                )
                .await;
                Err(RefreshError::Reused)
            }
        }
    }
}
