//! What an operator does over HTTP: find users and change their profiles, see and
//! end their sessions, kick, disable and enable them, register and remove clients,
//! list keys, count who is online. The admin routes call this and nothing else; the
//! CLI reaches the same services through `Core`.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    Algorithm, ClientId, ClientSecret, Password, Roles, SessionId, Timestamp, UserId, Username,
};
use tessera_store::{
    Client, EndReason, Event, EventCount, EventKind, EventQuery, Online, OnlinePeak, SessionRecord,
    StoreError, User,
};

use crate::config::MfaPolicy;
use crate::services::accounts::{Accounts, CutOff, Profile, ProfileChange, RegisterError};
use crate::services::audit::{Audit, Caller};
use crate::services::clients::{AddClientError, ClientSpec, Clients};
use crate::services::keyring::{KeyRing, KeyRingError, KeySet};
use crate::services::presence::Presence;
use crate::services::second_factor::{Factors, SecondFactorError, SecondFactors};
use crate::services::sessions::ActiveSession;
use crate::services::sessions::{SessionPolicy, SessionService};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("there is no user with this id")]
    NoSuchUser,
    #[error("the user has no session with this id")]
    NoSuchSession,
    #[error("there is no client with this id")]
    NoSuchClient,
    #[error("the account is disabled: enable it first")]
    UserDisabled,
    #[error("the client is public: it has no secret")]
    PublicClient,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reset link just issued. Its `url` holds the secret: shown this once, to the
/// administrator who hands it over, and never stored or logged (no `Debug`).
pub struct IssuedLink {
    pub user: User,
    pub url: String,
    pub expires_at: Timestamp,
}

/// How long a password-reset link works: long enough to hand it over, short
/// enough that a link found later in a chat log is dead.
pub const RESET_LINK_LIFETIME: Duration = Duration::from_secs(3600);

/// How old the dashboard's figures may be.
pub const DASHBOARD_FRESH: Duration = Duration::from_secs(1);

/// What the dashboard shows: who is online now, sign-ins by hour, and the most
/// users online in each hour.
pub type Dashboard = (Online, Vec<EventCount>, Vec<OnlinePeak>);

type DashboardFigures = (std::time::Instant, (Duration, Timestamp), Dashboard);

/// How often each instance samples who is online for the hourly peaks.
const SAMPLE_ONLINE_EVERY: Duration = Duration::from_secs(60);
/// An hour in milliseconds: the dashboard's buckets.
pub const HOUR_MS: i64 = 3_600_000;

pub struct Administration {
    accounts: Accounts,
    sessions: Arc<SessionService>,
    clients: Clients,
    keys: Arc<KeyRing>,
    presence: Arc<Presence>,
    audit: Arc<Audit>,
    /// The dashboard's figures, when they were read, and for which window.
    dashboard: tokio::sync::Mutex<Option<DashboardFigures>>,
    /// The lifetime of the tokens of the token cookie, which belong to no client.
    session_token_ttl: Duration,
    /// Whether a client may have HS256 access tokens (a shared secret is set).
    hs256_configured: bool,
    /// The address of the page a reset link opens (`{public_url}/reset`).
    reset_page: String,
    second_factors: Arc<SecondFactors>,
    mfa: MfaPolicy,
}

impl Administration {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        accounts: Accounts,
        sessions: Arc<SessionService>,
        clients: Clients,
        keys: Arc<KeyRing>,
        presence: Arc<Presence>,
        audit: Arc<Audit>,
        session_token_ttl: Duration,
        hs256_configured: bool,
        public_url: &str,
        second_factors: Arc<SecondFactors>,
        mfa: MfaPolicy,
    ) -> Self {
        Self {
            mfa,
            second_factors,
            accounts,
            sessions,
            clients,
            keys,
            presence,
            audit,
            dashboard: tokio::sync::Mutex::new(None),
            session_token_ttl,
            hs256_configured,
            reset_page: format!("{}/reset", public_url.trim_end_matches('/')),
        }
    }

    /// Registers a client; its secret, if it has one, is returned this once.
    pub async fn add_client(
        &self,
        by: Caller,
        spec: ClientSpec,
    ) -> Result<(Client, Option<ClientSecret>), AddClientError> {
        let (client, secret) = self.clients.add(spec, self.hs256_configured).await?;
        self.audit
            .record(
                by.event(EventKind::ClientAdded)
                    .target("client", client.id)
                    .detail(client.name.as_str()),
            )
            .await;
        Ok((client, secret))
    }

    pub async fn clients(&self) -> Result<Vec<Client>, StoreError> {
        self.clients.list().await
    }

    pub async fn client(&self, id: &ClientId) -> Result<Client, AdminError> {
        self.clients.get(id).await?.ok_or(AdminError::NoSuchClient)
    }

    /// A new secret for a confidential client, shown this once; the old one stops
    /// working at once. Tokens already issued stay valid (`remove_client` ends them).
    pub async fn rotate_client_secret(
        &self,
        by: Caller,
        id: &ClientId,
    ) -> Result<ClientSecret, AdminError> {
        let client = self.client(id).await?;
        if client.secret_hash.is_none() {
            return Err(AdminError::PublicClient);
        }
        let secret = self
            .clients
            .rotate_secret(id)
            .await?
            .ok_or(AdminError::NoSuchClient)?;
        self.audit
            .record(
                by.event(EventKind::ClientSecretRotated)
                    .target("client", client.id)
                    .detail(client.name.as_str()),
            )
            .await;
        Ok(secret)
    }

    /// Removes a client and cuts off every token issued to it.
    pub async fn remove_client(&self, by: Caller, id: &ClientId) -> Result<(), AdminError> {
        if !self.clients.remove(id).await? {
            return Err(AdminError::NoSuchClient);
        }
        self.audit
            .record(by.event(EventKind::ClientRemoved).target("client", id))
            .await;
        Ok(())
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
        by: Caller,
        id: UserId,
        change: ProfileChange,
    ) -> Result<(User, Profile), AdminError> {
        let user = self.user(id).await?;
        let changed = change.fields().join(", ");
        let profile = self
            .accounts
            .change_profile(id, change)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        self.audit
            .record(
                by.event(EventKind::ProfileChanged)
                    .user(user.id)
                    .username(user.username.as_str())
                    .detail(changed),
            )
            .await;
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

    pub async fn end_session(
        &self,
        by: Caller,
        id: UserId,
        sid: &SessionId,
    ) -> Result<(), AdminError> {
        let user = self.user(id).await?;
        if !self.sessions.end(user.id, sid, EndReason::Revoked).await? {
            return Err(AdminError::NoSuchSession);
        }
        self.audit
            .record(
                by.event(EventKind::SessionEnded)
                    .user(user.id)
                    .username(user.username.as_str())
                    .target("session", sid)
                    .detail(EndReason::Revoked.as_str()),
            )
            .await;
        Ok(())
    }

    /// Ends everything the user holds, now, on every instance and verifier; the
    /// account stays usable.
    pub async fn kick(&self, by: Caller, id: UserId) -> Result<CutOff, AdminError> {
        let live_for = self.tokens_live_for().await?;
        let cut = self
            .accounts
            .kick(id, live_for)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        self.record_cut(by, EventKind::UserKicked, &cut).await;
        Ok(cut)
    }

    /// A kick that stays: the account cannot sign in, and everything it holds is
    /// refused on every instance and verifier.
    pub async fn disable(&self, by: Caller, id: UserId) -> Result<CutOff, AdminError> {
        let user = self.user(id).await?;
        let live_for = self.tokens_live_for().await?;
        let cut = self
            .accounts
            .disable(&user.username, live_for)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        self.record_cut(by, EventKind::UserDisabled, &cut).await;
        Ok(cut)
    }

    /// The account can sign in again; what it held before stays refused.
    pub async fn enable(&self, by: Caller, id: UserId) -> Result<User, AdminError> {
        let user = self.user(id).await?;
        let user = self
            .accounts
            .enable(&user.username)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        self.audit
            .record(
                by.event(EventKind::UserEnabled)
                    .user(user.id)
                    .username(user.username.as_str()),
            )
            .await;
        Ok(user)
    }

    async fn record_cut(&self, by: Caller, kind: EventKind, cut: &CutOff) {
        self.forget_dashboard().await;
        self.audit
            .record(
                by.event(kind)
                    .user(cut.user.id)
                    .username(cut.user.username.as_str())
                    .detail(cut.ended()),
            )
            .await;
    }

    /// Gives the user exactly `roles`. Taking a role away also ends every session
    /// and token the user holds (they carry the roles they were issued with); a
    /// role given takes effect at the user's next sign-in.
    pub async fn set_roles(
        &self,
        by: Caller,
        id: UserId,
        roles: Roles,
    ) -> Result<(User, Option<CutOff>), AdminError> {
        let live_for = self.tokens_live_for().await?;
        let (before, after, cut) = self
            .accounts
            .set_roles(id, roles, live_for)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        if before != after.roles {
            let stored = |roles: &Roles| match roles.to_stored() {
                none if none.is_empty() => "none".to_owned(),
                some => some,
            };
            let mut detail = format!("{} -> {}", stored(&before), stored(&after.roles));
            if let Some(cut) = &cut {
                detail.push_str(&format!("; {}", cut.ended()));
            }
            self.audit
                .record(
                    by.event(EventKind::RolesChanged)
                        .user(after.id)
                        .username(after.username.as_str())
                        .detail(detail),
                )
                .await;
        }
        if cut.is_some() {
            self.forget_dashboard().await;
        }
        Ok((after, cut))
    }

    /// A new one-time password-reset link for the user, replacing any earlier one
    /// (see `services::reset_links`). A disabled account gets none: it could not
    /// sign in with the new password.
    /// Whether this session may administer: an admin's, and signed in with a
    /// second factor when the `mfa` policy asks admins for one.
    pub fn admits(&self, session: &ActiveSession) -> bool {
        self.mfa.admits(session.user(), session.methods())
    }

    /// Whether the `mfa` policy asks administrators for a second factor.
    pub fn asks_admins_for_second_factor(&self) -> bool {
        self.mfa.requires_for(true)
    }

    /// Whether the account has an authenticator app set up.
    pub async fn second_factors(&self, id: UserId) -> Result<Factors, AdminError> {
        Ok(self.second_factors.factors(id).await?)
    }

    /// Takes away the account's second factors (its authenticator app and its
    /// recovery codes), for a person who lost both: their password alone signs
    /// them in again, and they set up a new app. `false` if it had none.
    pub async fn reset_second_factors(
        &self,
        by: Caller,
        id: UserId,
    ) -> Result<(User, bool), AdminError> {
        let user = self.user(id).await?;
        let store = |e: SecondFactorError| match e {
            SecondFactorError::Store(e) => AdminError::Store(e),
            other => AdminError::Store(StoreError::Other(other.to_string())),
        };
        let had_app = self
            .second_factors
            .remove_totp(user.id)
            .await
            .map_err(store)?;
        let passkeys = self
            .second_factors
            .remove_passkeys(user.id)
            .await
            .map_err(store)?;
        self.second_factors
            .remove_recovery_codes(user.id)
            .await
            .map_err(store)?;
        let had = had_app || passkeys > 0;
        self.audit
            .record(
                by.event(EventKind::SecondFactorRemoved)
                    .user(user.id)
                    .username(user.username.as_str())
                    .detail(if had {
                        "reset by an administrator: the authenticator app, passkeys and \
                         recovery codes"
                    } else {
                        "reset by an administrator: there was no second factor"
                    }),
            )
            .await;
        Ok((user, had))
    }

    pub async fn issue_reset_link(&self, by: Caller, id: UserId) -> Result<IssuedLink, AdminError> {
        let user = self.user(id).await?;
        if user.disabled {
            return Err(AdminError::UserDisabled);
        }
        let (secret, expires_at) = self
            .accounts
            .issue_reset_link(user.id, RESET_LINK_LIFETIME)
            .await?
            .ok_or(AdminError::NoSuchUser)?;
        self.audit
            .record(
                by.event(EventKind::ResetLinkIssued)
                    .user(user.id)
                    .username(user.username.as_str())
                    .detail(format!("works until {}", expires_at.to_rfc3339())),
            )
            .await;
        Ok(IssuedLink {
            url: format!("{}?token={}", self.reset_page, secret.expose()),
            user,
            expires_at,
        })
    }

    /// Opens an account (the CLI's `user add`).
    pub async fn add_user(
        &self,
        by: Caller,
        username: Username,
        password: Password,
        roles: Roles,
    ) -> Result<User, RegisterError> {
        let user = self.accounts.register(username, password, roles).await?;
        let mut event = by
            .event(EventKind::UserRegistered)
            .user(user.id)
            .username(user.username.as_str());
        if user.roles.iter().next().is_some() {
            event = event.detail(format!("roles: {}", user.roles.to_stored()));
        }
        self.audit.record(event).await;
        Ok(user)
    }

    /// A new signing key for `algorithm` (see [`KeyRing::rotate`]); its `kid`.
    pub async fn rotate_key(
        &self,
        by: Caller,
        algorithm: Algorithm,
        immediately: bool,
    ) -> Result<String, KeyRingError> {
        let longest = self.tokens_live_for().await?;
        let kid = self.keys.rotate(algorithm, immediately, longest).await?;
        self.audit
            .record(
                by.event(EventKind::KeyRotated)
                    .target("key", &kid)
                    .detail(format!(
                        "{algorithm} key, signing {}",
                        if immediately {
                            "now"
                        } else {
                            "after the rotation delay"
                        }
                    )),
            )
            .await;
        Ok(kid)
    }

    /// Withdraws a key at once (see [`KeyRing::retire`]); `false` if there is no
    /// such key still in use.
    pub async fn retire_key(&self, by: Caller, kid: &str) -> Result<bool, KeyRingError> {
        let retired = self.keys.retire(kid).await?;
        if retired {
            self.audit
                .record(by.event(EventKind::KeyRetired).target("key", kid))
                .await;
        }
        Ok(retired)
    }

    /// The audit log's events `query` matches, newest first.
    pub async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        self.audit.events(query).await
    }

    /// The events recorded after `after`, oldest first (following the log).
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.audit.events_after(after, limit).await
    }

    /// The dashboard's figures: who is online in `window`, and sign-ins by hour
    /// since `since`. A summary, so at most [`DASHBOARD_FRESH`] old: one read of
    /// the store a second however many admins watch, and none of it stale after
    /// this instance's own kicks and disables (which forget it).
    pub async fn dashboard(
        &self,
        window: Duration,
        since: Timestamp,
    ) -> Result<Dashboard, StoreError> {
        let mut kept = self.dashboard.lock().await;
        if let Some((at, key, figures)) = kept.as_ref()
            && at.elapsed() < DASHBOARD_FRESH
            && *key == (window, since)
        {
            return Ok(figures.clone());
        }
        // What is online now is a sample of the hour's peak too, kept before the
        // peaks are read: the chart's last bar is never below the figure beside it.
        let online = self.presence.online(window).await?;
        self.note_online_peak(online).await;
        let (counts, peaks) = tokio::try_join!(
            self.audit.count_events(EventKind::Login, since, HOUR_MS),
            self.audit.online_peaks(since),
        )?;
        let figures = (online, counts, peaks);
        *kept = Some((std::time::Instant::now(), (window, since), figures.clone()));
        Ok(figures)
    }

    /// Samples, once a minute, who is online in `window`, and keeps the most of
    /// each hour in the store (every instance samples; the store keeps the
    /// largest): the dashboard's online users over the last day.
    pub async fn sample_online(self: Arc<Self>, window: Duration) {
        let mut every = tokio::time::interval(SAMPLE_ONLINE_EVERY);
        loop {
            every.tick().await;
            match self.presence.online(window).await {
                Ok(online) => self.note_online_peak(online).await,
                Err(error) => {
                    tracing::warn!(%error, "cannot sample who is online for the dashboard");
                }
            }
        }
    }

    /// `online`, a sample of this hour's peak.
    async fn note_online_peak(&self, online: Online) {
        let now = Timestamp::now().as_millis();
        let hour = Timestamp::from_millis(now - now.rem_euclid(HOUR_MS));
        if let Err(error) = self.audit.record_online_peak(hour, online).await {
            tracing::warn!(%error, "cannot keep who is online for the dashboard");
        }
    }

    async fn forget_dashboard(&self) {
        *self.dashboard.lock().await = None;
    }

    /// A user by id or username.
    pub async fn find_user(&self, id_or_name: &str) -> Result<Option<User>, StoreError> {
        self.accounts.find(id_or_name).await
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
