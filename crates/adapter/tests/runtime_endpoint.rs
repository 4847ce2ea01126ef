//! `rouse-adapter` against rouse's own Runtime API (`RuntimeEndpoint`, what
//! a `provided.al2023` lambda instance talks to), in front of the Python web
//! example and the fixture app.

mod common;

use bytes::Bytes;
use common::{echoed, event, png_bytes, AdapterProcess, ALL_SHAPES, WAIT};
use http_body_util::BodyExt;
use rouse_events::Shape;
use rouse_runtime_api::{Invocation, Outcome, RuntimeEndpoint};
use serde_json::Value;

async fn invoke(endpoint: &RuntimeEndpoint, id: &str, event: &Value) -> Outcome {
    let invocation = Invocation::new(id, Bytes::from(event.to_string()), 4_102_444_800_000);
    tokio::time::timeout(WAIT, endpoint.invoke(invocation))
        .await
        .expect("no outcome in time")
}

fn response_body(outcome: Outcome) -> Bytes {
    match outcome {
        Outcome::Response { body, .. } => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The unmodified Python web example, as the acceptance asks.
#[tokio::test]
async fn python_web_example_behind_the_adapter() {
    let endpoint = RuntimeEndpoint::bind().await.expect("bind");
    let app = common::repo_root().join("examples/python-web/app.py");
    let _adapter = AdapterProcess::start(
        &endpoint.runtime_api(),
        common::free_port(),
        &["python3", "-u", app.to_str().expect("utf-8")],
        &[("GREETING", "Hello from Lambda")],
    );
    tokio::time::timeout(WAIT, endpoint.initialized())
        .await
        .expect("init in time")
        .expect("init ok");
    for (i, shape) in ALL_SHAPES.into_iter().enumerate() {
        let ev = event(shape, "POST", "/hello?x=1", &[], b"hi there");
        let body = response_body(invoke(&endpoint, &format!("req-{i}"), &ev).await);
        let (response, doc) = echoed(shape, &body);
        assert_eq!(response.status, 200, "{shape:?}");
        assert_eq!(doc["message"], "Hello from Lambda");
        assert_eq!(doc["path"], "/hello?x=1", "{shape:?}");
        assert_eq!(doc["body"], "hi there", "{shape:?}");
        // One warm process for every invocation.
        assert_eq!(doc["hits"], i + 1, "{shape:?}");
    }
}

#[tokio::test]
async fn binary_bodies_both_ways() {
    let endpoint = RuntimeEndpoint::bind().await.expect("bind");
    let _adapter = AdapterProcess::echo(&endpoint.runtime_api(), &[]);
    let png = png_bytes();
    for shape in [Shape::RestV1, Shape::HttpApiV2] {
        let ev = event(
            shape,
            "PUT",
            "/mirror",
            &[("content-type", "image/png")],
            &png,
        );
        let body = response_body(invoke(&endpoint, "req-png", &ev).await);
        let (response, _) = echoed(shape, &body);
        assert_eq!(&response.body[..], &png[..], "{shape:?}");
    }
}

#[tokio::test]
async fn app_crash_mid_invoke_is_an_exit_error() {
    let endpoint = RuntimeEndpoint::bind().await.expect("bind");
    let mut adapter = AdapterProcess::echo(&endpoint.runtime_api(), &[]);
    let ev = event(Shape::HttpApiV2, "GET", "/crash", &[], b"");
    match invoke(&endpoint, "req-crash", &ev).await {
        Outcome::Error { error_type, body } => {
            assert_eq!(error_type, "Runtime.ExitError");
            let body: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(
                body["errorMessage"],
                "RequestId: req-crash Error: Runtime exited with error: exit status 3"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(!adapter.exited().await.success());
}

#[tokio::test]
async fn app_exit_during_init_fails_init() {
    let endpoint = RuntimeEndpoint::bind().await.expect("bind");
    let _adapter = AdapterProcess::echo(&endpoint.runtime_api(), &[("EXIT_AT_START", "5")]);
    let failure = tokio::time::timeout(WAIT, endpoint.initialized())
        .await
        .expect("init outcome in time")
        .expect_err("init must fail");
    assert_eq!(failure.error_type, "Runtime.ExitError");
    let body: Value = serde_json::from_slice(&failure.body).expect("json");
    assert_eq!(
        body["errorMessage"],
        "Runtime exited with error: exit status 5"
    );
}

/// rouse's endpoint accepts the streamed response and hands it over as it
/// comes: prelude, NULs, body.
#[tokio::test]
async fn streamed_function_url_response() {
    let endpoint = RuntimeEndpoint::bind().await.expect("bind");
    let _adapter = AdapterProcess::echo(
        &endpoint.runtime_api(),
        &[("ROUSE_ADAPTER_INVOKE_MODE", "response_stream")],
    );
    let ev = event(Shape::FunctionUrl, "GET", "/stream", &[], b"");
    let Outcome::Streaming { content_type, body } = invoke(&endpoint, "req-s", &ev).await else {
        panic!("expected a streamed response");
    };
    assert_eq!(
        content_type.as_deref(),
        Some(rouse_events::STREAMING_CONTENT_TYPE)
    );
    let collected = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("stream ends")
        .expect("stream complete");
    assert!(collected.trailers().is_none());
    let bytes = collected.to_bytes();
    let split = bytes
        .windows(8)
        .position(|w| w == [0u8; 8])
        .expect("prelude end");
    let prelude: Value = serde_json::from_slice(&bytes[..split]).expect("prelude");
    assert_eq!(prelude["statusCode"], 200);
    assert_eq!(&bytes[split + 8..], b"part 0\npart 1\npart 2\n");
}
