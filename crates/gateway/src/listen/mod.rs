//! Accepting connections without letting clients hold them for free:
//! each connection is counted against the listener's caps ([`limits`]),
//! must announce its protocol within the header timeout ([`sniff`]), and
//! an HTTP/1 connection must then finish each request head within the
//! same timeout, which also ends idle keep-alive connections. The gateway
//! and the admin API each run this loop with budgets of their own.

mod limits;
mod sniff;

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};

pub use limits::{default_total, Caps, ConnLimits};
use limits::{Permit, Refusal};
use sniff::Protocol;

/// Default time a client has to send a request head, from accept or from
/// the end of its previous response.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How one listener treats its connections.
#[derive(Debug, Clone)]
pub struct ConnPolicy {
    /// From accept (and from the end of each response) to a complete
    /// request head; past it the connection is closed.
    pub header_timeout: Duration,
    /// Serve HTTP/2 with prior knowledge (h2c) besides HTTP/1.
    pub http2: bool,
    pub limits: Arc<ConnLimits>,
}

/// Serves `listener` with `handler` until `shutdown` resolves; then stops
/// accepting, lets in-flight requests finish for up to `drain`, and returns.
pub async fn serve<H, Fut, B>(
    listener: TcpListener,
    policy: ConnPolicy,
    handler: H,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Usually EMFILE: back off instead of spinning on it.
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let permit = match policy.limits.admit(remote.ip()) {
                    Ok(permit) => permit,
                    Err(refusal) => {
                        refuse(&stream, refusal);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    policy: policy.clone(),
                    remote,
                    watcher: graceful.watcher(),
                    _permit: permit,
                };
                tokio::spawn(connection.run(stream, handler.clone()));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("listener drained"),
        () = tokio::time::sleep(drain) => tracing::warn!("drain timeout reached; closing remaining connections"),
    }
}

/// One accepted connection and its place under the caps.
struct Connection {
    policy: ConnPolicy,
    remote: SocketAddr,
    watcher: Watcher,
    _permit: Permit,
}

impl Connection {
    async fn run<H, Fut, B>(self, stream: TcpStream, handler: H)
    where
        H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let timeout = self.policy.header_timeout;
        let (protocol, io) = match tokio::time::timeout(timeout, sniff::read_protocol(stream)).await
        {
            Ok(Ok(Some(sniffed))) => sniffed,
            // Closed, failed, or silent past the timeout: nothing to answer.
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return,
        };
        let remote = self.remote;
        let service = service_fn(move |req| {
            let answer = handler(req, remote);
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        });
        let io = TokioIo::new(io);
        let ended = match protocol {
            Protocol::Http1 => {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout);
                self.watcher
                    .watch(builder.serve_connection(io, service))
                    .await
            }
            Protocol::Http2 if self.policy.http2 => {
                let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                builder.timer(TokioTimer::new());
                self.watcher
                    .watch(builder.serve_connection(io, service))
                    .await
            }
            Protocol::Http2 => return,
        };
        if let Err(err) = ended {
            tracing::debug!(%err, "client connection ended with an error");
        }
    }
}

/// Answers a connection past a cap with 503 and closes it. Best effort
/// and without waiting: the new socket's send buffer is empty, so the
/// answer fits; a client that has not read it when it closes gets a reset.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let message = match refusal {
        Refusal::Full => "Service Unavailable: too many connections",
        Refusal::ClientFull => "Service Unavailable: too many connections from this client",
    };
    let body = format!("{{\"message\":\"{message}\"}}");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    tracing::debug!(?refusal, "connection refused");
}
