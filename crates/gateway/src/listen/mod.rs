//! Accepting connections without letting clients hold them for free:
//! each connection is counted against the listener's caps ([`limits`]),
//! must announce its protocol within the header timeout ([`sniff`]), and
//! an HTTP/1 connection must then finish each request head within the
//! same timeout, which also ends idle keep-alive connections. The gateway
//! and the admin API each run this loop with budgets of their own.

mod limits;
mod sniff;
mod tls;

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use limits::{default_total, Caps, ConnLimits};
use limits::{Permit, Refusal};
use sniff::Protocol;
pub use tls::Tls;

/// Default time a client has to send a request head, from accept or from
/// the end of its previous response.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// After the shutdown signal, how long open connections are still read
/// (every response now saying `Connection: close`) before idle ones are
/// closed: a request a keep-alive client sent just as the signal came,
/// still in flight or unread in the socket, is answered rather than cut
/// off. Longer than a round trip on any network rouse is likely to serve.
const DRAIN_LINGER: Duration = Duration::from_millis(500);

/// How one listener treats its connections.
#[derive(Debug, Clone)]
pub struct ConnPolicy {
    /// From accept (and from the end of each response) to a complete
    /// request head; past it the connection is closed.
    pub header_timeout: Duration,
    /// Serve HTTP/2 with prior knowledge (h2c) besides HTTP/1.
    pub http2: bool,
    pub limits: Arc<ConnLimits>,
    /// Serve HTTPS with this certificate (HTTP/2 and HTTP/1.1 by ALPN).
    pub tls: Option<Arc<Tls>>,
}

/// In the extensions of a request that came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Secure;

/// Serves `listener` with `handler` until `shutdown` resolves; then stops
/// accepting, answers what open connections still send for
/// [`DRAIN_LINGER`] with `Connection: close`, closes idle connections, lets
/// in-flight requests finish (all within `drain`), and returns.
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
    let closing = Arc::new(AtomicBool::new(false));
    // Told once idle connections are to close: those still opening (no
    // protocol yet) hold a watcher that graceful shutdown would wait for.
    let (opening_ends, opening_end) = watch::channel(false);
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
                    closing: closing.clone(),
                    opening_end: opening_end.clone(),
                    _permit: permit,
                };
                tokio::spawn(connection.run(stream, handler.clone()));
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    closing.store(true, Ordering::Release);
    let deadline = tokio::time::Instant::now() + drain;
    if graceful.count() > 0 {
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + DRAIN_LINGER)).await;
    }
    let _ = opening_ends.send(true);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("listener drained"),
        () = tokio::time::sleep_until(deadline) => tracing::warn!("drain timeout reached; closing remaining connections"),
    }
}

/// One accepted connection and its place under the caps.
struct Connection {
    policy: ConnPolicy,
    remote: SocketAddr,
    watcher: Watcher,
    /// Set once the listener is shutting down.
    closing: Arc<AtomicBool>,
    /// Set when connections still opening are to be dropped.
    opening_end: watch::Receiver<bool>,
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
        // The handshake or the protocol sniff, within the header timeout;
        // `None`: silent past it, or the listener is closing idle connections.
        match self.policy.tls.clone() {
            None => {
                // Closed, failed or silent: nothing to answer.
                let sniffed = self.opening(sniff::read_protocol(stream)).await;
                if let Some(Ok(Some((protocol, io)))) = sniffed {
                    self.serve(io, protocol, false, handler).await;
                }
            }
            Some(tls) => match self.opening(tls.acceptor().accept(stream)).await {
                Some(Ok(io)) => {
                    let protocol = match io.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    self.serve(io, protocol, true, handler).await;
                }
                Some(Err(err)) => tracing::debug!(%err, "TLS handshake failed"),
                None => {}
            },
        }
    }

    /// `step` bounded by the header timeout and by the listener closing
    /// its idle connections.
    async fn opening<F: Future>(&self, step: F) -> Option<F::Output> {
        let mut end = self.opening_end.clone();
        tokio::select! {
            done = tokio::time::timeout(self.policy.header_timeout, step) => done.ok(),
            _ = end.wait_for(|end| *end) => None,
        }
    }

    async fn serve<I, H, Fut, B>(self, io: I, protocol: Protocol, secure: bool, handler: H)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<B>> + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let timeout = self.policy.header_timeout;
        let remote = self.remote;
        let closing = self.closing;
        let service = service_fn(move |mut req: Request<Incoming>| {
            let http1 = req.version() < http::Version::HTTP_2;
            if secure {
                req.extensions_mut().insert(Secure);
            }
            let answer = handler(req, remote);
            let closing = closing.clone();
            async move {
                let mut response = answer.await;
                // Read once the answer is ready: a request that arrived while
                // rouse was draining learns its connection ends here.
                if http1 && closing.load(Ordering::Acquire) {
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                Ok::<_, std::convert::Infallible>(response)
            }
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
