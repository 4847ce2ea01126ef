//! HTTP request → Lambda event, one module per shape.

mod alb;
mod url;
mod v1;
mod v2;

use http::header::USER_AGENT;
use http::{HeaderMap, Version};
use serde_json::Value;

use crate::{HttpRequest, RequestContext, Shape};

/// Builds the event a Lambda function receives for `req` arriving on a route
/// of the given shape.
///
/// The result is plain JSON; `serde_json::to_vec` on it is the invoke
/// payload. Absent things follow each shape's habits: REST writes `null`
/// maps and a `null` body, HTTP API and Function URLs leave the keys out, ALB
/// writes `{}` and an empty-string body.
pub fn to_event(shape: Shape, req: &HttpRequest, ctx: &RequestContext) -> Value {
    match shape {
        Shape::RestV1 => v1::event(req, ctx),
        Shape::HttpApiV2 => v2::event(req, ctx),
        Shape::Alb { multi_value } => alb::event(req, ctx, multi_value),
        Shape::FunctionUrl => url::event(req, ctx),
    }
}

/// The raw path, with an empty one read as `/` (a request line can't carry
/// an empty path, but a caller building `HttpRequest` by hand might).
fn raw_path(req: &HttpRequest) -> &str {
    if req.path.is_empty() {
        "/"
    } else {
        &req.path
    }
}

/// `requestContext.protocol` / `http.protocol`, e.g. `HTTP/1.1`.
fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// The `User-Agent` header as an event value, `null` when absent.
fn user_agent(headers: &HeaderMap) -> Value {
    headers
        .get(USER_AGENT)
        .map(|ua| Value::String(String::from_utf8_lossy(ua.as_bytes()).into_owned()))
        .unwrap_or(Value::Null)
}

/// `domainPrefix`: the first label of the domain name
/// (`abc123.execute-api.eu-west-1.amazonaws.com` → `abc123`).
fn domain_prefix(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}
