//! `/register`: opening an account in a browser, when configuration allows it
//! (`registration`). The same rules as `POST /v1/users` (the origin check, the
//! throttle, usernames that look like another's refused), then signed in at once and
//! sent to `/account`. A plain form, no script.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use maud::{Markup, html};
use serde::Deserialize;

use crate::http::EdgePolicy;
use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, check_origin, credentials};
use crate::routes::html::{page, see_other, sentence};
use crate::routes::login::{FirstStep, LoginForm, sign_in};
use crate::routes::login_page::SECOND_STEP_PAGE;
use crate::routes::users::sign_up_error;
use crate::services::sign_in::SignIn;

#[derive(Deserialize)]
pub struct RegisterForm {
    username: String,
    password: String,
}

fn form(username: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        h1 { "Create an account" }
        @if let Some(error) = error {
            p.error role="alert" { (sentence(error)) }
        }
        form method="post" action="/register" {
            label for="username" { "Username" }
            input #username name="username" autocomplete="username" value=[username] required autofocus[username.is_none()];
            label for="password" { "Password" }
            input #password name="password" type="password" autocomplete="new-password" minlength="8" required autofocus[username.is_some()];
            p.muted { "At least 8 characters." }
            button type="submit" { "Create account" }
        }
        p.muted { "Have an account? " a href="/login" { "Sign in" } }
    }
}

fn closed() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Registration is closed",
        &[],
        html! {
            h1 { "Registration is closed" }
            p { "Accounts on this server are made by its administrators: ask one for an account." }
            p { a href="/login" { "Sign in" } }
        },
    )
}

/// `GET /register`.
pub async fn show(State(sign_in): State<Arc<SignIn>>) -> Response {
    if !sign_in.registration_open() {
        return closed();
    }
    page(StatusCode::OK, "Create an account", &[], form(None, None))
}

/// `POST /register`: opens the account, signs it in, then `303` to `/account`.
pub async fn submit(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    State(edge): State<Arc<EdgePolicy>>,
    client: ClientInfo,
    headers: HeaderMap,
    input: Result<Input<RegisterForm>, ApiError>,
) -> Response {
    if !sign_in_service.registration_open() {
        return closed();
    }
    let refused = |status: StatusCode, username: Option<&str>, why: &str| {
        page(status, "Create an account", &[], form(username, Some(why)))
    };
    if check_origin(&headers, &edge.origins).is_err() {
        return refused(
            StatusCode::FORBIDDEN,
            None,
            "This form was sent from another site, so it was not accepted.",
        );
    }
    let input = match input {
        Ok(Input(input)) => input,
        Err(error) => return refused(error.status(), None, error.description()),
    };
    let (username, password) = match credentials(&input.username, input.password.clone()) {
        Ok(parsed) => parsed,
        Err(error) => {
            return refused(error.status(), Some(&input.username), error.description());
        }
    };
    if let Err(error) = sign_in_service
        .sign_up(username, password, client.address)
        .await
    {
        let error = sign_up_error(error);
        return refused(error.status(), Some(&input.username), error.description());
    }
    let login = LoginForm {
        username: input.username,
        password: input.password,
        second_factor: false,
    };
    match sign_in(&sign_in_service, &cookies, client, &headers, login).await {
        Ok(FirstStep::Session(set_cookie, _)) => {
            let mut response = see_other("/account");
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie);
            response
        }
        // A new account has no second factor; were it to, its step is next.
        Ok(FirstStep::SecondFactor { set_cookie, .. }) => {
            let mut response = see_other(SECOND_STEP_PAGE);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie);
            response
        }
        // Made, but not signed in (a throttle, say): the person signs in by hand.
        Err(_) => see_other("/login"),
    }
}
