//! `/reset?token=…`: choosing a new password through a one-time link an
//! administrator issued (see `services::reset_links`). A plain form, no script;
//! the link's secret travels in the form's hidden field, never in a log line.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{Markup, html};
use serde::Deserialize;

use crate::http::EdgePolicy;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin, new_password};
use crate::routes::html::{page, sentence};
use crate::services::reset_links::{ResetError, ResetLinks};

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
    confirm: String,
}

const TITLE: &str = "Choose a new password";

fn form(token: &str, username: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { (TITLE) }
        p { "For the account " strong { (username) } "." }
        @if let Some(error) = error {
            p.error role="alert" { (sentence(error)) }
        }
        form method="post" action="/reset" {
            input type="hidden" name="token" value=(token);
            // For password managers, which save the new password under this name.
            input type="hidden" name="username" autocomplete="username" value=(username);
            label for="password" { "New password" }
            input #password name="password" type="password" autocomplete="new-password" minlength="8" required autofocus;
            label for="confirm" { "New password, again" }
            input #confirm name="confirm" type="password" autocomplete="new-password" minlength="8" required;
            p.muted { "At least 8 characters. Every device signed in to this account is signed out." }
            button type="submit" { "Set password" }
        }
    }
}

/// What the page answers: never cached, as it carries the link's secret.
fn reset_page(status: StatusCode, body: Markup) -> Response {
    let mut response = page(status, TITLE, &[], body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_valid(error: &ResetError) -> Response {
    reset_page(
        StatusCode::NOT_FOUND,
        html! {
            h1 { "This link does not work" }
            p role="alert" { (sentence(&error.to_string())) }
            p { a href="/login" { "Sign in" } }
        },
    )
}

fn failed(error: ResetError) -> Response {
    match error {
        ResetError::NotValid => not_valid(&error),
        ResetError::Hash(error) => trouble(&ApiError::from(error)),
        ResetError::Store(error) => trouble(&ApiError::from(error)),
    }
}

/// The server could not do it now (busy, the store down): the link still works.
fn trouble(error: &ApiError) -> Response {
    reset_page(
        error.status(),
        html! {
            h1 { (TITLE) }
            p.error role="alert" { (sentence(error.description())) }
            p { "The link still works: try it again in a moment." }
        },
    )
}

/// `GET /reset?token=…`: the form, if the link still works.
pub async fn show(
    State(links): State<Arc<ResetLinks>>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|Query(q)| q.token).unwrap_or_default();
    match links.holder(&token).await {
        Ok(user) => reset_page(StatusCode::OK, form(&token, user.username.as_str(), None)),
        Err(error) => failed(error),
    }
}

/// `POST /reset`: sets the password, then tells the person to sign in with it.
pub async fn submit(
    State(links): State<Arc<ResetLinks>>,
    State(edge): State<Arc<EdgePolicy>>,
    client: ClientInfo,
    headers: HeaderMap,
    input: Result<Input<ResetForm>, ApiError>,
) -> Response {
    let input = match input {
        Ok(Input(input)) => input,
        Err(error) => {
            return reset_page(
                error.status(),
                html! { h1 { (TITLE) } p.error role="alert" { (sentence(error.description())) } },
            );
        }
    };
    let user = match links.holder(&input.token).await {
        Ok(user) => user,
        Err(error) => return failed(error),
    };
    let refused = |status: StatusCode, why: &str| {
        reset_page(
            status,
            form(&input.token, user.username.as_str(), Some(why)),
        )
    };
    if check_origin(&headers, &edge.origins).is_err() {
        return refused(
            StatusCode::FORBIDDEN,
            "This form was sent from another site, so it was not accepted.",
        );
    }
    if input.password != input.confirm {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords are not the same.",
        );
    }
    let password = match new_password(input.password) {
        Ok(password) => password,
        Err(error) => return refused(error.status(), error.description()),
    };
    match links.reset(&input.token, password, client.address).await {
        Ok(cut) => {
            let to = format!(
                "/login?login_hint={}",
                url::form_urlencoded::byte_serialize(cut.user.username.as_str().as_bytes())
                    .collect::<String>()
            );
            reset_page(
                StatusCode::OK,
                html! {
                    h1 { "Password changed" }
                    p role="status" {
                        "The password of " strong { (cut.user.username.as_str()) }
                        " is changed, and every device that was signed in to it is signed out."
                    }
                    p { a href=(to) { "Sign in with the new password" } }
                },
            )
        }
        Err(error) => failed(error),
    }
}
