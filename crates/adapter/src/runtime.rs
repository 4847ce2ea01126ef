//! The Lambda Runtime API client: `next`, `response`, `error`, `init/error`.
//! Three calls over one keep-alive HTTP/1.1 connection; no SDK needed.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::BoxError;

/// Request bodies to the Runtime API: a whole payload or a stream.
pub(crate) type ApiBody = UnsyncBoxBody<Bytes, BoxError>;

/// Names the error type of `/error` and `init/error` calls, and of a
/// stream that failed mid-way (as a trailer).
pub(crate) const ERROR_TYPE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-type");
/// Trailer with the base64 error JSON of a stream that failed mid-way.
pub(crate) const ERROR_BODY: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-body");
const RESPONSE_MODE: HeaderName = HeaderName::from_static("lambda-runtime-function-response-mode");

/// One event, with the facts from the `next` headers.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub request_id: String,
    pub deadline_ms: u64,
    pub function_arn: String,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// `Lambda-Runtime-Aws-Tenant-Id`, for functions with tenant isolation.
    pub tenant_id: Option<String>,
    pub event: Bytes,
}

/// A failure to report: `errorType` (which must look like
/// `Runtime.SomethingHappened` for Lambda to keep it) and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorReport {
    pub error_type: &'static str,
    pub message: String,
}

impl ErrorReport {
    pub(crate) fn body(&self) -> Bytes {
        let body = json!({ "errorType": self.error_type, "errorMessage": self.message });
        Bytes::from(body.to_string())
    }
}

pub(crate) struct RuntimeClient {
    base: String,
    client: Client<HttpConnector, ApiBody>,
}

impl RuntimeClient {
    /// `api` is `AWS_LAMBDA_RUNTIME_API` (`host:port`, no scheme).
    pub(crate) fn new(api: &str) -> RuntimeClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // `next` may wait for hours (Lambda freezes the process meanwhile):
        // the pooled connection must never be dropped for idleness.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(None)
            .pool_max_idle_per_host(1)
            .build(connector);
        RuntimeClient {
            base: format!("http://{api}/2018-06-01/runtime"),
            client,
        }
    }

    /// Long-polls for the next event.
    pub(crate) async fn next(&self) -> Result<Invocation, BoxError> {
        let url = format!("{}/invocation/next", self.base);
        let response = self
            .send(Method::GET, &url, HeaderMap::new(), empty())
            .await?;
        let (parts, body) = response.into_parts();
        let event = body.collect().await?.to_bytes();
        if !parts.status.is_success() {
            return Err(format!(
                "GET next answered {}: {}",
                parts.status,
                String::from_utf8_lossy(&event)
            )
            .into());
        }
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let request_id = header("lambda-runtime-aws-request-id")
            .ok_or("GET next answered without Lambda-Runtime-Aws-Request-Id")?;
        Ok(Invocation {
            deadline_ms: header("lambda-runtime-deadline-ms")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0),
            function_arn: header("lambda-runtime-invoked-function-arn").unwrap_or_default(),
            trace_id: header("lambda-runtime-trace-id"),
            client_context: header("lambda-runtime-client-context"),
            cognito_identity: header("lambda-runtime-cognito-identity"),
            tenant_id: header("lambda-runtime-aws-tenant-id"),
            request_id,
            event,
        })
    }

    /// Posts a buffered result.
    pub(crate) async fn respond(&self, request_id: &str, payload: Bytes) -> Result<(), BoxError> {
        let url = format!("{}/invocation/{request_id}/response", self.base);
        self.post(&url, HeaderMap::new(), full(payload)).await
    }

    /// Posts a streamed result: `body` is sent as it is produced; a failure
    /// mid-way ends it with the error trailers.
    pub(crate) async fn respond_streaming(
        &self,
        request_id: &str,
        content_type: &'static str,
        body: ApiBody,
    ) -> Result<(), BoxError> {
        let url = format!("{}/invocation/{request_id}/response", self.base);
        let mut headers = HeaderMap::new();
        headers.insert(RESPONSE_MODE, HeaderValue::from_static("streaming"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        // hyper sends only the trailers the request announces.
        headers.insert(
            http::header::TRAILER,
            HeaderValue::from_static(
                "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
            ),
        );
        self.post(&url, headers, body).await
    }

    /// Reports that this invocation failed.
    pub(crate) async fn invocation_error(
        &self,
        request_id: &str,
        report: &ErrorReport,
    ) -> Result<(), BoxError> {
        let url = format!("{}/invocation/{request_id}/error", self.base);
        self.post(&url, error_headers(report), full(report.body()))
            .await
    }

    /// Reports that init failed; Lambda then discards this environment.
    pub(crate) async fn init_error(&self, report: &ErrorReport) -> Result<(), BoxError> {
        let url = format!("{}/init/error", self.base);
        self.post(&url, error_headers(report), full(report.body()))
            .await
    }

    async fn post(&self, url: &str, headers: HeaderMap, body: ApiBody) -> Result<(), BoxError> {
        let response = self.send(Method::POST, url, headers, body).await?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "POST {url} answered {status}: {}",
                String::from_utf8_lossy(&answer)
            )
            .into())
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: ApiBody,
    ) -> Result<http::Response<hyper::body::Incoming>, BoxError> {
        let mut request = Request::builder().method(method).uri(url).body(body)?;
        request.headers_mut().extend(headers);
        Ok(self.client.request(request).await?)
    }
}

fn error_headers(report: &ErrorReport) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ERROR_TYPE, HeaderValue::from_static(report.error_type));
    headers
}

pub(crate) fn full(bytes: Bytes) -> ApiBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> ApiBody {
    full(Bytes::new())
}
