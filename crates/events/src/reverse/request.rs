//! Event → the HTTP request it describes.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, COOKIE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Version};
use serde_json::{Map, Value};

use super::EventError;
use crate::fields::{self, Headers, Object};
use crate::query::{self, Part};
use crate::{HttpRequest, ResponseError, Shape};

type Result<T> = std::result::Result<T, EventError>;

/// Rebuilds the HTTP request an event of `shape` (see [`super::detect`])
/// describes.
///
/// - `path` and `query` come out raw and valid in a URI: REST's `path`,
///   ALB's `path` and payload 2.0's `rawPath` / `rawQueryString` keep their
///   percent-encoding; characters a URI cannot hold (a space or `é` in a path
///   a front end decoded) are encoded. REST query parameters arrive decoded
///   and are re-encoded; ALB's arrive raw and are joined as they are.
///   Map-shaped queries come back in key order, since JSON objects carry no
///   order between keys.
/// - Headers: every value of `multiValueHeaders` when the event has them,
///   else `headers`. Payload 2.0's comma-joined values stay one header and
///   its `cookies` become one `Cookie` header joined with `; `.
///   `Content-Length` and `Transfer-Encoding` are dropped: the body is
///   complete and whoever sends it frames it.
/// - The body is base64-decoded when `isBase64Encoded`.
/// - `version` is the protocol the client spoke to the front end (HTTP/1.1
///   when not reported) and `source_ip` its address, from the request
///   context or, for ALB, the first `X-Forwarded-For` entry; `0.0.0.0`
///   when unknown.
pub fn from_event(shape: Shape, event: &Value) -> Result<HttpRequest> {
    let obj = event
        .as_object()
        .ok_or_else(|| malformed("an event is a JSON object"))?;
    let mut req = match shape {
        Shape::RestV1 => rest(obj)?,
        Shape::HttpApiV2 | Shape::FunctionUrl => v2(obj)?,
        Shape::Alb { .. } => alb(obj)?,
    };
    req.headers.remove(CONTENT_LENGTH);
    req.headers.remove(TRANSFER_ENCODING);
    req.body = fields::body(obj, fields::base64_flag(obj).map_err(reason)?).map_err(reason)?;
    Ok(req)
}

/// REST (payload 1.0).
fn rest(obj: &Object) -> Result<HttpRequest> {
    let context = optional_object(obj, "requestContext")?;
    let query = match non_empty_map(obj, "multiValueQueryStringParameters")? {
        Some(_) => pairs(obj, "multiValueQueryStringParameters")?,
        None => pairs(obj, "queryStringParameters")?,
    };
    let query = join_query(
        query
            .iter()
            .map(|(key, value)| (query::encode_component(key), query::encode_component(value))),
    );
    let source_ip = context
        .and_then(|c| c.get("identity"))
        .and_then(|identity| identity.get("sourceIp"));
    Ok(HttpRequest {
        method: method(required_str(obj, "httpMethod")?)?,
        path: path(required_str(obj, "path")?),
        query,
        version: version(context.and_then(|c| c.get("protocol"))),
        headers: proxy_headers(obj)?,
        body: Bytes::new(),
        source_ip: ip(source_ip),
    })
}

/// HTTP API payload 2.0 and Function URLs.
fn v2(obj: &Object) -> Result<HttpRequest> {
    let context = optional_object(obj, "requestContext")?;
    let http = context
        .and_then(|c| c.get("http"))
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("requestContext.http is missing"))?;
    let raw_path = match obj.get("rawPath") {
        Some(Value::String(raw)) => raw.as_str(),
        _ => required_str(http, "path")?,
    };
    let query = match obj.get("rawQueryString") {
        Some(Value::String(raw)) if !raw.is_empty() => Some(query::sanitize(raw, Part::Query)),
        Some(Value::String(_)) => None,
        // Without the raw string, the decoded parameters are the next best.
        _ => join_query(
            pairs(obj, "queryStringParameters")?
                .iter()
                .map(|(k, v)| (query::encode_component(k), query::encode_component(v))),
        ),
    };
    let mut headers = to_map(fields::single_headers(obj, "headers").map_err(reason)?);
    let cookies = fields::string_list(obj, "cookies").map_err(reason)?;
    if !cookies.is_empty() {
        let joined = HeaderValue::from_str(&cookies.join("; "))
            .map_err(|_| malformed("a cookie holds characters a header cannot carry"))?;
        headers.insert(COOKIE, joined);
    }
    Ok(HttpRequest {
        method: method(required_str(http, "method")?)?,
        path: path(raw_path),
        query,
        version: version(http.get("protocol")),
        headers,
        body: Bytes::new(),
        source_ip: ip(http.get("sourceIp")),
    })
}

/// ALB target groups: the query is passed raw, as the client sent it.
fn alb(obj: &Object) -> Result<HttpRequest> {
    let query = match non_empty_map(obj, "multiValueQueryStringParameters")? {
        Some(_) => pairs(obj, "multiValueQueryStringParameters")?,
        None => pairs(obj, "queryStringParameters")?,
    };
    let query = join_query(query.into_iter().map(|(key, value)| {
        (
            query::sanitize(&key, Part::Query),
            query::sanitize(&value, Part::Query),
        )
    }));
    let headers = proxy_headers(obj)?;
    let forwarded_for = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.split(',').next())
        .map(|first| Value::String(first.trim().to_owned()));
    Ok(HttpRequest {
        method: method(required_str(obj, "httpMethod")?)?,
        path: path(required_str(obj, "path")?),
        query,
        version: Version::HTTP_11,
        headers,
        body: Bytes::new(),
        source_ip: ip(forwarded_for.as_ref()),
    })
}

/// `multiValueHeaders` when present (it has every value), else `headers`.
fn proxy_headers(obj: &Object) -> Result<HeaderMap> {
    let headers = match non_empty_map(obj, "multiValueHeaders")? {
        Some(_) => fields::multi_headers(obj, "multiValueHeaders"),
        None => fields::single_headers(obj, "headers"),
    };
    headers.map(to_map).map_err(reason)
}

fn to_map(headers: Headers) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        map.append(name, value);
    }
    map
}

/// A query map as `(key, value)` pairs; list values (the multi-value maps)
/// give one pair each.
fn pairs(obj: &Object, key: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (name, values) in optional_object(obj, key)?.into_iter().flatten() {
        let values = match values {
            Value::Array(values) => values.as_slice(),
            single => std::slice::from_ref(single),
        };
        for value in values {
            match value {
                Value::Null => {}
                Value::String(text) => out.push((name.clone(), text.clone())),
                Value::Number(n) => out.push((name.clone(), n.to_string())),
                Value::Bool(b) => out.push((name.clone(), b.to_string())),
                _ => return Err(malformed(format!("{key}.{name} must be a string"))),
            }
        }
    }
    Ok(out)
}

fn join_query(pairs: impl Iterator<Item = (String, String)>) -> Option<String> {
    let joined = pairs
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    (!joined.is_empty()).then_some(joined)
}

fn path(raw: &str) -> String {
    if raw.is_empty() {
        "/".to_owned()
    } else if raw.starts_with('/') {
        query::sanitize(raw, Part::Path)
    } else {
        query::sanitize(&format!("/{raw}"), Part::Path)
    }
}

fn method(name: &str) -> Result<Method> {
    Method::from_bytes(name.as_bytes()).map_err(|_| malformed(format!("invalid method {name:?}")))
}

fn version(protocol: Option<&Value>) -> Version {
    match protocol.and_then(Value::as_str) {
        Some("HTTP/1.0") => Version::HTTP_10,
        Some("HTTP/2.0" | "HTTP/2") => Version::HTTP_2,
        Some("HTTP/3.0" | "HTTP/3") => Version::HTTP_3,
        _ => Version::HTTP_11,
    }
}

fn ip(value: Option<&Value>) -> IpAddr {
    value
        .and_then(Value::as_str)
        .and_then(|text| text.parse().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn required_str<'a>(obj: &'a Object, key: &str) -> Result<&'a str> {
    match obj.get(key) {
        Some(Value::String(text)) => Ok(text),
        _ => Err(malformed(format!("{key} must be a string"))),
    }
}

/// An object-valued key; absent or `null` is `None`.
fn optional_object<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a Map<String, Value>>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(malformed(format!("{key} must be an object"))),
    }
}

fn non_empty_map<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a Map<String, Value>>> {
    Ok(optional_object(obj, key)?.filter(|map| !map.is_empty()))
}

fn malformed(why: impl Into<String>) -> EventError {
    EventError::Malformed(why.into())
}

/// The shared field readers report in the response error type; the reason
/// text applies to events as well.
fn reason(err: ResponseError) -> EventError {
    match err {
        ResponseError::Malformed(why) => EventError::Malformed(why),
    }
}
