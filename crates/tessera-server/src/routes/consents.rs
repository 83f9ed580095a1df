//! `/v1/grants`: what the signed-in user allowed which applications (the consent
//! the browser flow remembers), and withdrawing it. Cookie-authenticated like
//! `/v1/sessions`; a withdrawal needs the CSRF header.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use tessera_core::ClientId;

use crate::http::error::ApiError;
use crate::http::extract::{CookieSession, CsrfProtectedSession};
use crate::services::authorize::Authorization;

#[derive(Serialize)]
struct Listed {
    client_id: String,
    /// `None` once the client was removed.
    client_name: Option<String>,
    scopes: Vec<String>,
    granted_at: String,
    /// When it last got tokens for the person; absent if never.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
}

/// `GET /v1/grants`.
pub async fn list(
    State(authorization): State<Arc<Authorization>>,
    CookieSession(session): CookieSession,
) -> Result<impl IntoResponse, ApiError> {
    let listed: Vec<Listed> = authorization
        .consents(session.user().id)
        .await?
        .into_iter()
        .map(|app| Listed {
            client_id: app.consent.client_id.to_string(),
            client_name: app.client.map(|c| c.name.to_string()),
            scopes: app.consent.scopes.iter().map(str::to_owned).collect(),
            granted_at: app.consent.granted_at.to_rfc3339(),
            last_used_at: app.last_used.map(|at| at.to_rfc3339()),
        })
        .collect();
    Ok(Json(json!({ "grants": listed })))
}

/// `DELETE /v1/grants/{client_id}`: 204, or 404 if nothing was allowed it.
pub async fn withdraw(
    State(authorization): State<Arc<Authorization>>,
    Path(client_id): Path<String>,
    CsrfProtectedSession(session): CsrfProtectedSession,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("you have allowed no application with this id");
    let client = ClientId::parse(&client_id).ok_or_else(not_found)?;
    if authorization
        .withdraw_consent(session.user().id, &client)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
