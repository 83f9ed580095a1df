use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{StatusCode, header};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers HTTP. Never touches the store.
pub async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness: the store answers.
pub async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.health.ping().await?;
    Ok((StatusCode::OK, Json(json!({"status": "ready"}))))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
