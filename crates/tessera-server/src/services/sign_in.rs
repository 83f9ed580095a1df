//! Signing in and signing up with a password: throttled, the password checked in
//! constant time, a fresh session started. `POST /v1/login`, the login page and
//! `POST /v1/users` call this and nothing else.

use std::net::IpAddr;
use std::sync::Arc;

use tessera_core::{Password, Roles, SessionSecret, Username};
use tessera_store::{Actor, CreateSessionError, EndReason, EventKind, StoreError, User};

use crate::services::accounts::{Accounts, LoginError, RegisterError};
use crate::services::audit::{Audit, event};
use crate::services::passwords::HashError;
use crate::services::sessions::{ActiveSession, NewSessionInfo, SessionService};
use crate::services::throttle::{Throttle, Throttled};

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("too many attempts")]
    Throttled(Throttled),
    /// Unknown user or wrong password: deliberately one case.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Hash(HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("registration is closed")]
    Closed,
    #[error("too many attempts")]
    Throttled(Throttled),
    #[error(transparent)]
    Register(RegisterError),
}

pub struct SignIn {
    accounts: Accounts,
    sessions: Arc<SessionService>,
    throttle: Arc<Throttle>,
    audit: Arc<Audit>,
    registration_open: bool,
}

/// Someone signing in: what they typed and where they come from.
pub struct Attempt {
    pub username: Username,
    pub password: Password,
    pub address: IpAddr,
    pub user_agent: Option<String>,
    /// The session secret the browser already holds, if any.
    pub previous: Option<SessionSecret>,
}

fn outcome(name: &'static str) {
    metrics::counter!("tessera_login_attempts_total", "outcome" => name).increment(1);
}

impl SignIn {
    pub fn new(
        accounts: Accounts,
        sessions: Arc<SessionService>,
        throttle: Arc<Throttle>,
        audit: Arc<Audit>,
        registration_open: bool,
    ) -> Self {
        Self {
            accounts,
            sessions,
            throttle,
            audit,
            registration_open,
        }
    }

    /// Whether `sign_up` opens accounts (configuration's `registration`).
    pub fn registration_open(&self) -> bool {
        self.registration_open
    }

    pub fn sessions(&self) -> &Arc<SessionService> {
        &self.sessions
    }

    /// Checks the password and starts a new session. A session secret presented
    /// with the attempt is never adopted (fixation); the session it names, if
    /// live, is ended, since the browser is about to forget it.
    pub async fn sign_in(
        &self,
        attempt: Attempt,
    ) -> Result<(SessionSecret, Arc<ActiveSession>), SignInError> {
        let (username, address) = (attempt.username.clone(), attempt.address);
        let signed_in = self.check_and_start(attempt).await;
        let failed = async || {
            let mut login = event(EventKind::Login, Actor::Anonymous)
                .username(username.as_str())
                .address(Some(address))
                .failed();
            if let Some(id) = self.accounts.id_of(&username).await {
                login = login.user(id);
            }
            login
        };
        let recorded = match &signed_in {
            Ok((_, session)) => event(EventKind::Login, Actor::User(session.user().id))
                .user(session.user().id)
                .username(username.as_str())
                .address(Some(address))
                .target("session", session.id()),
            Err(SignInError::Throttled(_)) => failed().await.detail("too many attempts"),
            Err(SignInError::InvalidCredentials) => {
                failed().await.detail("invalid username or password")
            }
            Err(SignInError::Disabled) => failed().await.detail("the account is disabled"),
            // Not an outcome of the attempt: tessera could not decide it.
            Err(SignInError::Hash(_) | SignInError::Store(_)) => return signed_in,
        };
        self.audit.record(recorded).await;
        signed_in
    }

    async fn check_and_start(
        &self,
        attempt: Attempt,
    ) -> Result<(SessionSecret, Arc<ActiveSession>), SignInError> {
        if let Err(wait) = self
            .throttle
            .login(&attempt.username, attempt.address)
            .await
        {
            outcome("throttled");
            return Err(SignInError::Throttled(wait));
        }
        let user = match self
            .accounts
            .check_password(&attempt.username, attempt.password)
            .await
        {
            Ok(user) => user,
            Err(LoginError::InvalidCredentials) => {
                outcome("invalid_credentials");
                return Err(SignInError::InvalidCredentials);
            }
            Err(LoginError::Disabled) => {
                outcome("disabled");
                return Err(SignInError::Disabled);
            }
            Err(LoginError::Hash(e)) => {
                outcome("unavailable");
                return Err(SignInError::Hash(e));
            }
            Err(LoginError::Store(e)) => return Err(e.into()),
        };
        let previous = match &attempt.previous {
            Some(old) => self.sessions.authenticate(old).await?,
            None => None,
        };
        if let Some(old) = previous {
            self.sessions
                .end(old.user().id, old.id(), EndReason::Replaced)
                .await?;
        }
        let started = self
            .sessions
            .start(
                &user,
                NewSessionInfo {
                    client_address: Some(attempt.address.to_string()),
                    user_agent: attempt.user_agent,
                },
            )
            .await
            .map_err(|e| match e {
                CreateSessionError::UserDisabled => SignInError::Disabled,
                CreateSessionError::Store(e) => SignInError::Store(e),
            })?;
        outcome("success");
        Ok(started)
    }

    /// Opens an account, unless configuration closed registration.
    pub async fn sign_up(
        &self,
        username: Username,
        password: Password,
        address: IpAddr,
    ) -> Result<User, SignUpError> {
        if !self.registration_open {
            return Err(SignUpError::Closed);
        }
        self.throttle
            .address(address)
            .await
            .map_err(SignUpError::Throttled)?;
        let user = self
            .accounts
            .register(username, password, Roles::default())
            .await
            .map_err(SignUpError::Register)?;
        self.audit
            .record(
                event(EventKind::UserRegistered, Actor::User(user.id))
                    .user(user.id)
                    .username(user.username.as_str())
                    .address(Some(address))
                    .detail("signed up"),
            )
            .await;
        Ok(user)
    }
}
