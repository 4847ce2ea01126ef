//! The public HTTP front door: routing and proxying to function instances.

#![forbid(unsafe_code)]

mod async_invoke;
mod aws;
mod aws_auth;
mod body;
mod classify;
mod dot_segments;
mod function_url;
mod headers;
mod http_events;
mod ingress;
mod invoke_api;
mod lambda;
pub mod listen;
mod proxy;
mod responses;
mod router;
mod server;
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
            }),
        };
        gateway.reload_routes().await?;
        gateway.inner.events.start(Arc::downgrade(&gateway.inner));
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
                drop(router);
                match self.lambda_authorize(req).await {
                    Ok(req) => self.invoke_api(req, target).await,
                    Err(refused) => refused,
                }
            }
            Target::FunctionUrl { function, path } => {
                let target = function_url::UrlTarget::new(function, path);
                drop(router);
                // Every function has a URL, so when AWS-API calls must be
                // signed a URL must be too (Lambda's `AWS_IAM` URL auth):
                // otherwise it would invoke any function by name unsigned.
                match self.lambda_authorize(req).await {
                    Ok(req) => self.function_url(req, target, client).await,
                    Err(refused) => refused,
                }
            }
            Target::Lambda(route) => {
                let target = http_events::LambdaTarget::new(&route, req.uri().path());
                drop(route);
                drop(router);
                self.lambda_http(req, target, client).await
            }
            Target::Web(route) => {
                let target = proxy::WebTarget::new(&route, req.uri().path());
                drop(route);
                drop(router);
                self.proxy_route(req, target, client).await
            }
            Target::NotFound => json_error(StatusCode::NOT_FOUND, "Not Found"),
        }
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
        let target = aws::FunctionRef {
            name: function.to_string(),
            qualifier: None,
        };
        self.invoke_api(Request::from_parts(parts, body), Ok(target))
            .await
    }

    /// Proxies a request to `function`, bypassing routing (used by
    /// `rouse invoke`). The request's URI path and query are sent as they are.
    pub async fn forward<B: IncomingBody>(
        &self,
        function: &str,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        self.forward_version(function, None, req, client).await
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
