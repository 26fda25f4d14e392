//! The daemon's connections: one HTTP/1 connection per accepted socket, with
//! the limits a public server needs and `axum::serve` leaves out. Without a timer
//! hyper enforces no header timeout, so a client that sends its request head one
//! byte at a time (slowloris), or opens a connection and says nothing, would hold
//! a socket and a task for ever; here the head must arrive within
//! [`HEADER_TIMEOUT`] and an idle keep-alive connection is closed after it. A
//! request that has arrived is bounded by the front's request timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tower::ServiceExt;

/// How long a client has to send a request's head (the first one, and each
/// next one on a kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight (an SSE stream among them) may take to finish
/// once the daemon is told to stop.
const DRAIN: Duration = Duration::from_secs(10);

/// Marks a request that arrived over TLS (the HTTPS listener).
#[derive(Debug, Clone, Copy)]
pub struct Secure;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting
/// and lets the connections in flight finish (for at most [`DRAIN`]). With
/// `tls`, each connection's handshake comes first (within [`HEADER_TIMEOUT`])
/// and its requests carry [`Secure`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it
                    // was taken: the listener is still good, try again shortly.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let app = app.clone();
        match &tls {
            None => {
                tokio::spawn(connection(
                    TokioIo::new(stream),
                    app,
                    remote,
                    false,
                    watcher,
                ));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            connection(TokioIo::new(tls), app, remote, true, watcher).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %remote, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period were cut");
    }
}

async fn connection<I>(
    io: TokioIo<I>,
    app: Router,
    remote: SocketAddr,
    secure: bool,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, service(app, remote, secure));
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, %remote, "connection ended with an error");
    }
}

/// The router for one connection, its requests tagged with the peer's address
/// (what `ConnectInfo` extracts).
fn service(
    app: Router,
    remote: SocketAddr,
    secure: bool,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(remote));
        if secure {
            req.extensions_mut().insert(Secure);
        }
        app.clone().oneshot(req)
    })
}
