//! What an operator does over HTTP: find users and change their profiles, see and
//! end their sessions, kick, disable and enable them, register and remove clients,
//! list keys, count who is online. The admin routes call this and nothing else; the
//! CLI reaches the same services through `Core`.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{ClientId, ClientSecret, SessionId, UserId, Username};
use tessera_store::{Client, EndReason, Online, SessionRecord, StoreError, User};

use crate::services::accounts::{Accounts, CutOff, Profile, ProfileChange};
use crate::services::clients::{AddClientError, ClientSpec, Clients};
use crate::services::keyring::{KeyRing, KeySet};
use crate::services::presence::Presence;
use crate::services::sessions::{SessionPolicy, SessionService};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("there is no user with this id")]
    NoSuchUser,
    #[error("the user has no session with this id")]
    NoSuchSession,
    #[error("there is no client with this id")]
    NoSuchClient,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Administration {
    accounts: Accounts,
    sessions: Arc<SessionService>,
    clients: Clients,
    keys: Arc<KeyRing>,
    presence: Arc<Presence>,
    /// The lifetime of the tokens of the token cookie, which belong to no client.
    session_token_ttl: Duration,
    /// Whether a client may have HS256 access tokens (a shared secret is set).
    hs256_configured: bool,
}

impl Administration {
    pub fn new(
        accounts: Accounts,
        sessions: Arc<SessionService>,
        clients: Clients,
        keys: Arc<KeyRing>,
        presence: Arc<Presence>,
        session_token_ttl: Duration,
        hs256_configured: bool,
    ) -> Self {
        Self {
            accounts,
            sessions,
            clients,
            keys,
            presence,
            session_token_ttl,
            hs256_configured,
        }
    }

    /// Registers a client; its secret, if it has one, is returned this once.
    pub async fn add_client(
        &self,
        spec: ClientSpec,
    ) -> Result<(Client, Option<ClientSecret>), AddClientError> {
        self.clients.add(spec, self.hs256_configured).await
    }

    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.clients.list().await
    }

    pub async fn client(&self, id: &ClientId) -> Result<Client, AdminError> {
        self.clients.get(id).await?.ok_or(AdminError::NoSuchClient)
    }

    /// Removes a client and cuts off every token issued to it.
    pub async fn remove_client(&self, id: &ClientId) -> Result<(), AdminError> {
        match self.clients.remove(id).await? {
            true => Ok(()),
            false => Err(AdminError::NoSuchClient),
        }
    }

    /// Users whose username contains `contains`, by username, after `after`.
    pub async fn search(
        &self,
        contains: &str,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        self.accounts.search(contains, after, limit).await
    }

    pub async fn user(&self, id: UserId) -> Result<User, AdminError> {
        self.accounts.user(id).await?.ok_or(AdminError::NoSuchUser)
    }

    /// The user with their profile.
    pub async fn user_with_profile(&self, id: UserId) -> Result<(User, Profile), AdminError> {
        let user = self.user(id).await?;
        let profile = self.accounts.profile(id).await?.unwrap_or_default();
        Ok((user, profile))
    }

    /// Changes the user's profile (name, email, whether the email is verified).
    pub async fn change_profile(
        &self,
        id: UserId,
        change: ProfileChange,
    ) -> Result<(User, Profile), AdminError> {
        let user = self.user(id).await?;
        let profile = self
            .accounts
            .change_profile(id, change)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        Ok((user, profile))
    }

    /// The user's live browser sessions.
    pub async fn sessions(&self, id: UserId) -> Result<(User, Vec<SessionRecord>), AdminError> {
        let user = self.user(id).await?;
        let sessions = self.sessions.list(user.id).await?;
        Ok((user, sessions))
    }

    pub fn session_policy(&self) -> &SessionPolicy {
        self.sessions.policy()
    }

    pub async fn end_session(&self, id: UserId, sid: &SessionId) -> Result<(), AdminError> {
        let user = self.user(id).await?;
        if self.sessions.end(user.id, sid, EndReason::Revoked).await? {
            Ok(())
        } else {
            Err(AdminError::NoSuchSession)
        }
    }

    /// Ends everything the user holds, now, on every instance and verifier; the
    /// account stays usable.
    pub async fn kick(&self, id: UserId) -> Result<CutOff, AdminError> {
        let live_for = self.tokens_live_for().await?;
        let cut = self
            .accounts
            .kick(id, live_for)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        tracing::info!(user = %cut.user.id, sessions = cut.sessions, families = cut.families, "user kicked");
        Ok(cut)
    }

    /// A kick that stays: the account cannot sign in, and everything it holds is
    /// refused on every instance and verifier.
    pub async fn disable(&self, id: UserId) -> Result<CutOff, AdminError> {
        let user = self.user(id).await?;
        let live_for = self.tokens_live_for().await?;
        let cut = self
            .accounts
            .disable(&user.username, live_for)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        tracing::info!(user = %cut.user.id, sessions = cut.sessions, families = cut.families, "user disabled");
        Ok(cut)
    }

    /// The account can sign in again; what it held before stays refused.
    pub async fn enable(&self, id: UserId) -> Result<User, AdminError> {
        let user = self.user(id).await?;
        let user = self
            .accounts
            .enable(&user.username)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        tracing::info!(user = %user.id, "user enabled");
        Ok(user)
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.current()
    }

    /// Users and sessions active in the last `window`.
    pub async fn online(&self, window: Duration) -> Result<Online, StoreError> {
        self.presence.online(window).await
    }

    /// How long a cut-off must be kept: the longest an access token can live.
    pub async fn tokens_live_for(&self) -> Result<Duration, StoreError> {
        self.clients
            .longest_access_ttl(self.session_token_ttl)
            .await
    }
}
