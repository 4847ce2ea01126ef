//! `rouse-adapter` against a minimal Runtime API written in the test: every
//! event shape, binary bodies, repeated headers and cookies, base-path
//! removal, pass-through, streaming, readiness, and the app crashing.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{echoed, event, png_bytes, AdapterProcess, Posted, TestApi, ALL_SHAPES};
use rouse_events::Shape;
use serde_json::{json, Value};

fn header_values(doc: &Value, name: &str) -> Vec<String> {
    doc["headers"][name]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Each shape reaches the app as the request it describes, with the Lambda
/// and request context headers, and the answer comes back in the shape's
/// own result format.
#[tokio::test]
async fn every_event_shape_reaches_the_app() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(&api.runtime_api(), &[]);
    for shape in ALL_SHAPES {
        let ev = event(
            shape,
            "POST",
            "/pets/7?tag=a%20b",
            &[
                ("host", "api.example.com"),
                ("content-type", "application/json"),
                ("x-trace", "t1"),
            ],
            br#"{"name":"rex"}"#,
        );
        let posted = api.invoke(&ev).await;
        let Posted::Response { id, body, .. } = posted else {
            panic!("{shape:?}: {posted:?}");
        };
        let result: Value = serde_json::from_slice(&body).expect("json result");
        match shape {
            Shape::RestV1 => assert!(result["multiValueHeaders"].is_object(), "{result}"),
            Shape::Alb { multi_value: true } => {
                assert_eq!(result["statusDescription"], "200 OK");
                assert!(result["multiValueHeaders"].is_object(), "{result}");
            }
            Shape::Alb { multi_value: false } => assert!(result["headers"].is_object()),
            Shape::HttpApiV2 | Shape::FunctionUrl => assert!(result["cookies"].is_array()),
        }
        let (response, doc) = echoed(shape, &body);
        assert_eq!(response.status, 200, "{shape:?}");
        assert_eq!(doc["method"], "POST", "{shape:?}");
        assert_eq!(doc["target"], "/pets/7?tag=a%20b", "{shape:?}");
        assert_eq!(
            STANDARD
                .decode(doc["body_b64"].as_str().unwrap_or_default())
                .ok(),
            Some(br#"{"name":"rex"}"#.to_vec()),
            "{shape:?}"
        );
        assert_eq!(header_values(&doc, "host"), ["api.example.com"]);
        assert_eq!(header_values(&doc, "x-trace"), ["t1"]);
        assert_eq!(header_values(&doc, "x-amz-tenant-id"), ["tenant-7"]);
        let lambda: Value =
            serde_json::from_str(&header_values(&doc, "x-amzn-lambda-context")[0]).expect("json");
        assert_eq!(lambda["request_id"], id.as_str());
        assert_eq!(lambda["env_config"]["function_name"], "web");
        let context: Value =
            serde_json::from_str(&header_values(&doc, "x-amzn-request-context")[0]).expect("json");
        assert_eq!(context, ev["requestContext"], "{shape:?}");
    }
}

/// PNG bytes travel base64 in the event and come back base64 in the result.
#[tokio::test]
async fn binary_bodies_both_ways() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(&api.runtime_api(), &[]);
    let png = png_bytes();
    for shape in ALL_SHAPES {
        let ev = event(
            shape,
            "POST",
            "/mirror",
            &[("content-type", "image/png")],
            &png,
        );
        assert_eq!(ev["isBase64Encoded"], true);
        let body = api.invoke(&ev).await.response_body();
        let result: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(result["isBase64Encoded"], true, "{shape:?}");
        let (response, _) = echoed(shape, &body);
        assert_eq!(response.headers["content-type"], "image/png");
        assert_eq!(&response.body[..], &png[..], "{shape:?}");
    }
}

/// Repeated request headers reach the app with every value the shape
/// carries; Set-Cookie and repeated response headers come back in each
/// shape's own way.
#[tokio::test]
async fn repeated_headers_and_cookies() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(&api.runtime_api(), &[]);
    for shape in ALL_SHAPES {
        let ev = event(
            shape,
            "GET",
            "/headers",
            &[("x-multi", "a"), ("x-multi", "b"), ("cookie", "s=1; t=2")],
            b"",
        );
        let (_, doc) = echoed(shape, &api.invoke(&ev).await.response_body());
        let expected: &[&str] = match shape {
            Shape::RestV1 | Shape::Alb { multi_value: true } => &["a", "b"],
            Shape::Alb { multi_value: false } => &["b"],
            Shape::HttpApiV2 | Shape::FunctionUrl => &["a,b"],
        };
        assert_eq!(header_values(&doc, "x-multi"), expected, "{shape:?}");
        assert_eq!(header_values(&doc, "cookie"), ["s=1; t=2"], "{shape:?}");

        let ev = event(shape, "GET", "/cookies", &[], b"");
        let result = api.invoke(&ev).await.result();
        let cookies = ["a=1; Path=/", "b=2; HttpOnly"];
        match shape {
            Shape::RestV1 | Shape::Alb { multi_value: true } => {
                assert_eq!(result["multiValueHeaders"]["set-cookie"], json!(cookies));
                assert_eq!(
                    result["multiValueHeaders"]["x-multi"],
                    json!(["one", "two"])
                );
            }
            Shape::Alb { multi_value: false } => {
                assert_eq!(result["headers"]["set-cookie"], cookies[1]);
            }
            Shape::HttpApiV2 | Shape::FunctionUrl => {
                assert_eq!(result["cookies"], json!(cookies), "{shape:?}");
                assert_eq!(result["headers"]["x-multi"], "one,two");
                assert!(result["headers"].get("set-cookie").is_none());
            }
        }
    }
}

#[tokio::test]
async fn base_path_is_removed() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(
        &api.runtime_api(),
        &[("ROUSE_ADAPTER_REMOVE_BASE_PATH", "/api")],
    );
    let cases = [
        ("/api/pets?x=1", "/pets?x=1"),
        ("/api", "/"),
        ("/apis/pets", "/apis/pets"),
    ];
    for (sent, seen) in cases {
        let ev = event(Shape::HttpApiV2, "GET", sent, &[], b"");
        let (_, doc) = echoed(Shape::HttpApiV2, &api.invoke(&ev).await.response_body());
        assert_eq!(doc["target"], seen, "{sent}");
    }
}

/// SQS, S3 and schedule events are not HTTP: the app gets them as a JSON
/// POST on the pass-through path and its JSON answer is the result.
#[tokio::test]
async fn non_http_events_pass_through() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(&api.runtime_api(), &[]);
    let events = [
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": "hello"}]}),
        json!({"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "a.png"}}}]}),
        json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
    ];
    for ev in events {
        let result = api.invoke(&ev).await.result();
        assert_eq!(result, json!({ "received": ev }));
    }

    // An answer that is not JSON becomes `null`.
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(
        &api.runtime_api(),
        &[("ROUSE_ADAPTER_PASS_THROUGH_PATH", "/events/text")],
    );
    let result = api.invoke(&json!({"Records": []})).await.result();
    assert_eq!(result, Value::Null);
}

/// The app dying mid-request fails that invocation with
/// `Runtime.ExitError`, and the adapter exits so Lambda starts afresh.
#[tokio::test]
async fn app_crash_mid_invoke_is_reported() {
    let mut api = TestApi::start().await;
    let mut adapter = AdapterProcess::echo(&api.runtime_api(), &[]);
    // A healthy request first: the crash must not be mistaken for a start failure.
    let ok = api
        .invoke(&event(Shape::HttpApiV2, "GET", "/", &[], b""))
        .await;
    assert!(matches!(ok, Posted::Response { .. }), "{ok:?}");

    let posted = api
        .invoke(&event(Shape::HttpApiV2, "GET", "/crash", &[], b""))
        .await;
    let Posted::Error {
        id,
        error_type,
        body,
    } = posted
    else {
        panic!("expected an error, got {posted:?}");
    };
    assert_eq!(error_type, "Runtime.ExitError");
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert_eq!(
        body["errorMessage"],
        format!("RequestId: {id} Error: Runtime exited with error: exit status 3")
    );
    let status = adapter.exited().await;
    assert!(!status.success(), "{status:?}");
}

/// An app that exits before it listens fails init.
#[tokio::test]
async fn app_exit_during_init_is_reported() {
    let mut api = TestApi::start().await;
    let mut adapter = AdapterProcess::echo(&api.runtime_api(), &[("EXIT_AT_START", "2")]);
    match api.posted().await {
        Posted::InitError { error_type, body } => {
            assert_eq!(error_type, "Runtime.ExitError");
            assert_eq!(
                body["errorMessage"],
                "Runtime exited with error: exit status 2"
            );
        }
        other => panic!("expected init/error, got {other:?}"),
    }
    assert!(!adapter.exited().await.success());
}

/// A command that cannot start is an init error too.
#[tokio::test]
async fn a_missing_app_is_an_init_error() {
    let mut api = TestApi::start().await;
    let mut adapter = AdapterProcess::start(
        &api.runtime_api(),
        common::free_port(),
        &["/nonexistent/server"],
        &[],
    );
    match api.posted().await {
        Posted::InitError { error_type, body } => {
            assert_eq!(error_type, "Runtime.InvalidEntrypoint");
            let message = body["errorMessage"].as_str().unwrap_or_default();
            assert!(message.contains("/nonexistent/server"), "{message}");
        }
        other => panic!("expected init/error, got {other:?}"),
    }
    assert!(!adapter.exited().await.success());
}

/// `response_stream`: the prelude, eight NULs, then the body as the app
/// sent it, posted with the streaming response mode.
#[tokio::test]
async fn response_streaming_for_function_urls() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(
        &api.runtime_api(),
        &[("ROUSE_ADAPTER_INVOKE_MODE", "response_stream")],
    );
    let posted = api
        .invoke(&event(Shape::FunctionUrl, "GET", "/stream", &[], b""))
        .await;
    let Posted::Response {
        headers,
        body,
        trailers,
        ..
    } = posted
    else {
        panic!("{posted:?}");
    };
    assert_eq!(
        headers["lambda-runtime-function-response-mode"],
        "streaming"
    );
    assert_eq!(
        headers["content-type"],
        rouse_events::STREAMING_CONTENT_TYPE
    );
    assert_eq!(headers["transfer-encoding"], "chunked");
    let split = body
        .windows(8)
        .position(|w| w == [0u8; 8])
        .expect("prelude end");
    let prelude: Value = serde_json::from_slice(&body[..split]).expect("prelude json");
    assert_eq!(prelude["statusCode"], 200);
    assert_eq!(prelude["headers"]["content-type"], "text/plain");
    assert!(prelude["headers"].get("transfer-encoding").is_none());
    assert_eq!(&body[split + 8..], b"part 0\npart 1\npart 2\n");
    assert!(
        trailers.is_none_or(|t| t.get("lambda-runtime-function-error-type").is_none()),
        "no error trailers on success"
    );
}

/// With a readiness path the first event waits for a 2xx from it; the app
/// then stays warm across invocations.
#[tokio::test]
async fn readiness_path_and_warm_reuse() {
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::echo(
        &api.runtime_api(),
        &[
            ("ROUSE_ADAPTER_READINESS_PATH", "/healthz"),
            ("READY_DELAY", "0.3"),
        ],
    );
    let mut pids = Vec::new();
    for _ in 0..3 {
        let (_, doc) = echoed(
            Shape::HttpApiV2,
            &api.invoke(&event(Shape::HttpApiV2, "GET", "/", &[], b""))
                .await
                .response_body(),
        );
        pids.push(doc["pid"].clone());
    }
    assert!(pids[0].is_number());
    assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
}

/// Without a command the adapter only waits for an app started otherwise.
#[tokio::test]
async fn an_app_started_otherwise() {
    let port = common::free_port();
    let mut app = tokio::process::Command::new("python3")
        .arg(common::echo_app())
        .env("PORT", port.to_string())
        .env("READY_DELAY", "0.2")
        .kill_on_drop(true)
        .spawn()
        .expect("start app");
    let mut api = TestApi::start().await;
    let _adapter = AdapterProcess::start(&api.runtime_api(), port, &[], &[]);
    let (response, doc) = echoed(
        Shape::RestV1,
        &api.invoke(&event(Shape::RestV1, "DELETE", "/x", &[], b""))
            .await
            .response_body(),
    );
    assert_eq!(response.status, 200);
    assert_eq!(doc["method"], "DELETE");
    let _ = app.kill().await;
}

/// On a managed runtime the adapter is the exec wrapper and gets that
/// runtime's command line as arguments: it must ignore them.
#[tokio::test]
async fn as_exec_wrapper_the_arguments_are_not_the_app() {
    let mut api = TestApi::start().await;
    let app = format!("python3 -u {}", common::echo_app().display());
    let _adapter = AdapterProcess::start(
        &api.runtime_api(),
        common::free_port(),
        &["/var/runtime/bootstrap", "--not-the-app"],
        &[
            (
                "AWS_LAMBDA_EXEC_WRAPPER",
                env!("CARGO_BIN_EXE_rouse-adapter"),
            ),
            ("ROUSE_ADAPTER_COMMAND", &app),
        ],
    );
    let (response, doc) = echoed(
        Shape::HttpApiV2,
        &api.invoke(&event(Shape::HttpApiV2, "GET", "/wrapped", &[], b""))
            .await
            .response_body(),
    );
    assert_eq!(response.status, 200);
    assert_eq!(doc["target"], "/wrapped");
}
