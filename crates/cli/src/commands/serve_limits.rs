//! The connection budgets of `rouse serve`: the open-file limit raised
//! as far as the host allows, the gateway's caps derived from it, and the
//! admin API served on a budget of its own.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use std::sync::Arc;

use rouse_gateway::listen::{self, Caps, ConnLimits, ConnPolicy, Tls};
use tokio::net::TcpListener;
use tower_service::Service;

use crate::ServeArgs;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the default soft
/// limit, often 1024, is what a few hundred clients exhaust) and returns
/// the limit in force.
pub(crate) fn raise_open_files() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => return hard,
            Err(err) => tracing::warn!(%err, soft, hard, "cannot raise the open-file limit"),
        }
    }
    soft
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

/// The gateway's certificate, when it serves HTTPS; SIGHUP reloads it.
pub(crate) fn gateway_tls(args: &ServeArgs) -> anyhow::Result<Option<Arc<Tls>>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let tls = Tls::load(cert, key).map_err(anyhow::Error::msg)?;
    let reloaded = tls.clone();
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match reloaded.reload() {
                Ok(()) => tracing::info!("reloaded the TLS certificate"),
                Err(err) => {
                    tracing::error!(%err, "TLS certificate not reloaded; keeping the current one")
                }
            }
        }
    });
    Ok(Some(tls))
}

/// The gateway's connection policy for a process allowed `nofile` files.
pub(crate) fn gateway_policy(args: &ServeArgs, nofile: u64, tls: Option<Arc<Tls>>) -> ConnPolicy {
    let total = args
        .max_connections
        .map_or_else(|| listen::default_total(nofile), to_usize);
    ConnPolicy {
        header_timeout: seconds(args.header_timeout),
        http2: true,
        limits: ConnLimits::new(Caps {
            total,
            per_client: to_usize(args.max_connections_per_client),
        }),
        tls,
    }
}

/// The internal listener's: its own counts, and no per-address cap, since
/// a few peers carry every forwarded request.
pub(crate) fn internal_policy(args: &ServeArgs) -> ConnPolicy {
    let total = args.max_connections.map_or(INTERNAL_CONNECTIONS, to_usize);
    ConnPolicy {
        header_timeout: seconds(args.header_timeout),
        http2: false,
        limits: ConnLimits::new(Caps {
            total,
            per_client: total,
        }),
        tls: None,
    }
}

/// Connections the internal listener holds by default: peers keep a
/// pool of them per gateway thread.
const INTERNAL_CONNECTIONS: usize = 4096;

/// The admin API's: its own counts, so the gateway's never reach it.
pub(crate) fn admin_policy(args: &ServeArgs) -> ConnPolicy {
    let total = to_usize(args.admin_max_connections);
    ConnPolicy {
        header_timeout: seconds(args.header_timeout),
        http2: false,
        limits: ConnLimits::new(Caps {
            total,
            per_client: total,
        }),
        tls: None,
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Serves the admin router with `policy` (what `axum::serve` does, plus
/// the header timeout and the caps), handing handlers the client address.
pub(crate) async fn serve_admin(
    listener: TcpListener,
    router: axum::Router,
    policy: ConnPolicy,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let handler = move |mut req: http::Request<hyper::body::Incoming>, remote: SocketAddr| {
        req.extensions_mut().insert(ConnectInfo(remote));
        let mut router = router.clone();
        async move {
            match router.call(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    listen::serve(listener, policy, handler, shutdown, drain).await;
}
