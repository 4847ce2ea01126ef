//! The real Node bootstrap (`node bootstrap.js`) against the endpoint: what
//! only it does (what every runtime does is in `languages.rs`).

mod common;

use common::*;
use rouse_runtime_api::Invocation;

#[tokio::test]
async fn callback_handler_round_trips() {
    let instance = start(Lang::Node, "app.callbackEcho").await;
    instance.ready().await;
    // Twice: the second proves the runtime loops after waiting for the empty event loop.
    for id in ["cb-1", "cb-2"] {
        let outcome = instance.invoke(invocation(id, r#"{"n":1}"#)).await;
        assert_eq!(
            response_body(outcome),
            serde_json::json!({"echo": {"n": 1}, "style": "callback"})
        );
    }
}

#[tokio::test]
async fn callback_error_is_an_error_outcome() {
    let instance = start(Lang::Node, "app.callbackBoom").await;
    instance.ready().await;
    let (error_type, body) = error_outcome(instance.invoke(invocation("cb-err", "{}")).await);
    assert_eq!(error_type, "Runtime.Unhandled");
    assert_eq!(body["errorType"], "Error");
    assert_eq!(body["errorMessage"], "callback boom");
}

#[tokio::test]
async fn context_fields_and_trace_id() {
    let instance = start(Lang::Node, "app.contextInfo").await;
    instance.ready().await;
    let traced = Invocation {
        trace_id: Some("Root=1-abc;Parent=def;Sampled=1".into()),
        cognito_identity: Some(
            r#"{"cognitoIdentityId":"cid","cognitoIdentityPoolId":"pool"}"#.into(),
        ),
        ..invocation("ctx-1", "{}")
    };
    let body = response_body(instance.invoke(traced).await);
    assert_eq!(body["awsRequestId"], "ctx-1");
    assert_eq!(body["functionName"], "test-fn");
    assert_eq!(body["functionVersion"], "$LATEST");
    assert_eq!(body["memoryLimitInMB"], "128");
    assert_eq!(
        body["invokedFunctionArn"],
        "arn:aws:lambda:us-east-1:012345678912:function:fn"
    );
    assert_eq!(body["logGroupName"], "/aws/lambda/test-fn");
    assert_eq!(
        body["logStreamName"],
        "2025/01/01/[$LATEST]0123456789abcdef"
    );
    assert_eq!(body["callbackWaitsForEmptyEventLoop"], true);
    let remaining = body["remaining"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 30_000, "{remaining}");
    assert_eq!(body["traceEnv"], "Root=1-abc;Parent=def;Sampled=1");
    assert_eq!(body["identity"]["cognitoIdentityId"], "cid");

    let body = response_body(instance.invoke(invocation("ctx-2", "{}")).await);
    assert!(
        body.get("traceEnv").is_none(),
        "trace id must not leak into the next invoke"
    );
}

#[tokio::test]
async fn esm_module_in_a_subdirectory() {
    let instance = start(Lang::Node, "sub/esm.handler").await;
    instance.ready().await;
    let body = response_body(instance.invoke(invocation("esm-1", r#"{"x":1}"#)).await);
    assert_eq!(body, serde_json::json!({"esm": true, "event": {"x": 1}}));
}

#[tokio::test]
async fn nested_handler_path() {
    let instance = start(Lang::Node, "app.nested.handler").await;
    instance.ready().await;
    assert_eq!(
        response_body(instance.invoke(invocation("nested", "{}")).await),
        "nested"
    );
}

#[tokio::test]
async fn sync_handler_returns_its_value() {
    let instance = start(Lang::Node, "app.sync").await;
    instance.ready().await;
    let body = response_body(instance.invoke(invocation("sync", r#"[1]"#)).await);
    assert_eq!(body, serde_json::json!({"sync": true, "event": [1]}));
}

#[tokio::test]
async fn uncaught_exception_fails_the_invoke_and_exits() {
    let mut instance = start(Lang::Node, "app.uncaught").await;
    instance.ready().await;
    let (error_type, body) = error_outcome(instance.invoke(invocation("uncaught", "{}")).await);
    assert_eq!(error_type, "Runtime.Unhandled");
    assert_eq!(body["errorType"], "RangeError");
    assert_eq!(body["errorMessage"], "thrown outside the handler");
    assert_eq!(instance.exit_code().await, Some(129));
}

#[tokio::test]
async fn unhandled_rejection_fails_the_invoke_and_exits() {
    let mut instance = start(Lang::Node, "app.unhandledRejection").await;
    instance.ready().await;
    let (_, body) = error_outcome(instance.invoke(invocation("rejected", "{}")).await);
    assert_eq!(body["errorType"], "Runtime.UnhandledPromiseRejection");
    assert_eq!(body["errorMessage"], "Error: nobody awaited this");
    assert_eq!(instance.exit_code().await, Some(129));
}
