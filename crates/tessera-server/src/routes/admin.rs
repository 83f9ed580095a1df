//! `/admin/v1/`: what an operator does over HTTP — find users, see and end their
//! sessions, kick them, list keys, count who is online. Every handler takes
//! [`Admin`]; anyone else gets 401 or 403.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::json;
use tessera_core::{SessionId, Timestamp, UserId, Username};
use tessera_store::{EndReason, User};

use crate::http::error::ApiError;
use crate::http::extract::Admin;
use crate::services::presence::{DEFAULT_WINDOW, MAX_WINDOW};
use crate::state::AppState;
use crate::views::{AdminUserView, SessionTimes, key_views};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

fn no_such_user() -> ApiError {
    ApiError::not_found("there is no user with this id")
}

async fn user_of(state: &AppState, id: &str) -> Result<User, ApiError> {
    let id = UserId::parse(id).ok_or_else(no_such_user)?;
    state.accounts.user(id).await?.ok_or_else(no_such_user)
}

/// `GET /admin/v1/users?q=&after=&limit=`: users whose username contains `q`, by
/// username, one page at a time; `next` is the `after` of the next page.
pub async fn users(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    // Usernames are stored lowercase; a search is for what the admin means.
    let contains = query
        .get("q")
        .map_or_else(String::new, |q| q.trim().to_lowercase());
    let after = match query.get("after") {
        None => None,
        Some(after) => Some(
            Username::parse(after)
                .map_err(|_| ApiError::bad_request("after must be a username from `next`"))?,
        ),
    };
    let limit = match query.get("limit") {
        None => DEFAULT_PAGE,
        Some(limit) => limit
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a number from 1 to {MAX_PAGE}"))
            })?,
    };
    let page = state
        .accounts
        .search(&contains, after.as_ref(), limit)
        .await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|u| u.username.as_str().to_owned()))
        .flatten();
    let users: Vec<_> = page.iter().map(AdminUserView::from).collect();
    Ok(Json(json!({ "users": users, "next": next })))
}

/// `GET /admin/v1/users/{id}`
pub async fn user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = user_of(&state, &id).await?;
    Ok(Json(json!({ "user": AdminUserView::from(&user) })))
}

/// `GET /admin/v1/users/{id}/sessions`: the user's live browser sessions.
pub async fn sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = user_of(&state, &id).await?;
    let sessions = state.sessions.list(user.id).await?;
    let policy = state.sessions.policy();
    let listed: Vec<_> = sessions
        .iter()
        .map(|s| {
            json!({
                "session": SessionTimes::of_record(s, policy),
                "client_address": s.client_address,
                "user_agent": s.user_agent,
            })
        })
        .collect();
    Ok(Json(
        json!({ "user": AdminUserView::from(&user), "sessions": listed }),
    ))
}

/// `DELETE /admin/v1/users/{id}/sessions/{sid}`: ends one session of the user.
pub async fn end_session(
    State(state): State<AppState>,
    Path((id, sid)): Path<(String, String)>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = user_of(&state, &id).await?;
    let not_found = || ApiError::not_found("the user has no session with this id");
    let sid = SessionId::parse(&sid).map_err(|_| not_found())?;
    if !state
        .sessions
        .end(user.id, &sid, EndReason::Revoked)
        .await?
    {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/v1/users/{id}/kick`: ends everything the user holds, now, on every
/// instance and verifier; the account stays usable.
pub async fn kick(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = user_of(&state, &id).await?;
    let live_for = tokens_live_for(&state).await?;
    let cut = state
        .accounts
        .kick(user.id, live_for)
        .await?
        .ok_or_else(no_such_user)?;
    tracing::info!(user = %cut.user.id, sessions = cut.sessions, families = cut.families, "user kicked");
    Ok(Json(cut_off_view(&cut)))
}

/// `POST /admin/v1/users/{id}/disable`: a kick that stays: the account cannot sign
/// in, and everything it holds is refused on every instance and verifier.
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = user_of(&state, &id).await?;
    let live_for = tokens_live_for(&state).await?;
    let cut = state
        .accounts
        .disable(&user.username, live_for)
        .await?
        .ok_or_else(no_such_user)?;
    tracing::info!(user = %cut.user.id, sessions = cut.sessions, families = cut.families, "user disabled");
    Ok(Json(cut_off_view(&cut)))
}

/// `POST /admin/v1/users/{id}/enable`: the account can sign in again; what it held
/// before stays refused.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = user_of(&state, &id).await?;
    let user = state
        .accounts
        .enable(&user.username)
        .await?
        .ok_or_else(no_such_user)?;
    tracing::info!(user = %user.id, "user enabled");
    Ok(Json(json!({ "user": AdminUserView::from(&user) })))
}

/// How long a cut-off must be kept: the longest an access token can live.
async fn tokens_live_for(state: &AppState) -> Result<std::time::Duration, ApiError> {
    Ok(state
        .clients
        .longest_access_ttl(state.session_token_client.access_ttl)
        .await?)
}

fn cut_off_view(cut: &crate::services::accounts::CutOff) -> serde_json::Value {
    json!({
        "user": AdminUserView::from(&cut.user),
        "tokens_before": cut.at,
        "ended_sessions": cut.sessions,
        "revoked_refresh_tokens": cut.families,
    })
}

/// `GET /admin/v1/keys`: the signing keys and their states.
pub async fn keys(State(state): State<AppState>, _: Admin) -> impl IntoResponse {
    Json(json!({ "keys": key_views(&state.keys.current(), Timestamp::now()) }))
}

/// `GET /admin/v1/online?window=SECONDS`: users and sessions active in the window.
pub async fn online(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let window = match query.get("window") {
        None => DEFAULT_WINDOW,
        Some(seconds) => seconds
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_WINDOW.as_secs()).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "window must be a number of seconds from 1 to {}",
                    MAX_WINDOW.as_secs()
                ))
            })?,
    };
    let online = state.presence.online(window).await?;
    Ok(Json(json!({
        "users": online.users,
        "sessions": online.sessions,
        "window_seconds": window.as_secs(),
    })))
}
