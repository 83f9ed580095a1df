//! `/login`: the sign-in page browsers are sent to, by tessera's own links or by a
//! gateway (`login_url`), with `?return_to=URL` for where to go afterwards.
//!
//! A plain HTML form that posts to itself: no script, so it works everywhere and
//! the Content-Security-Policy can forbid all scripts. The form post is checked
//! like `POST /v1/login` (origin check, throttling, a new session secret, never a
//! presented one) and answers `303 See Other` to `return_to` when that is allowed
//! (see [`crate::http::return_to`]), else to `/login`, which then says who is
//! signed in.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{Markup, html};
use serde::Deserialize;
use url::Url;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin};
use crate::routes::html::{
    csp_source, page, passkey_script, qr_code, recovery_codes_body, see_other, sentence, spaced_key,
};
use crate::routes::login::{FirstStep, LoginForm, parse_proof, second_step, sign_in};
use crate::services::authorize::Authorization;
use crate::services::second_factor::Enrolment;
use crate::services::sessions::SessionService;
use crate::services::sign_in::{Factors, SignIn, Waiting};

#[derive(Deserialize)]
pub struct PageQuery {
    return_to: Option<String>,
    /// Show the form even to a signed-in browser (`prompt=login`, `max_age`).
    #[serde(default)]
    reauthenticate: bool,
    /// The username to offer (OpenID Connect's `login_hint`).
    login_hint: Option<String>,
    /// Two factors asked for (an authorization request's `acr_values`).
    #[serde(default)]
    second_factor: bool,
}

#[derive(Deserialize)]
pub struct PageForm {
    #[serde(flatten)]
    credentials: LoginForm,
    return_to: Option<String>,
}

/// Where the form's answer may lead: `return_to`, and when that is an authorization
/// request, the client it goes back to.
async fn leads_to(authorization: &Authorization, return_to: Option<&Url>) -> Vec<String> {
    let Some(url) = return_to else {
        return Vec::new();
    };
    let mut sources = vec![csp_source(url)];
    if let Some(client) = authorization.leads_to(url).await {
        sources.push(csp_source(&client));
    }
    sources
}

fn sign_in_page(status: StatusCode, leads_to: &[String], body: Markup) -> Response {
    page(status, "Sign in", leads_to, body)
}

/// The sign-in form. `username` is kept after a failed attempt; never the password.
/// `second_factor`: the form carries the request for two factors along.
fn form(
    return_to: Option<&Url>,
    username: Option<&str>,
    error: Option<&str>,
    second_factor: bool,
    passkeys: bool,
) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.error role="alert" { (sentence(error)) }
        }
        form method="post" action="/login" {
            label for="username" { "Username" }
            // `webauthn`: where the browser offers it, its passkeys for this site
            // show in the field's autofill (conditional UI).
            input #username name="username" autocomplete=(if passkeys { "username webauthn" } else { "username" }) value=[username] required autofocus[username.is_none()];
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required autofocus[username.is_some()];
            @if let Some(return_to) = return_to {
                input type="hidden" name="return_to" value=(return_to.as_str());
            }
            @if second_factor {
                input type="hidden" name="second_factor" value="true";
            }
            button type="submit" { "Sign in" }
        }
        @if passkeys {
            (passkey_button("sign-in", return_to, "Sign in with a passkey", true))
        }
        // tessera sends no mail: a forgotten password goes through an admin.
        p.muted { "Forgot your password? Ask an administrator for a reset link." }
    }
}

/// The passkey button of the sign-in and second-step pages, shown by the
/// script where the browser has WebAuthn; on success the page goes on to
/// `return_to` (checked already), or to `/login`, which says who is signed in.
/// `or`: after another way (the password form), which the button is the
/// alternative to.
fn passkey_button(mode: &str, return_to: Option<&Url>, label: &str, or: bool) -> Markup {
    html! {
        div data-passkey=(mode) data-next=(return_to.map_or("/login", Url::as_str)) hidden {
            @if or { p.or { "or" } }
            button.secondary #passkey type="button" { (label) }
            p.error role="alert" data-passkey-error hidden {}
        }
        (passkey_script())
    }
}

/// `GET /login[?return_to=URL]`: the form; a browser already signed in goes straight
/// on to an allowed `return_to`, or is told who it is signed in as.
pub async fn show(
    State(sign_in_service): State<Arc<SignIn>>,
    State(sessions): State<Arc<SessionService>>,
    State(authorization): State<Arc<Authorization>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A mangled query (say, return_to given twice) is a bad link, not a reason to
    // keep a person from signing in: it is dropped like a refused return_to.
    let query = query.ok().map(|Query(query)| query);
    let allowed = query
        .as_ref()
        .and_then(|q| q.return_to.as_deref())
        .and_then(|r| edge.return_to.check(r));
    let reauthenticate = query.as_ref().is_some_and(|q| q.reauthenticate);
    let hint = query.as_ref().and_then(|q| q.login_hint.as_deref());
    // Two different session cookies: as if signed out; signing in replaces both.
    let current = match cookies.session.secret(&headers) {
        Ok(Some(secret)) => sessions.authenticate(&secret).await?,
        Ok(None) | Err(_) => None,
    };
    if let Some(session) = current.filter(|_| !reauthenticate) {
        if let Some(to) = allowed {
            return Ok(see_other(to.as_str()));
        }
        return Ok(sign_in_page(
            StatusCode::OK,
            &[],
            html! {
                h1 { "Signed in" }
                p { "You are signed in as " strong { (session.user().username.as_str()) } "." }
            },
        ));
    }
    Ok(sign_in_page(
        StatusCode::OK,
        &leads_to(&authorization, allowed.as_ref()).await,
        form(
            allowed.as_ref(),
            hint,
            None,
            query.as_ref().is_some_and(|q| q.second_factor),
            sign_in_service.passkeys_available(),
        ),
    ))
}

const FOREIGN_FORM: &str = "This sign-in form was sent from another site, so it was not \
     accepted. If you meant to sign in, enter your username and password here.";

/// `POST /login` (form): signs in, then `303` to `return_to` or back to `/login`.
/// Every refusal a browser can meet here, the origin check's included, re-shows the
/// form with the reason and the status `/v1/login` would give: a person sees a page,
/// never a JSON error.
pub async fn submit(
    State(sign_in_service): State<Arc<SignIn>>,
    State(authorization): State<Arc<Authorization>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    client: ClientInfo,
    headers: HeaderMap,
    input: Result<Input<PageForm>, ApiError>,
) -> Response {
    // The origin check first: what a foreign page sent is not read any further.
    if check_origin(&headers, &edge.origins).is_err() {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            &[],
            form(
                None,
                None,
                Some(FOREIGN_FORM),
                false,
                sign_in_service.passkeys_available(),
            ),
        );
    }
    let input = match input {
        Ok(Input(input)) => input,
        Err(error) => {
            return sign_in_page(
                error.status(),
                &[],
                form(
                    None,
                    None,
                    Some(error.description()),
                    false,
                    sign_in_service.passkeys_available(),
                ),
            );
        }
    };
    let allowed = input
        .return_to
        .as_deref()
        .and_then(|r| edge.return_to.check(r));
    let username = input.credentials.username.clone();
    let second_factor = input.credentials.second_factor;
    match sign_in(
        &sign_in_service,
        &cookies,
        client,
        &headers,
        input.credentials,
    )
    .await
    {
        Ok(FirstStep::Session(set_cookie, _)) => {
            let mut response = see_other(allowed.as_ref().map_or("/login", Url::as_str));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie);
            response
        }
        Ok(FirstStep::SecondFactor { set_cookie, .. }) => {
            let mut response = see_other(&second_step_link(allowed.as_ref()));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie);
            response
        }
        Err(error) => {
            let mut response = sign_in_page(
                error.status(),
                &leads_to(&authorization, allowed.as_ref()).await,
                form(
                    allowed.as_ref(),
                    Some(&username),
                    Some(error.description()),
                    second_factor,
                    sign_in_service.passkeys_available(),
                ),
            );
            if let Some(wait) = error.retry_after_duration() {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            response
        }
    }
}

/// The second step's page: the code after the password.
pub const SECOND_STEP_PAGE: &str = "/login/second-factor";

/// The second step's page, carrying on to `return_to`.
fn second_step_link(return_to: Option<&Url>) -> String {
    match return_to {
        Some(to) => format!(
            "{SECOND_STEP_PAGE}?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", to.as_str())
                .finish()
        ),
        None => SECOND_STEP_PAGE.to_owned(),
    }
}

#[derive(Deserialize)]
pub struct SecondStepForm {
    code: String,
    return_to: Option<String>,
}

fn second_step_page(status: StatusCode, leads_to: &[String], body: Markup) -> Response {
    page(status, "Two-step sign-in", leads_to, body)
}

/// The code form. Nothing typed is kept: a code is good once.
/// With `enrolment`, the app to set up first: the policy asks this account for
/// a second factor it does not have yet.
fn second_step_form(
    return_to: Option<&Url>,
    error: Option<&str>,
    enrolment: Option<&Enrolment>,
    factors: Factors,
) -> Markup {
    // An account with passkeys alone has no code to type.
    let codes = enrolment.is_some() || factors.totp || !factors.passkey;
    html! {
        h1 { "Two-step sign-in" }
        @if let Some(error) = error {
            p.error role="alert" { (sentence(error)) }
        }
        @if let Some(enrolment) = enrolment {
            p {
                "This account must sign in with a second step. Scan this code with an \
                 authenticator app (such as Google Authenticator, Aegis or 1Password), or \
                 type the key into it."
            }
            @if let Some(qr) = qr_code(&enrolment.link, "QR code to add this account to an authenticator app") {
                div.qr { (qr) }
            }
            p.muted { "Key: " code #totp-secret { (spaced_key(&enrolment.secret_base32)) } }
        }
        @if !codes {
            p { "Confirm it is you with one of your passkeys." }
        }
        @if codes {
        form method="post" action=(SECOND_STEP_PAGE) {
            label for="code" { "Code" }
            p.muted #code-help {
                @if enrolment.is_some() {
                    "The six digits the app now shows."
                } @else {
                    "The six digits your authenticator app shows for this account, or one \
                     of your recovery codes."
                }
            }
            input #code name="code" autocomplete="one-time-code" autocapitalize="none"
                spellcheck="false" aria-describedby="code-help" required autofocus;
            @if let Some(return_to) = return_to {
                input type="hidden" name="return_to" value=(return_to.as_str());
            }
            button type="submit" { "Continue" }
        }
        }
        @if factors.passkey && enrolment.is_none() {
            (passkey_button("second-step", return_to, "Use a passkey", codes))
        }
        p.muted { a href=(sign_in_again(return_to)) { "Start again" } }
    }
}

/// The sign-in page, carrying on to `return_to`.
fn sign_in_again(return_to: Option<&Url>) -> String {
    match return_to {
        Some(to) => format!(
            "/login?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", to.as_str())
                .finish()
        ),
        None => "/login".to_owned(),
    }
}

/// The page of a sign-in that cannot go on (expired, used, too many wrong codes).
fn start_again(status: StatusCode, return_to: Option<&Url>, reason: &str) -> Response {
    second_step_page(
        status,
        &[],
        html! {
            h1 { "Two-step sign-in" }
            p.error role="alert" { (sentence(reason)) }
            p { a href=(sign_in_again(return_to)) { "Sign in again" } }
        },
    )
}

/// `GET /login/second-factor[?return_to=URL]`: the code form, for a browser
/// between its factors; any other is sent to sign in.
pub async fn show_second_step(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let allowed = query
        .ok()
        .and_then(|Query(q)| q.return_to)
        .and_then(|r| edge.return_to.check(&r));
    let waiting = match waiting(&sign_in_service, &cookies, &headers).await? {
        Some(waiting) => waiting,
        None => return Ok(see_other(&sign_in_again(allowed.as_ref()))),
    };
    Ok(second_step_page(
        StatusCode::OK,
        &[],
        second_step_form(
            allowed.as_ref(),
            None,
            waiting.enrolment.as_ref(),
            available(&sign_in_service, waiting.factors),
        ),
    ))
}

/// The sign-in the browser's cookie holds, if it is still under way.
async fn waiting(
    service: &SignIn,
    cookies: &Cookies,
    headers: &HeaderMap,
) -> Result<Option<Waiting>, ApiError> {
    let pending: Option<tessera_core::CeremonySecret> =
        cookies.pending.secret_of(headers).ok().flatten();
    match pending {
        Some(pending) => Ok(service.waiting(&pending).await?),
        None => Ok(None),
    }
}

/// `POST /login/second-factor` (form): the code; `303` to `return_to` or
/// `/login` once right. Every refusal re-shows the form, or says to start again.
pub async fn submit_second_step(
    State(sign_in_service): State<Arc<SignIn>>,
    State(authorization): State<Arc<Authorization>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    client: ClientInfo,
    headers: HeaderMap,
    input: Result<Input<SecondStepForm>, ApiError>,
) -> Response {
    if check_origin(&headers, &edge.origins).is_err() {
        return start_again(StatusCode::FORBIDDEN, None, FOREIGN_FORM);
    }
    let input = match input {
        Ok(Input(input)) => input,
        Err(error) => {
            return second_step_page(
                error.status(),
                &[],
                second_step_form(None, Some(error.description()), None, CODES),
            );
        }
    };
    let allowed = input
        .return_to
        .as_deref()
        .and_then(|r| edge.return_to.check(r));
    let outcome = match parse_proof(&input.code) {
        Ok(proof) => second_step(&sign_in_service, &cookies, client, &headers, proof).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok((set_cookies, done)) => {
            let next = allowed.as_ref().map_or("/login", Url::as_str);
            let mut response = if done.recovery_codes.is_empty() {
                see_other(next)
            } else {
                second_step_page(
                    StatusCode::OK,
                    &[],
                    recovery_codes_body(&done.recovery_codes, next, true),
                )
            };
            for value in set_cookies {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) if error.code() == "sign_in_expired" => {
            let mut response = start_again(error.status(), allowed.as_ref(), error.description());
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookies.pending.clear());
            response
        }
        Err(error) => {
            // A wrong code put the sign-in back: an app being set up is shown again.
            let (enrolment, factors) = match waiting(&sign_in_service, &cookies, &headers).await {
                Ok(Some(waiting)) => (
                    waiting.enrolment,
                    available(&sign_in_service, waiting.factors),
                ),
                Ok(None) | Err(_) => (None, CODES),
            };
            let mut response = second_step_page(
                error.status(),
                &leads_to(&authorization, allowed.as_ref()).await,
                second_step_form(
                    allowed.as_ref(),
                    Some(error.description()),
                    enrolment.as_ref(),
                    factors,
                ),
            );
            if let Some(wait) = error.retry_after_duration() {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            response
        }
    }
}

/// What the second step shows when it cannot tell what the account has.
const CODES: Factors = Factors {
    totp: true,
    passkey: false,
};

/// The factors the page can offer: no passkey button where passkeys are off.
fn available(service: &SignIn, factors: Factors) -> Factors {
    Factors {
        passkey: factors.passkey && service.passkeys_available(),
        ..factors
    }
}
