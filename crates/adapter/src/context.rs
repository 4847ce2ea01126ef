//! The `x-amzn-lambda-context` and `x-amzn-request-context` headers: what the
//! app would otherwise have no way to see (request id, deadline, caller
//! identity), in the JSON shape AWS Lambda Web Adapter gives apps, so an app
//! written for it reads them unchanged.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};

use crate::runtime::Invocation;

const LAMBDA_CONTEXT: HeaderName = HeaderName::from_static("x-amzn-lambda-context");
pub(crate) const REQUEST_CONTEXT: HeaderName = HeaderName::from_static("x-amzn-request-context");
const TENANT_ID: HeaderName = HeaderName::from_static("x-amz-tenant-id");

/// The function's facts from Lambda's environment, read once at start.
pub(crate) fn env_config(var: impl Fn(&str) -> Option<String>) -> Value {
    let text = |name: &str| var(name).unwrap_or_default();
    json!({
        "function_name": text("AWS_LAMBDA_FUNCTION_NAME"),
        "memory": text("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").parse::<u64>().unwrap_or(0),
        "version": text("AWS_LAMBDA_FUNCTION_VERSION"),
        "log_stream": text("AWS_LAMBDA_LOG_STREAM_NAME"),
        "log_group": text("AWS_LAMBDA_LOG_GROUP_NAME"),
    })
}

/// Adds what every request to the app carries about its invocation:
/// `x-amzn-lambda-context`, and `x-amz-tenant-id` when Lambda named a tenant.
pub(crate) fn insert_invocation_headers(
    headers: &mut HeaderMap,
    invocation: &Invocation,
    env_config: &Value,
) {
    if let Some(value) = lambda_context(invocation, env_config) {
        headers.insert(LAMBDA_CONTEXT, value);
    }
    if let Some(value) = invocation
        .tenant_id
        .as_deref()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        headers.insert(TENANT_ID, value);
    }
}

/// `x-amzn-lambda-context` for one invocation. Client context and Cognito
/// identity arrive as JSON text and are embedded as JSON (`null` when
/// absent or unreadable).
fn lambda_context(invocation: &Invocation, env_config: &Value) -> Option<HeaderValue> {
    let embedded = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(Value::Null)
    };
    let context = json!({
        "request_id": invocation.request_id,
        "deadline": invocation.deadline_ms,
        "invoked_function_arn": invocation.function_arn,
        "xray_trace_id": invocation.trace_id,
        "client_context": embedded(&invocation.client_context),
        "identity": embedded(&invocation.cognito_identity),
        "env_config": env_config,
    });
    header_value(&context)
}

/// `x-amzn-request-context`: the event's `requestContext`, as sent.
pub(crate) fn request_context(event: &Value) -> Option<HeaderValue> {
    event.get("requestContext").and_then(header_value)
}

/// JSON as a header value. serde_json escapes control characters, so this
/// fails only for values no header can carry; such a header is left out.
fn header_value(value: &Value) -> Option<HeaderValue> {
    HeaderValue::from_bytes(value.to_string().as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn lambda_context_json() {
        let invocation = Invocation {
            request_id: "req-1".into(),
            deadline_ms: 1_700_000_000_000,
            function_arn: "arn:aws:lambda:us-east-1:1:function:web".into(),
            trace_id: Some("Root=1-abc".into()),
            client_context: Some(r#"{"custom":{"k":"v"}}"#.into()),
            cognito_identity: Some("not json".into()),
            tenant_id: None,
            event: Bytes::new(),
        };
        let env = env_config(|name| match name {
            "AWS_LAMBDA_FUNCTION_NAME" => Some("web".into()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("512".into()),
            _ => None,
        });
        let header = lambda_context(&invocation, &env).expect("header");
        let parsed: Value = serde_json::from_slice(header.as_bytes()).expect("json");
        assert_eq!(
            parsed,
            json!({
                "request_id": "req-1",
                "deadline": 1_700_000_000_000u64,
                "invoked_function_arn": "arn:aws:lambda:us-east-1:1:function:web",
                "xray_trace_id": "Root=1-abc",
                "client_context": {"custom": {"k": "v"}},
                "identity": null,
                "env_config": {"function_name": "web", "memory": 512, "version": "",
                    "log_stream": "", "log_group": ""},
            })
        );
    }

    #[test]
    fn request_context_is_the_events_own() {
        let event = json!({"requestContext": {"requestId": "r\n1", "stage": "dev"}});
        let header = request_context(&event).expect("header");
        let parsed: Value = serde_json::from_slice(header.as_bytes()).expect("json");
        assert_eq!(parsed, event["requestContext"]);
        assert!(request_context(&json!({})).is_none());
    }
}
