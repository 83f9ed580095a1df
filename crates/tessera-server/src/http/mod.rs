//! The HTTP edge: the router with its middleware, and the connection loop.

pub mod cookie;
pub mod extract;
pub mod origin;
pub mod return_to;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::LimitsConfig;
use crate::error::json_errors;
use crate::routes::{
    activity, admin, discovery, health, introspect, login, login_page, revocations, session,
    sessions, token, users,
};
use crate::state::AppState;

/// CORS for the token endpoint: only the configured origins, no credentials.
fn token_cors(origins: &[origin::Origin]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([http::Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

pub fn router(state: AppState, limits: &LimitsConfig) -> Router {
    let cors = token_cors(&state.token_cors_origins);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/v1/users", post(users::register))
        .route("/v1/login", post(login::login))
        .route("/login", get(login_page::show).post(login_page::submit))
        .route("/v1/session", get(session::current))
        .route("/v1/logout", post(session::logout))
        .route("/v1/session/token", post(session::token))
        .route(
            "/v1/sessions",
            get(sessions::list).delete(sessions::delete_others),
        )
        .route("/v1/sessions/{id}", delete(sessions::delete_one))
        .route("/v1/revocations", get(revocations::feed))
        .route("/v1/activity", post(activity::report))
        .route("/oauth2/token", post(token::token).layer(cors))
        .route("/oauth2/introspect", post(introspect::introspect))
        .route("/oauth2/revoke", post(introspect::revoke))
        .route("/admin/v1/users", get(admin::users))
        .route("/admin/v1/users/{id}", get(admin::user))
        .route("/admin/v1/users/{id}/sessions", get(admin::sessions))
        .route(
            "/admin/v1/users/{id}/sessions/{sid}",
            delete(admin::end_session),
        )
        .route("/admin/v1/users/{id}/kick", post(admin::kick))
        .route("/admin/v1/users/{id}/disable", post(admin::disable))
        .route("/admin/v1/users/{id}/enable", post(admin::enable))
        .route("/admin/v1/keys", get(admin::keys))
        .route("/admin/v1/online", get(admin::online))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .with_state(state)
        .layer(middleware::from_fn(one_authorization))
        .layer(RequestBodyLimitLayer::new(limits.body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(track_request))
        // Answers carry session data and CSRF tokens: no cache may keep them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Refuses a request with more than one `Authorization` header: which one a
/// component reads (the first, the last, all joined) must not decide who the
/// caller is, and a proxy in front may have checked another one than we would.
async fn one_authorization(request: Request, next: Next) -> Response {
    if request
        .headers()
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return crate::error::ApiError::bad_request("send one Authorization header, not several")
            .into_response();
    }
    next.run(request).await
}

/// Counts requests by route, method and status, and times them.
async fn track_request(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("tessera_http_request_duration_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "tessera_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    response
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish for up to `limits.shutdown_grace`.
///
/// A loop of our own rather than `axum::serve` so that the request head has a size
/// limit and a read timeout (slow-loris), which `axum::serve` does not expose.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitsConfig,
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
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone().map_request(move |mut request: Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let service = TowerToHyperService::new(app.map_err(|e: Infallible| match e {}));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("requests still in flight after the grace period; stopping anyway");
        }
    }
}
