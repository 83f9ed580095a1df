use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{AppendHeaders, IntoResponse};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tessera_proto::error as codes;

use crate::http::cookie::Cookies;
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, CookieSession, CsrfProtectedSession};
use crate::services::sessions::SessionService;
use crate::services::tokens::SessionTokens;
use crate::views::CurrentSession;

/// `GET /v1/session`: who am I, and this session's CSRF token.
pub async fn current(
    State(sessions): State<Arc<SessionService>>,
    CookieSession(session): CookieSession,
) -> impl IntoResponse {
    Json(CurrentSession::of(&session, sessions.policy())).into_response()
}

/// `POST /v1/logout`: ends this session and clears its cookies.
pub async fn logout(
    State(sessions): State<Arc<SessionService>>,
    State(cookies): State<Arc<Cookies>>,
    client: ClientInfo,
    CsrfProtectedSession(session): CsrfProtectedSession,
) -> Result<impl IntoResponse, ApiError> {
    sessions.log_out(&session, Some(client.address)).await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([
            (header::SET_COOKIE, cookies.session.clear()),
            (header::SET_COOKIE, cookies.token.clear()),
        ]),
    ))
}

/// `POST /v1/session/token`: puts a short-lived access token for this session into
/// the token cookie (`__Host-tessera-token`, HttpOnly, SameSite=Strict), for
/// services that take the token from a cookie instead of a header. The token
/// carries the session as `sid`, so logging out revokes it at every verifier that
/// follows the revocation feed. It is never in the body: page scripts cannot
/// read it.
pub async fn token(
    State(session_tokens): State<Arc<SessionTokens>>,
    State(cookies): State<Arc<Cookies>>,
    CsrfProtectedSession(session): CsrfProtectedSession,
) -> Result<impl IntoResponse, ApiError> {
    let issued = session_tokens.issue(&session).await.map_err(|error| {
        tracing::error!(%error, "cannot issue a session token");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::TEMPORARILY_UNAVAILABLE,
            "no token can be issued right now",
        )
    })?;
    Ok((
        [
            (
                header::SET_COOKIE,
                cookies.token.set_value(issued.access_token),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(json!({
            "token_type": tessera_proto::token_type::BEARER,
            "expires_in": issued.expires_in,
            "cookie": cookies.token.name(),
        })),
    ))
}
