//! What a signed-in person does to their own account (the `/account` page): see
//! and edit their profile, change their password, see their sessions and sign one
//! or all others out, see the apps they allowed and remove one. Each change goes
//! through the service that owns it (sessions, consents), so the page and the JSON
//! API follow one rule; each is an audit event.

use std::net::IpAddr;
use std::sync::Arc;

use tessera_core::CeremonySecret;
use tessera_core::{ClientId, DisplayName, Email, Password, RecoveryCode, SessionId, TotpCode};
use tessera_store::{EventKind, PasskeyCredential, SessionRecord, StoreError, User};
use webauthn_rs::prelude::{CreationChallengeResponse, RegisterPublicKeyCredential};

use crate::config::MfaPolicy;
use crate::services::accounts::{Accounts, LoginError, Profile, ProfileChange};
use crate::services::audit::{Audit, by_user};
use crate::services::authorize::{AllowedApp, Authorization};
use crate::services::passkeys::{PasskeyError, Passkeys};
use crate::services::passwords::HashError;
use crate::services::second_factor::{SecondFactorError, SecondFactors, TotpState, unix_seconds};
use crate::services::sessions::{ActiveSession, SessionService};
use crate::services::throttle::{Throttle, Throttled};

pub struct SelfService {
    mfa: MfaPolicy,
    second_factors: Arc<SecondFactors>,
    passkeys: Arc<Passkeys>,
    accounts: Accounts,
    sessions: Arc<SessionService>,
    authorization: Arc<Authorization>,
    throttle: Arc<Throttle>,
    audit: Arc<Audit>,
}

/// Everything the account page shows.
pub struct AccountOverview {
    pub profile: Profile,
    /// Live sessions, oldest first.
    pub sessions: Vec<SessionRecord>,
    /// The apps allowed, oldest first.
    pub apps: Vec<AllowedApp>,
    pub totp: TotpState,
    /// The passkeys, oldest first.
    pub passkeys: Vec<PasskeyCredential>,
    /// Why passkeys are off here, if they are.
    pub passkeys_unavailable: Option<String>,
    /// Whether the `mfa` policy asks this account for a second factor (then it
    /// cannot be turned off).
    pub second_factor_required: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FactorChangeError {
    #[error("the current password is not right")]
    WrongPassword,
    #[error(
        "this service asks this account to sign in with a second factor: it cannot be turned off"
    )]
    Required,
    #[error("too many attempts")]
    Throttled(Throttled),
    #[error(transparent)]
    Factors(#[from] SecondFactorError),
    #[error(transparent)]
    Passkey(#[from] PasskeyError),
    #[error(transparent)]
    Hash(HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is not right")]
    WrongPassword,
    #[error("too many attempts")]
    Throttled(Throttled),
    #[error("the new password is the current one")]
    Unchanged,
    #[error(transparent)]
    Hash(HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SelfService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        accounts: Accounts,
        sessions: Arc<SessionService>,
        authorization: Arc<Authorization>,
        throttle: Arc<Throttle>,
        audit: Arc<Audit>,
        second_factors: Arc<SecondFactors>,
        passkeys: Arc<Passkeys>,
        mfa: MfaPolicy,
    ) -> Self {
        Self {
            mfa,
            second_factors,
            passkeys,
            accounts,
            sessions,
            authorization,
            throttle,
            audit,
        }
    }

    pub async fn overview(
        &self,
        session: &ActiveSession,
    ) -> Result<AccountOverview, SecondFactorError> {
        let user = session.user().id;
        Ok(AccountOverview {
            profile: self.accounts.profile(user).await?.unwrap_or_default(),
            sessions: self.sessions.list(user).await?,
            apps: self.authorization.consents(user).await?,
            totp: self.second_factors.state(session.user()).await?,
            passkeys: self.accounts_passkeys(user).await?,
            passkeys_unavailable: self.passkeys.unavailable().map(str::to_owned),
            second_factor_required: self.mfa.requires(&session.user().roles),
        })
    }

    /// Starts (or starts over) setting up an authenticator app.
    pub async fn begin_totp(&self, session: &ActiveSession) -> Result<(), SecondFactorError> {
        self.second_factors
            .begin_totp(session.user())
            .await
            .map(drop)
    }

    /// Drops an authenticator being set up (a confirmed one needs
    /// [`Self::remove_totp`]).
    pub async fn cancel_totp(&self, session: &ActiveSession) -> Result<(), SecondFactorError> {
        let user = session.user();
        if let TotpState::Enrolling(_) = self.second_factors.state(user).await? {
            self.second_factors.remove_totp(user.id).await?;
        }
        Ok(())
    }

    /// Confirms the authenticator being set up with a code from it; from now on
    /// signing in asks for one. The account's first recovery codes, shown once.
    pub async fn confirm_totp(
        &self,
        session: &ActiveSession,
        code: &TotpCode,
        address: IpAddr,
    ) -> Result<Vec<RecoveryCode>, FactorChangeError> {
        let user = session.user();
        self.throttle
            .login(&user.username, address)
            .await
            .map_err(FactorChangeError::Throttled)?;
        self.second_factors
            .confirm_totp(user.id, code, unix_seconds())
            .await?;
        let codes = self.second_factors.new_recovery_codes(user.id).await?;
        self.audit
            .record(
                by_user(EventKind::SecondFactorAdded, user, address).detail("authenticator app"),
            )
            .await;
        self.record_recovery_codes(user, address).await;
        Ok(codes)
    }

    /// Turns the authenticator app off, with its recovery codes; asks for the
    /// password, so that a session left open is not enough.
    pub async fn remove_totp(
        &self,
        session: &ActiveSession,
        password: Password,
        address: IpAddr,
    ) -> Result<(), FactorChangeError> {
        let user = session.user();
        if self.mfa.requires(&user.roles) {
            return Err(FactorChangeError::Required);
        }
        self.recheck_password(session, password, address).await?;
        self.second_factors.remove_totp(user.id).await?;
        self.second_factors.remove_recovery_codes(user.id).await?;
        self.audit
            .record(
                by_user(EventKind::SecondFactorRemoved, user, address)
                    .detail("authenticator app, and its recovery codes"),
            )
            .await;
        Ok(())
    }

    async fn accounts_passkeys(
        &self,
        user: tessera_core::UserId,
    ) -> Result<Vec<PasskeyCredential>, SecondFactorError> {
        self.passkeys.of(user).await.map_err(|e| match e {
            PasskeyError::Store(e) => SecondFactorError::Store(e),
            e => SecondFactorError::Store(StoreError::Other(e.to_string())),
        })
    }

    /// The person's passkeys, oldest first.
    pub async fn passkeys(
        &self,
        session: &ActiveSession,
    ) -> Result<Vec<PasskeyCredential>, PasskeyError> {
        self.passkeys.of(session.user().id).await
    }

    /// Starts adding a passkey named `name`; asks for the password, since a
    /// passkey signs in on its own: a session left open (or stolen) must not be
    /// enough to plant one.
    pub async fn begin_passkey(
        &self,
        session: &ActiveSession,
        name: &str,
        password: Password,
        address: IpAddr,
    ) -> Result<(CeremonySecret, CreationChallengeResponse), FactorChangeError> {
        self.recheck_password(session, password, address).await?;
        Ok(self
            .passkeys
            .begin_registration(session.user(), name)
            .await?)
    }

    /// Finishes adding the passkey `begin_passkey` started.
    pub async fn add_passkey(
        &self,
        session: &ActiveSession,
        pending: &CeremonySecret,
        response: &RegisterPublicKeyCredential,
        address: IpAddr,
    ) -> Result<PasskeyCredential, PasskeyError> {
        let user = session.user();
        let added = self
            .passkeys
            .finish_registration(user, pending, response)
            .await?;
        self.audit
            .record(
                by_user(EventKind::SecondFactorAdded, user, address)
                    .detail(format!("passkey \u{201c}{}\u{201d}", added.name)),
            )
            .await;
        Ok(added)
    }

    /// Removes one of the person's passkeys; `false` if they have none by this
    /// id. The last second factor of an account the `mfa` policy covers stays.
    pub async fn remove_passkey(
        &self,
        session: &ActiveSession,
        credential_id: &[u8],
        address: IpAddr,
    ) -> Result<bool, FactorChangeError> {
        let user = session.user();
        let passkeys = self.passkeys.of(user.id).await?;
        let Some(removing) = passkeys.iter().find(|p| p.credential_id == credential_id) else {
            return Ok(false);
        };
        if self.mfa.requires(&user.roles)
            && passkeys.len() == 1
            && !self.second_factors.has_totp(user.id).await?
        {
            return Err(FactorChangeError::Required);
        }
        if !self.passkeys.remove(user.id, credential_id).await? {
            return Ok(false);
        }
        self.audit
            .record(
                by_user(EventKind::SecondFactorRemoved, user, address)
                    .detail(format!("passkey \u{201c}{}\u{201d}", removing.name)),
            )
            .await;
        Ok(true)
    }

    /// A new set of recovery codes, the earlier ones void; asks for the password.
    pub async fn new_recovery_codes(
        &self,
        session: &ActiveSession,
        password: Password,
        address: IpAddr,
    ) -> Result<Vec<RecoveryCode>, FactorChangeError> {
        let user = session.user();
        self.recheck_password(session, password, address).await?;
        let codes = self.second_factors.new_recovery_codes(user.id).await?;
        self.record_recovery_codes(user, address).await;
        Ok(codes)
    }

    async fn record_recovery_codes(&self, user: &User, address: IpAddr) {
        self.audit
            .record(by_user(EventKind::RecoveryCodesIssued, user, address))
            .await;
    }

    /// The person's password again, throttled like a sign-in.
    async fn recheck_password(
        &self,
        session: &ActiveSession,
        password: Password,
        address: IpAddr,
    ) -> Result<(), FactorChangeError> {
        let user = session.user();
        self.throttle
            .login(&user.username, address)
            .await
            .map_err(FactorChangeError::Throttled)?;
        match self.accounts.check_password(&user.username, password).await {
            Ok(checked) if checked.id == user.id => Ok(()),
            Ok(_) | Err(LoginError::InvalidCredentials | LoginError::Disabled) => {
                Err(FactorChangeError::WrongPassword)
            }
            Err(LoginError::Hash(e)) => Err(FactorChangeError::Hash(e)),
            Err(LoginError::Store(e)) => Err(FactorChangeError::Store(e)),
        }
    }

    /// Sets the name and email the person gives (`None` clears one). A new email
    /// address is unverified: tessera sends no mail yet, so only an admin can mark
    /// one verified.
    pub async fn change_profile(
        &self,
        session: &ActiveSession,
        name: Option<DisplayName>,
        email: Option<Email>,
        address: IpAddr,
    ) -> Result<Profile, StoreError> {
        let user = session.user();
        let change = ProfileChange {
            name: Some(name),
            email: Some(email),
            email_verified: None,
        };
        let profile = self
            .accounts
            .change_profile(user.id, change)
            .await?
            .unwrap_or_default();
        self.audit
            .record(by_user(EventKind::ProfileChanged, user, address).detail("name, email"))
            .await;
        Ok(profile)
    }

    /// Replaces the password when `current` is right (throttled like a sign-in, as
    /// it is one); with `sign_out_others`, every other session ends too. Returns
    /// how many sessions that ended.
    pub async fn change_password(
        &self,
        session: &ActiveSession,
        current: Password,
        new: Password,
        sign_out_others: bool,
        address: IpAddr,
    ) -> Result<usize, PasswordChangeError> {
        let user = session.user();
        let changed = async {
            self.throttle
                .login(&user.username, address)
                .await
                .map_err(PasswordChangeError::Throttled)?;
            if current.expose() == new.expose() {
                return Err(PasswordChangeError::Unchanged);
            }
            self.accounts
                .change_password(user, current, new)
                .await
                .map_err(|e| match e {
                    LoginError::InvalidCredentials | LoginError::Disabled => {
                        PasswordChangeError::WrongPassword
                    }
                    LoginError::Hash(e) => PasswordChangeError::Hash(e),
                    LoginError::Store(e) => PasswordChangeError::Store(e),
                })
        }
        .await;
        let recorded = by_user(EventKind::PasswordChanged, user, address);
        if let Err(error) = changed {
            // What a person got wrong is recorded; what tessera could not do is not.
            if matches!(
                error,
                PasswordChangeError::WrongPassword | PasswordChangeError::Throttled(_)
            ) {
                self.audit
                    .record(recorded.failed().detail(error.to_string()))
                    .await;
            }
            return Err(error);
        }
        let ended = if sign_out_others {
            self.sessions
                .delete_others(session, Some(address))
                .await?
                .len()
        } else {
            0
        };
        self.audit
            .record(recorded.detail(format!("{ended} other session(s) signed out")))
            .await;
        Ok(ended)
    }

    /// Signs out one of the person's other sessions; `false` if they have none by `id`.
    pub async fn end_session(
        &self,
        session: &ActiveSession,
        id: &SessionId,
        address: IpAddr,
    ) -> Result<bool, StoreError> {
        self.sessions.delete(session, id, Some(address)).await
    }

    /// Signs out every session but this one; how many ended.
    pub async fn end_other_sessions(
        &self,
        session: &ActiveSession,
        address: IpAddr,
    ) -> Result<usize, StoreError> {
        Ok(self
            .sessions
            .delete_others(session, Some(address))
            .await?
            .len())
    }

    /// Withdraws what the person allowed `client`; `false` if nothing was allowed.
    pub async fn remove_app(
        &self,
        session: &ActiveSession,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        self.authorization
            .withdraw_consent(session.user().id, client)
            .await
    }
}
