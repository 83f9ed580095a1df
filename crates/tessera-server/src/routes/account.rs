//! `/account`: a signed-in person's own page. Their profile (name and email, which
//! they may change), their password, their sessions (each device in words, where
//! from, since when, the current one marked; sign one out, or every other), and the
//! apps they allowed (Remove withdraws the consent). Plain HTML forms that post
//! back and answer `303 See Other` to the page with a notice, so everything works
//! with JavaScript off and the page has no script at all.
//!
//! Every form is a cookie-authenticated unsafe request: the origin is checked and
//! the session's CSRF token must come with it (a hidden `csrf_token` field), as for
//! the JSON API. A browser without a live session is sent to `/login`, and back.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;
use tessera_core::{ClientId, DisplayName, Email, Password, SessionId, Timestamp};

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin};
use crate::routes::authorize::in_words;
use crate::routes::html::{
    passkey_script, problem_page, qr_code, see_other, sentence, spaced_key, wide_page,
};
use crate::services::second_factor::TotpState;
use crate::services::self_service::{AccountOverview, PasswordChangeError, SelfService};
use crate::services::sessions::{ActiveSession, SessionService};
use crate::views::device_in_words;

/// Where a browser without a session goes: sign in, then back here.
const SIGN_IN: &str = "/login?return_to=%2Faccount";

/// What a form's answer tells the page to say.
#[derive(Deserialize)]
pub struct Shown {
    notice: Option<String>,
}

/// The notices a form's answer may ask for, by key (nothing from the URL is shown
/// as it is).
fn notice(key: &str) -> Option<&'static str> {
    Some(match key {
        "profile" => "Your profile is saved.",
        "password" => "Your password is changed.",
        "password-others" => "Your password is changed, and your other sessions are signed out.",
        "session" => "That session is signed out.",
        "others" => "Every other session is signed out.",
        "app" => "The app is removed. It will ask for your permission again next time.",
        "totp-begun" => {
            "Scan the code below with your authenticator app, then enter the code it shows."
        }
        "totp-cancelled" => "Setting up the authenticator app is cancelled.",
        "totp-off" => "Two-step sign-in is off: your password alone signs you in.",
        "passkey-added" => "The passkey is added: use it the next time you sign in.",
        "passkey-removed" => "The passkey is removed.",
        _ => return None,
    })
}

/// The person's live session, from their cookie; `None` for anyone else.
async fn current(
    sessions: &SessionService,
    cookies: &Cookies,
    headers: &HeaderMap,
) -> Result<Option<Arc<ActiveSession>>, ApiError> {
    match cookies.session.secret(headers) {
        Ok(Some(secret)) => Ok(sessions.authenticate(&secret).await?),
        Ok(None) | Err(_) => Ok(None),
    }
}

/// `GET /account`.
pub async fn show(
    State(service): State<Arc<SelfService>>,
    State(sessions): State<Arc<SessionService>>,
    State(cookies): State<Arc<Cookies>>,
    query: Result<Query<Shown>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(session) = current(&sessions, &cookies, &headers).await? else {
        return Ok(see_other(SIGN_IN));
    };
    let shown = query
        .ok()
        .and_then(|Query(q)| q.notice)
        .and_then(|key| notice(&key));
    let overview = service.overview(&session).await?;
    Ok(account_page(
        StatusCode::OK,
        &session,
        &overview,
        shown.map(Message::Notice),
    ))
}

enum Message<'a> {
    Notice(&'a str),
    Error(&'a str),
}

fn account_page(
    status: StatusCode,
    session: &ActiveSession,
    overview: &AccountOverview,
    message: Option<Message<'_>>,
) -> Response {
    let user = session.user();
    let csrf = session.csrf_token().as_str();
    let hidden = html! { input type="hidden" name="csrf_token" value=(csrf); };
    let now = Timestamp::now();
    let profile = &overview.profile;
    let body = html! {
        header.bar {
            strong { "Your account" }
            nav {
                span { "Signed in as " strong { (user.username.as_str()) } }
                form.inline method="post" action="/account/sign-out" {
                    (hidden)
                    button.secondary.inline type="submit" { "Sign out" }
                }
            }
        }
        @match message {
            Some(Message::Notice(text)) => p.notice role="status" { (text) },
            Some(Message::Error(text)) => p.error role="alert" { (text) },
            None => {},
        }
        section aria-labelledby="profile" {
            h2 #profile { "Profile" }
            form method="post" action="/account/profile" {
                (hidden)
                div.grid {
                    div {
                        label for="username" { "Username" }
                        input #username value=(user.username.as_str()) readonly aria-readonly="true";
                    }
                    div {
                        label for="name" { "Name" }
                        input #name name="name" autocomplete="name" maxlength="128"
                            value=[profile.name.as_ref().map(|n| n.as_str())];
                    }
                    div {
                        label for="email" {
                            "Email"
                            @if profile.email.is_some() {
                                @if profile.email_verified {
                                    span.badge { "verified" }
                                } @else {
                                    span.muted { " (not verified)" }
                                }
                            }
                        }
                        input #email name="email" type="email" autocomplete="email"
                            value=[profile.email.as_ref().map(|e| e.as_str())];
                    }
                }
                button.inline.spaced type="submit" { "Save profile" }
            }
        }
        section aria-labelledby="password" {
            h2 #password { "Password" }
            form method="post" action="/account/password" {
                (hidden)
                input type="text" name="username" value=(user.username.as_str())
                    autocomplete="username" hidden;
                div.grid {
                    div {
                        label for="current_password" { "Current password" }
                        input #current_password name="current_password" type="password"
                            autocomplete="current-password" required;
                    }
                    div {
                        label for="new_password" { "New password" }
                        input #new_password name="new_password" type="password"
                            autocomplete="new-password" minlength="8" required;
                    }
                }
                label.check {
                    input type="checkbox" name="sign_out_others" value="yes" checked;
                    "Sign out my other sessions"
                }
                button.inline.spaced type="submit" { "Change password" }
            }
        }
        (two_step_section(&overview.totp, overview.second_factor_required, &hidden))
        (passkeys_section(overview, csrf, &hidden, now))
        section aria-labelledby="sessions" {
            h2 #sessions { "Where you are signed in" }
            ul.items {
                @for record in &overview.sessions {
                    li {
                        div.item-main {
                            p {
                                strong {
                                    (device_in_words(record.user_agent.as_deref())
                                        .unwrap_or_else(|| "An unknown device".to_owned()))
                                }
                                @if record.id == *session.id() {
                                    span.badge { "this device" }
                                }
                            }
                            p.muted {
                                @if let Some(address) = &record.client_address {
                                    "From " (address) " · "
                                }
                                "signed in " (ago(record.created_at, now))
                                " · last seen " (ago(record.last_seen_at, now))
                            }
                        }
                        @if record.id != *session.id() {
                            form.inline method="post" action="/account/sessions/end" {
                                (hidden)
                                input type="hidden" name="session" value=(record.id.as_str());
                                button.secondary.inline type="submit"
                                    aria-label={ "Sign out " (device_in_words(record.user_agent.as_deref()).unwrap_or_else(|| "this session".to_owned())) } {
                                    "Sign out"
                                }
                            }
                        }
                    }
                }
            }
            @if overview.sessions.len() > 1 {
                form method="post" action="/account/sessions/end-others" {
                    (hidden)
                    button.secondary.inline.spaced type="submit" {
                        "Sign out every other session"
                    }
                }
            }
        }
        section aria-labelledby="apps" {
            h2 #apps { "Apps you allowed" }
            @if overview.apps.is_empty() {
                p.muted { "You have not allowed any app to use your account." }
            } @else {
                ul.items {
                    @for app in &overview.apps {
                        @let consent = &app.consent;
                        @let name = app.client.as_ref().map_or("A removed app", |c| c.name.as_str());
                        li {
                            div.item-main {
                                p { strong { (name) } }
                                p.muted {
                                    @if let Some(used) = app.last_used { "Last used " (ago(used, now)) " · " }
                                    "allowed " (ago(consent.granted_at, now)) ":"
                                }
                                ul.scopes {
                                    @for scope in consent.scopes.iter() {
                                        li { (in_words(scope)) }
                                    }
                                }
                            }
                            form.inline method="post" action="/account/apps/remove" {
                                (hidden)
                                input type="hidden" name="client_id" value=(consent.client_id.to_string());
                                button.secondary.inline type="submit" aria-label={ "Remove " (name) } {
                                    "Remove"
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    wide_page(status, "Your account", body)
}

/// Two-step sign-in: set up an authenticator app (the QR code drawn here, the
/// secret as text), confirm it, or see it on (`routes/account_factors.rs` takes
/// the forms).
/// `required`: the `mfa` policy covers this account, so it cannot be turned off.
fn two_step_section(totp: &TotpState, required: bool, hidden: &Markup) -> Markup {
    html! {
        section aria-labelledby="two-step" {
            h2 #two-step { "Two-step sign-in" }
            @match totp {
                TotpState::None => {
                    p {
                        "Ask for a code from an authenticator app (such as Google Authenticator, \
                         Aegis or 1Password) after your password, so that a password alone is \
                         not enough to sign in as you."
                    }
                    form method="post" action="/account/totp/begin" {
                        (hidden)
                        button.inline.spaced type="submit" { "Set up an authenticator app" }
                    }
                }
                TotpState::Enrolling(enrolment) => {
                    p { "Scan this code with your authenticator app, or type the key below into it." }
                    @if let Some(qr) = qr_code(&enrolment.link, "QR code to add this account to an authenticator app") {
                        div.qr { (qr) }
                    }
                    p.muted { "Key: " code #totp-secret { (spaced_key(&enrolment.secret_base32)) } }
                    form method="post" action="/account/totp/confirm" {
                        (hidden)
                        label for="totp-code" { "The six-digit code the app now shows" }
                        input #totp-code name="code" inputmode="numeric" autocomplete="one-time-code"
                            pattern="[0-9 ]*" required;
                        div.actions {
                            button.inline type="submit" { "Turn on two-step sign-in" }
                        }
                    }
                    form method="post" action="/account/totp/cancel" {
                        (hidden)
                        button.secondary.inline.spaced type="submit" { "Cancel" }
                    }
                }
                TotpState::Active { recovery_codes_left } => {
                    p {
                        "Signing in asks for a code from your authenticator app after your \
                         password."
                        span.badge { "on" }
                    }
                    @if required {
                        p.muted { "This service asks your account to sign in with two steps." }
                    }
                    p.muted {
                        (recovery_codes_left) " unused recovery "
                        (if *recovery_codes_left == 1 { "code" } else { "codes" })
                        " left. Each lets you in once if you lose your phone."
                    }
                    // One password for either change: each button posts to its own place.
                    form method="post" action="/account/recovery-codes" {
                        (hidden)
                        label for="factor-password" { "Current password" }
                        input #factor-password name="current_password" type="password"
                            autocomplete="current-password" required;
                        div.actions {
                            button.secondary.inline type="submit" { "Get new recovery codes" }
                            @if !required {
                                button.danger.inline type="submit" formaction="/account/totp/remove" {
                                    "Turn off two-step sign-in"
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Passkeys: each with its name, kind and last use, removable; a new one added
/// by the script (WebAuthn has no form post), after the password.
fn passkeys_section(
    overview: &AccountOverview,
    csrf: &str,
    hidden: &Markup,
    now: Timestamp,
) -> Markup {
    html! {
        section aria-labelledby="passkeys" {
            h2 #passkeys { "Passkeys" }
            p {
                "Sign in with your fingerprint, face or screen lock instead of typing a \
                 password. A passkey counts as both steps, and no other site can use it."
            }
            @if let Some(why) = &overview.passkeys_unavailable {
                p.muted { "Passkeys are off on this service: " (why) "." }
            } @else {
                @if !overview.passkeys.is_empty() {
                    ul.items #passkey-list {
                        @for passkey in &overview.passkeys {
                            li {
                                div.item-main {
                                    p {
                                        strong { (passkey.name) }
                                        @if passkey.backup_eligible { span.badge { "synced" } }
                                    }
                                    p.muted {
                                        "Added " (ago(passkey.created_at, now)) " · "
                                        @if let Some(used) = passkey.last_used_at {
                                            "last used " (ago(used, now))
                                        } @else {
                                            "never used"
                                        }
                                    }
                                }
                                form.inline method="post" action="/account/passkeys/remove" {
                                    (hidden)
                                    input type="hidden" name="id" value=(URL_SAFE_NO_PAD.encode(&passkey.credential_id));
                                    button.secondary.inline type="submit" aria-label={ "Remove " (passkey.name) } {
                                        "Remove"
                                    }
                                }
                            }
                        }
                    }
                }
                div data-passkey="add" data-csrf=(csrf) data-next="/account?notice=passkey-added#passkeys" hidden {
                    form #passkey-add {
                        label for="passkey-name" { "Name it (the device, say)" }
                        input #passkey-name name="name" maxlength="64" required placeholder="Laptop";
                        label for="passkey-password" { "Current password" }
                        input #passkey-password name="current_password" type="password"
                            autocomplete="current-password" required;
                        div.actions {
                            button.inline type="submit" { "Add a passkey" }
                        }
                    }
                    p.error role="alert" data-passkey-error hidden {}
                }
                (passkey_script())
            }
        }
    }
}

/// How long ago, in words a person reads at a glance.
fn ago(then: Timestamp, now: Timestamp) -> String {
    let seconds = now.millis_since(then) / 1000;
    match seconds {
        0..60 => "just now".to_owned(),
        60..3600 => plural(seconds / 60, "minute"),
        3600..86_400 => plural(seconds / 3600, "hour"),
        _ => plural(seconds / 86_400, "day"),
    }
}

fn plural(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{count} {unit}s ago")
    }
}

/// A form of this page, checked: from our own origin, with a live session and its
/// CSRF token. Otherwise the answer a person should see instead.
pub(crate) async fn checked(
    sessions: &SessionService,
    cookies: &Cookies,
    edge: &EdgePolicy,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Arc<ActiveSession>, Response> {
    if check_origin(headers, &edge.origins).is_err() {
        return Err(refused(
            "This form was sent from another site, so it was not accepted.",
        ));
    }
    let session = match current(sessions, cookies, headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(see_other(SIGN_IN)),
        Err(error) => return Err(error_page(&error)),
    };
    if !session.csrf_token().matches(csrf) {
        return Err(refused(
            "This form is out of date (it belongs to an earlier sign-in). Open your account \
             page again.",
        ));
    }
    Ok(session)
}

/// Where a problem page leads back to.
const BACK: (&str, &str) = ("/account", "Back to your account");

fn refused(why: &str) -> Response {
    problem_page(StatusCode::FORBIDDEN, "Not accepted", why, BACK)
}

pub(crate) fn error_page(error: &ApiError) -> Response {
    problem_page(
        error.status(),
        "Something went wrong",
        &sentence(error.description()),
        BACK,
    )
}

/// The page again with what `error` says, after a form was refused.
pub(crate) async fn again_with(
    service: &SelfService,
    session: &ActiveSession,
    error: &ApiError,
) -> Response {
    again(
        service,
        session,
        error.status(),
        &sentence(error.description()),
    )
    .await
}

/// The page again, with `status` and an error, after a form was refused.
async fn again(
    service: &SelfService,
    session: &ActiveSession,
    status: StatusCode,
    error: &str,
) -> Response {
    match service.overview(session).await {
        Ok(overview) => account_page(status, session, &overview, Some(Message::Error(error))),
        Err(e) => error_page(&e.into()),
    }
}

pub(crate) fn done(key: &str) -> Response {
    see_other(&format!("/account?notice={key}"))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    pub(crate) csrf_token: String,
}

#[derive(Deserialize)]
pub struct ProfileForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

/// The states each page's state extractors give, together.
pub(crate) type Pieces = (
    State<Arc<SelfService>>,
    State<Arc<SessionService>>,
    State<Arc<Cookies>>,
    State<Arc<EdgePolicy>>,
);

/// A form body that is not one: the page says so.
pub(crate) fn bad_form(error: ApiError) -> Response {
    error_page(&error)
}

/// `POST /account/profile`: name and email; empty clears.
pub async fn profile(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<ProfileForm>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Input(form)) => form,
        Err(error) => return bad_form(error),
    };
    let session = match checked(&sessions, &cookies, &edge, &headers, &form.csrf_token).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let optional = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
    let name = match optional(&form.name)
        .map(|n| DisplayName::parse(&n))
        .transpose()
    {
        Ok(name) => name,
        Err(e) => {
            return again(
                &service,
                &session,
                StatusCode::BAD_REQUEST,
                &format!("Name: {e}."),
            )
            .await;
        }
    };
    let email = match optional(&form.email).map(|e| Email::parse(&e)).transpose() {
        Ok(email) => email,
        Err(e) => {
            return again(
                &service,
                &session,
                StatusCode::BAD_REQUEST,
                &format!("Email: {e}."),
            )
            .await;
        }
    };
    match service
        .change_profile(&session, name, email, client.address)
        .await
    {
        Ok(_) => done("profile"),
        Err(e) => error_page(&e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
    sign_out_others: Option<String>,
}

/// `POST /account/password`.
pub async fn password(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<PasswordForm>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Input(form)) => form,
        Err(error) => return bad_form(error),
    };
    let session = match checked(&sessions, &cookies, &edge, &headers, &form.csrf_token).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let (current, new) = match (
        Password::parse(form.current_password),
        Password::parse(form.new_password),
    ) {
        (Ok(current), Ok(new)) => (current, new),
        (Err(_), _) => {
            return again(
                &service,
                &session,
                StatusCode::UNAUTHORIZED,
                "The current password is not right.",
            )
            .await;
        }
        (_, Err(e)) => {
            return again(
                &service,
                &session,
                StatusCode::BAD_REQUEST,
                &format!("New password: {e}."),
            )
            .await;
        }
    };
    let others = form.sign_out_others.is_some();
    match service
        .change_password(&session, current, new, others, client.address)
        .await
    {
        Ok(_) if others => done("password-others"),
        Ok(_) => done("password"),
        Err(PasswordChangeError::WrongPassword) => {
            again(
                &service,
                &session,
                StatusCode::UNAUTHORIZED,
                "The current password is not right.",
            )
            .await
        }
        Err(PasswordChangeError::Unchanged) => {
            again(
                &service,
                &session,
                StatusCode::BAD_REQUEST,
                "The new password is the current one: choose another.",
            )
            .await
        }
        Err(PasswordChangeError::Throttled(_)) => {
            again(
                &service,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts: wait a minute and try again.",
            )
            .await
        }
        Err(PasswordChangeError::Hash(e)) => error_page(&e.into()),
        Err(PasswordChangeError::Store(e)) => error_page(&e.into()),
    }
}

#[derive(Deserialize)]
pub struct SessionForm {
    csrf_token: String,
    session: String,
}

/// `POST /account/sessions/end`: signs out another of the person's sessions.
pub async fn end_session(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<SessionForm>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Input(form)) => form,
        Err(error) => return bad_form(error),
    };
    let session = match checked(&sessions, &cookies, &edge, &headers, &form.csrf_token).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let gone = || async {
        again(
            &service,
            &session,
            StatusCode::NOT_FOUND,
            "That session is already signed out.",
        )
        .await
    };
    let Ok(id) = SessionId::parse(&form.session) else {
        return gone().await;
    };
    match service.end_session(&session, &id, client.address).await {
        Ok(true) => done("session"),
        Ok(false) => gone().await,
        Err(e) => error_page(&e.into()),
    }
}

/// `POST /account/sessions/end-others`.
pub async fn end_other_sessions(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<CsrfOnly>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Input(form)) => form,
        Err(error) => return bad_form(error),
    };
    let session = match checked(&sessions, &cookies, &edge, &headers, &form.csrf_token).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    match service.end_other_sessions(&session, client.address).await {
        Ok(_) => done("others"),
        Err(e) => error_page(&e.into()),
    }
}

#[derive(Deserialize)]
pub struct AppForm {
    csrf_token: String,
    client_id: String,
}

/// `POST /account/apps/remove`: withdraws what the person allowed an app.
pub async fn remove_app(
    (State(service), State(sessions), State(cookies), State(edge)): Pieces,
    headers: HeaderMap,
    form: Result<Input<AppForm>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Input(form)) => form,
        Err(error) => return bad_form(error),
    };
    let session = match checked(&sessions, &cookies, &edge, &headers, &form.csrf_token).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let gone = || async {
        again(
            &service,
            &session,
            StatusCode::NOT_FOUND,
            "That app is not allowed anything.",
        )
        .await
    };
    let Some(client) = ClientId::parse(&form.client_id) else {
        return gone().await;
    };
    match service.remove_app(&session, &client).await {
        Ok(true) => done("app"),
        Ok(false) => gone().await,
        Err(e) => error_page(&e.into()),
    }
}

/// `POST /account/sign-out`: signs this session out, then to `/login`.
pub async fn sign_out(
    (State(_), State(sessions), State(cookies), State(edge)): Pieces,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Input<CsrfOnly>, ApiError>,
) -> Response {
    let form = match form {
        Ok(Input(form)) => form,
        Err(error) => return bad_form(error),
    };
    let session = match checked(&sessions, &cookies, &edge, &headers, &form.csrf_token).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    if let Err(e) = sessions.log_out(&session, Some(client.address)).await {
        return error_page(&e.into());
    }
    let mut response = see_other("/login");
    let set = response.headers_mut();
    set.append(http::header::SET_COOKIE, cookies.session.clear());
    set.append(http::header::SET_COOKIE, cookies.token.clear());
    response
}
