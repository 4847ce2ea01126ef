//! The adapter's direction: an event a front end sent to Lambda → the HTTP
//! request it describes, and the app's HTTP response → the Lambda result
//! that front end expects.
//!
//! `rouse-adapter` runs a web app inside a real Lambda; these functions are
//! its whole knowledge of the event shapes, kept here, pure, next to the
//! forward direction they mirror (`to_event` / `from_result`), so each
//! direction is tested against the other.

mod request;
mod response;

use std::fmt;

use serde_json::Value;

use crate::Shape;

pub use request::from_event;
pub use response::{streaming_prelude, to_result, STREAMING_CONTENT_TYPE};

/// Why an event could not become an HTTP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventError {
    /// The event is not a well-formed event of the shape it was read as; the
    /// text says what is wrong.
    Malformed(String),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed Lambda HTTP event: {why}"),
        }
    }
}

impl std::error::Error for EventError {}

/// Which HTTP front end sent `event`, or `None` for anything else (SQS, S3,
/// a schedule, a WebSocket message, a hand-made test payload), which the
/// adapter passes through to the app as it is.
///
/// - ALB: `requestContext.elb`; multi-value mode when the event carries
///   `multiValueHeaders` (the target group sends one header map or the other).
/// - Payload 2.0: `version: "2.0"` and `requestContext.http`; a Function URL
///   when the domain is `<url-id>.lambda-url.<region>.on.aws`, else HTTP API.
/// - REST (payload 1.0, also HTTP APIs configured for 1.0): `httpMethod`
///   and `path` strings and a `requestContext` object.
pub fn detect(event: &Value) -> Option<Shape> {
    let context = event.get("requestContext")?.as_object()?;
    if context.get("elb").is_some_and(Value::is_object) {
        let multi_value = event.get("multiValueHeaders").is_some_and(Value::is_object);
        return Some(Shape::Alb { multi_value });
    }
    let is_v2 = event.get("version").and_then(Value::as_str) == Some("2.0")
        && context.get("http").is_some_and(Value::is_object);
    if is_v2 {
        let domain = context
            .get("domainName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Some(if domain.contains(".lambda-url.") {
            Shape::FunctionUrl
        } else {
            Shape::HttpApiV2
        });
    }
    let is_rest = event.get("httpMethod").is_some_and(Value::is_string)
        && event.get("path").is_some_and(Value::is_string);
    is_rest.then_some(Shape::RestV1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detect_table() {
        let cases = [
            (
                json!({"httpMethod": "GET", "path": "/", "requestContext": {"stage": "dev"}}),
                Some(Shape::RestV1),
            ),
            (
                json!({"version": "1.0", "httpMethod": "GET", "path": "/", "requestContext": {}}),
                Some(Shape::RestV1),
            ),
            (
                json!({"version": "2.0", "rawPath": "/", "requestContext": {
                    "domainName": "abc.execute-api.eu-west-1.amazonaws.com", "http": {"method": "GET"}}}),
                Some(Shape::HttpApiV2),
            ),
            (
                json!({"version": "2.0", "rawPath": "/", "requestContext": {
                    "domainName": "abc.lambda-url.eu-west-1.on.aws", "http": {"method": "GET"}}}),
                Some(Shape::FunctionUrl),
            ),
            (
                json!({"httpMethod": "GET", "path": "/", "headers": {},
                    "requestContext": {"elb": {"targetGroupArn": "arn"}}}),
                Some(Shape::Alb { multi_value: false }),
            ),
            (
                json!({"httpMethod": "GET", "path": "/", "multiValueHeaders": {},
                    "requestContext": {"elb": {"targetGroupArn": "arn"}}}),
                Some(Shape::Alb { multi_value: true }),
            ),
            // Not HTTP: SQS, a schedule, a WebSocket message, odd payloads.
            (
                json!({"Records": [{"eventSource": "aws:sqs", "body": "hi"}]}),
                None,
            ),
            (
                json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
                None,
            ),
            (
                json!({"requestContext": {"routeKey": "$connect", "eventType": "CONNECT"}}),
                None,
            ),
            (json!({"version": "2.0", "requestContext": {}}), None),
            (json!({"httpMethod": "GET", "path": "/"}), None),
            (json!("GET /"), None),
            (json!([1, 2]), None),
            (Value::Null, None),
        ];
        for (event, expected) in cases {
            assert_eq!(detect(&event), expected, "{event}");
        }
    }
}
