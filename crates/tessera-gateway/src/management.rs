//! The gateway's management listener: `/metrics`, `/healthz`, `/readyz`, on a
//! port of its own (by default the public one + 10), so that what the metrics
//! tell (routes, statuses, exchange failures) stays with operators.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::error::StartError;
use crate::proxy::{Body, Gateway, error};

/// Installs the process's metrics recorder: the gateway's own metrics, with
/// latency buckets from half a millisecond to ten seconds (an upstream's answer
/// may take that long before `upstream_timeout`).
pub fn install_metrics() -> Result<PrometheusHandle, StartError> {
    const BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    tessera_listener::install_metrics(&[
        ("tessera_gateway_request_duration_seconds", BUCKETS),
        ("tessera_gateway_upstream_duration_seconds", BUCKETS),
        ("tessera_gateway_exchange_duration_seconds", BUCKETS),
    ])
    .map_err(|e| StartError::Metrics(e.to_string()))
}

/// Answers one request to the management listener.
pub fn answer(
    gateway: &Arc<Gateway>,
    metrics: &PrometheusHandle,
    request: &Request<hyper::body::Incoming>,
) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "GET only",
        );
    }
    let (silence, fresh) = gateway.feed();
    match request.uri().path() {
        "/healthz" => json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()),
        // Not ready while the revocation feed is past its staleness bound: the
        // gateway then refuses cached tokens and asks tessera for each request.
        "/readyz" if fresh => json(StatusCode::OK, r#"{"status":"ready"}"#.to_owned()),
        "/readyz" => json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"not ready","reason":"tessera's revocation feed is silent"}"#.to_owned(),
        ),
        "/metrics" => {
            metrics::gauge!("tessera_gateway_feed_silence_seconds")
                .set(silence.map_or(-1.0, |s: Duration| s.as_secs_f64()));
            let mut response =
                Response::new(Either::Right(Full::new(Bytes::from(metrics.render()))));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            no_store(response)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such management path",
        ),
    }
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(response)
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
