//! `POST /v1/login`, and the sign-in both it and the login page do.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;

use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, SameOrigin, credentials};
use crate::services::sessions::ActiveSession;
use crate::services::sign_in::{Attempt, SignIn, SignInError};
use crate::views::CurrentSession;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
}

/// `POST /v1/login`: checks the password and starts a new session.
pub async fn login(
    State(sign_in_service): State<Arc<SignIn>>,
    State(cookies): State<Arc<Cookies>>,
    _: SameOrigin,
    client: ClientInfo,
    headers: HeaderMap,
    Input(input): Input<LoginForm>,
) -> Result<impl IntoResponse, ApiError> {
    let (set_cookie, session) =
        sign_in(&sign_in_service, &cookies, client, &headers, input).await?;
    let policy = sign_in_service.sessions().policy();
    let body = Json(CurrentSession::of(&session, policy)).into_response();
    Ok(([(header::SET_COOKIE, set_cookie)], body))
}

/// Checks the password and starts a new session: the `Set-Cookie` value and the
/// session. Shared by `POST /v1/login` and the login page; the caller has checked
/// the origin.
pub async fn sign_in(
    service: &SignIn,
    cookies: &Cookies,
    client: ClientInfo,
    headers: &HeaderMap,
    input: LoginForm,
) -> Result<(HeaderValue, Arc<ActiveSession>), ApiError> {
    let (username, password) = credentials(&input.username, input.password)?;
    // Of two different cookies neither is trusted to name a session to end; the
    // new cookie replaces them in the browser all the same.
    let previous = cookies.session.secret(headers).ok().flatten();
    let (secret, session) = service
        .sign_in(Attempt {
            username,
            password,
            address: client.address,
            user_agent: client.user_agent,
            previous,
        })
        .await
        .map_err(|e| match e {
            SignInError::Throttled(wait) => wait.into(),
            SignInError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid username or password",
            ),
            SignInError::Disabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled",
            ),
            SignInError::Hash(e) => e.into(),
            SignInError::Store(e) => e.into(),
        })?;
    Ok((cookies.session.set(&secret), session))
}
