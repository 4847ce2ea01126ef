//! The real Ruby bootstrap (`ruby bootstrap.rb`) against the endpoint: what
//! only it does (what every runtime does is in `languages.rs`).

mod common;

use common::*;
use rouse_runtime_api::Invocation;
use serde_json::json;

#[tokio::test]
async fn syntax_errors_and_bad_handler_names_fail_init() {
    for (handler, expected) in [
        ("broken_syntax.handler", "Runtime.UserCodeSyntaxError"),
        ("nodot", "Runtime.MalformedHandlerName"),
        ("app.Nope::Class.handler", "Runtime.HandlerNotFound"),
        ("sub/shop.Sub::Shop.missing", "Runtime.HandlerNotFound"),
    ] {
        let mut instance = start(Lang::Ruby, handler).await;
        let failure = within(instance.endpoint.initialized()).await.unwrap_err();
        assert_eq!(failure.error_type, expected, "{handler}");
        let body: serde_json::Value = serde_json::from_slice(&failure.body).unwrap();
        assert_eq!(body["errorType"], expected, "{handler}");
        assert!(body["stackTrace"].is_array(), "{handler}: {body}");
        assert_ne!(instance.exit_code().await, Some(0));
    }
}

#[tokio::test]
async fn context_fields_and_trace_id() {
    let instance = start(Lang::Ruby, "app.context_info").await;
    instance.ready().await;
    let traced = Invocation {
        trace_id: Some("Root=1-abc;Parent=def;Sampled=1".into()),
        cognito_identity: Some(r#"{"cognitoIdentityId":"cid"}"#.into()),
        client_context: Some(r#"{"client":{"app_title":"demo"}}"#.into()),
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
    assert!(body["deadline_ms"].as_i64().unwrap() > 0, "{body}");
    let remaining = body["remaining"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 30_000, "{remaining}");
    assert_eq!(body["trace_env"], "Root=1-abc;Parent=def;Sampled=1");
    assert_eq!(body["identity"]["cognitoIdentityId"], "cid");
    assert_eq!(body["client_context"]["client"]["app_title"], "demo");

    // The trace id is per invocation: gone when the next one has none.
    let body = response_body(instance.invoke(invocation("ctx-2", "{}")).await);
    assert_eq!(body["trace_env"], serde_json::Value::Null);
}

#[tokio::test]
async fn module_class_method_in_a_subdirectory() {
    let instance = start(Lang::Ruby, "sub/shop.Sub::Shop.order").await;
    instance.ready().await;
    let body = response_body(
        instance
            .invoke(invocation("sub-1", r#"{"item":"tea"}"#))
            .await,
    );
    assert_eq!(body, json!({"from": "Sub::Shop", "item": "tea"}));
}

#[tokio::test]
async fn scalar_events_and_results_round_trip() {
    let instance = start(Lang::Ruby, "app.scalar").await;
    instance.ready().await;
    for (n, payload) in ["null", "\"text\"", "42", "[1,2]"].iter().enumerate() {
        let body = response_body(
            instance
                .invoke(invocation(&format!("scalar-{n}"), payload))
                .await,
        );
        let expected: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(body, expected, "{payload}");
    }
}

#[tokio::test]
async fn unserialisable_result_is_a_marshal_error() {
    let instance = start(Lang::Ruby, "app.unserialisable").await;
    instance.ready().await;
    let (error_type, body) = error_outcome(instance.invoke(invocation("marshal", "{}")).await);
    assert_eq!(error_type, "Runtime.MarshalError");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("Unable to marshal response"));
    // The runtime carries on with the next invocation.
    let (error_type, _) = error_outcome(instance.invoke(invocation("marshal-2", "{}")).await);
    assert_eq!(error_type, "Runtime.MarshalError");
}
