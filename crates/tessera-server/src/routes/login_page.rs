//! `/login`: the sign-in page browsers are sent to, by tessera's own links or by a
//! gateway (`login_url`), with `?return_to=URL` for where to go afterwards.
//!
//! A plain HTML form that posts to itself: no script, so it works everywhere and
//! the Content-Security-Policy can forbid all scripts. The form post is checked
//! like `POST /v1/login` (origin check, throttling, a new session secret, never a
//! presented one) and answers `303 See Other` to `return_to` when that is allowed
//! (see [`crate::http::return_to`]), else to `/login`, which then says who is
//! signed in.

use std::sync::{Arc, LazyLock};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin};
use crate::routes::login::{LoginForm, sign_in};
use crate::services::sessions::SessionService;
use crate::services::sign_in::SignIn;

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

const STYLE: &str = "\
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f3f4f6;\
color:#111827;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
main{box-sizing:border-box;width:min(23rem,calc(100vw - 2rem));margin:1rem;padding:2rem;\
background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.08),0 10px 30px rgba(0,0,0,.06)}\
h1{margin:0 0 1.25rem;font-size:1.5rem;font-weight:650}\
p{margin:0 0 1rem}\
label{display:block;margin:1rem 0 .35rem;font-size:.9rem;font-weight:600}\
input{box-sizing:border-box;width:100%;padding:.6rem .75rem;font:inherit;color:inherit;\
background:#fff;border:1px solid #d1d5db;border-radius:.45rem}\
input:focus{outline:2px solid #2563eb;outline-offset:1px;border-color:#2563eb}\
button{width:100%;margin-top:1.5rem;padding:.65rem;font:inherit;font-weight:600;color:#fff;\
background:#2563eb;border:0;border-radius:.45rem;cursor:pointer}\
button:hover{background:#1d4ed8}\
button:focus-visible{outline:2px solid #1e3a8a;outline-offset:2px}\
.error{padding:.65rem .8rem;color:#991b1b;background:#fef2f2;border:1px solid #fecaca;border-radius:.45rem}";

/// The page's one stylesheet, allowed by its hash: with no `'unsafe-inline'`, markup
/// that ever slipped past escaping could not bring styles of its own either.
static STYLE_SOURCE: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
});

/// No script at all; only our stylesheet; never framed. The form posts only here,
/// but a sign-in answers `303` to `return_to`, and browsers hold that redirect to
/// `form-action` too: the origin of the page's (already allowed) `return_to` must be
/// listed, or the browser stops on tessera instead of going back.
fn csp(return_to: Option<&Url>) -> HeaderValue {
    let mut form_action = String::from("'self'");
    if let Some(origin) = return_to.map(|url| url.origin().ascii_serialization()) {
        form_action.push(' ');
        form_action.push_str(&origin);
    }
    let policy = format!(
        "default-src 'none'; style-src {}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        *STYLE_SOURCE
    );
    // Origins are ASCII-serialised, so this always is a valid header value.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; form-action 'self'; frame-ancestors 'none'")
    })
}

/// An HTML page. `return_to` is where a form on it may send the browser afterwards.
fn page(status: StatusCode, return_to: Option<&Url>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in" }
                style { (PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    };
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, csp(return_to)),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            // Not `no-referrer`: with it, browsers send `Origin: null` on the form's
            // own POST, which the origin check rightly refuses. `same-origin` still
            // tells other sites (the return_to's among them) nothing.
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// An API error description (`invalid username or password`) as a sentence for a
/// person: capitalised, with a full stop.
fn sentence(description: &str) -> String {
    let mut chars = description.trim().chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The sign-in form. `username` is kept after a failed attempt; never the password.
fn form(return_to: Option<&Url>, username: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        @if let Some(error) = error {
            p.error role="alert" { (sentence(error)) }
        }
        form method="post" action="/login" {
            label for="username" { "Username" }
            input #username name="username" autocomplete="username" value=[username] required autofocus[username.is_none()];
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="current-password" required autofocus[username.is_some()];
            @if let Some(return_to) = return_to {
                input type="hidden" name="return_to" value=(return_to.as_str());
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
    State(sessions): State<Arc<SessionService>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A mangled query (say, return_to given twice) is a bad link, not a reason to
    // keep a person from signing in: it is dropped like a refused return_to.
    let allowed = query
        .ok()
        .and_then(|Query(query)| query.return_to)
        .and_then(|r| edge.return_to.check(&r));
    // Two different session cookies: as if signed out; signing in replaces both.
    let current = match cookies.session.secret(&headers) {
        Ok(Some(secret)) => sessions.authenticate(&secret).await?,
        Ok(None) | Err(_) => None,
    };
    if let Some(session) = current {
        if let Some(to) = allowed {
            return Ok(see_other(to.as_str()));
        }
        return Ok(page(
            StatusCode::OK,
            None,
            html! {
                h1 { "Signed in" }
                p { "You are signed in as " strong { (session.user().username.as_str()) } "." }
            },
        ));
    }
    Ok(page(
        StatusCode::OK,
        allowed.as_ref(),
        form(allowed.as_ref(), None, None),
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
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    client: ClientInfo,
    headers: HeaderMap,
    input: Result<Input<PageForm>, ApiError>,
) -> Response {
    // The origin check first: what a foreign page sent is not read any further.
    if check_origin(&headers, &edge.origins).is_err() {
        return page(
            StatusCode::FORBIDDEN,
            None,
            form(None, None, Some(FOREIGN_FORM)),
        );
    }
    let input = match input {
        Ok(Input(input)) => input,
        Err(error) => {
            return page(
                error.status(),
                None,
                form(None, None, Some(error.description())),
            );
        }
    };
    let allowed = input
        .return_to
        .as_deref()
        .and_then(|r| edge.return_to.check(r));
    let username = input.credentials.username.clone();
    match sign_in(
        &sign_in_service,
        &cookies,
        client,
        &headers,
        input.credentials,
    )
    .await
    {
        Ok((set_cookie, _)) => {
            let mut response = see_other(allowed.as_ref().map_or("/login", Url::as_str));
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie);
            response
        }
        Err(error) => {
            let mut response = page(
                error.status(),
                allowed.as_ref(),
                form(allowed.as_ref(), Some(&username), Some(error.description())),
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
