//! The real Python bootstrap (`python3 bootstrap.py`) against the endpoint:
//! what only it does (what every runtime does is in `languages.rs`).

mod common;

use common::*;
use rouse_runtime_api::Invocation;

#[tokio::test]
async fn syntax_error_and_bad_handler_names_fail_init() {
    for (handler, expected) in [
        ("broken_syntax.handler", "Runtime.UserCodeSyntaxError"),
        ("nodot", "Runtime.MalformedHandlerName"),
        ("app.not_callable", "Runtime.HandlerNotFound"),
    ] {
        let mut instance = start(Lang::Python, handler).await;
        let failure = within(instance.endpoint.initialized()).await.unwrap_err();
        assert_eq!(failure.error_type, expected, "{handler}");
        assert_ne!(instance.exit_code().await, Some(0));
    }
}

#[tokio::test]
async fn context_fields_and_trace_id() {
    let instance = start(Lang::Python, "app.context_info").await;
    instance.ready().await;
    let traced = Invocation {
        trace_id: Some("Root=1-abc;Parent=def;Sampled=1".into()),
        cognito_identity: Some(
            r#"{"cognitoIdentityId":"cid","cognitoIdentityPoolId":"pool"}"#.into(),
        ),
        client_context: Some(r#"{"client":{"app_title":"demo"},"custom":{},"env":{}}"#.into()),
        ..invocation("ctx-1", "{}")
    };
    let body = response_body(instance.invoke(traced).await);
    assert_eq!(body["aws_request_id"], "ctx-1");
    assert_eq!(body["function_name"], "test-fn");
    assert_eq!(body["function_version"], "$LATEST");
    assert_eq!(body["memory_limit_in_mb"], "128");
    assert_eq!(
        body["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:012345678912:function:fn"
    );
    assert_eq!(body["log_group_name"], "/aws/lambda/test-fn");
    assert_eq!(
        body["log_stream_name"],
        "2025/01/01/[$LATEST]0123456789abcdef"
    );
    let remaining = body["remaining"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 30_000, "{remaining}");
    assert_eq!(body["trace_env"], "Root=1-abc;Parent=def;Sampled=1");
    assert_eq!(body["cognito_identity_id"], "cid");
    assert_eq!(body["client_app_title"], "demo");

    // The trace id is per invocation: gone when the next one has none.
    let body = response_body(instance.invoke(invocation("ctx-2", "{}")).await);
    assert_eq!(body["trace_env"], serde_json::Value::Null);
}

#[tokio::test]
async fn handler_in_a_subdirectory() {
    let instance = start(Lang::Python, "sub/mod.handler").await;
    instance.ready().await;
    let body = response_body(instance.invoke(invocation("sub-1", "{}")).await);
    assert_eq!(body, serde_json::json!({"from": "sub/mod"}));
}

#[tokio::test]
async fn unserialisable_result_is_a_marshal_error() {
    let instance = start(Lang::Python, "app.unserialisable").await;
    instance.ready().await;
    let (error_type, body) = error_outcome(instance.invoke(invocation("marshal", "{}")).await);
    assert_eq!(error_type, "Runtime.MarshalError");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("Unable to marshal response"));
}
