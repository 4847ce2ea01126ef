//! The gateway's listeners: one single-threaded runtime per core, each
//! with its own `SO_REUSEPORT` socket on the same address, so the kernel
//! spreads connections and a request never hops threads on its way to the
//! upstream and back. Graceful shutdown drains each of them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::Gateway;

/// Pending connections the kernel queues per listener.
const BACKLOG: u32 = 1024;

/// The running gateway listeners.
pub struct GatewayServer {
    pub addr: SocketAddr,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl GatewayServer {
    /// Binds `addr` once per thread and starts serving. Must be called
    /// inside a tokio runtime (the sockets are made there, then handed over).
    pub fn start(
        addr: SocketAddr,
        threads: usize,
        gateway: Gateway,
        shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) -> std::io::Result<GatewayServer> {
        // SO_REUSEPORT would let a second server share the port silently:
        // a plain bind first makes "already in use" an error again.
        if addr.port() != 0 {
            drop(std::net::TcpListener::bind(addr)?);
        }
        let first = reuseport_listener(addr)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..threads.max(1) {
            listeners.push(reuseport_listener(addr)?);
        }
        let mut handles = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let listener = listener.into_std()?;
            let gateway = gateway.clone();
            let mut shutdown = shutdown.clone();
            let handle = std::thread::Builder::new()
                .name(format!("rouse-gateway-{i}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(err) => {
                            tracing::error!(%err, "cannot start a gateway thread");
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let listener = match TcpListener::from_std(listener) {
                            Ok(listener) => listener,
                            Err(err) => {
                                tracing::error!(%err, "cannot register a gateway listener");
                                return;
                            }
                        };
                        let stop = async move {
                            let _ = shutdown.wait_for(|down| *down).await;
                        };
                        serve(listener, gateway, stop, drain).await;
                    });
                })?;
            handles.push(handle);
        }
        Ok(GatewayServer {
            addr,
            threads: handles,
        })
    }

    /// Waits until every listener has drained and stopped.
    pub async fn wait(self) {
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `listener` until `shutdown` resolves; then stops accepting, lets
/// in-flight requests finish for up to `drain`, and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A timer lets hyper drop clients that never finish sending headers.
    builder.http1().timer(TokioTimer::new());
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
                let _ = stream.set_nodelay(true);
                let gateway = gateway.clone();
                let service = service_fn(move |req| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req, remote).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "client connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("gateway drained"),
        () = tokio::time::sleep(drain) => tracing::warn!("drain timeout reached; closing remaining connections"),
    }
}
