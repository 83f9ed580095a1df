//! `/admin/v1/`: what an operator does over HTTP — find users, see and end their
//! sessions, kick them, list keys, count who is online. Every handler takes
//! [`Admin`]; anyone else gets 401 or 403.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde_json::json;
use tessera_core::{SessionId, Timestamp, UserId, Username};

use crate::http::error::ApiError;
use crate::http::extract::Admin;
use crate::services::admin::{AdminError, Administration};
use crate::services::presence::{DEFAULT_WINDOW, MAX_WINDOW};
use crate::views::{AdminUserView, SessionTimes, key_views};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 500;

fn no_such_user() -> ApiError {
    ApiError::not_found("there is no user with this id")
}

fn user_id(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).ok_or_else(no_such_user)
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NoSuchUser | AdminError::NoSuchSession => {
                ApiError::not_found(error.to_string())
            }
            AdminError::Store(e) => e.into(),
        }
    }
}

/// `GET /admin/v1/users?q=&after=&limit=`: users whose username contains `q`, by
/// username, one page at a time; `next` is the `after` of the next page.
pub async fn users(
    State(admin): State<Arc<Administration>>,
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
    let page = admin.search(&contains, after.as_ref(), limit).await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|u| u.username.as_str().to_owned()))
        .flatten();
    let users: Vec<_> = page.iter().map(AdminUserView::from).collect();
    Ok(Json(json!({ "users": users, "next": next })))
}

/// `GET /admin/v1/users/{id}`
pub async fn user(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = admin.user(user_id(&id)?).await?;
    Ok(Json(json!({ "user": AdminUserView::from(&user) })))
}

/// `GET /admin/v1/users/{id}/sessions`: the user's live browser sessions.
pub async fn sessions(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let (user, sessions) = admin.sessions(user_id(&id)?).await?;
    let policy = admin.session_policy();
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
    State(admin): State<Arc<Administration>>,
    Path((id, sid)): Path<(String, String)>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let id = user_id(&id)?;
    let sid = SessionId::parse(&sid).map_err(|_| ApiError::from(AdminError::NoSuchSession))?;
    admin.end_session(id, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/v1/users/{id}/kick`: ends everything the user holds, now, on every
/// instance and verifier; the account stays usable.
pub async fn kick(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let cut = admin.kick(user_id(&id)?).await?;
    Ok(Json(cut_off_view(&cut)))
}

/// `POST /admin/v1/users/{id}/disable`: a kick that stays: the account cannot sign
/// in, and everything it holds is refused on every instance and verifier.
pub async fn disable(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let cut = admin.disable(user_id(&id)?).await?;
    Ok(Json(cut_off_view(&cut)))
}

/// `POST /admin/v1/users/{id}/enable`: the account can sign in again; what it held
/// before stays refused.
pub async fn enable(
    State(admin): State<Arc<Administration>>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<impl IntoResponse, ApiError> {
    let user = admin.enable(user_id(&id)?).await?;
    Ok(Json(json!({ "user": AdminUserView::from(&user) })))
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
pub async fn keys(State(admin): State<Arc<Administration>>, _: Admin) -> impl IntoResponse {
    Json(json!({ "keys": key_views(&admin.keys(), Timestamp::now()) }))
}

/// `GET /admin/v1/online?window=SECONDS`: users and sessions active in the window.
pub async fn online(
    State(admin): State<Arc<Administration>>,
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
    let online = admin.online(window).await?;
    Ok(Json(json!({
        "users": online.users,
        "sessions": online.sessions,
        "window_seconds": window.as_secs(),
    })))
}
