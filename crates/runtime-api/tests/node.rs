//! The real Node bootstrap (`node bootstrap.js`) against the endpoint.

mod common;

use common::*;
use rouse_runtime_api::Invocation;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn async_handler_round_trips() {
    let instance = start(Lang::Node, "app.asyncEcho").await;
    instance.ready().await;
    let outcome = instance
        .invoke(invocation("js-1", r#"{"hello":"world"}"#))
        .await;
    assert_eq!(
        response_body(outcome),
        serde_json::json!({"echo": {"hello": "world"}})
    );
}

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
async fn module_state_persists_across_invokes() {
    let instance = start(Lang::Node, "app.counter").await;
    instance.ready().await;
    for expected in 1..=3 {
        let outcome = instance
            .invoke(invocation(&format!("count-{expected}"), "{}"))
            .await;
        assert_eq!(
            response_body(outcome),
            serde_json::json!({ "count": expected })
        );
    }
}

#[tokio::test]
async fn async_throw_is_an_error_outcome() {
    let instance = start(Lang::Node, "app.asyncBoom").await;
    instance.ready().await;
    let (error_type, body) = error_outcome(
        instance
            .invoke(invocation("js-err", r#"{"why":"testing"}"#))
            .await,
    );
    assert_eq!(error_type, "Runtime.Unhandled");
    assert_eq!(body["errorType"], "TypeError");
    assert_eq!(body["errorMessage"], "boom: testing");
    // Lambda's Node runtime calls the stack `trace`.
    let trace = body["trace"].as_array().expect("trace list");
    assert!(
        trace
            .iter()
            .any(|line| line.as_str().unwrap().contains("app.js")),
        "{trace:?}"
    );
    // The runtime survives it.
    let (_, again) = error_outcome(
        instance
            .invoke(invocation("js-err-2", r#"{"why":"again"}"#))
            .await,
    );
    assert_eq!(again["errorMessage"], "boom: again");
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
async fn missing_module_is_an_import_error_at_init() {
    let mut instance = start(Lang::Node, "nope.handler").await;
    let failure = within(instance.endpoint.initialized()).await.unwrap_err();
    assert_eq!(failure.error_type, "Runtime.ImportModuleError");
    let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(body["errorType"], "Runtime.ImportModuleError");
    assert_eq!(body["errorMessage"], "Error: Cannot find module 'nope'");
    assert_ne!(instance.exit_code().await, Some(0));
}

#[tokio::test]
async fn missing_handler_is_handler_not_found_at_init() {
    let mut instance = start(Lang::Node, "app.missing").await;
    let failure = within(instance.endpoint.initialized()).await.unwrap_err();
    assert_eq!(failure.error_type, "Runtime.HandlerNotFound");
    let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(
        body["errorMessage"],
        "app.missing is undefined or not exported"
    );
    assert_ne!(instance.exit_code().await, Some(0));
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
async fn stdout_carries_only_the_handlers_output() {
    let mut instance = start(Lang::Node, "app.logs").await;
    let stdout = instance.child.stdout.take().unwrap();
    instance.ready().await;
    assert_eq!(
        response_body(instance.invoke(invocation("log-1", "{}")).await),
        "done"
    );
    let mut lines = BufReader::new(stdout).lines();
    let first = within(lines.next_line()).await.unwrap();
    assert_eq!(first.as_deref(), Some("hello from handler"));
    instance.child.start_kill().unwrap();
    assert_eq!(within(lines.next_line()).await.unwrap(), None);
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
