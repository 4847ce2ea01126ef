//! The real Python bootstrap (`python3 bootstrap.py`) against the endpoint.

mod common;

use common::*;
use rouse_runtime_api::Invocation;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn result_round_trips() {
    let instance = start(Lang::Python, "app.echo").await;
    instance.ready().await;
    let outcome = instance
        .invoke(invocation("py-1", r#"{"hello":"world","n":[1,2]}"#))
        .await;
    assert_eq!(
        response_body(outcome),
        serde_json::json!({"echo": {"hello": "world", "n": [1, 2]}})
    );
}

#[tokio::test]
async fn module_state_persists_across_invokes() {
    let instance = start(Lang::Python, "app.counter").await;
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
async fn handler_exception_is_an_error_outcome() {
    let instance = start(Lang::Python, "app.boom").await;
    instance.ready().await;
    let (error_type, body) = error_outcome(
        instance
            .invoke(invocation("py-err", r#"{"why":"testing"}"#))
            .await,
    );
    assert_eq!(error_type, "Runtime.Unhandled");
    assert_eq!(body["errorType"], "ValueError");
    assert_eq!(body["errorMessage"], "boom: testing");
    let stack = body["stackTrace"].as_array().expect("stackTrace list");
    assert!(!stack.is_empty());
    assert!(
        stack
            .iter()
            .any(|line| line.as_str().unwrap().contains("app.py")),
        "{stack:?}"
    );
    assert!(
        !stack
            .iter()
            .any(|line| line.as_str().unwrap().contains("bootstrap.py")),
        "bootstrap frames should be hidden: {stack:?}"
    );
    // The runtime survives a handler exception.
    let (_, again) = error_outcome(
        instance
            .invoke(invocation("py-err-2", r#"{"why":"again"}"#))
            .await,
    );
    assert_eq!(again["errorMessage"], "boom: again");
}

#[tokio::test]
async fn missing_module_is_an_import_error_at_init() {
    let mut instance = start(Lang::Python, "nope.handler").await;
    let failure = within(instance.endpoint.initialized()).await.unwrap_err();
    assert_eq!(failure.error_type, "Runtime.ImportModuleError");
    let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(body["errorType"], "Runtime.ImportModuleError");
    assert_eq!(
        body["errorMessage"],
        "Unable to import module 'nope': No module named 'nope'"
    );
    assert_ne!(instance.exit_code().await, Some(0));
}

#[tokio::test]
async fn missing_handler_is_handler_not_found_at_init() {
    let mut instance = start(Lang::Python, "app.missing").await;
    let failure = within(instance.endpoint.initialized()).await.unwrap_err();
    assert_eq!(failure.error_type, "Runtime.HandlerNotFound");
    let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
    assert_eq!(
        body["errorMessage"],
        "Handler 'missing' missing on module 'app'"
    );
    assert_ne!(instance.exit_code().await, Some(0));
}

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

#[tokio::test]
async fn stdout_carries_only_the_handlers_output() {
    let mut instance = start(Lang::Python, "app.prints").await;
    let stdout = instance.child.stdout.take().unwrap();
    instance.ready().await;
    let body = response_body(instance.invoke(invocation("print-1", "{}")).await);
    assert_eq!(body, "done");
    let mut lines = BufReader::new(stdout).lines();
    // Line-buffered: the print is visible while the process is still running.
    let first = within(lines.next_line()).await.unwrap();
    assert_eq!(first.as_deref(), Some("hello from handler"));
    instance.child.start_kill().unwrap();
    assert_eq!(within(lines.next_line()).await.unwrap(), None);
}
