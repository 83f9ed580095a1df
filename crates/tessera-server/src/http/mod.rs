//! The HTTP edge below the routes: extractors that parse input, the middleware, and
//! the connection loop. Nothing here knows a route; `app.rs` puts them together.

pub mod cookie;
pub mod error;
pub mod extract;
pub mod origin;
pub mod return_to;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::LimitsConfig;
use crate::http::origin::Origin;
use crate::http::return_to::ReturnTo;

/// What the edge checks before a handler runs.
pub struct EdgePolicy {
    /// Origins allowed to send logins and cookie-authenticated unsafe requests.
    pub origins: Vec<Origin>,
    /// Where the login page may send a browser afterwards.
    pub return_to: ReturnTo,
    /// Origins whose pages may call the token endpoint (CORS).
    pub token_cors_origins: Vec<Origin>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// Refuses a request with more than one `Authorization` header: which one a
/// component reads (the first, the last, all joined) must not decide who the
/// caller is, and a proxy in front may have checked another one than we would.
pub(crate) async fn one_authorization(request: Request, next: Next) -> Response {
    if request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return crate::http::error::ApiError::bad_request(
            "send one Authorization header, not several",
        )
        .into_response();
    }
    next.run(request).await
}

/// Who a request came from, as the extractor that authenticated it found out
/// (`user:ID` or `client:ID`), for the request's log line. The first to say wins:
/// an admin's bearer token names the user before anything else could.
#[derive(Clone, Default)]
pub(crate) struct RequestActor(std::sync::Arc<std::sync::OnceLock<String>>);

impl RequestActor {
    /// Notes who the request in `extensions` came from (nothing when no request
    /// log line is written: the slot is only there when it is).
    pub(crate) fn note(extensions: &http::Extensions, who: impl FnOnce() -> String) {
        if let Some(actor) = extensions.get::<Self>() {
            let _ = actor.0.get_or_init(who);
        }
    }
}

/// The request log's target: `TESSERA_LOG=info,tessera::request=warn` keeps the
/// other lines and drops these.
const REQUEST_LOG: &str = "tessera::request";

/// Counts requests by route, method and status, times them, and writes one log
/// line per request at INFO: method, route (the template, never the path as
/// sent, whose query may carry a code or a reset link), status, latency, the
/// request id and who it came from. Never a header or a body.
pub(crate) async fn track_request(mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let logged = tracing::enabled!(target: REQUEST_LOG, tracing::Level::INFO);
    let actor = logged.then(|| {
        let actor = RequestActor::default();
        request.extensions_mut().insert(actor.clone());
        actor
    });
    let request_id = logged
        .then(|| request.headers().get("x-request-id").cloned())
        .flatten();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    if let Some(actor) = actor {
        tracing::info!(
            target: REQUEST_LOG,
            method = %method,
            route = %route,
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = request_id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or("-"),
            who = actor.0.get().map_or("-", String::as_str),
            "request"
        );
    }
    metrics::histogram!("tessera_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    metrics::counter!(
        "tessera_http_requests_total",
        "route" => route,
        "method" => method.as_str().to_owned(),
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    response
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for up to `limits.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitsConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.header_bytes)
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.header_bytes).unwrap_or(u32::MAX));
    let service_for = move |peer: SocketAddr| {
        let app = app.clone().map_request(move |mut request: Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        TowerToHyperService::new(app.map_err(|e: Infallible| match e {}))
    };
    tessera_listener::serve(
        listener,
        builder,
        tls,
        limits.header_read_timeout,
        service_for,
        shutdown,
        limits.shutdown_grace,
    )
    .await;
}
