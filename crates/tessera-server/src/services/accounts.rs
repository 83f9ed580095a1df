//! Accounts: registration, password login, listing, disabling, profiles.

use std::sync::Arc;
use std::time::Duration;

use tessera_core::{
    ClientId, DisplayName, Email, Password, PasswordResetSecret, Roles, Scopes, SessionId,
    Timestamp, UserId, Username,
};
pub use tessera_store::Profile;
use tessera_store::{
    AccountStore, ClientStore, Consent, CreateUserError, EndReason, NewUser, RefreshStore,
    ResetLink, RevocationLog, Revoked, StoreError, User,
};

use crate::services::cache::{Generation, GenerationCache};
use crate::services::passwords::{HashError, PasswordHasher};
use crate::services::sessions::SessionService;

/// A change to a profile: a member left `None` keeps what is there, `Some(None)`
/// clears it. A new email address is unverified unless the change says otherwise.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub name: Option<Option<DisplayName>>,
    pub email: Option<Option<Email>>,
    pub email_verified: Option<bool>,
}

impl ProfileChange {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.email_verified.is_none()
    }

    /// The names of the fields it changes (for the audit log: not their values).
    pub fn fields(&self) -> Vec<&'static str> {
        [
            (self.name.is_some(), "name"),
            (self.email.is_some(), "email"),
            (self.email_verified.is_some(), "email_verified"),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
    }

    fn apply(self, mut profile: Profile, at: Timestamp) -> Profile {
        if let Some(name) = self.name {
            profile.name = name;
        }
        if let Some(email) = self.email {
            if email != profile.email {
                profile.email_verified = false;
            }
            profile.email = email;
        }
        if let Some(verified) = self.email_verified {
            profile.email_verified = verified;
        }
        // No address, nothing verified.
        profile.email_verified &= profile.email.is_some();
        profile.updated_at = Some(at);
        profile
    }
}

#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    sessions: Arc<SessionService>,
    refresh: Arc<dyn RefreshStore>,
    log: Arc<dyn RevocationLog>,
    presence: Arc<crate::services::presence::Presence>,
    hasher: Arc<PasswordHasher>,
    generation: Generation,
    profiles: Arc<GenerationCache<UserId, Profile>>,
    consents: Arc<GenerationCache<(UserId, ClientId), Consent>>,
    /// Each user's consents, for the account page (moved by the same generation).
    consent_lists: Arc<GenerationCache<UserId, Vec<Consent>>>,
}

/// How many profiles, and consents, are kept between requests (see `cache`).
const CACHED_RECORDS: usize = 100_000;

/// What a kick or a disable ended.
#[derive(Debug)]
pub struct CutOff {
    pub user: User,
    /// The cut-off: tokens issued to the user up to now are refused everywhere.
    pub at: Timestamp,
    pub sessions: usize,
    pub families: usize,
}

impl CutOff {
    /// What it ended, in words, for the audit log's detail.
    pub fn ended(&self) -> String {
        format!(
            "{} session(s) and {} refresh token(s) ended",
            self.sessions, self.families
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the username is taken")]
    UsernameTaken,
    /// It looks like another account's name (the same confusable skeleton).
    #[error("the username looks like one that is taken")]
    LookAlike,
    /// It mixes scripts, the usual way of making a look-alike.
    #[error(transparent)]
    MixedScripts(tessera_core::UsernameError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: deliberately one case.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Accounts {
    pub fn new(
        store: Arc<dyn AccountStore>,
        sessions: Arc<SessionService>,
        refresh: Arc<dyn RefreshStore>,
        log: Arc<dyn RevocationLog>,
        presence: Arc<crate::services::presence::Presence>,
        hasher: Arc<PasswordHasher>,
        cached: Arc<dyn ClientStore>,
    ) -> Self {
        Self {
            store,
            sessions,
            refresh,
            log,
            presence,
            hasher,
            generation: Generation(cached),
            profiles: Arc::new(GenerationCache::new(CACHED_RECORDS)),
            consents: Arc::new(GenerationCache::new(CACHED_RECORDS)),
            consent_lists: Arc::new(GenerationCache::new(CACHED_RECORDS)),
        }
    }

    pub async fn register(
        &self,
        username: Username,
        password: Password,
        roles: Roles,
    ) -> Result<User, RegisterError> {
        // Here, not in `Username::parse`: names from before the rule still sign in.
        username
            .check_single_script()
            .map_err(RegisterError::MixedScripts)?;
        let password_hash = self.hasher.hash(password).await?;
        self.store
            .create_user(NewUser {
                id: UserId::generate(),
                username,
                password_hash,
                roles,
                created_at: Timestamp::now(),
            })
            .await
            .map_err(|e| match e {
                CreateUserError::UsernameTaken => RegisterError::UsernameTaken,
                CreateUserError::LookAlike => RegisterError::LookAlike,
                CreateUserError::Store(e) => RegisterError::Store(e),
            })
    }

    /// Replaces `user`'s password, if `current` is it; the new one is hashed with the
    /// parameters configured now. A change racing another one (or a login's
    /// re-hash) loses: the stored hash is replaced only if it is still the one
    /// `current` was checked against.
    pub async fn change_password(
        &self,
        user: &User,
        current: Password,
        new: Password,
    ) -> Result<(), LoginError> {
        let credentials = self
            .store
            .user_credentials(&user.username)
            .await?
            .filter(|c| c.user.id == user.id)
            .ok_or(LoginError::InvalidCredentials)?;
        let verification = self
            .hasher
            .verify(current, Some(credentials.password_hash.clone()))
            .await?;
        if !verification.matches {
            return Err(LoginError::InvalidCredentials);
        }
        let new_hash = self.hasher.hash(new).await?;
        if self
            .store
            .replace_password_hash(user.id, &credentials.password_hash, &new_hash)
            .await?
        {
            Ok(())
        } else {
            // Changed meanwhile (another change, a login's re-hash): the person
            // tries again against what is stored now, rather than being told of a
            // change that did not happen.
            Err(LoginError::Store(StoreError::Conflict(
                "the password was changed at the same moment; try again".into(),
            )))
        }
    }

    /// Keeps a new reset link for the user, replacing any earlier one; the secret to
    /// hand over and when it stops working. `None` if there is no such user.
    pub async fn issue_reset_link(
        &self,
        user: UserId,
        lifetime: Duration,
    ) -> Result<Option<(PasswordResetSecret, Timestamp)>, StoreError> {
        let secret = PasswordResetSecret::generate();
        let created_at = Timestamp::now();
        let expires_at = created_at.saturating_add(lifetime);
        let saved = self
            .store
            .save_reset_link(ResetLink {
                user,
                hash: secret.hash(),
                created_at,
                expires_at,
            })
            .await?;
        Ok(saved.then_some((secret, expires_at)))
    }

    /// The account a reset link resets, while it works.
    pub async fn reset_link_holder(
        &self,
        secret: &PasswordResetSecret,
    ) -> Result<Option<User>, StoreError> {
        match self
            .store
            .reset_link_user(&secret.hash(), Timestamp::now())
            .await?
        {
            Some(id) => self.store.user(id).await,
            None => Ok(None),
        }
    }

    /// Uses a reset link: the new password (hashed with the parameters configured
    /// now) replaces the old one as the link is used up, then everything the account
    /// held is cut off as by a kick. `None` if the link does not work.
    pub async fn reset_password(
        &self,
        secret: &PasswordResetSecret,
        new: Password,
        tokens_live_for: Duration,
    ) -> Result<Option<CutOff>, LoginError> {
        let new_hash = self.hasher.hash(new).await?;
        let Some(id) = self
            .store
            .use_reset_link(&secret.hash(), Timestamp::now(), &new_hash)
            .await?
        else {
            return Ok(None);
        };
        let Some(user) = self.store.user(id).await? else {
            return Ok(None);
        };
        Ok(Some(
            self.cut_off(user, EndReason::PasswordReset, tokens_live_for)
                .await?,
        ))
    }

    /// Gives the user exactly `roles`; the roles they had, and the user now. A role taken
    /// away is taken from what the user holds too: sessions and tokens carry the
    /// roles they were issued with, so the user is cut off as by a kick.
    pub async fn set_roles(
        &self,
        id: UserId,
        roles: Roles,
        tokens_live_for: Duration,
    ) -> Result<Option<(Roles, User, Option<CutOff>)>, StoreError> {
        let Some((before, after)) = self.store.set_roles(id, &roles).await? else {
            return Ok(None);
        };
        let lost_one = before.iter().any(|role| !after.roles.contains(role));
        let cut = if lost_one {
            Some(
                self.cut_off(after.clone(), EndReason::Kicked, tokens_live_for)
                    .await?,
            )
        } else {
            None
        };
        Ok(Some((before, after, cut)))
    }

    /// Checks a password. Takes the same time whether or not the user exists.
    pub async fn check_password(
        &self,
        username: &Username,
        password: Password,
    ) -> Result<User, LoginError> {
        let credentials = self.store.user_credentials(username).await?;
        let stored = credentials.as_ref().map(|c| c.password_hash.clone());
        let verification = self.hasher.verify(password, stored).await?;
        let (Some(credentials), true) = (credentials, verification.matches) else {
            return Err(LoginError::InvalidCredentials);
        };
        if credentials.user.disabled {
            return Err(LoginError::Disabled);
        }
        if let Some(new_hash) = verification.rehashed {
            // Losing this race to a concurrent password change is fine: see the trait.
            if let Err(error) = self
                .store
                .replace_password_hash(credentials.user.id, &credentials.password_hash, &new_hash)
                .await
            {
                tracing::warn!(%error, "cannot store the re-hashed password");
            }
        }
        Ok(credentials.user)
    }

    pub async fn list(&self) -> Result<Vec<User>, StoreError> {
        self.store.list_users().await
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.store.user(id).await
    }

    /// The user a token of browser session `session` speaks for, as that session
    /// holds it when it is live (kept current by the revocation feed, no store
    /// read); from the store otherwise (a token of no browser session, or of one
    /// that has ended: then the caller's own revocation check decides).
    pub async fn user_of_session(
        &self,
        id: UserId,
        session: Option<&str>,
    ) -> Result<Option<User>, StoreError> {
        if let Some(session) = session.and_then(|s| SessionId::parse(s).ok())
            && let Some(live) = self.sessions.live(&session).await?
            && live.user().id == id
        {
            return Ok(Some(live.user().clone()));
        }
        self.store.user(id).await
    }

    /// The user named by id or by username, as an operator types it.
    /// The id of the account named `username`, if there is one (the audit log
    /// files a failed sign-in under the account it was aimed at).
    pub async fn id_of(&self, username: &Username) -> Option<UserId> {
        match self.store.user_credentials(username).await {
            Ok(found) => found.map(|c| c.user.id),
            Err(_) => None,
        }
    }

    pub async fn find(&self, id_or_name: &str) -> Result<Option<User>, StoreError> {
        if let Some(id) = UserId::parse(id_or_name) {
            return self.store.user(id).await;
        }
        match Username::parse(id_or_name) {
            Ok(name) => Ok(self.store.user_credentials(&name).await?.map(|c| c.user)),
            Err(_) => Ok(None),
        }
    }

    /// One page of users whose username contains `contains`, after `after`.
    pub async fn search(
        &self,
        contains: &str,
        after: Option<&Username>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        self.store.search_users(contains, after, limit).await
    }

    /// Throws the user out everywhere without disabling the account: publishes a
    /// "tokens issued to this user up to now" cut-off, then ends every session and
    /// refresh-token family. `tokens_live_for` is the longest lifetime an access token
    /// can have, how long verifiers must keep the cut-off. `None` if no such user.
    pub async fn kick(
        &self,
        id: UserId,
        tokens_live_for: Duration,
    ) -> Result<Option<CutOff>, StoreError> {
        let Some(user) = self.store.user(id).await? else {
            return Ok(None);
        };
        self.cut_off(user, EndReason::Kicked, tokens_live_for)
            .await
            .map(Some)
    }

    /// Disables the account, then cuts it off as a kick does: every token issued
    /// to the user so far (JWTs with or without `sid`, opaque access tokens,
    /// refresh tokens) is refused everywhere, and no new one can be had while it
    /// stays disabled. `None` if there is no such user. Disabling a disabled
    /// account cuts it off again, which finishes a disable that failed halfway.
    pub async fn disable(
        &self,
        username: &Username,
        tokens_live_for: Duration,
    ) -> Result<Option<CutOff>, StoreError> {
        // The flag first: once it is committed no new token can be had, so the
        // cut-off that follows covers everything the user can hold.
        let Some(user) = self.store.set_user_disabled(username, true).await? else {
            return Ok(None);
        };
        self.cut_off(user, EndReason::UserDisabled, tokens_live_for)
            .await
            .map(Some)
    }

    /// The user's profile; `None` if there is no such user.
    /// The user's profile (`None` for no such user), kept between requests: ID
    /// tokens and userinfo read it on every call.
    pub async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        self.profiles
            .get_or_read(&self.generation, id, self.store.profile(id))
            .await
    }

    /// Applies `change` to the user's profile and returns the result; `None` if
    /// there is no such user. Read, changed and written back: of two changes at the
    /// same moment, the later write wins whole (profiles are edited by a person, one
    /// form at a time).
    pub async fn change_profile(
        &self,
        id: UserId,
        change: ProfileChange,
    ) -> Result<Option<Profile>, StoreError> {
        let Some(current) = self.store.profile(id).await? else {
            return Ok(None);
        };
        let changed = change.apply(current, Timestamp::now());
        Ok(self
            .store
            .set_profile(id, changed.clone())
            .await?
            .then_some(changed))
    }

    /// What `user` allowed `client`, if they did.
    pub async fn consent(
        &self,
        user: UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        // A consent that grew since it was kept only makes the caller read again
        // (what it kept allows less); a withdrawal changes the generation.
        self.consents
            .get_or_read(
                &self.generation,
                (user, *client),
                self.store.consent(user, client),
            )
            .await
    }

    /// Remembers that `user` allowed `client` these scopes, beside what they allowed
    /// it before: a consent only grows until it is withdrawn.
    pub async fn give_consent(
        &self,
        user: UserId,
        client: &ClientId,
        scopes: &Scopes,
    ) -> Result<(), StoreError> {
        let mut allowed = scopes.clone();
        if let Some(before) = self.store.consent(user, client).await? {
            allowed = allowed.union(&before.scopes);
        }
        self.store
            .save_consent(Consent {
                user,
                client_id: *client,
                scopes: allowed,
                granted_at: Timestamp::now(),
            })
            .await?;
        Ok(())
    }

    /// Every consent of `user`, oldest first.
    pub async fn consents(&self, user: UserId) -> Result<Vec<Consent>, StoreError> {
        let read = async { self.store.consents(user).await.map(Some) };
        Ok(self
            .consent_lists
            .get_or_read(&self.generation, user, read)
            .await?
            .unwrap_or_default())
    }

    /// Forgets what `user` allowed `client`; `false` if they had allowed nothing.
    pub async fn withdraw_consent(
        &self,
        user: UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        self.store.withdraw_consent(user, client).await
    }

    /// Lets a disabled account sign in again. What it held before stays refused:
    /// its cut-off covers every token issued up to the disable. `None` if there is
    /// no such user.
    pub async fn enable(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.store.set_user_disabled(username, false).await
    }

    /// Publishes the user's cut-off, then ends every session and refresh family.
    /// The cut-off goes first, so that from the moment it is durable every
    /// verifier refuses the user's tokens, even if ending the sessions then fails;
    /// a retry finishes the job (each step is idempotent).
    async fn cut_off(
        &self,
        user: User,
        reason: EndReason,
        tokens_live_for: Duration,
    ) -> Result<CutOff, StoreError> {
        let at = Timestamp::now();
        self.log
            .append_revocation(
                Revoked::User(user.id),
                Some(user.id),
                reason,
                at,
                at.saturating_add(tokens_live_for),
            )
            .await?;
        let sessions = self.sessions.end_all_of_user(user.id, None, reason).await?;
        let families = self
            .refresh
            .revoke_families_of_user(user.id, None, reason, at)
            .await?;
        self.presence.forget(&families).await;
        Ok(CutOff {
            user,
            at,
            sessions: sessions.len(),
            families: families.len(),
        })
    }
}
