//! `/login`: the sign-in page browsers are sent to, by tessera's own links or by a
//! gateway (`login_url`), with `?return_to=URL` for where to go afterwards.
//!
//! A plain HTML form that posts to itself: no script, so it works everywhere and
//! the Content-Security-Policy can forbid all scripts. The form post is checked
//! like `POST /v1/login` (origin check, throttling, a new session secret, never a
//! presented one) and answers `303 See Other` to `return_to` when that is allowed
//! (see [`crate::http::return_to`]), else to `/login`, which then says who is
//! signed in.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::extract::{ClientInfo, Input, SameOrigin};
use crate::routes::login::{LoginForm, sign_in};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PageQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct PageForm {
    #[serde(flatten)]
    credentials: LoginForm,
    return_to: Option<String>,
}

/// No script at all; styles only inline; the form posts only here; never framed.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

fn page(status: StatusCode, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in" }
                style { "body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}label,input,button{display:block;width:100%;margin:.3rem 0}input{padding:.4rem}.error{color:#b00020}" }
            }
            body { (body) }
        }
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn form(return_to: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form method="post" action="/login" {
            label for="username" { "Username" }
            input #username name="username" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required;
            @if let Some(return_to) = return_to {
                input type="hidden" name="return_to" value=(return_to);
            }
            button type="submit" { "Sign in" }
        }
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/login"))],
        )
            .into_response(),
    }
}

/// `GET /login[?return_to=URL]`: the form; a browser already signed in goes straight
/// on to an allowed `return_to`, or is told who it is signed in as.
pub async fn show(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let allowed = query
        .return_to
        .as_deref()
        .and_then(|r| state.return_to.check(r));
    // Two different session cookies: as if signed out; signing in replaces both.
    let current = match state.cookie.secret(&headers) {
        Ok(Some(secret)) => state.sessions.authenticate(&secret).await?,
        Ok(None) | Err(_) => None,
    };
    if let Some(session) = current {
        if let Some(to) = allowed {
            return Ok(see_other(to.as_str()));
        }
        return Ok(page(
            StatusCode::OK,
            html! {
                h1 { "Signed in" }
                p { "You are signed in as " strong { (session.user().username.as_str()) } "." }
            },
        ));
    }
    Ok(page(
        StatusCode::OK,
        form(allowed.as_ref().map(url::Url::as_str), None),
    ))
}

/// `POST /login` (form): signs in, then `303` to `return_to` or back to `/login`.
/// Failures re-show the form with the reason and the status `/v1/login` would give.
pub async fn submit(
    State(state): State<AppState>,
    _: SameOrigin,
    client: ClientInfo,
    headers: HeaderMap,
    Input(input): Input<PageForm>,
) -> Response {
    let allowed = input
        .return_to
        .as_deref()
        .and_then(|r| state.return_to.check(r));
    match sign_in(&state, client, &headers, input.credentials).await {
        Ok((set_cookie, _)) => {
            let mut response = see_other(allowed.as_ref().map_or("/login", url::Url::as_str));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie);
            response
        }
        Err(error) => {
            let mut response = page(
                error.status(),
                form(
                    allowed.as_ref().map(url::Url::as_str),
                    Some(error.description()),
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
