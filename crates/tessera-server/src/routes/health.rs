use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{StatusCode, header};
use serde_json::json;

use crate::http::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers HTTP. Never touches the store.
pub async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness: the store answers. Also says whether the private signing keys are
/// sealed at rest, for monitoring that checks the instance anyway (ready either
/// way: running unsealed is a choice `serve` already let through).
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.health.ping().await?;
    Ok((
        StatusCode::OK,
        Json(json!({"status": "ready", "keys": {"sealed": state.keys.is_sealed()}})),
    ))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
