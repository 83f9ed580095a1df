//! Signing in and signing up: throttled, the password checked in constant time,
//! the second factor asked for when the account has one, a fresh session started.
//! `POST /v1/login`, `POST /v1/login/second-factor`, the login pages and
//! `POST /v1/users` call this and nothing else.
//!
//! Between the factors there is no session: the password's success is a
//! ceremony in the store (`CeremonyKind::SecondFactor`), which the browser holds
//! by a secret of its own in a cookie of its own. It opens nothing but the second
//! step, on any instance; it lasts [`BETWEEN_FACTORS`]; each attempt takes it
//! from the store and a wrong code puts it back with one attempt fewer, so it
//! allows [`SECOND_STEP_ATTEMPTS`] guesses in all, and every attempt counts
//! against the account's and the address's login budget too.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_core::{
    AuthMethod, AuthMethods, CeremonySecret, Password, RecoveryCode, Roles, SessionSecret,
    Timestamp, TotpCode, Username,
};
use tessera_store::{
    Actor, Ceremony, CeremonyKind, CeremonyStore, CreateSessionError, EndReason, EventKind,
    StoreError, User,
};

use crate::config::MfaPolicy;
use crate::services::accounts::{Accounts, LoginError, RegisterError};
use crate::services::audit::{Audit, by_user, event};
use crate::services::passkeys::{PasskeyError, Passkeys};
use crate::services::passwords::HashError;
pub use crate::services::second_factor::Factors;
use crate::services::second_factor::{
    Enrolment, SecondFactorError, SecondFactors, TotpState, unix_seconds,
};
use crate::services::sessions::{ActiveSession, NewSessionInfo, SessionService};
use crate::services::throttle::{Throttle, Throttled};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

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
    Factors(SecondFactorError),
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
    mfa: MfaPolicy,
    accounts: Accounts,
    sessions: Arc<SessionService>,
    second_factors: Arc<SecondFactors>,
    passkeys: Arc<Passkeys>,
    ceremonies: Arc<dyn CeremonyStore>,
    throttle: Arc<Throttle>,
    audit: Arc<Audit>,
    registration_open: bool,
}

/// How long a sign-in waits between its password and its second factor.
pub const BETWEEN_FACTORS: Duration = Duration::from_secs(5 * 60);
/// Wrong second factors one sign-in may try before it must start again.
pub const SECOND_STEP_ATTEMPTS: u32 = 5;

/// Someone signing in: what they typed and where they come from.
pub struct Attempt {
    pub username: Username,
    pub password: Password,
    pub address: IpAddr,
    pub user_agent: Option<String>,
    /// The session secret the browser already holds, if any.
    pub previous: Option<SessionSecret>,
    /// Ask for a second factor whatever the account and the policy say (a
    /// step-up the client asked for).
    pub second_factor: bool,
}

/// The second step of a sign-in.
pub struct SecondStep {
    /// The secret the first step gave.
    pub pending: CeremonySecret,
    pub proof: SecondFactorProof,
    pub address: IpAddr,
    pub user_agent: Option<String>,
    pub previous: Option<SessionSecret>,
}

/// What the person gave as their second factor.
pub enum SecondFactorProof {
    Totp(TotpCode),
    RecoveryCode(RecoveryCode),
    /// A passkey's answer to the challenge `begin_second_step_passkey` gave.
    Passkey {
        ceremony: CeremonySecret,
        credential: Box<PublicKeyCredential>,
    },
}

/// Someone signing in with a passkey alone: the challenge's secret and the
/// authenticator's answer.
pub struct PasskeyAttempt {
    pub pending: CeremonySecret,
    pub credential: PublicKeyCredential,
    pub address: IpAddr,
    pub user_agent: Option<String>,
    pub previous: Option<SessionSecret>,
}

/// How a sign-in went on.
pub enum SignedIn {
    /// A session began.
    Session(SessionSecret, Arc<ActiveSession>),
    /// The password was right and the account has a second factor, or must set
    /// one up (the `mfa` policy): the browser keeps this secret for the second
    /// step.
    SecondFactorNeeded(PendingSignIn),
}

pub struct PendingSignIn {
    pub secret: CeremonySecret,
    pub expires_at: Timestamp,
    pub factors: Factors,
    /// The authenticator app to set up, when the policy asks for a second factor
    /// the account does not have yet: the second step's code confirms it.
    pub enrolment: Option<Enrolment>,
}

/// What the second step's page shows of a sign-in under way.
pub struct Waiting {
    pub enrolment: Option<Enrolment>,
    pub factors: Factors,
}

/// A finished sign-in: the session, and the recovery codes of an authenticator
/// app set up on the way (shown once; empty otherwise).
pub struct SignedInWithFactor {
    pub secret: SessionSecret,
    pub session: Arc<ActiveSession>,
    pub recovery_codes: Vec<RecoveryCode>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecondStepError {
    #[error("too many attempts")]
    Throttled(Throttled),
    /// No such sign-in under way: expired, finished, or given up after too many
    /// wrong codes.
    #[error("this sign-in has expired or was already used: sign in again")]
    Expired,
    #[error("that code is not right")]
    WrongCode { attempts_left: u32 },
    #[error("too many wrong codes: sign in again")]
    TooManyWrongCodes,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Factors(SecondFactorError),
    #[error(transparent)]
    Passkey(PasskeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeySignInError {
    #[error("too many attempts")]
    Throttled(Throttled),
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Passkey(PasskeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the store keeps of a sign-in between its factors.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct BetweenFactors {
    /// Wrong second factors so far.
    attempts: u32,
    /// The account sets up its authenticator app in this step (the policy asks
    /// for a second factor it does not have).
    #[serde(default)]
    enrol: bool,
}

/// A sign-in to `user`'s account from `address` that did not start a session.
fn failed_login(user: &User, address: IpAddr) -> crate::services::audit::Described {
    event(EventKind::Login, Actor::Anonymous)
        .user(user.id)
        .username(user.username.as_str())
        .address(Some(address))
        .failed()
}

fn outcome(name: &'static str) {
    metrics::counter!("tessera_login_attempts_total", "outcome" => name).increment(1);
}

fn session_error(e: CreateSessionError) -> StoreOrDisabled {
    match e {
        CreateSessionError::UserDisabled => StoreOrDisabled::Disabled,
        CreateSessionError::Store(e) => StoreOrDisabled::Store(e),
    }
}

enum StoreOrDisabled {
    Disabled,
    Store(StoreError),
}

impl SignIn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        accounts: Accounts,
        sessions: Arc<SessionService>,
        second_factors: Arc<SecondFactors>,
        passkeys: Arc<Passkeys>,
        ceremonies: Arc<dyn CeremonyStore>,
        throttle: Arc<Throttle>,
        audit: Arc<Audit>,
        registration_open: bool,
        mfa: MfaPolicy,
    ) -> Self {
        Self {
            mfa,
            accounts,
            sessions,
            second_factors,
            passkeys,
            ceremonies,
            throttle,
            audit,
            registration_open,
        }
    }

    /// Whether `sign_up` opens accounts (configuration's `registration`).
    pub fn registration_open(&self) -> bool {
        self.registration_open
    }

    /// Whether passkeys can be used here (the public URL names a domain).
    pub fn passkeys_available(&self) -> bool {
        self.passkeys.unavailable().is_none()
    }

    pub fn sessions(&self) -> &Arc<SessionService> {
        &self.sessions
    }

    /// Checks the password; starts a new session, or, for an account with a
    /// second factor, a sign-in waiting for it. A session secret presented with
    /// the attempt is never adopted (fixation); the session it names, if live, is
    /// ended when the new one starts, since the browser is about to forget it.
    pub async fn sign_in(&self, attempt: Attempt) -> Result<SignedIn, SignInError> {
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
            Ok(SignedIn::Session(_, session)) => {
                event(EventKind::Login, Actor::User(session.user().id))
                    .user(session.user().id)
                    .username(username.as_str())
                    .address(Some(address))
                    .target("session", session.id())
            }
            // Recorded when the second step ends, one way or the other.
            Ok(SignedIn::SecondFactorNeeded(_)) => return signed_in,
            Err(SignInError::Throttled(_)) => failed().await.detail("too many attempts"),
            Err(SignInError::InvalidCredentials) => {
                failed().await.detail("invalid username or password")
            }
            Err(SignInError::Disabled) => failed().await.detail("the account is disabled"),
            // Not an outcome of the attempt: tessera could not decide it.
            Err(SignInError::Hash(_) | SignInError::Factors(_) | SignInError::Store(_)) => {
                return signed_in;
            }
        };
        self.audit.record(recorded).await;
        signed_in
    }

    async fn check_and_start(&self, attempt: Attempt) -> Result<SignedIn, SignInError> {
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
        let factors = self.second_factors.factors(user.id).await?;
        if factors.any() || attempt.second_factor || self.mfa.requires(&user.roles) {
            outcome("second_factor_needed");
            return Ok(SignedIn::SecondFactorNeeded(
                self.wait_for_second_factor(&user, factors).await?,
            ));
        }
        let (secret, session) = self
            .start(
                &user,
                AuthMethods::password(),
                attempt.address,
                attempt.user_agent,
                attempt.previous.as_ref(),
            )
            .await
            .map_err(|e| match session_error(e) {
                StoreOrDisabled::Disabled => SignInError::Disabled,
                StoreOrDisabled::Store(e) => SignInError::Store(e),
            })?;
        outcome("success");
        Ok(SignedIn::Session(secret, session))
    }

    /// A new sign-in waiting for its second factor; for an account with none,
    /// for the authenticator app it sets up in the second step.
    async fn wait_for_second_factor(
        &self,
        user: &User,
        factors: Factors,
    ) -> Result<PendingSignIn, SignInError> {
        let enrol = !factors.any();
        let enrolment = if enrol {
            Some(
                self.second_factors
                    .begin_totp(user)
                    .await
                    .map_err(|e| match e {
                        SecondFactorError::Store(e) => SignInError::Store(e),
                        e => SignInError::Factors(e),
                    })?,
            )
        } else {
            None
        };
        let secret = CeremonySecret::generate();
        let expires_at = Timestamp::now().saturating_add(BETWEEN_FACTORS);
        let state = BetweenFactors { attempts: 0, enrol };
        self.between_factors(user, state, &secret, expires_at)
            .await?;
        Ok(PendingSignIn {
            secret,
            expires_at,
            factors,
            enrolment,
        })
    }

    /// The sign-in `pending` holds, if it is still under way: what its page shows.
    pub async fn waiting(&self, pending: &CeremonySecret) -> Result<Option<Waiting>, StoreError> {
        let Some(ceremony) = self
            .ceremonies
            .ceremony(
                &pending.hash(),
                CeremonyKind::SecondFactor,
                Timestamp::now(),
            )
            .await?
        else {
            return Ok(None);
        };
        let state: BetweenFactors = serde_json::from_str(&ceremony.state)
            .map_err(|_| StoreError::corrupt("a sign-in between its factors"))?;
        let user = match ceremony.user {
            Some(id) => self.accounts.user(id).await?,
            None => None,
        };
        let Some(user) = user else { return Ok(None) };
        if !state.enrol {
            return Ok(Some(Waiting {
                enrolment: None,
                factors: self.second_factors.factors(user.id).await?,
            }));
        }
        match self.second_factors.state(&user).await {
            Ok(TotpState::Enrolling(enrolment)) => Ok(Some(Waiting {
                enrolment: Some(enrolment),
                factors: Factors::default(),
            })),
            // Confirmed or removed meanwhile (another tab): nothing to show.
            Ok(_) => Ok(None),
            Err(SecondFactorError::Store(e)) => Err(e),
            Err(e) => Err(StoreError::Other(e.to_string())),
        }
    }

    /// Keeps a sign-in waiting for its second factor: a new one, or the one just
    /// taken, under the same secret and expiry.
    async fn between_factors(
        &self,
        user: &User,
        state: BetweenFactors,
        secret: &CeremonySecret,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let state =
            serde_json::to_string(&state).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.ceremonies
            .begin_ceremony(Ceremony {
                hash: secret.hash(),
                kind: CeremonyKind::SecondFactor,
                user: Some(user.id),
                state,
                expires_at,
            })
            .await
    }

    /// Ends the browser's earlier session, if any, and starts the new one.
    async fn start(
        &self,
        user: &User,
        methods: AuthMethods,
        address: IpAddr,
        user_agent: Option<String>,
        previous: Option<&SessionSecret>,
    ) -> Result<(SessionSecret, Arc<ActiveSession>), CreateSessionError> {
        let previous = match previous {
            Some(old) => self.sessions.authenticate(old).await?,
            None => None,
        };
        if let Some(old) = previous {
            self.sessions
                .end(old.user().id, old.id(), EndReason::Replaced)
                .await?;
        }
        self.sessions
            .start(
                user,
                NewSessionInfo {
                    client_address: Some(address.to_string()),
                    user_agent,
                    methods,
                },
            )
            .await
    }

    /// The second step: the sign-in under way and a second factor; a session
    /// when the factor is right.
    pub async fn second_step(
        &self,
        step: SecondStep,
    ) -> Result<SignedInWithFactor, SecondStepError> {
        let address = step.address;
        let taken = self
            .ceremonies
            .take_ceremony(
                &step.pending.hash(),
                CeremonyKind::SecondFactor,
                Timestamp::now(),
            )
            .await?;
        let Some((ceremony, user_id)) = taken.and_then(|c| c.user.map(|u| (c, u))) else {
            outcome("second_factor_expired");
            return Err(SecondStepError::Expired);
        };
        let Some(user) = self.accounts.user(user_id).await? else {
            return Err(SecondStepError::Expired);
        };
        let result = self.check_second_factor(&step, &user, &ceremony).await;
        let failed = || failed_login(&user, address);
        let recorded = match (&result, &step.proof) {
            (Ok(done), proof) => by_user(EventKind::Login, &user, address)
                .target("session", done.session.id())
                .detail(match proof {
                    _ if !done.recovery_codes.is_empty() => {
                        "with a TOTP code of the authenticator app set up on the way"
                    }
                    SecondFactorProof::Totp(_) => "with a TOTP code",
                    SecondFactorProof::RecoveryCode(_) => "with a recovery code",
                    SecondFactorProof::Passkey { .. } => "with a passkey",
                }),
            (Err(SecondStepError::Throttled(_)), _) => failed().detail("too many attempts"),
            (Err(SecondStepError::WrongCode { .. } | SecondStepError::TooManyWrongCodes), _) => {
                failed().detail("wrong second factor")
            }
            (Err(SecondStepError::Disabled), _) => failed().detail("the account is disabled"),
            (Err(_), _) => return result,
        };
        self.audit.record(recorded).await;
        result
    }

    async fn check_second_factor(
        &self,
        step: &SecondStep,
        user: &User,
        ceremony: &Ceremony,
    ) -> Result<SignedInWithFactor, SecondStepError> {
        if user.disabled {
            return Err(SecondStepError::Disabled);
        }
        let state: BetweenFactors = serde_json::from_str(&ceremony.state)
            .map_err(|_| StoreError::corrupt("a sign-in between its factors"))?;
        let mut passkey_methods = None;
        // The budget is checked with the sign-in taken: a throttled attempt
        // puts it back untouched, so waiting is enough.
        if let Err(wait) = self.throttle.login(&user.username, step.address).await {
            outcome("throttled");
            self.between_factors(user, state, &step.pending, ceremony.expires_at)
                .await?;
            return Err(SecondStepError::Throttled(wait));
        }
        let right = match &step.proof {
            SecondFactorProof::Passkey { .. } if state.enrol => false,
            SecondFactorProof::Passkey {
                ceremony,
                credential,
            } => match self.passkeys.finish_sign_in(ceremony, credential).await {
                Ok(done) if done.user == user.id => {
                    passkey_methods = Some(done.methods);
                    true
                }
                Ok(_) | Err(PasskeyError::Refused(_) | PasskeyError::Expired) => false,
                Err(PasskeyError::CounterWentBack) => {
                    self.record_counter_went_back(user, step.address).await;
                    false
                }
                Err(PasskeyError::Store(e)) => return Err(e.into()),
                Err(e) => return Err(SecondStepError::Passkey(e)),
            },
            // Setting up: the code confirms the app; a recovery code there is none.
            SecondFactorProof::Totp(code) if state.enrol => {
                match self
                    .second_factors
                    .confirm_totp(user.id, code, unix_seconds())
                    .await
                {
                    Ok(()) => true,
                    Err(SecondFactorError::Refused(_)) => false,
                    Err(SecondFactorError::NotEnrolling) => return Err(SecondStepError::Expired),
                    Err(SecondFactorError::Store(e)) => return Err(e.into()),
                    Err(e) => return Err(SecondStepError::Factors(e)),
                }
            }
            SecondFactorProof::RecoveryCode(_) if state.enrol => false,
            SecondFactorProof::Totp(code) => {
                match self
                    .second_factors
                    .check_totp(user.id, code, unix_seconds())
                    .await
                {
                    Ok(()) => true,
                    Err(SecondFactorError::Refused(_)) => false,
                    Err(SecondFactorError::Store(e)) => return Err(e.into()),
                    Err(e) => return Err(SecondStepError::Factors(e)),
                }
            }
            SecondFactorProof::RecoveryCode(code) => self
                .second_factors
                .use_recovery_code(user.id, code)
                .await
                .map_err(|e| match e {
                    SecondFactorError::Store(e) => SecondStepError::Store(e),
                    e => SecondStepError::Factors(e),
                })?,
        };
        if !right {
            outcome("wrong_second_factor");
            let attempts = state.attempts + 1;
            if attempts >= SECOND_STEP_ATTEMPTS {
                return Err(SecondStepError::TooManyWrongCodes);
            }
            let state = BetweenFactors { attempts, ..state };
            self.between_factors(user, state, &step.pending, ceremony.expires_at)
                .await?;
            return Err(SecondStepError::WrongCode {
                attempts_left: SECOND_STEP_ATTEMPTS - attempts,
            });
        }
        let recovery_codes = if state.enrol {
            self.enrolled(user, step.address).await?
        } else {
            Vec::new()
        };
        let (secret, session) = self
            .start(
                user,
                AuthMethods::password().union(
                    passkey_methods.unwrap_or(AuthMethods::default().with(AuthMethod::OneTimeCode)),
                ),
                step.address,
                step.user_agent.clone(),
                step.previous.as_ref(),
            )
            .await
            .map_err(|e| match session_error(e) {
                StoreOrDisabled::Disabled => SecondStepError::Disabled,
                StoreOrDisabled::Store(e) => SecondStepError::Store(e),
            })?;
        outcome("success");
        Ok(SignedInWithFactor {
            secret,
            session,
            recovery_codes,
        })
    }

    /// An authenticator app set up in the second step: its recovery codes, and
    /// the audit events the account page's set-up records too.
    async fn enrolled(
        &self,
        user: &User,
        address: IpAddr,
    ) -> Result<Vec<RecoveryCode>, SecondStepError> {
        let codes = self
            .second_factors
            .new_recovery_codes(user.id)
            .await
            .map_err(|e| match e {
                SecondFactorError::Store(e) => SecondStepError::Store(e),
                e => SecondStepError::Factors(e),
            })?;
        for (kind, detail) in [
            (
                EventKind::SecondFactorAdded,
                "authenticator app, set up while signing in",
            ),
            (EventKind::RecoveryCodesIssued, "with the authenticator app"),
        ] {
            self.audit
                .record(by_user(kind, user, address).detail(detail))
                .await;
        }
        Ok(codes)
    }

    /// A challenge for the passkey of the sign-in `pending` holds (the second
    /// step): the options for `navigator.credentials.get`, and the secret that
    /// goes back with the answer.
    pub async fn begin_second_step_passkey(
        &self,
        pending: &CeremonySecret,
    ) -> Result<(CeremonySecret, RequestChallengeResponse), SecondStepError> {
        let user = match self
            .ceremonies
            .ceremony(
                &pending.hash(),
                CeremonyKind::SecondFactor,
                Timestamp::now(),
            )
            .await?
            .and_then(|c| c.user)
        {
            Some(id) => self.accounts.user(id).await?,
            None => None,
        };
        let user = user.ok_or(SecondStepError::Expired)?;
        self.passkeys
            .begin_sign_in(&user)
            .await
            .map_err(|e| match e {
                PasskeyError::Store(e) => SecondStepError::Store(e),
                e => SecondStepError::Passkey(e),
            })
    }

    /// A challenge for signing in with a passkey alone, no account named: the
    /// options for `navigator.credentials.get`, and the secret that goes back
    /// with the answer. Throttled by address, as it costs a stored ceremony.
    pub async fn begin_passkey_sign_in(
        &self,
        address: IpAddr,
    ) -> Result<(CeremonySecret, RequestChallengeResponse), PasskeySignInError> {
        self.throttle
            .address(address)
            .await
            .map_err(PasskeySignInError::Throttled)?;
        self.passkeys
            .begin_discoverable()
            .await
            .map_err(|e| match e {
                PasskeyError::Store(e) => PasskeySignInError::Store(e),
                e => PasskeySignInError::Passkey(e),
            })
    }

    /// A sign-in with a passkey alone: the answer to `begin_passkey_sign_in`'s
    /// challenge starts a session of two factors (the passkey verified its user).
    pub async fn passkey_sign_in(
        &self,
        attempt: PasskeyAttempt,
    ) -> Result<(SessionSecret, Arc<ActiveSession>), PasskeySignInError> {
        let address = attempt.address;
        self.throttle
            .address(address)
            .await
            .map_err(PasskeySignInError::Throttled)?;
        let done = match self
            .passkeys
            .finish_sign_in(&attempt.pending, &attempt.credential)
            .await
        {
            Ok(done) => done,
            Err(PasskeyError::Store(e)) => return Err(e.into()),
            Err(e) => {
                outcome("passkey_refused");
                let mut failed = event(EventKind::Login, Actor::Anonymous)
                    .address(Some(address))
                    .failed()
                    .detail(e.to_string());
                if let PasskeyError::CounterWentBack = e
                    && let Some(user) = self.owner_of(&attempt.credential).await
                {
                    failed = failed.user(user.id).username(user.username.as_str());
                }
                self.audit.record(failed).await;
                return Err(PasskeySignInError::Passkey(e));
            }
        };
        let Some(user) = self.accounts.user(done.user).await? else {
            return Err(PasskeySignInError::Passkey(PasskeyError::NoSuchUser));
        };
        let started = if user.disabled {
            Err(PasskeySignInError::Disabled)
        } else {
            self.start(
                &user,
                done.methods,
                address,
                attempt.user_agent,
                attempt.previous.as_ref(),
            )
            .await
            .map_err(|e| match session_error(e) {
                StoreOrDisabled::Disabled => PasskeySignInError::Disabled,
                StoreOrDisabled::Store(e) => PasskeySignInError::Store(e),
            })
        };
        let recorded = by_user(EventKind::Login, &user, address);
        match &started {
            Ok((_, session)) => {
                outcome("success");
                self.audit
                    .record(
                        recorded
                            .target("session", session.id())
                            .detail(format!("with the passkey \u{201c}{}\u{201d}", done.name)),
                    )
                    .await;
            }
            Err(PasskeySignInError::Disabled) => {
                outcome("disabled");
                self.audit
                    .record(failed_login(&user, address).detail("the account is disabled"))
                    .await;
            }
            Err(_) => {}
        }
        started
    }

    /// Whose passkey answered, by its credential id (for the audit log).
    async fn owner_of(&self, credential: &PublicKeyCredential) -> Option<User> {
        let raw: &[u8] = credential.raw_id.as_ref();
        let stored = self.passkeys.stored(raw).await.ok().flatten()?;
        self.accounts.user(stored.user).await.ok().flatten()
    }

    /// A passkey answered with a counter that went backwards: recorded, as it
    /// may have been copied.
    async fn record_counter_went_back(&self, user: &User, address: IpAddr) {
        self.audit
            .record(failed_login(user, address).detail(PasskeyError::CounterWentBack.to_string()))
            .await;
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
            .record(by_user(EventKind::UserRegistered, &user, address).detail("signed up"))
            .await;
        Ok(user)
    }
}
