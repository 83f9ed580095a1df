use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{StatusCode, header};
use tessera_store::EndReason;

use crate::error::ApiError;
use crate::http::extract::{CookieSession, CsrfProtectedSession};
use crate::state::AppState;
use crate::views::CurrentSession;

/// `GET /v1/session`: who am I, and this session's CSRF token.
pub async fn current(
    State(state): State<AppState>,
    CookieSession(session): CookieSession,
) -> impl IntoResponse {
    Json(CurrentSession::of(&session, state.sessions.policy())).into_response()
}

/// `POST /v1/logout`: ends this session and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    CsrfProtectedSession(session): CsrfProtectedSession,
) -> Result<impl IntoResponse, ApiError> {
    state
        .sessions
        .end(session.user().id, session.id(), EndReason::Logout)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, state.cookie.clear())],
    ))
}
