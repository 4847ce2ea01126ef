//! A Lambda function on the official `lambda_runtime` crate; the same binary
//! runs on AWS Lambda (`provided.al2023`) and on rouse.
//!
//! Called through an HTTP route it gets an API Gateway event (REST API
//! payload v1 or HTTP API payload v2) and answers with an API Gateway
//! response; invoked directly it gets any JSON event and answers with plain
//! JSON. The events are read as plain JSON to keep the build small.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

/// Process-wide, so it counts the calls one warm instance has served.
static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let count = INVOCATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let pid = std::process::id();
    let (payload, context) = event.into_parts();
    println!("invocation {count} in pid {pid}");

    let mut summary = json!({
        "count": count,
        "pid": pid,
        "requestId": context.request_id,
    });
    if payload.get("version").and_then(Value::as_str) == Some("2.0") {
        summary["shape"] = json!("v2");
        summary["version"] = payload["version"].clone();
        summary["routeKey"] = payload["routeKey"].clone();
        summary["rawPath"] = payload["rawPath"].clone();
        summary["rawQueryString"] = payload["rawQueryString"].clone();
        summary["method"] = payload["requestContext"]["http"]["method"].clone();
        summary["pathParameters"] = payload["pathParameters"].clone();
        summary["body"] = payload["body"].clone();
    } else if payload.get("httpMethod").is_some() {
        summary["shape"] = json!("v1");
        summary["httpMethod"] = payload["httpMethod"].clone();
        summary["resource"] = payload["resource"].clone();
        summary["path"] = payload["path"].clone();
        summary["pathParameters"] = payload["pathParameters"].clone();
        summary["queryStringParameters"] = payload["queryStringParameters"].clone();
        summary["body"] = payload["body"].clone();
    } else {
        summary["functionName"] = json!(context.env_config.function_name);
        summary["event"] = payload;
        return Ok(summary);
    }
    Ok(json!({
        "statusCode": 200,
        "headers": { "Content-Type": "application/json", "X-Handler": "rust" },
        "body": summary.to_string(),
    }))
}
