use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use serde_json::json;
use tessera_core::SessionId;
use tessera_store::EndReason;

use crate::http::error::ApiError;
use crate::http::extract::{CookieSession, CsrfProtectedSession};
use crate::state::AppState;
use crate::views::SessionTimes;

#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    times: SessionTimes<'a>,
    client_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    current: bool,
}

/// `GET /v1/sessions`: the caller's live sessions, the current one marked.
pub async fn list(
    State(state): State<AppState>,
    CookieSession(current): CookieSession,
) -> Result<impl IntoResponse, ApiError> {
    let sessions = state.sessions.list(current.user().id).await?;
    let policy = state.sessions.policy();
    let listed: Vec<Listed> = sessions
        .iter()
        .map(|s| Listed {
            times: SessionTimes::of_record(s, policy),
            client_address: s.client_address.as_deref(),
            user_agent: s.user_agent.as_deref(),
            current: &s.id == current.id(),
        })
        .collect();
    Ok(Json(json!({ "sessions": listed })))
}

/// `DELETE /v1/sessions/{id}`: ends one of the caller's sessions.
pub async fn delete_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfProtectedSession(current): CsrfProtectedSession,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("you have no session with this id");
    let id = SessionId::parse(&id).map_err(|_| not_found())?;
    let ended = state
        .sessions
        .end(current.user().id, &id, EndReason::Deleted)
        .await?;
    if !ended {
        return Err(not_found());
    }
    if &id == current.id() {
        return Ok((
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, state.cookie.clear())],
        )
            .into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/sessions`: ends all the caller's sessions but the current one.
pub async fn delete_others(
    State(state): State<AppState>,
    CsrfProtectedSession(current): CsrfProtectedSession,
) -> Result<impl IntoResponse, ApiError> {
    let ended = state
        .sessions
        .end_all_of_user(current.user().id, Some(current.id()), EndReason::Deleted)
        .await?;
    Ok(Json(json!({ "ended": ended.len() })))
}
