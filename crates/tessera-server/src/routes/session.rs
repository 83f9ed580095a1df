use axum::Json;
use axum::extract::State;
use axum::response::{AppendHeaders, IntoResponse};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use tessera_store::EndReason;

use crate::services::tokens::{Subject, TokenRequest};

use crate::http::error::ApiError;
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

/// `POST /v1/logout`: ends this session and clears its cookies.
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
        AppendHeaders([
            (header::SET_COOKIE, state.cookie.clear()),
            (header::SET_COOKIE, state.token_cookie.clear()),
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
    State(state): State<AppState>,
    CsrfProtectedSession(session): CsrfProtectedSession,
) -> Result<impl IntoResponse, ApiError> {
    let client = &state.session_token_client;
    let issued = state
        .tokens
        .issue(&TokenRequest {
            client,
            subject: Subject::User {
                user: session.user(),
                session: Some(*session.id()),
            },
            audience: client.audiences.first(),
            scopes: &client.scopes,
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot issue a session token");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "no token can be issued right now",
            )
        })?;
    metrics::counter!("tessera_tokens_issued_total", "grant" => "session_cookie").increment(1);
    Ok((
        [
            (
                header::SET_COOKIE,
                state.token_cookie.set_value(issued.access_token),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(json!({
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "cookie": state.token_cookie.name(),
        })),
    ))
}
