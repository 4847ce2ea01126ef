//! Lambda result → HTTP response.

mod proxy;
mod v2;

use std::fmt;

use serde_json::Value;

use crate::{HttpResponse, Shape};

/// Why a handler's result could not become an HTTP response. The gateway
/// answers such results with `502 {"message": "Internal server error"}`, as
/// API Gateway does for a malformed Lambda proxy response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseError {
    /// The payload is not a response of the route's shape; the text says
    /// what is wrong, for the platform log.
    Malformed(String),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed Lambda proxy response: {why}"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Converts a handler's result payload into the HTTP response to send.
///
/// - REST: `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`;
///   `statusCode` is required and both header maps are merged.
/// - ALB: the same keys plus `statusDescription` (not used: the reason phrase
///   comes from the status); only `headers` is read in single-value mode and
///   only `multiValueHeaders` in multi-value mode, as ALB does.
/// - HTTP API and Function URLs: `{statusCode, headers, cookies, body,
///   isBase64Encoded}`, each cookie becoming a `Set-Cookie` header. A payload
///   that is valid JSON but not an object with `statusCode` is *inferred*:
///   `200`, `content-type: application/json`, body = the payload as returned.
///
/// Values are read the way API Gateway's JSON reader coerces them: a status
/// may be `200` or `"200"`, header values may be strings, numbers or
/// booleans, `isBase64Encoded` may be `true` or `"true"`. With
/// `isBase64Encoded` the body is base64-decoded. Invalid JSON, a missing or
/// out-of-range status, a non-string body, bad base64 and header names or
/// values HTTP cannot carry are [`ResponseError::Malformed`].
pub fn from_result(shape: Shape, payload: &[u8]) -> Result<HttpResponse, ResponseError> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| ResponseError::Malformed(format!("result is not valid JSON: {e}")))?;
    match shape {
        Shape::RestV1 => proxy::parse(&value, proxy::HeaderSource::Merged),
        Shape::Alb { multi_value: false } => proxy::parse(&value, proxy::HeaderSource::Single),
        Shape::Alb { multi_value: true } => proxy::parse(&value, proxy::HeaderSource::Multi),
        Shape::HttpApiV2 | Shape::FunctionUrl => v2::parse(payload, &value),
    }
}
