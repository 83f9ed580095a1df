use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::tls::handshake;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Accepts connections on `listener` until `shutdown` resolves, each served by
/// `builder` (whose limits the caller sets: head size, header read timeout) with
/// the service `service_for(peer)` makes, over TLS when `tls` is given; then
/// waits up to `grace` for the requests in flight.
///
/// A loop of tessera's own rather than `axum::serve`, so that the request head
/// has a size limit and a read timeout (slow-loris), which `axum::serve` does
/// not expose. The TLS handshake runs in the connection's task (a slow client
/// holds up nobody), within `handshake_timeout`.
pub async fn serve<M, S, B>(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_timeout: Duration,
    service_for: M,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    M: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service_for(peer);
        let Some(acceptor) = &tls else {
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        let (acceptor, builder, watcher) = (acceptor.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Some(stream) = handshake(&acceptor, stream, handshake_timeout, peer).await else {
                return;
            };
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    let address = listener.local_addr().ok();
    drop(listener);
    tracing::info!(
        address = ?address,
        "stopped listening: waiting for requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(grace) => {
            tracing::warn!("requests still in flight after the grace period; stopping anyway");
        }
    }
}
