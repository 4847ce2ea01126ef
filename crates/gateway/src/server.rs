//! The gateway's listeners: one single-threaded runtime per core, each
//! with its own `SO_REUSEPORT` socket on the same address, so the kernel
//! spreads connections and a request never hops threads on its way to the
//! upstream and back. Graceful shutdown drains each of them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::listen::{self, ConnPolicy};
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
        for (i, listener) in listeners.into_iter().enumerate() {
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
