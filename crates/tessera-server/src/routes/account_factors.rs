//! The forms of the "Two-step sign-in" part of `/account` (drawn with the page,
//! in `account.rs`): setting up an authenticator app, confirmed with one code,
//! its recovery codes (shown once, made anew with the password) and turning it
//! off (with the password). Forms post back like the rest of the page; recovery codes
//! are the answer of the post that made them, never in a URL or a later page.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use tessera_core::{Password, RecoveryCode, TotpCode};

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input};
use crate::routes::account::{CsrfOnly, Pieces, again_with, bad_form, checked, done, error_page};
use crate::routes::html::{recovery_codes_body, see_other, wide_page};
use crate::services::sessions::{ActiveSession, SessionService};

/// The page that shows recovery codes, once.
fn recovery_codes_page(codes: &[RecoveryCode], first: bool) -> Response {
    wide_page(
        StatusCode::OK,
        "Your recovery codes",
        recovery_codes_body(codes, "/account", first),
    )
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf_token: String,
    code: String,
}

#[derive(Deserialize)]
pub struct PasswordOnly {
    csrf_token: String,
    current_password: String,
}

/// `POST /account/totp/begin`: a new secret to scan, shown on the page.
pub async fn begin(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    headers: HeaderMap,
    form: Result<Input<CsrfOnly>, ApiError>,
) -> Response {
    let (session, _) = match posted(&sessions, &cookies, &edge, &headers, form).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    match service.begin_totp(&session).await {
        // To the section, which is below the fold.
        Ok(()) => see_other("/account?notice=totp-begun#two-step"),
        Err(e) => again_with(&service, &session, &e.into()).await,
    }
}

/// `POST /account/totp/cancel`: drops an authenticator not confirmed yet.
pub async fn cancel(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    headers: HeaderMap,
    form: Result<Input<CsrfOnly>, ApiError>,
) -> Response {
    let (session, _) = match posted(&sessions, &cookies, &edge, &headers, form).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    match service.cancel_totp(&session).await {
        Ok(()) => done("totp-cancelled"),
        Err(e) => error_page(&e.into()),
    }
}

/// `POST /account/totp/confirm`: the first code; the recovery codes in answer.
pub async fn confirm(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<CodeForm>, ApiError>,
) -> Response {
    let (session, form) = match posted(&sessions, &cookies, &edge, &headers, form).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let code = match TotpCode::parse(&form.code) {
        Ok(code) => code,
        Err(e) => {
            return again_with(&service, &session, &ApiError::bad_request(e.to_string())).await;
        }
    };
    match service.confirm_totp(&session, &code, client.address).await {
        Ok(codes) => recovery_codes_page(&codes, true),
        Err(e) => again_with(&service, &session, &e.into()).await,
    }
}

/// `POST /account/totp/remove`: turns it off, with the password.
pub async fn remove(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<PasswordOnly>, ApiError>,
) -> Response {
    let (session, form) = match posted(&sessions, &cookies, &edge, &headers, form).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let Ok(password) = Password::parse(form.current_password) else {
        return again_with(&service, &session, &wrong_password()).await;
    };
    match service
        .remove_totp(&session, password, client.address)
        .await
    {
        Ok(()) => done("totp-off"),
        Err(e) => again_with(&service, &session, &e.into()).await,
    }
}

/// `POST /account/recovery-codes`: a new set, with the password.
pub async fn new_recovery_codes(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<PasswordOnly>, ApiError>,
) -> Response {
    let (session, form) = match posted(&sessions, &cookies, &edge, &headers, form).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let Ok(password) = Password::parse(form.current_password) else {
        return again_with(&service, &session, &wrong_password()).await;
    };
    match service
        .new_recovery_codes(&session, password, client.address)
        .await
    {
        Ok(codes) => recovery_codes_page(&codes, false),
        Err(e) => again_with(&service, &session, &e.into()).await,
    }
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf_token: String,
    /// The passkey's id (its credential id, base64url).
    id: String,
}

/// `POST /account/passkeys/remove`: removes one passkey.
pub async fn remove_passkey(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<PasskeyForm>, ApiError>,
) -> Response {
    let (session, form) = match posted(&sessions, &cookies, &edge, &headers, form).await {
        Ok(posted) => posted,
        Err(answer) => return answer,
    };
    let not_found = || ApiError::not_found("you have no such passkey");
    let Ok(id) = URL_SAFE_NO_PAD.decode(form.id.as_bytes()) else {
        return again_with(&service, &session, &not_found()).await;
    };
    match service.remove_passkey(&session, &id, client.address).await {
        Ok(true) => done("passkey-removed"),
        Ok(false) => again_with(&service, &session, &not_found()).await,
        Err(e) => again_with(&service, &session, &e.into()).await,
    }
}

/// A form of these, checked ([`checked`]): the session and the form, or the
/// page to answer instead.
async fn posted<F: WithCsrf>(
    sessions: &SessionService,
    cookies: &Cookies,
    edge: &EdgePolicy,
    headers: &HeaderMap,
    form: Result<Input<F>, ApiError>,
) -> Result<(Arc<ActiveSession>, F), Response> {
    let Input(form) = form.map_err(bad_form)?;
    let session = checked(sessions, cookies, edge, headers, form.csrf_token()).await?;
    Ok((session, form))
}

/// A form that carries the session's CSRF token.
trait WithCsrf {
    fn csrf_token(&self) -> &str;
}

impl WithCsrf for CsrfOnly {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

impl WithCsrf for CodeForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

impl WithCsrf for PasskeyForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

impl WithCsrf for PasswordOnly {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

fn wrong_password() -> ApiError {
    crate::services::self_service::FactorChangeError::WrongPassword.into()
}
