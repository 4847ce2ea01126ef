//! Pure conversions between a buffered HTTP request/response and the AWS
//! Lambda HTTP event shapes: API Gateway REST (payload 1.0), HTTP API
//! (payload 2.0), Application Load Balancer (single- and multi-value header
//! modes) and Lambda Function URLs.
//!
//! The gateway hands [`to_event`] everything it knows about a request plus
//! the route facts and per-request ids/times in a [`RequestContext`]; this
//! crate has no sockets, clocks or randomness, so every output is a function
//! of its inputs. The handler's result goes back through [`from_result`].
//!
//! The reverse direction serves `rouse-adapter`, which runs a web app inside
//! a real Lambda: [`detect`] tells which front end sent an event,
//! [`from_event`] rebuilds the HTTP request it describes, and [`to_result`]
//! (or [`streaming_prelude`] for streamed Function URL responses) turns the
//! app's response into the result that front end expects.
//!
//! ```
//! use rouse_events::{from_result, to_event, HttpRequest, RequestContext, Shape};
//!
//! let req = HttpRequest {
//!     method: http::Method::GET,
//!     path: "/pets/7".into(),
//!     query: Some("tag=a&tag=b".into()),
//!     version: http::Version::HTTP_11,
//!     headers: http::HeaderMap::new(),
//!     body: bytes::Bytes::new(),
//!     source_ip: [192, 0, 2, 1].into(),
//! };
//! let ctx = RequestContext {
//!     resource: Some("/pets/{id}".into()),
//!     path_params: vec![("id".into(), "7".into())],
//!     stage: "dev".into(),
//!     ..RequestContext::default()
//! };
//! let event = to_event(Shape::RestV1, &req, &ctx);
//! assert_eq!(event["requestContext"]["path"], "/dev/pets/7");
//! assert_eq!(event["multiValueQueryStringParameters"]["tag"][1], "b");
//! let _invoke_payload = serde_json::to_vec(&event).unwrap();
//!
//! let resp = from_result(Shape::HttpApiV2, br#"{"ok": true}"#).unwrap();
//! assert_eq!(resp.status, 200);
//! assert_eq!(resp.headers["content-type"], "application/json");
//! assert_eq!(&resp.body[..], br#"{"ok": true}"#);
//! ```
//!
//! The JSON is built and read here directly rather than through the
//! `aws_lambda_events` structs: those are `#[non_exhaustive]`, their
//! serializers do not reproduce AWS's `null` maps, and their response
//! deserializers require fields API Gateway treats as optional (`cookies`,
//! `isBase64Encoded`). They remain the contract: the tests deserialize every
//! generated event into them and feed responses serialized from them back
//! through [`from_result`].
//!
//! Header names arrive lower-cased, because [`http::HeaderMap`] stores them
//! that way. Real REST and ALB events keep the client's spelling for
//! HTTP/1.1 clients (and lower-case for HTTP/2 ones), so handlers must
//! already compare header names case-insensitively to work everywhere.

#![forbid(unsafe_code)]

mod body;
pub mod civil;
mod fields;
pub mod kinesis;
mod maps;
mod query;
mod request;
mod response;
mod reverse;
pub mod sqs;
mod text;
mod time;

use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};

pub use query::decode_path_segment;
pub use request::to_event;
pub use response::{from_result, ResponseError};
pub use reverse::{
    detect, from_event, streaming_prelude, to_result, EventError, STREAMING_CONTENT_TYPE,
};
pub use text::is_text_content;

/// The event shape a route delivers to its Lambda function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// API Gateway REST API, Lambda proxy integration (payload format 1.0).
    RestV1,
    /// API Gateway HTTP API (payload format 2.0).
    HttpApiV2,
    /// Application Load Balancer target group. `multi_value` mirrors the
    /// target-group attribute `lambda.multi_value_headers.enabled`.
    Alb {
        /// Send and expect `multiValueHeaders`/`multiValueQueryStringParameters`
        /// instead of the single-value maps.
        multi_value: bool,
    },
    /// Lambda Function URL (payload 2.0 with the `$default` route).
    FunctionUrl,
}

/// Everything the gateway knows about an incoming request, already buffered.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Request method.
    pub method: Method,
    /// Raw request path, still percent-encoded, without the query string.
    /// An empty path is treated as `/`.
    pub path: String,
    /// Raw query string, still percent-encoded, without the leading `?`.
    pub query: Option<String>,
    /// HTTP version the client spoke; reported as `requestContext.protocol`.
    pub version: Version,
    /// Request headers as received (the gateway adds `X-Forwarded-*` before
    /// calling [`to_event`] if handlers should see them, as on AWS).
    pub headers: HeaderMap,
    /// The complete request body.
    pub body: Bytes,
    /// Client address, reported as `sourceIp`.
    pub source_ip: IpAddr,
}

/// Route facts and per-request ids/times, passed in so that conversion needs
/// no clock or random source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The matched route template, e.g. `/users/{id}`. `None` means a
    /// catch-all route: `/{proxy+}` for REST (`/` at the root), `$default`
    /// for HTTP API.
    pub resource: Option<String>,
    /// Whether the route accepts any method; HTTP API then reports the
    /// route key as `ANY /template`.
    pub any_method: bool,
    /// Path parameters as matched against the raw path, still
    /// percent-encoded. REST passes them through as they are; HTTP API
    /// decodes them.
    pub path_params: Vec<(String, String)>,
    /// Stage name. REST prefixes `requestContext.path` with `/{stage}`;
    /// HTTP API reports it (empty means `$default`). Unused by ALB and
    /// Function URLs.
    pub stage: String,
    /// Per-request id (`requestId`, and REST's `extendedRequestId`).
    pub request_id: String,
    /// Request arrival time in milliseconds since the Unix epoch.
    pub time_epoch_ms: i64,
    /// Account id reported in `requestContext.accountId` and in ARNs.
    pub account_id: String,
    /// API id; for Function URLs the URL id, for ALB the target-group id.
    pub api_id: String,
    /// Host name the API is served under (`requestContext.domainName`).
    /// Function URLs derive theirs from `api_id` and `region` instead.
    pub domain_name: String,
    /// Region used in Function URL domain names and ALB target-group ARNs.
    pub region: String,
    /// Function name; names the ALB target group.
    pub function_name: String,
}

/// The HTTP response the gateway sends for a handler's result.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpResponse {
    /// Response status.
    pub status: StatusCode,
    /// Response headers. `Content-Length` and `Transfer-Encoding` from the
    /// handler are dropped: the body is complete, so the gateway frames it.
    pub headers: HeaderMap,
    /// The decoded response body.
    pub body: Bytes,
}
