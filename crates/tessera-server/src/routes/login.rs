//! `POST /v1/login` and `POST /v1/login/second-factor`, and the sign-in both
//! they and the login pages do.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use tessera_core::{CeremonySecret, RecoveryCode, Timestamp, TotpCode};
use webauthn_rs::prelude::PublicKeyCredential;

use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, SameOrigin, credentials};
use crate::services::second_factor::Enrolment;
use crate::services::sessions::ActiveSession;
use crate::services::sign_in::{
    Attempt, Factors, PasskeyAttempt, PasskeySignInError, SecondFactorProof, SecondStep,
    SecondStepError, SignIn, SignInError, SignedIn, SignedInWithFactor,
};
use crate::views::CurrentSession;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    /// Sign in with two factors even where neither the account nor the `mfa`
    /// policy asks for it (an authorization request's `acr_values=2`): an account
    /// without an authenticator app sets one up in the second step.
    #[serde(default, deserialize_with = "crate::http::extract::form_bool")]
    pub second_factor: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SecondFactorForm {
    /// The six digits an authenticator app shows, or a recovery code.
    #[serde(default)]
    pub code: Option<String>,
    /// With `credential`: the `ceremony` of
    /// `POST /v1/login/second-factor/passkey-options`.
    #[serde(default)]
    pub ceremony: Option<String>,
    /// A passkey's answer (`navigator.credentials.get`'s, in its JSON form).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub credential: Option<Box<PublicKeyCredential>>,
}

/// A WebAuthn challenge: the options for the browser's `navigator.credentials`
/// call, and the secret that goes back with its answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyChallenge<T> {
    /// Sent back with the authenticator's answer; good for five minutes, once.
    pub ceremony: String,
    /// `{"publicKey": …}`, binary members in base64url.
    #[schema(value_type = Object)]
    pub options: T,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasskeyLoginForm {
    /// The `ceremony` of `POST /v1/login/passkey/options`.
    pub ceremony: String,
    /// The passkey's answer (`navigator.credentials.get`'s, in its JSON form).
    #[schema(value_type = Object)]
    pub credential: Box<PublicKeyCredential>,
}

/// The answer to a right password for an account with a second factor (or one
/// the `mfa` policy asks it to set up): no session yet, and what the second
/// step accepts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecondFactorRequired {
    pub error: &'static str,
    pub error_description: &'static str,
    /// `totp` and `recovery_code` for an account with an authenticator app,
    /// `passkey` for one with passkeys; only `totp` while setting an app up.
    pub methods: Vec<&'static str>,
    /// The authenticator app to set up: the second step's code confirms it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolment: Option<EnrolmentView>,
    /// Seconds left for the second step.
    pub expires_in: i64,
}

/// A TOTP secret to add to an authenticator app, as text and as the link a QR
/// code carries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrolmentView {
    pub secret: String,
    pub otpauth_uri: String,
}

/// The error code of a right password that needs a second factor.
pub const SECOND_FACTOR_REQUIRED: &str = "second_factor_required";

/// `POST /v1/login`: checks the password and starts a new session, or answers
/// `401 second_factor_required` with a cookie for `POST /v1/login/second-factor`.
pub async fn login(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    _: SameOrigin,
    client: ClientInfo,
    headers: HeaderMap,
    Input(input): Input<LoginForm>,
) -> Result<Response, ApiError> {
    let policy = sign_in_service.sessions().policy();
    Ok(
        match sign_in(&sign_in_service, &cookies, client, &headers, input).await? {
            FirstStep::Session(set_cookie, session) => (
                [(header::SET_COOKIE, set_cookie)],
                Json(CurrentSession::of(&session, policy)),
            )
                .into_response(),
            FirstStep::SecondFactor {
                set_cookie,
                expires_at,
                factors,
                enrolment,
            } => {
                let (error_description, methods) = match &enrolment {
                    Some(_) => (
                        "this account must sign in with a second factor and has none: add \
                         the enrolment's secret to an authenticator app and send its code to \
                         POST /v1/login/second-factor",
                        vec!["totp"],
                    ),
                    None => {
                        let mut methods = Vec::new();
                        if factors.totp {
                            methods.extend(["totp", "recovery_code"]);
                        }
                        if factors.passkey {
                            methods.push("passkey");
                        }
                        (
                            "this account has a second factor: send a code from its \
                             authenticator app or a recovery code, or a passkey's answer \
                             to POST /v1/login/second-factor/passkey-options's challenge, \
                             to POST /v1/login/second-factor",
                            methods,
                        )
                    }
                };
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::SET_COOKIE, set_cookie)],
                    Json(SecondFactorRequired {
                        error: SECOND_FACTOR_REQUIRED,
                        error_description,
                        methods,
                        enrolment: enrolment.map(|e| EnrolmentView {
                            secret: e.secret_base32.clone(),
                            otpauth_uri: e.link.clone(),
                        }),
                        expires_in: expires_at
                            .as_millis()
                            .saturating_sub(Timestamp::now().as_millis())
                            / 1000,
                    }),
                )
                    .into_response()
            }
        },
    )
}

/// `POST /v1/login/second-factor`: the second step of a sign-in the password
/// began; starts the session.
pub async fn second_factor(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    _: SameOrigin,
    client: ClientInfo,
    headers: HeaderMap,
    Input(input): Input<SecondFactorForm>,
) -> Result<Response, ApiError> {
    let proof = match (input.code, input.ceremony, input.credential) {
        (Some(code), None, None) => parse_proof(&code)?,
        (None, Some(ceremony), Some(credential)) => SecondFactorProof::Passkey {
            ceremony: parse_ceremony(&ceremony)?,
            credential,
        },
        _ => {
            return Err(ApiError::bad_request(
                "send either a code, or a passkey's ceremony and credential",
            ));
        }
    };
    let (set_cookies, done) =
        second_step(&sign_in_service, &cookies, client, &headers, proof).await?;
    let policy = sign_in_service.sessions().policy();
    let mut body = serde_json::to_value(CurrentSession::of(&done.session, policy))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !done.recovery_codes.is_empty() {
        body["recovery_codes"] = done
            .recovery_codes
            .iter()
            .map(RecoveryCode::expose)
            .collect();
    }
    let mut response = Json(body).into_response();
    for value in set_cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// How the first step went: a session, or a sign-in waiting for its second
/// factor, each with the cookie to set.
pub enum FirstStep {
    Session(HeaderValue, Arc<ActiveSession>),
    SecondFactor {
        set_cookie: HeaderValue,
        expires_at: Timestamp,
        factors: Factors,
        /// The authenticator app to set up (the `mfa` policy).
        enrolment: Option<Enrolment>,
    },
}

/// Checks the password; starts a new session or a sign-in waiting for its
/// second factor. Shared by `POST /v1/login` and the login page; the caller has
/// checked the origin.
pub async fn sign_in(
    service: &SignIn,
    cookies: &Cookies,
    client: ClientInfo,
    headers: &HeaderMap,
    input: LoginForm,
) -> Result<FirstStep, ApiError> {
    let (username, password) = credentials(&input.username, input.password)?;
    // Of two different cookies neither is trusted to name a session to end; the
    // new cookie replaces them in the browser all the same.
    let previous = cookies.session.secret(headers).ok().flatten();
    let signed_in = service
        .sign_in(Attempt {
            username,
            password,
            address: client.address,
            user_agent: client.user_agent,
            previous,
            second_factor: input.second_factor,
        })
        .await
        .map_err(|e| match e {
            SignInError::Throttled(wait) => wait.into(),
            SignInError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid username or password",
            ),
            SignInError::Disabled => disabled(),
            SignInError::Hash(e) => e.into(),
            SignInError::Factors(e) => e.into(),
            SignInError::Store(e) => e.into(),
        })?;
    Ok(match signed_in {
        SignedIn::Session(secret, session) => {
            FirstStep::Session(cookies.session.set(&secret), session)
        }
        SignedIn::SecondFactorNeeded(pending) => FirstStep::SecondFactor {
            set_cookie: cookies.pending.set(&pending.secret),
            expires_at: pending.expires_at,
            factors: pending.factors,
            enrolment: pending.enrolment,
        },
    })
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "account_disabled",
        "this account is disabled",
    )
}

/// What was typed as a second factor: six digits are a TOTP code, anything else
/// must be a recovery code.
pub fn parse_proof(code: &str) -> Result<SecondFactorProof, ApiError> {
    if let Ok(code) = TotpCode::parse(code) {
        return Ok(SecondFactorProof::Totp(code));
    }
    RecoveryCode::parse(code)
        .map(SecondFactorProof::RecoveryCode)
        .map_err(|_| {
            ApiError::bad_request(
                "enter the six-digit code from your authenticator app, or one of your \
                 recovery codes",
            )
        })
}

/// The second step: the session's `Set-Cookie` and the pending one's removal,
/// and the session (with the recovery codes of an app set up on the way). Shared
/// by `POST /v1/login/second-factor` and the page; the caller has checked the
/// origin.
pub async fn second_step(
    service: &SignIn,
    cookies: &Cookies,
    client: ClientInfo,
    headers: &HeaderMap,
    proof: SecondFactorProof,
) -> Result<([HeaderValue; 2], SignedInWithFactor), ApiError> {
    let pending = pending_sign_in(cookies, headers)?;
    let previous = cookies.session.secret(headers).ok().flatten();
    let done = service
        .second_step(SecondStep {
            pending,
            proof,
            address: client.address,
            user_agent: client.user_agent,
            previous,
        })
        .await
        .map_err(|e| match e {
            SecondStepError::Throttled(wait) => wait.into(),
            SecondStepError::WrongCode { attempts_left } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_code",
                format!(
                    "that code is not right, or was used already; {attempts_left} {} left",
                    if attempts_left == 1 {
                        "attempt"
                    } else {
                        "attempts"
                    }
                ),
            ),
            SecondStepError::TooManyWrongCodes => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign_in_expired",
                "too many wrong codes: sign in again",
            ),
            SecondStepError::Expired => expired(),
            SecondStepError::Disabled => disabled(),
            SecondStepError::Factors(e) => e.into(),
            SecondStepError::Passkey(e) => e.into(),
            SecondStepError::Store(e) => e.into(),
        })?;
    Ok((
        [cookies.session.set(&done.secret), cookies.pending.clear()],
        done,
    ))
}

fn expired() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "sign_in_expired",
        "this sign-in has expired or was already used: sign in again",
    )
}

/// The sign-in between its factors that the browser's cookie holds.
fn pending_sign_in(cookies: &Cookies, headers: &HeaderMap) -> Result<CeremonySecret, ApiError> {
    cookies
        .pending
        .secret_of(headers)
        .map_err(|_| expired())?
        .ok_or_else(expired)
}

/// A passkey ceremony's secret as the client sent it back.
pub(crate) fn parse_ceremony(ceremony: &str) -> Result<CeremonySecret, ApiError> {
    CeremonySecret::parse(ceremony).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "ceremony_expired",
            "this passkey ceremony has expired or was already used: start again",
        )
    })
}

/// `POST /v1/login/second-factor/passkey-options`: a challenge for a passkey of
/// the account whose sign-in the cookie holds, answered through
/// `POST /v1/login/second-factor`.
pub async fn second_factor_passkey_options(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    _: SameOrigin,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pending = pending_sign_in(&cookies, &headers)?;
    let (ceremony, options) = sign_in_service
        .begin_second_step_passkey(&pending)
        .await
        .map_err(|e| match e {
            SecondStepError::Passkey(e) => e.into(),
            SecondStepError::Store(e) => e.into(),
            _ => expired(),
        })?;
    Ok(no_store(Json(PasskeyChallenge {
        ceremony: ceremony.expose(),
        options,
    })))
}

/// `POST /v1/login/passkey/options`: a challenge for signing in with a passkey
/// alone, no username (discoverable credentials).
pub async fn passkey_options(
    State(sign_in_service): State<Arc<SignIn>>,
    _: SameOrigin,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    let (ceremony, options) = sign_in_service
        .begin_passkey_sign_in(client.address)
        .await
        .map_err(passkey_sign_in_error)?;
    Ok(no_store(Json(PasskeyChallenge {
        ceremony: ceremony.expose(),
        options,
    })))
}

/// `POST /v1/login/passkey`: the passkey's answer; starts a new session.
pub async fn passkey(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    _: SameOrigin,
    client: ClientInfo,
    headers: HeaderMap,
    Input(input): Input<PasskeyLoginForm>,
) -> Result<Response, ApiError> {
    let pending = parse_ceremony(&input.ceremony)?;
    let previous = cookies.session.secret(&headers).ok().flatten();
    let (secret, session) = sign_in_service
        .passkey_sign_in(PasskeyAttempt {
            pending,
            credential: *input.credential,
            address: client.address,
            user_agent: client.user_agent,
            previous,
        })
        .await
        .map_err(passkey_sign_in_error)?;
    let policy = sign_in_service.sessions().policy();
    Ok((
        [(header::SET_COOKIE, cookies.session.set(&secret))],
        Json(CurrentSession::of(&session, policy)),
    )
        .into_response())
}

fn passkey_sign_in_error(error: PasskeySignInError) -> ApiError {
    match error {
        PasskeySignInError::Throttled(wait) => wait.into(),
        PasskeySignInError::Disabled => disabled(),
        PasskeySignInError::Passkey(e) => e.into(),
        PasskeySignInError::Store(e) => e.into(),
    }
}

/// A challenge's answer, which no cache may keep.
pub(crate) fn no_store(response: impl IntoResponse) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        response,
    )
        .into_response()
}
