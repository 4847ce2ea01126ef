//! Any node's gateway serves any route: the one decision
//! ([`route_locally_or_forward`]) and the forwarding itself.
//!
//! In a cluster, once a request's function is known (`Gateway::handle`,
//! after `classify`, and the two direct calls `rouse invoke` makes), the
//! node serves it itself when it is one of the function's homes or already
//! has a ready instance of it; otherwise the request is sent, signed
//! (`signing`), over a kept-alive HTTP/1.1 connection to the internal port
//! of one of its homes, which serves it as if it had arrived there (same
//! cold starts, queueing and limits) and never forwards it again. The
//! response streams back as it comes.
//!
//! The request body is read whole first (within the body limit): it is
//! hashed into the signature, and a home that refuses the connection
//! (killed, not yet seen dead) leaves the request intact to be served here
//! instead. Such a node is then passed over for [`SUSPECT_FOR`] when
//! homes are computed, so its functions move to the survivors at once
//! rather than after the heartbeat TTL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::body::{BoxError, IncomingBody, ProxyBody};
use crate::ingress::too_large;
use crate::signing::{self, Signed};
use crate::{headers, json_error};

/// Names the node that served a response (in a cluster only).
pub(crate) const SERVED_BY: &str = "x-rouse-node";
/// How long a node that refused a connection is passed over.
const SUSPECT_FOR: Duration = Duration::from_secs(3);
/// A peer on the same network answers a SYN in well under this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Shorter than the internal listener's keep-alive (its header timeout).
const PEER_IDLE: Duration = Duration::from_secs(20);

/// This node in a cluster: fixed from its start.
#[derive(Debug, Clone)]
pub struct ClusterIdentity {
    pub name: String,
    pub id: String,
    /// The cluster's signing secret (a setting in the store).
    pub secret: Vec<u8>,
}

/// A node that may serve: alive and not draining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub internal: SocketAddr,
}

/// What the store says about placement, as this node last read it.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// Live, non-draining nodes (this one included when it is).
    pub peers: Vec<Peer>,
    /// Pinned nodes by function.
    pub pins: HashMap<String, Vec<String>>,
}

/// Where a request is served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision<'h> {
    Local,
    Forward(&'h str),
}

/// The decision, from the function's homes (best first): served here when
/// this node is a home, when it has a ready instance already (no cold start
/// anywhere, and the placement watcher drains instances that are not at
/// home), or when no home is known (better served than refused);
/// otherwise forwarded to a home, picked by `roll` so several homes share
/// the load.
pub(crate) fn route_locally_or_forward<'h>(
    this: &str,
    homes: &[&'h str],
    warm_here: bool,
    roll: usize,
) -> Decision<'h> {
    if homes.is_empty() || warm_here || homes.contains(&this) {
        return Decision::Local;
    }
    Decision::Forward(homes[roll % homes.len()])
}

/// The shared part: placement as last read, and nodes that refused a
/// connection lately.
#[derive(Default)]
pub(crate) struct Cluster {
    identity: std::sync::OnceLock<ClusterIdentity>,
    placement: arc_swap::ArcSwap<Placement>,
    suspects: Mutex<HashMap<String, Instant>>,
}

impl Cluster {
    pub(crate) fn identity(&self) -> Option<&ClusterIdentity> {
        self.identity.get()
    }

    pub(crate) fn join(&self, identity: ClusterIdentity) {
        let _ = self.identity.set(identity);
    }

    pub(crate) fn set_placement(&self, placement: Placement) {
        self.placement.store(std::sync::Arc::new(placement));
    }

    fn suspected(&self, now: Instant) -> Vec<String> {
        let mut suspects = self.suspects.lock().unwrap_or_else(|e| e.into_inner());
        suspects.retain(|_, since| now.duration_since(*since) < SUSPECT_FOR);
        suspects.keys().cloned().collect()
    }

    fn suspect(&self, node: &str) {
        self.suspects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_string(), Instant::now());
    }

    /// The function's homes by name, best first (empty outside a cluster).
    pub(crate) fn homes(&self, function: &str) -> Vec<String> {
        let placement = self.placement.load();
        self.homes_in(&placement, function)
            .into_iter()
            .map(|p| p.name.clone())
            .collect()
    }

    fn homes_in<'p>(&self, placement: &'p Placement, function: &str) -> Vec<&'p Peer> {
        let suspects = self.suspected(Instant::now());
        let live: Vec<&str> = placement
            .peers
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| !suspects.iter().any(|s| s == name))
            .collect();
        let pins = placement.pins.get(function).map(Vec::as_slice);
        rouse_store::placement::home_nodes(
            function,
            &live,
            pins,
            rouse_store::placement::AUTO_HOMES,
        )
        .into_iter()
        .filter_map(|name| placement.peers.iter().find(|p| p.name == name))
        .collect()
    }

    /// Where to send a request for `function` that arrived on the public
    /// port: `None` to serve it here.
    pub(crate) fn target(&self, function: &str, warm_here: impl Fn() -> bool) -> Option<Peer> {
        let this = &self.identity.get()?.name;
        let placement = self.placement.load();
        let homes = self.homes_in(&placement, function);
        let names: Vec<&str> = homes.iter().map(|p| p.name.as_str()).collect();
        // Asked only when it matters: it takes the pool's locks.
        let warm = !names.is_empty() && !names.contains(&this.as_str()) && warm_here();
        match route_locally_or_forward(this, &names, warm, fastrand::usize(..)) {
            Decision::Local => None,
            Decision::Forward(name) => homes.iter().find(|p| p.name == name).map(|p| (*p).clone()),
        }
    }
}

/// A request to forward, read whole.
pub(crate) struct Outgoing {
    pub parts: http::request::Parts,
    pub body: Bytes,
}

/// Reads a request's body within `limit`, for forwarding.
pub(crate) async fn read_whole<B: IncomingBody>(
    req: Request<B>,
    limit: u64,
) -> Result<Outgoing, Response<ProxyBody>> {
    let (parts, body) = req.into_parts();
    match Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(collected) => Ok(Outgoing {
            parts,
            body: collected.to_bytes(),
        }),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(_) => Err(json_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: the request body could not be read",
        )),
    }
}

/// How a forward ended: answered by the peer, or not sent at all (the
/// request comes back to be served here).
pub(crate) enum Sent {
    Answered(Response<ProxyBody>),
    NotSent(Outgoing),
}

/// What the forwarding node knows about the request beyond its head.
pub(crate) struct Forwarding<'a> {
    pub client: SocketAddr,
    pub secure: bool,
    /// The longest a local request for the function could take.
    pub budget: Duration,
    /// `Some(function)`: a direct call past the routes.
    pub direct: Option<&'a str>,
}

impl Cluster {
    /// Sends `out` to `peer`'s internal port, signed; the response streams
    /// back. A refused connection marks the peer suspect and returns the
    /// request.
    pub(crate) async fn send(&self, peer: &Peer, out: Outgoing, how: Forwarding<'_>) -> Sent {
        let Some(identity) = self.identity.get() else {
            return Sent::NotSent(out);
        };
        let Outgoing { parts, body } = out;
        let mut head = parts.clone();
        // The peer routes by the original host (`{fn}.{domain}`, stages).
        if !head.headers.contains_key(header::HOST) {
            if let Some(authority) = head.uri.authority() {
                if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                    head.headers.insert(header::HOST, host);
                }
            }
        }
        headers::strip_hop_by_hop(&mut head.headers);
        for name in signing::ALL {
            head.headers.remove(name);
        }
        let path_and_query = head
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let signed = Signed {
            method: head.method.as_str().to_string(),
            path_and_query: path_and_query.clone(),
            node_id: identity.id.clone(),
            time_ms: now_ms(),
            body_sha256: signing::body_sha256(&body),
            client: how.client.to_string(),
            proto: if how.secure { "https" } else { "http" }.into(),
            deadline_ms: u64::try_from(how.budget.as_millis()).unwrap_or(u64::MAX),
            direct: how.direct.unwrap_or_default().to_string(),
        };
        signed.write(&identity.secret, &mut head.headers);
        head.uri = match format!("http://{}{}", peer.internal, path_and_query).parse() {
            Ok(uri) => uri,
            Err(_) => {
                return Sent::Answered(json_error(StatusCode::BAD_REQUEST, "Bad request URI"))
            }
        };
        head.version = http::Version::HTTP_11;
        let request = Request::from_parts(head, Full::new(body.clone()));
        match tokio::time::timeout(how.budget, peer_client().request(request)).await {
            Ok(Ok(response)) => {
                let (mut parts, incoming) = response.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers);
                let body = incoming.map_err(|e| -> BoxError { Box::new(e) });
                Sent::Answered(Response::from_parts(parts, body.boxed_unsync()))
            }
            Ok(Err(err)) if err.is_connect() => {
                tracing::warn!(node = %peer.name, %err, "a home node refused the connection: serving here, and passing it over for a while");
                self.suspect(&peer.name);
                Sent::NotSent(Outgoing { parts, body })
            }
            Ok(Err(err)) => {
                tracing::warn!(node = %peer.name, %err, "forwarded request failed");
                Sent::Answered(json_error(
                    StatusCode::BAD_GATEWAY,
                    "Bad Gateway: the node serving this function did not answer",
                ))
            }
            Err(_) => Sent::Answered(json_error(
                StatusCode::GATEWAY_TIMEOUT,
                "Endpoint request timed out",
            )),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

thread_local! {
    /// Per gateway thread, like the upstream client: connections to peers
    /// stay on the thread whose requests use them.
    static PEERS: Client<HttpConnector, Full<Bytes>> = {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(PEER_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(http)
    };
}

fn peer_client() -> Client<HttpConnector, Full<Bytes>> {
    PEERS.with(Client::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_served_at_home_or_where_they_are_warm() {
        use Decision::*;
        let table: &[(&str, &[&str], bool, usize, Decision)] = &[
            // This node is a home.
            ("a", &["a"], false, 0, Local),
            ("a", &["b", "a"], false, 0, Local),
            // Another node is: forward, unless warm here.
            ("a", &["b"], false, 7, Forward("b")),
            ("a", &["b"], true, 0, Local),
            // Several homes share the load.
            ("a", &["b", "c"], false, 0, Forward("b")),
            ("a", &["b", "c"], false, 1, Forward("c")),
            // Nobody known to be live: serve rather than refuse.
            ("a", &[], false, 0, Local),
        ];
        for (this, homes, warm, roll, expected) in table {
            assert_eq!(
                &route_locally_or_forward(this, homes, *warm, *roll),
                expected,
                "{this} {homes:?} warm={warm} roll={roll}"
            );
        }
    }

    fn peer(name: &str, port: u16) -> Peer {
        Peer {
            name: name.into(),
            internal: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn a_suspect_node_is_passed_over_and_its_functions_move() {
        let cluster = Cluster::default();
        cluster.join(ClusterIdentity {
            name: "a".into(),
            id: "id-a".into(),
            secret: b"s".to_vec(),
        });
        cluster.set_placement(Placement {
            peers: vec![peer("a", 1), peer("b", 2)],
            pins: HashMap::from([("f".to_string(), vec!["b".to_string()])]),
        });
        assert_eq!(cluster.homes("f"), ["b"]);
        assert_eq!(cluster.target("f", || false), Some(peer("b", 2)));
        assert_eq!(cluster.target("f", || true), None);
        cluster.suspect("b");
        // Its pin has no live node left: automatic over the rest, this one.
        assert_eq!(cluster.homes("f"), ["a"]);
        assert_eq!(cluster.target("f", || false), None);
    }

    #[test]
    fn outside_a_cluster_everything_is_local() {
        let cluster = Cluster::default();
        assert!(cluster.homes("f").is_empty());
        assert_eq!(cluster.target("f", || false), None);
    }
}
