use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use tessera_store::{CreateSessionError, EndReason};

use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, Input, SameOrigin};
use crate::routes::users::parse_credentials;
use crate::services::accounts::LoginError;
use crate::services::sessions::{ActiveSession, NewSessionInfo};
use crate::services::throttle::Throttled;
use crate::state::AppState;
use crate::views::CurrentSession;

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
}

pub fn throttled(refusal: Throttled) -> ApiError {
    match refusal {
        Throttled::Wait(wait) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many attempts; wait before trying again",
        )
        .retry_after(wait),
        Throttled::Store(error) => ApiError::store(error),
    }
}

fn outcome(name: &'static str) {
    metrics::counter!("tessera_login_attempts_total", "outcome" => name).increment(1);
}

/// `POST /v1/login`: checks the password and starts a new session.
pub async fn login(
    State(state): State<AppState>,
    _: SameOrigin,
    client: ClientInfo,
    headers: HeaderMap,
    Input(input): Input<LoginForm>,
) -> Result<impl IntoResponse, ApiError> {
    let (set_cookie, session) = sign_in(&state, client, &headers, input).await?;
    let body = Json(CurrentSession::of(&session, state.sessions.policy())).into_response();
    Ok(([(header::SET_COOKIE, set_cookie)], body))
}

/// Checks the password and starts a new session: the `Set-Cookie` value and the
/// session. Shared by `POST /v1/login` and the login page; the caller has checked
/// the origin.
pub async fn sign_in(
    state: &AppState,
    client: ClientInfo,
    headers: &HeaderMap,
    input: LoginForm,
) -> Result<(HeaderValue, Arc<ActiveSession>), ApiError> {
    let (username, password) = parse_credentials(&input.username, input.password)?;
    if let Err(wait) = state.throttle.login(&username, client.address).await {
        outcome("throttled");
        return Err(throttled(wait));
    }
    let user = match state.accounts.check_password(&username, password).await {
        Ok(user) => user,
        Err(LoginError::InvalidCredentials) => {
            outcome("invalid_credentials");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "invalid username or password",
            ));
        }
        Err(LoginError::Disabled) => {
            outcome("disabled");
            return Err(disabled());
        }
        Err(LoginError::Hash(e)) => {
            outcome("unavailable");
            return Err(e.into());
        }
        Err(LoginError::Store(e)) => return Err(e.into()),
    };

    // A cookie presented at login is never adopted (fixation); the session it names,
    // if live, is ended, since this browser is about to forget it.
    // Of two different cookies neither is trusted to name a session to end; the
    // new cookie replaces them in the browser all the same.
    let presented = match state.cookie.secret(headers) {
        Ok(Some(old)) => state.sessions.authenticate(&old).await?,
        Ok(None) | Err(_) => None,
    };
    if let Some(old) = presented {
        state
            .sessions
            .end(old.user().id, old.id(), EndReason::Replaced)
            .await?;
    }

    let (secret, session) = state
        .sessions
        .start(
            &user,
            NewSessionInfo {
                client_address: Some(client.address.to_string()),
                user_agent: client.user_agent,
            },
        )
        .await
        .map_err(|e| match e {
            CreateSessionError::UserDisabled => disabled(),
            CreateSessionError::Store(e) => e.into(),
        })?;
    outcome("success");
    Ok((state.cookie.set(&secret), session))
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "account_disabled",
        "this account is disabled",
    )
}
