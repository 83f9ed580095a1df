use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Serialize;
use serde_json::json;
use tessera_core::SessionId;

use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, CookieSession, CsrfProtectedSession};
use crate::services::sessions::SessionService;
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
    State(service): State<Arc<SessionService>>,
    CookieSession(current): CookieSession,
) -> Result<impl IntoResponse, ApiError> {
    let sessions = service.list(current.user().id).await?;
    let policy = service.policy();
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
    State(sessions): State<Arc<SessionService>>,
    State(cookies): State<Arc<Cookies>>,
    Path(id): Path<String>,
    client: ClientInfo,
    CsrfProtectedSession(current): CsrfProtectedSession,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("you have no session with this id");
    let id = SessionId::parse(&id).map_err(|_| not_found())?;
    let ended = sessions.delete(&current, &id, Some(client.address)).await?;
    if !ended {
        return Err(not_found());
    }
    if &id == current.id() {
        return Ok((
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, cookies.session.clear())],
        )
            .into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/sessions`: ends all the caller's sessions but the current one.
pub async fn delete_others(
    State(sessions): State<Arc<SessionService>>,
    client: ClientInfo,
    CsrfProtectedSession(current): CsrfProtectedSession,
) -> Result<impl IntoResponse, ApiError> {
    let ended = sessions
        .delete_others(&current, Some(client.address))
        .await?;
    Ok(Json(json!({ "ended": ended.len() })))
}
