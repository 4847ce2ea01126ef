//! The internal listener: where other nodes of the cluster forward
//! requests. Every node binds one (by default a free port on its gateway's
//! address) and advertises it in its node row. Only requests signed with
//! the cluster's secret (`signing`) are served, and they are served here,
//! never forwarded again; anything else gets 403, so a process on the same
//! host (an instance) cannot inject requests that look forwarded.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::ProxyBody;
use crate::listen::{self, ConnPolicy};
use crate::signing::{self, Signed};
use crate::{forward, json_error, Gateway, Hop};

/// The running internal listener.
pub struct InternalServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl InternalServer {
    /// Binds `addr` and serves forwarded requests on the current runtime
    /// until `shutdown` flips.
    pub async fn start(
        addr: SocketAddr,
        gateway: Gateway,
        policy: ConnPolicy,
        mut shutdown: watch::Receiver<bool>,
        drain: Duration,
    ) -> std::io::Result<InternalServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let handler = move |req, remote| {
            let gateway = gateway.clone();
            async move { gateway.handle_internal(req, remote).await }
        };
        let stop = async move {
            let _ = shutdown.wait_for(|down| *down).await;
        };
        let task = tokio::spawn(listen::serve(listener, policy, handler, stop, drain));
        Ok(InternalServer { addr, task })
    }

    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

impl Gateway {
    /// One request on the internal port: checked, then served here.
    pub(crate) async fn handle_internal(
        &self,
        req: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<ProxyBody> {
        let Some(identity) = self.inner.cluster.identity() else {
            return refuse(remote, "this node is not in a cluster");
        };
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let (signed, signature) = match Signed::read(&parts.method, &path_and_query, &parts.headers)
        {
            Ok(read) => read,
            Err(refused) => return refuse(remote, &refused.to_string()),
        };
        if let Err(refused) = signed.verify(&identity.secret, &signature, forward::now_ms()) {
            return refuse(remote, &refused.to_string());
        }
        // Only now is the body read: an unsigned request costs no more
        // than its head.
        let limit = self.inner.config.max_body_bytes;
        let body = match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return refuse(remote, "the body could not be read within the limit"),
        };
        if let Err(refused) = signed.check_body(&body) {
            return refuse(remote, &refused.to_string());
        }
        let Ok(client) = signed.client.parse::<SocketAddr>() else {
            return refuse(remote, "malformed client address");
        };
        for name in signing::ALL {
            parts.headers.remove(name);
        }
        if signed.proto == "https" {
            parts.extensions.insert(listen::Secure);
        }
        let req = Request::from_parts(parts, Full::new(body));
        let deadline = Duration::from_millis(signed.deadline_ms);
        let served = async {
            if signed.direct.is_empty() {
                self.handle_as(req, client, Hop::Here).await
            } else {
                self.forward_version(&signed.direct, None, req, client)
                    .await
            }
        };
        match tokio::time::timeout(deadline, served).await {
            Ok(response) => self.served_here(response),
            Err(_) => json_error(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out"),
        }
    }
}

fn refuse(remote: SocketAddr, why: &str) -> Response<ProxyBody> {
    tracing::warn!(%remote, why, "refused a request on the internal port");
    json_error(
        StatusCode::FORBIDDEN,
        "Forbidden: the internal port serves only requests signed by a node of this cluster",
    )
}
