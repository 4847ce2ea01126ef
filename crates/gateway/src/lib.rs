//! The public HTTP front door: routing and proxying to function instances.

mod async_invoke;
mod aws;
mod body;
mod headers;
mod http_events;
mod invoke_api;
pub mod lambda;
pub mod router;
mod server;
mod stage_prefix;
mod upstream;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rouse_pool::metrics::ErrorKind;
use rouse_pool::{AcquireError, Pool};
use rouse_store::Store;
use upstream::UpstreamConnector;

pub use async_invoke::QueueFull;
pub use body::{empty, full, BoxError, ProxyBody};
use router::{AliasTarget, FunctionInfo, Router, LIVE_ALIAS};
pub use server::{serve, GatewayServer};

/// Function URLs: `/urls/{function}/...` reaches a function on any path.
const FUNCTION_URL_PREFIX: &str = "/urls/";
/// Default request body limit, as on Lambda (6 MB).
pub const DEFAULT_MAX_BODY: u64 = 6 * 1024 * 1024;
/// Async invocations waiting or running at once; more get 429.
const ASYNC_QUEUE: usize = 10_000;
/// Below the 5 s keep-alive timeout of Node/Express and most app servers, so
/// the pool never reuses a connection the app is about to close.
const UPSTREAM_IDLE: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub max_body_bytes: u64,
    /// `{function}.{domain}` host names route to that function.
    pub domain: Option<String>,
    /// Mark responses that waited for an instance to start with
    /// `X-Rouse-Cold-Start: true`.
    pub cold_start_header: bool,
    /// Wait before retrying a failed async invocation (doubled for the second retry).
    pub async_retry_delay: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_body_bytes: DEFAULT_MAX_BODY,
            domain: None,
            cold_start_header: false,
            async_retry_delay: invoke_api::DEFAULT_ASYNC_RETRY_DELAY,
        }
    }
}

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    config: GatewayConfig,
    store: Arc<Store>,
    pool: Pool,
    router: ArcSwap<Router>,
    events: async_invoke::EventQueue,
}

impl Gateway {
    pub async fn new(
        config: GatewayConfig,
        store: Arc<Store>,
        pool: Pool,
    ) -> Result<Gateway, rouse_store::StoreError> {
        let events = async_invoke::EventQueue::new(ASYNC_QUEUE, config.async_retry_delay);
        let gateway = Gateway {
            inner: Arc::new(Inner {
                events,
                config,
                store,
                pool,
                router: ArcSwap::from_pointee(Router::default()),
            }),
        };
        gateway.reload_routes().await?;
        Ok(gateway)
    }

    /// Rebuilds the route table from the store (after a deploy or removal).
    pub async fn reload_routes(&self) -> Result<(), rouse_store::StoreError> {
        let store = &self.inner.store;
        let mut aliases: HashMap<String, BTreeMap<String, AliasTarget>> = HashMap::new();
        for alias in store.all_aliases().await? {
            aliases.entry(alias.function).or_default().insert(
                alias.name,
                AliasTarget {
                    version: alias.version,
                    canary: alias.canary,
                },
            );
        }
        let functions = store
            .list_functions()
            .await?
            .into_iter()
            .map(|f| FunctionInfo {
                lambda: matches!(f.spec.kind, rouse_manifest::FunctionKind::Lambda(_)),
                aliases: aliases.remove(&f.name).unwrap_or_default(),
                name: f.name,
                stage: f.stage,
            });
        let router = Router::new(
            &store.routes().await?,
            functions,
            self.inner.config.domain.clone(),
        );
        self.inner.router.store(Arc::new(router));
        Ok(())
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Routes and proxies one request from `client`.
    pub async fn handle<B>(&self, req: Request<B>, client: SocketAddr) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if req.method() == http::Method::POST {
            if let Some(target) = aws::parse_invoke_path(req.uri().path()) {
                return self.invoke_api(req, target).await;
            }
        }
        if let Some(rest) = req.uri().path().strip_prefix(FUNCTION_URL_PREFIX) {
            let (name, path) = rest
                .split_once('/')
                .map_or((rest, String::from("/")), |(n, p)| (n, format!("/{p}")));
            let Some(function) = self.inner.router.load().function(name).cloned() else {
                return json_error(StatusCode::NOT_FOUND, "Not Found");
            };
            if function.lambda {
                let target = http_events::LambdaTarget {
                    function: function.name,
                    shape: rouse_events::Shape::FunctionUrl,
                    resource: None,
                    any_method: true,
                    params: Vec::new(),
                    stage: "$default".into(),
                    path,
                    version: None,
                };
                return self.lambda_http(req, target, client).await;
            }
            let (mut parts, body) = req.into_parts();
            parts.uri = match with_path(&parts.uri, &path) {
                Ok(uri) => uri,
                Err(_) => return json_error(StatusCode::BAD_REQUEST, "Bad request URI"),
            };
            return self
                .forward(&function.name, Request::from_parts(parts, body), client)
                .await;
        }
        let router = self.inner.router.load();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host());
        let Some(route) = router.lookup(req.method().as_str(), req.uri().path(), host) else {
            return json_error(StatusCode::NOT_FOUND, "Not Found");
        };
        // Routes serve the `live` alias when there is one.
        let version = route
            .function
            .aliases
            .get(LIVE_ALIAS)
            .map(|alias| alias.pick(fastrand::f64()));
        let unprefixed = route
            .stage_prefix
            .map(|_| stage_prefix::without_first_segment(req.uri().path()).to_string());
        if route.function.lambda {
            let shape = match route.shape {
                rouse_store::RouteShape::Http => rouse_events::Shape::RestV1,
                rouse_store::RouteShape::HttpApi => rouse_events::Shape::HttpApiV2,
            };
            // A REST event's `path` leaves the stage out (its
            // `requestContext.path` has it); an HTTP API's `rawPath` keeps it.
            let path = match (&unprefixed, shape) {
                (Some(path), rouse_events::Shape::RestV1) => path.clone(),
                _ => req.uri().path().to_string(),
            };
            let target = http_events::LambdaTarget {
                function: route.function.name.clone(),
                shape,
                resource: route.template.map(str::to_string),
                any_method: route.any_method,
                params: route
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                stage: route.function.stage.clone(),
                path,
                version,
            };
            drop(router);
            return self.lambda_http(req, target, client).await;
        }
        let function = route.function.name.clone();
        let stage = route.stage_prefix.map(str::to_string);
        drop(router);
        let req = match (stage, unprefixed) {
            (Some(stage), Some(path)) => match stage_prefix::unmount(req, &stage, &path) {
                Some(req) => req,
                None => return json_error(StatusCode::BAD_REQUEST, "Bad request URI"),
            },
            _ => req,
        };
        self.forward_version(&function, version, req, client).await
    }

    /// Queues an asynchronous invocation (as an `Event` invoke would);
    /// returns its request id, or `Err` when the queue is full.
    pub fn enqueue_event(&self, function: &str, payload: Bytes) -> Result<String, QueueFull> {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.inner.events.submit(
            self.clone(),
            function.to_string(),
            None,
            request_id.clone(),
            payload,
        )?;
        Ok(request_id)
    }

    /// True when `function` is deployed and is a lambda function.
    pub fn is_lambda(&self, function: &str) -> bool {
        self.inner
            .router
            .load()
            .function(function)
            .is_some_and(|f| f.lambda)
    }

    /// Invokes a lambda function as the Invoke API does, with the log tail
    /// (`X-Amz-Log-Result`) always included: what `rouse invoke` shows.
    pub async fn invoke_direct<B>(&self, function: &str, req: Request<B>) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        parts
            .headers
            .insert("x-amz-log-type", HeaderValue::from_static("Tail"));
        let target = aws::FunctionRef {
            name: function.to_string(),
            qualifier: None,
        };
        self.invoke_api(Request::from_parts(parts, body), Ok(target))
            .await
    }

    /// Proxies a request to `function`, bypassing routing (used by
    /// `rouse invoke`). The request's URI path and query are sent as they are.
    pub async fn forward<B>(
        &self,
        function: &str,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.forward_version(function, None, req, client).await
    }

    /// [`Gateway::forward`] to a given version (`None`: the current one).
    async fn forward_version<B>(
        &self,
        function: &str,
        version: Option<u32>,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let limit = self.inner.config.max_body_bytes;
        if declares_more_than(req.headers(), limit) {
            return too_large(limit);
        }
        let started = std::time::Instant::now();
        let lease = match self.inner.pool.acquire_version(function, version).await {
            Ok(lease) => lease,
            Err(err) => return acquire_error(err),
        };
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        headers::add_forwarded(&mut parts.headers, client, "http");
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
        let body = Limited::new(body, limit as usize).boxed_unsync();
        let upstream = Request::from_parts(parts, body);

        let timeout = Duration::from_secs_f64(lease.deployment().spec.timeout_secs);
        let response = match tokio::time::timeout(timeout, upstream_client().request(upstream))
            .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                if is_body_too_large(&err) {
                    return too_large(limit);
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

/// `uri` with its path replaced by `path` (which starts with `/`), keeping
/// the query.
pub fn with_path(uri: &http::Uri, path: &str) -> Result<http::Uri, http::uri::InvalidUri> {
    match uri.query() {
        Some(query) => format!("{path}?{query}").parse(),
        None => path.parse(),
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

fn is_body_too_large(err: &hyper_util::client::legacy::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

pub(crate) fn acquire_error(err: AcquireError) -> Response<ProxyBody> {
    match err {
        AcquireError::NotFound(_) => json_error(StatusCode::NOT_FOUND, "Not Found"),
        AcquireError::Throttled { retry_after, .. } => {
            let mut resp = json_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs(retry_after));
            resp
        }
        AcquireError::BackingOff { retry_after, .. } => {
            let mut resp = json_error(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway: the function keeps crashing; retrying later",
            );
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
        AcquireError::StartFailed(_) => json_error(
            StatusCode::BAD_GATEWAY,
            "Bad Gateway: the function instance failed to start",
        ),
        AcquireError::ShuttingDown => {
            let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        AcquireError::Store(err) => {
            tracing::error!(%err, "store error while routing");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1.
pub(crate) fn retry_after_secs(wait: std::time::Duration) -> HeaderValue {
    HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// A `Content-Length` over `limit`: answered 413 before any body is read.
pub(crate) fn declares_more_than(headers: &http::HeaderMap, limit: u64) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

pub(crate) fn too_large(limit: u64) -> Response<ProxyBody> {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request Entity Too Large: the body limit is {limit} bytes"),
    )
}

/// API Gateway's error body shape: `{"message": "..."}`.
pub fn json_error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
