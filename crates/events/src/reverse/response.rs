//! The app's HTTP response → the Lambda result a front end expects.

use http::header::{CONNECTION, SET_COOKIE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::maps::{all_values, comma_joined, header_pairs, last_wins, Pairs};
use crate::{body, HttpResponse, Shape};

/// `Content-Type` of a streamed response that carries an HTTP response
/// (Function URLs with `InvokeMode: RESPONSE_STREAM`): the body is
/// [`streaming_prelude`] followed by the raw response bytes.
pub const STREAMING_CONTENT_TYPE: &str = "application/vnd.awslambda.http-integration-response";

/// Eight NUL bytes end the prelude of a streamed HTTP response.
const PRELUDE_END: [u8; 8] = [0; 8];

/// Builds the result payload for `response`, answering an event of `shape`;
/// `serde_json::to_vec` on it is the `/response` body.
///
/// - REST: `statusCode`, `headers` (last value of each name),
///   `multiValueHeaders` (every value; API Gateway merges the two without
///   repeating a pair), `body`, `isBase64Encoded`.
/// - ALB: the same with `statusDescription` (`"200 OK"`) and only the header
///   map the target group's mode reads.
/// - HTTP API and Function URLs: `headers` with repeats comma-joined, each
///   `Set-Cookie` as an entry of `cookies`.
///
/// The body is a string when [`crate::is_text_content`] calls it text and it
/// is UTF-8, else base64 with `isBase64Encoded: true`; an empty body is `""`.
/// `Transfer-Encoding`, `Connection` and `Keep-Alive` describe the app's
/// connection to the adapter, not the response, and are left out.
pub fn to_result(shape: Shape, response: &HttpResponse) -> Value {
    let headers = end_to_end(&response.headers);
    let (body, is_base64) = match body::encode(&response.headers, &response.body) {
        Some(body) => (body.text, body.base64),
        None => (String::new(), false),
    };
    let status = response.status.as_u16();
    match shape {
        Shape::RestV1 => json!({
            "statusCode": status,
            "headers": last_wins(&headers),
            "multiValueHeaders": all_values(&headers),
            "body": body,
            "isBase64Encoded": is_base64,
        }),
        Shape::Alb { multi_value } => {
            let (key, map) = if multi_value {
                ("multiValueHeaders", all_values(&headers))
            } else {
                ("headers", last_wins(&headers))
            };
            json!({
                "statusCode": status,
                "statusDescription": status_description(response.status),
                key: map,
                "body": body,
                "isBase64Encoded": is_base64,
            })
        }
        Shape::HttpApiV2 | Shape::FunctionUrl => {
            let (headers, cookies) = v2_headers(headers);
            json!({
                "statusCode": status,
                "headers": headers,
                "cookies": cookies,
                "body": body,
                "isBase64Encoded": is_base64,
            })
        }
    }
}

/// The start of a streamed HTTP response body: the JSON prelude
/// `{"statusCode", "headers", "cookies"}` (headers as in payload 2.0) and the
/// eight NUL bytes that end it. The raw response bytes follow it; the front
/// end strips the prelude and sends them on as they arrive.
pub fn streaming_prelude(status: StatusCode, headers: &HeaderMap) -> Vec<u8> {
    let (headers, cookies) = v2_headers(end_to_end(headers));
    let prelude = json!({
        "statusCode": status.as_u16(),
        "headers": headers,
        "cookies": cookies,
    });
    let mut out = prelude.to_string().into_bytes();
    out.extend_from_slice(&PRELUDE_END);
    out
}

/// Header pairs without the ones that only framed the app's connection.
fn end_to_end(headers: &HeaderMap) -> Pairs {
    header_pairs(headers)
        .into_iter()
        .filter(|(name, _)| {
            name != TRANSFER_ENCODING.as_str()
                && name != CONNECTION.as_str()
                && name != "keep-alive"
        })
        .collect()
}

/// Payload-2.0 headers: `Set-Cookie` values split off into `cookies`, the
/// rest comma-joined.
fn v2_headers(pairs: Pairs) -> (Map<String, Value>, Vec<Value>) {
    let (cookies, headers): (Pairs, Pairs) = pairs
        .into_iter()
        .partition(|(name, _)| name == SET_COOKIE.as_str());
    let cookies = cookies
        .into_iter()
        .map(|(_, value)| Value::String(value))
        .collect();
    (comma_joined(&headers), cookies)
}

/// `"404 Not Found"`; just the code when the status has no standard reason.
fn status_description(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}
