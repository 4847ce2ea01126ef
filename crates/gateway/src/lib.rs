//! The public HTTP front door: routing and proxying to function instances.

#![forbid(unsafe_code)]

mod async_invoke;
mod aws;
mod aws_auth;
mod body;
mod classify;
mod cors;
mod dot_segments;
mod forward;
mod function_url;
mod headers;
mod http_events;
mod ingress;
mod internal;
mod invoke_api;
mod lambda;
pub mod listen;
mod proxy;
mod responses;
mod router;
mod server;
mod signing;
mod sqs;
mod stage_prefix;
mod streams;
mod upstream;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use rouse_pool::Pool;
use rouse_store::Store;

pub use async_invoke::EnqueueError;
pub use aws_auth::{AwsAuth, AwsAuthSetting};
pub use body::{empty, full, BoxError, IncomingBody, ProxyBody};
use classify::{classify, Target};
pub use forward::{ClusterIdentity, Peer, Placement};
pub use internal::InternalServer;
pub(crate) use responses::json_error;
pub(crate) use responses::retry_after_secs;
use router::{AliasTarget, FunctionInfo, Router};
pub use server::GatewayServer;
pub use streams::{mapping_id as stream_mapping_id, shard_id};
/// Default request body limit, as on Lambda (6 MB).
pub const DEFAULT_MAX_BODY: u64 = 6 * 1024 * 1024;

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
    /// Whether the AWS-compatible APIs check SigV4 signatures.
    pub aws_auth: AwsAuth,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_body_bytes: DEFAULT_MAX_BODY,
            domain: None,
            cold_start_header: false,
            async_retry_delay: async_invoke::retry::DEFAULT_RETRY_DELAY,
            aws_auth: AwsAuth::Open,
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
    /// Wake-ups of stream pollers when records are put.
    wakers: streams::Wakers,
    pollers: streams::Pollers,
    /// This node's place in a cluster: empty on a single node.
    cluster: forward::Cluster,
}

/// How a request reached this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    /// On the public port: it may be forwarded to its function's home.
    Public,
    /// Forwarded by another node, or coming back from a home that could
    /// not be reached: served here, its AWS signature already checked
    /// where it arrived.
    Here,
}

impl Gateway {
    pub async fn new(
        config: GatewayConfig,
        store: Arc<Store>,
        pool: Pool,
    ) -> Result<Gateway, rouse_store::StoreError> {
        let events = async_invoke::EventQueue::new(store.clone(), config.async_retry_delay)?;
        let gateway = Gateway {
            inner: Arc::new(Inner {
                events,
                config,
                store,
                pool,
                router: ArcSwap::from_pointee(Router::default()),
                wakers: streams::Wakers::default(),
                pollers: streams::Pollers::default(),
                cluster: forward::Cluster::default(),
            }),
        };
        gateway.reload_routes().await?;
        gateway.inner.events.start(Arc::downgrade(&gateway.inner));
        streams::start_background(Arc::downgrade(&gateway.inner));
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
        let records = store.list_functions().await?;
        let policies = route_policies(&records);
        let functions = records.into_iter().map(|f| FunctionInfo {
            lambda: matches!(f.spec.kind, rouse_manifest::FunctionKind::Lambda(_)),
            aliases: aliases.remove(&f.name).unwrap_or_default(),
            budget: router::budget(&f.spec),
            name: f.name,
            stage: f.stage,
        });
        let router = Router::new(
            &store.routes().await?,
            functions,
            self.inner.config.domain.clone(),
        )
        .with_policies(&policies);
        self.inner.router.store(Arc::new(router));
        self.reload_streams().await;
        Ok(())
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Routes and proxies one request from `client`: classified first,
    /// then handed to the executor of its kind. Each arm takes what it
    /// needs from the route table before releasing it, so no request holds
    /// the table while it waits for an instance.
    pub async fn handle<B: IncomingBody>(
        &self,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let response = self.handle_as(req, client, Hop::Public).await;
        self.served_here(response)
    }

    /// [`Gateway::handle`], for a request that reached this node by `hop`.
    /// Once the function is known, a public request for a function homed
    /// elsewhere is forwarded (see `forward`).
    async fn handle_as<B: IncomingBody>(
        &self,
        req: Request<B>,
        client: SocketAddr,
        hop: Hop,
    ) -> Response<ProxyBody> {
        let mut req = req;
        match ingress::check_head(&req) {
            ingress::Head::Pass => {}
            ingress::Head::Rewrite(uri) => *req.uri_mut() = uri,
            ingress::Head::Answer(status, message) => return json_error(status, message),
            ingress::Head::ServerOptions => return ingress::server_options(),
        }
        let router = self.inner.router.load();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host());
        let amz_target = req
            .headers()
            .get("x-amz-target")
            .and_then(|h| h.to_str().ok());
        if let Some(answer) =
            cors::preflight(&router, req.method(), req.uri().path(), host, req.headers())
        {
            return answer;
        }
        let target = classify(req.method(), host, req.uri().path(), amz_target, &router);
        match target {
            Target::Kinesis(op) => {
                drop(router);
                let auth = self.aws_authorize(
                    req,
                    "kinesis",
                    aws_auth::Protocol::Json,
                    streams::MAX_REQUEST,
                );
                match auth.await {
                    Ok(req) => self.kinesis_api(req, &op).await,
                    Err(refused) => refused,
                }
            }
            Target::InvokeApi(target) => {
                let home = match (&target, hop) {
                    (Ok(f), Hop::Public) => router
                        .function(&f.name)
                        .and_then(|info| self.home_elsewhere(info)),
                    _ => None,
                };
                drop(router);
                let req = match hop {
                    Hop::Public => match self.lambda_authorize(req).await {
                        Ok(req) => req,
                        Err(refused) => return refused,
                    },
                    Hop::Here => req.map(http_body_util::Either::Left),
                };
                match home {
                    Some((peer, budget)) => self.forward_to(peer, req, client, budget, None).await,
                    None => self.invoke_api(req, target).await,
                }
            }
            Target::FunctionUrl { function, path } => {
                let home = self.home_if_public(hop, function);
                let target = function_url::UrlTarget::new(function, path);
                drop(router);
                // Every function has a URL, so when AWS-API calls must be
                // signed a URL must be too (Lambda's `AWS_IAM` URL auth):
                // otherwise it would invoke any function by name unsigned.
                let req = match hop {
                    Hop::Public => match self.lambda_authorize(req).await {
                        Ok(req) => req,
                        Err(refused) => return refused,
                    },
                    Hop::Here => req.map(http_body_util::Either::Left),
                };
                match home {
                    Some((peer, budget)) => self.forward_to(peer, req, client, budget, None).await,
                    None => self.function_url(req, target, client).await,
                }
            }
            Target::Lambda(route) => {
                if let Some((peer, budget)) = self.home_if_public(hop, route.function) {
                    drop(route);
                    drop(router);
                    return self.forward_to(peer, req, client, budget, None).await;
                }
                let target = http_events::LambdaTarget::new(&route, req.uri().path());
                let cors = cors::for_route(&route, req.method(), req.headers());
                drop(route);
                drop(router);
                let mut response = self.lambda_http(req, target, client).await;
                if let Some(cors) = cors {
                    cors.apply(&mut response);
                }
                response
            }
            Target::Web(route) => {
                if let Some((peer, budget)) = self.home_if_public(hop, route.function) {
                    drop(route);
                    drop(router);
                    return self.forward_to(peer, req, client, budget, None).await;
                }
                let target = proxy::WebTarget::new(&route, req.uri().path());
                let cors = cors::for_route(&route, req.method(), req.headers());
                drop(route);
                drop(router);
                let mut response = self.proxy_route(req, target, client).await;
                if let Some(cors) = cors {
                    cors.apply(&mut response);
                }
                response
            }
            Target::NotFound => json_error(StatusCode::NOT_FOUND, "Not Found"),
        }
    }

    /// The home to forward a public request for `function` to, if not here.
    fn home_if_public(&self, hop: Hop, function: &FunctionInfo) -> Option<(Peer, Duration)> {
        match hop {
            Hop::Public => self.home_elsewhere(function),
            Hop::Here => None,
        }
    }

    /// Where `function` is served when not here, and how long a request
    /// for it may take.
    fn home_elsewhere(&self, function: &FunctionInfo) -> Option<(Peer, Duration)> {
        let peer = self
            .inner
            .cluster
            .target(&function.name, || self.inner.pool.has_ready(&function.name))?;
        Some((peer, function.budget))
    }

    /// Forwards a request to `peer`; served here after all when the peer
    /// cannot be reached.
    async fn forward_to<B: IncomingBody>(
        &self,
        peer: Peer,
        req: Request<B>,
        client: SocketAddr,
        budget: Duration,
        direct: Option<&str>,
    ) -> Response<ProxyBody> {
        let secure = req.extensions().get::<listen::Secure>().is_some();
        let out = match forward::read_whole(req, self.inner.config.max_body_bytes).await {
            Ok(out) => out,
            Err(answer) => return answer,
        };
        let how = forward::Forwarding {
            client,
            secure,
            budget,
            direct,
        };
        match self.inner.cluster.send(&peer, out, how).await {
            forward::Sent::Answered(response) => response,
            forward::Sent::NotSent(out) => {
                let req = Request::from_parts(out.parts, http_body_util::Full::new(out.body));
                match direct {
                    Some(function) => self.forward_version(function, None, req, client).await,
                    None => Box::pin(self.handle_as(req, client, Hop::Here)).await,
                }
            }
        }
    }

    /// Names this node on a response it served (in a cluster), unless a
    /// node it was forwarded to already did.
    fn served_here(&self, mut response: Response<ProxyBody>) -> Response<ProxyBody> {
        if let Some(identity) = self.inner.cluster.identity() {
            if let Ok(name) = HeaderValue::from_str(&identity.name) {
                response
                    .headers_mut()
                    .entry(forward::SERVED_BY)
                    .or_insert(name);
            }
        }
        response
    }

    /// Makes this gateway a node of a cluster: from now on it forwards
    /// requests for functions homed elsewhere and serves signed requests
    /// on its internal listener.
    pub fn join_cluster(&self, identity: ClusterIdentity) {
        self.inner.cluster.join(identity);
    }

    /// The placement as last read from the store.
    pub fn set_placement(&self, placement: Placement) {
        self.inner.cluster.set_placement(placement);
    }

    /// The nodes `function` is served by, best first (empty outside a cluster).
    pub fn homes(&self, function: &str) -> Vec<String> {
        self.inner.cluster.homes(function)
    }

    /// Every function in the route table.
    pub fn function_names(&self) -> Vec<String> {
        self.inner.router.load().function_names()
    }

    /// Queues an asynchronous invocation (as an `Event` invoke would) and
    /// returns its request id once it is committed to the store.
    pub fn enqueue_event(&self, function: &str, payload: Bytes) -> Result<String, EnqueueError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.inner
            .events
            .submit_now(&rouse_store::events::NewEvent {
                id: request_id.clone(),
                function: function.to_string(),
                version: None,
                payload: payload.to_vec(),
                accepted_at_ms: async_invoke::now_ms(),
            })?;
        Ok(request_id)
    }

    /// Tells the async dispatcher that events became due (a redrive).
    pub fn wake_async_events(&self) {
        self.inner.events.wake();
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
    pub async fn invoke_direct<B: IncomingBody>(
        &self,
        function: &str,
        req: Request<B>,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
        parts
            .headers
            .insert("x-amz-log-type", HeaderValue::from_static("Tail"));
        let home = self
            .inner
            .router
            .load()
            .function(function)
            .and_then(|info| self.home_elsewhere(info));
        if let Some((peer, budget)) = home {
            // On the home node it is the Invoke API call it stands for.
            let path = format!("/2015-03-31/functions/{function}/invocations");
            if let Ok(uri) = path.parse() {
                parts.uri = uri;
                parts.method = http::Method::POST;
                let req = Request::from_parts(parts, body);
                let client = SocketAddr::from(([127, 0, 0, 1], 0));
                let response = self.forward_to(peer, req, client, budget, None).await;
                return self.served_here(response);
            }
        }
        let target = aws::FunctionRef {
            name: function.to_string(),
            qualifier: None,
        };
        let response = self
            .invoke_api(Request::from_parts(parts, body), Ok(target))
            .await;
        self.served_here(response)
    }

    /// Proxies a request to `function`, bypassing routing (used by
    /// `rouse invoke`). The request's URI path and query are sent as they are.
    pub async fn forward<B: IncomingBody>(
        &self,
        function: &str,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let home = self
            .inner
            .router
            .load()
            .function(function)
            .and_then(|info| self.home_elsewhere(info));
        let response = match home {
            Some((peer, budget)) => {
                self.forward_to(peer, req, client, budget, Some(function))
                    .await
            }
            None => self.forward_version(function, None, req, client).await,
        };
        self.served_here(response)
    }
}

/// The policy of every route that has one, from the functions' specs.
fn route_policies(records: &[rouse_store::FunctionRecord]) -> router::PolicyTable {
    let mut table = router::PolicyTable::new();
    for record in records {
        for event in &record.spec.events {
            let (shape, http) = match event {
                rouse_manifest::Event::Http(http) => (rouse_store::RouteShape::Http, http),
                rouse_manifest::Event::HttpApi(http) => (rouse_store::RouteShape::HttpApi, http),
                _ => continue,
            };
            if http.policy.is_open() {
                continue;
            }
            let key = (
                record.name.to_ascii_lowercase(),
                shape,
                http.method.clone(),
                http.path.clone(),
            );
            table.insert(key, Arc::new(http.policy.clone()));
        }
    }
    table
}

/// `uri` with its path replaced by `path` (which starts with `/`), keeping
/// the query.
pub fn with_path(uri: &http::Uri, path: &str) -> Result<http::Uri, http::uri::InvalidUri> {
    match uri.query() {
        Some(query) => format!("{path}?{query}").parse(),
        None => path.parse(),
    }
}
