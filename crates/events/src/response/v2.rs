//! HTTP API and Function URL results (payload 2.0).

use bytes::Bytes;
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use serde_json::Value;

use crate::fields::{self, malformed, Result};
use crate::HttpResponse;

/// Reads a structured result, or infers one: anything that is valid JSON
/// but not an object with a `statusCode` key (a string, number, array,
/// `null`, or an object without `statusCode`) is the body of a `200`
/// `application/json` response, byte for byte as the handler returned it.
pub(super) fn parse(payload: &[u8], value: &Value) -> Result<HttpResponse> {
    let obj = match value {
        Value::Object(obj) if obj.contains_key("statusCode") => obj,
        _ => {
            let headers = vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
            return Ok(fields::finish(
                StatusCode::OK,
                headers,
                Bytes::copy_from_slice(payload),
            ));
        }
    };
    let status = fields::status(obj)?;
    // Payload 2.0 has no multiValueHeaders (lambda-http sends `{}`, which is
    // ignored); repeated values arrive comma-joined in one header.
    let mut headers = fields::single_headers(obj, "headers")?;
    for cookie in fields::string_list(obj, "cookies")? {
        let value = HeaderValue::from_bytes(cookie.as_bytes())
            .map_err(|_| malformed(format!("invalid cookie {cookie:?}")))?;
        headers.push((SET_COOKIE, value));
    }
    let body = fields::body(obj, fields::base64_flag(obj)?)?;
    Ok(fields::finish(status, headers, body))
}
