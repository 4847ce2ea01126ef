//! The web function executor: a request proxied to an instance over a
//! kept-alive upstream connection, streaming both ways. The hot path: no
//! allocation beyond the upstream URI, no boxing beyond the two bodies.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rouse_pool::metrics::ErrorKind;

use crate::body::{self, ClientBodyError, IncomingBody, ProxyBody};
use crate::ingress::{admit, too_large};
use crate::router::{RouteMatch, LIVE_ALIAS};
use crate::upstream::UpstreamConnector;
use crate::{headers, json_error, responses::acquire_error, stage_prefix, Gateway};

/// Below the 5 s keep-alive timeout of Node/Express and most app servers, so
/// the pool never reuses a connection the app is about to close.
const UPSTREAM_IDLE: Duration = Duration::from_secs(4);

/// A route to a web function, owned, so the route table can be released
/// before the request waits for an instance.
pub(crate) struct WebTarget {
    function: String,
    /// The version the `live` alias picked; `None`: the current one.
    version: Option<u32>,
    /// For `/{stage}` routes: the stage and the path the app sees.
    unmount: Option<(String, String)>,
}

impl WebTarget {
    pub(crate) fn new(route: &RouteMatch<'_>, path: &str) -> WebTarget {
        WebTarget {
            function: route.function.name.clone(),
            version: live_version(route),
            unmount: route.stage_prefix.map(|stage| {
                (
                    stage.to_string(),
                    stage_prefix::without_first_segment(path).to_string(),
                )
            }),
        }
    }
}

/// Routes serve the `live` alias when there is one.
pub(crate) fn live_version(route: &RouteMatch<'_>) -> Option<u32> {
    route
        .function
        .aliases
        .get(LIVE_ALIAS)
        .map(|alias| alias.pick(fastrand::f64()))
}

impl Gateway {
    /// Proxies a routed request, without its stage prefix when it has one.
    pub(crate) async fn proxy_route<B: IncomingBody>(
        &self,
        req: Request<B>,
        target: WebTarget,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let req = match &target.unmount {
            Some((stage, path)) => match stage_prefix::unmount(req, stage, path) {
                Some(req) => req,
                None => return json_error(StatusCode::BAD_REQUEST, "Bad request URI"),
            },
            None => req,
        };
        self.forward_version(&target.function, target.version, req, client)
            .await
    }

    /// [`Gateway::forward`] to a given version (`None`: the current one).
    pub(crate) async fn forward_version<B: IncomingBody>(
        &self,
        function: &str,
        version: Option<u32>,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let limit = self.inner.config.max_body_bytes;
        let Ok((mut parts, body)) = admit(req, client, limit) else {
            return too_large(limit);
        };
        let started = std::time::Instant::now();
        let lease = match self.inner.pool.acquire_version(function, version).await {
            Ok(lease) => lease,
            Err(err) => return acquire_error(err),
        };
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let uri = format!("http://{}{}", lease.addr(), path_and_query);
        parts.uri = match uri.parse() {
            Ok(uri) => uri,
            Err(_) => return json_error(StatusCode::BAD_REQUEST, "Bad request URI"),
        };
        parts.version = http::Version::HTTP_11;
        // Chunked bodies have no length up front: the limit is enforced while
        // streaming, and an overrun surfaces as a body error below.
        let body = body.map_err(|err| ClientBodyError(err.into()));
        let body = Limited::new(body, limit as usize).boxed_unsync();
        let upstream = Request::from_parts(parts, body);

        let timeout = Duration::from_secs_f64(lease.deployment().spec.timeout_secs);
        let response = match tokio::time::timeout(timeout, upstream_client().request(upstream))
            .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                if body::caused_by::<http_body_util::LengthLimitError>(&err) {
                    return too_large(limit);
                }
                if body::caused_by::<ClientBodyError>(&err) {
                    // The client's mistake (or its hang-up): not counted
                    // against the function, and the instance stays.
                    tracing::debug!(function, error = %err, "bad request body");
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        "Bad Request: the request body could not be read",
                    );
                }
                tracing::info!(function, instance = lease.instance_id(), error = %err, "upstream request failed");
                let exited = lease.upstream_failed(err.is_connect()).await;
                let kind = if exited {
                    ErrorKind::Crash
                } else {
                    ErrorKind::BadGateway
                };
                lease.record(Some(kind), started.elapsed());
                return json_error(
                    StatusCode::BAD_GATEWAY,
                    "Bad Gateway: the function instance failed",
                );
            }
            Err(_) => {
                lease.record(Some(ErrorKind::Timeout), started.elapsed());
                lease.replace_instance(&format!(
                    "timed out after {:.2}s; replacing it",
                    timeout.as_secs_f64()
                ));
                return json_error(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out");
            }
        };
        // Measured to the response head: the body may stream for as long as
        // the app likes, and the app's own status codes are not failures.
        lease.record(None, started.elapsed());
        let cold = lease.cold_start() && self.inner.config.cold_start_header;
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        if cold {
            parts
                .headers
                .insert("x-rouse-cold-start", HeaderValue::from_static("true"));
        }
        Response::from_parts(parts, body::Leased::new(body, lease).boxed_unsync())
    }
}

thread_local! {
    /// One upstream client (and connection pool) per thread: the gateway runs
    /// a single-threaded runtime per core, and a connection whose task lives
    /// on the same thread as the request costs no cross-thread wake-ups.
    static UPSTREAM: Client<UpstreamConnector, ProxyBody> = {
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(UPSTREAM_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(UpstreamConnector::new())
    };
}

fn upstream_client() -> Client<UpstreamConnector, ProxyBody> {
    UPSTREAM.with(Client::clone)
}
