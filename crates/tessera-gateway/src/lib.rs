//! `tessera gateway`: a reverse proxy at the web edge that turns browser sessions
//! into short-lived JWTs for the services behind it.
//!
//! Browsers keep what suits them, a cookie session; internal services get what
//! suits them, a signed token they verify locally, and never see the cookie. Each
//! rule below says why it is there.
//!
//! - **Routes**: the longest matching path prefix wins (a specific route can sit
//!   inside a broad one), on whole segments (`/s` never matches `/sx`, nor
//!   `/s../x`); no match is a 404, never a default upstream. The path is checked
//!   as it will be sent upstream, after `strip_prefix` and the base path: `.`/`..`
//!   segments (also encoded, or split by an encoded `/` or a `\`) are refused
//!   (400), and so are `%2e`, `%2f`, `%5c` and `\` unless the route has
//!   `allow_encoded_slashes`. Routes match the raw path, and an upstream that
//!   normalised it otherwise could serve another route's path, or one outside
//!   its base, through this one.
//! - **Session routes** (`auth = "session"`): the session cookie is exchanged at
//!   tessera (RFC 8693 token exchange, as the gateway's confidential client) for a
//!   JWT whose audience and scopes are the route's, and whose `sid` is the
//!   session's. The JWT is cached per (SHA-256 of the cookie, audience and scopes)
//!   until 10 s before it expires, so a busy session costs about one exchange per
//!   token lifetime; concurrent requests wait for one exchange (single-flight).
//! - **Revocation at the edge**: before each use a cached JWT is checked by a
//!   `tessera_verify::RemoteVerifier` that follows tessera's revocation feed. The
//!   check is local, and logout, kick, session deletion or key retirement reach it
//!   within the feed's latency, not after the JWT's lifetime. A refused JWT is
//!   dropped and the session exchanged again, which fails (`invalid_grant`) for an
//!   ended session: the request is then treated as having no session.
//! - **Without a session**: a browser navigation (`GET`/`HEAD` accepting
//!   `text/html`) is redirected to `login_url` with `return_to` = the public URL it
//!   asked for; anything else gets 401 JSON, which an API client can act on where a
//!   redirect to an HTML page would only confuse it. tessera answering nothing or
//!   something unexpected is a 503, never a pass without identity.
//! - **No way around it**: the upstream only ever sees tokens the gateway minted.
//!   An `Authorization` header the client sent is removed on session and optional
//!   routes, and every `X-Tessera-*` header on every route, since those are the
//!   gateway's to set. The session cookie is removed from `Cookie` (other cookies
//!   stay): a service that could read it could act as the user everywhere.
//!   Anonymous routes never look at the session and pass cookies untouched (that
//!   is how tessera's own pages can sit behind the gateway).
//! - **Proxying**: bodies stream both ways (a large upload uses no more memory than
//!   a small one); clients speak HTTP/1.1 or HTTP/2, upstreams get HTTP/1.1.
//!   Hop-by-hop headers (RFC 9110 §7.6.1) are removed both ways, since they
//!   describe one connection and passed on they invite request smuggling; an
//!   `Upgrade` (WebSocket) is the exception, forwarded and, on 101, spliced
//!   byte for byte. `X-Forwarded-For/-Proto/-Host` come from the connection;
//!   what a client sent is kept (and appended to) only from `trusted_proxies`.
//!   `X-Request-Id` is the client's when sane, else new, and goes both ways.
//! - **Failures are answers**: an upstream that cannot be reached is 502, one that
//!   sends no response head within `upstream_timeout` is 504, both JSON in
//!   tessera's `{"error", "error_description"}` shape.

pub mod config;
mod dpop;
mod error;
pub mod headers;
mod management;
pub mod paths;
mod proxy;
pub mod sessions;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::StartError;
pub use proxy::{Body, Gateway, error};

/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the gateway waits at start for tessera to answer.
const STARTUP_WAIT: Duration = Duration::from_secs(30);
/// How long requests in flight get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Where a started gateway listens.
#[derive(Debug, Clone)]
pub struct Listening {
    pub address: SocketAddr,
    /// The management listener (metrics, health).
    pub management: SocketAddr,
    pub public_url: String,
}

async fn bind(address: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Binds both listeners, connects to tessera (waiting up to 30 s for it), calls
/// `on_listening` (for the banner), then serves until SIGINT or SIGTERM, giving
/// requests in flight up to 10 s to finish. Installs the process's metrics
/// recorder: call it once per process.
pub async fn run(config: Config, on_listening: impl FnOnce(&Listening)) -> Result<(), StartError> {
    let metrics = management::install_metrics()?;
    let (listener, address) = bind(config.listen).await?;
    let (management_listener, management) = bind(config.management_listen).await?;
    let tls = match config.tls.clone() {
        Some(files) => {
            Some(tessera_listener::acceptor(files).map_err(|e| StartError::Tls(e.to_string()))?)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{address}"));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let signal = tessera_listener::shutdown_signal();
    tokio::spawn(async move {
        signal.await;
        let _ = stop.send(true);
    });
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    };
    let gateway = Arc::new(connect(config, public_url.clone()).await?);
    on_listening(&Listening {
        address,
        management,
        public_url,
    });
    tracing::info!(%address, %management, "gateway listening");
    let proxy = gateway.clone();
    tokio::join!(
        serve(
            listener,
            tls,
            move |request, peer| {
                let gateway = proxy.clone();
                async move { gateway.handle(request, peer).await }
            },
            stopped(),
        ),
        serve(
            management_listener,
            None,
            move |request, _| {
                let answer = management::answer(&gateway, &metrics, &request);
                async move { answer }
            },
            stopped(),
        ),
    );
    tracing::info!("gateway stopped");
    Ok(())
}

/// Builds the gateway, waiting up to [`STARTUP_WAIT`] for tessera to answer, so
/// that the two can be started together. A tessera that answers wrongly (another
/// issuer) is an error at once.
async fn connect(config: Config, public_url: String) -> Result<Gateway, StartError> {
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    let mut warned = false;
    loop {
        match Gateway::new(config.clone(), public_url.clone()).await {
            Err(StartError::Tessera {
                url,
                source: source @ tessera_verify::remote::SetupError::Fetch { .. },
            }) if tokio::time::Instant::now() < deadline => {
                if !warned {
                    tracing::warn!(%url, error = %source, "tessera is not answering yet; retrying");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// The accept loop: HTTP/1.1 and HTTP/2 (prior knowledge) on each connection,
/// with upgrades, a bound on the time to read a request head, and a graceful stop.
/// `handle` answers each request (the proxy's, or the management listener's).
pub async fn serve<H, A>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handle: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(hyper::Request<hyper::body::Incoming>, SocketAddr) -> A + Clone + Send + Sync + 'static,
    A: Future<Output = hyper::Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(100);
    builder.http2().timer(TokioTimer::new());
    let service_for = move |peer: SocketAddr| {
        let handle = handle.clone();
        hyper::service::service_fn(move |request| {
            let answer = handle(request, peer);
            async move { Ok::<_, Infallible>(answer.await) }
        })
    };
    tessera_listener::serve(
        listener,
        builder,
        tls,
        HEADER_READ_TIMEOUT,
        service_for,
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await;
}
