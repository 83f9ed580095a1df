use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::{StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::http::error::ApiError;
use crate::services::readiness::Readiness;

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
pub async fn readyz(
    State(readiness): State<Arc<Readiness>>,
) -> Result<impl IntoResponse, ApiError> {
    let ready = readiness.check().await?;
    Ok((
        StatusCode::OK,
        Json(json!({"status": "ready", "keys": {"sealed": ready.keys_sealed}})),
    ))
}

pub async fn metrics(State(metrics): State<PrometheusHandle>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}
