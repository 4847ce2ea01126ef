//! The gateway's listeners: one single-threaded runtime per core, each
//! with its own `SO_REUSEPORT` socket on the same address, so the kernel
//! spreads connections and a request never hops threads on its way to the
//! upstream and back. Graceful shutdown drains each of them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};

use crate::listen::{self, ConnPolicy};
use crate::Gateway;

/// Pending connections the kernel queues per listener.
const BACKLOG: u32 = 1024;

/// The running gateway listeners.
pub struct GatewayServer {
    pub addr: SocketAddr,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// One per thread: its listener has drained.
    drained: Vec<oneshot::Receiver<()>>,
    /// Lets the threads end (sent, or dropped, by [`GatewayServer::finish`]).
    /// Until then a drained thread keeps its runtime, which also serves the
    /// Runtime API of the lambda instances its requests started; those must
    /// answer until the pool has stopped the instances.
    release: watch::Sender<bool>,
}

impl GatewayServer {
    /// Binds `addr` once per thread and starts serving. Must be called
    /// inside a tokio runtime (the sockets are made there, then handed over).
    pub fn start(
        addr: SocketAddr,
        threads: usize,
        gateway: Gateway,
        policy: ConnPolicy,
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
        let mut drained = Vec::new();
        let (release, released) = watch::channel(false);
        for (i, listener) in listeners.into_iter().enumerate() {
            let (drained_tx, drained_rx) = oneshot::channel();
            drained.push(drained_rx);
            let mut released = released.clone();
            let listener = listener.into_std()?;
            let gateway = gateway.clone();
            let policy = policy.clone();
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
                        let handler = move |req, remote| {
                            let gateway = gateway.clone();
                            async move { gateway.handle(req, remote).await }
                        };
                        listen::serve(listener, policy, handler, stop, drain).await;
                        let _ = drained_tx.send(());
                        // Err: the server handle is gone, which releases too.
                        let _ = released.wait_for(|go| *go).await;
                    });
                })?;
            handles.push(handle);
        }
        Ok(GatewayServer {
            addr,
            threads: handles,
            drained,
            release,
        })
    }

    /// Waits until every listener has drained and stopped accepting; the
    /// threads keep running until [`GatewayServer::finish`].
    pub async fn wait(&mut self) {
        for drained in std::mem::take(&mut self.drained) {
            // Err: the thread ended early (its runtime failed to start).
            let _ = drained.await;
        }
    }

    /// Ends the threads (after [`GatewayServer::wait`] and stopping the
    /// instances) and waits for them.
    pub async fn finish(self) {
        let _ = self.release.send(true);
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
