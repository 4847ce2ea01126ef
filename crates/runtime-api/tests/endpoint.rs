//! The endpoint driven by a hyper client playing the runtime.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use rouse_runtime_api::{
    Invocation, Outcome, RuntimeEndpoint, ERROR_BODY_TRAILER, ERROR_TYPE_TRAILER, MAX_PAYLOAD_SIZE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const INVALID_REQUEST_ID: &str =
    r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#;

#[tokio::test]
async fn next_delivers_the_event_and_response_completes_the_invoke() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    assert_eq!(endpoint.runtime_api(), addr.to_string());
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        let answer = post(
            addr,
            "/2018-06-01/runtime/invocation/req-1/response",
            &[("content-type", "text/plain")],
            "result",
        )
        .await;
        (event, answer)
    });
    let invocation = Invocation {
        content_type: Some("application/x-custom".into()),
        invoked_function_arn: "arn:aws:lambda:us-east-1:012345678912:function:fn".into(),
        trace_id: Some(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
        ),
        client_context: Some(r#"{"client":{"app_title":"t"},"custom":{},"env":{}}"#.into()),
        cognito_identity: Some(
            r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#.into(),
        ),
        ..Invocation::new("req-1", Bytes::from_static(b"{\"a\":1}"), 1_700_000_000_123)
    };
    let outcome = within(endpoint.invoke(invocation)).await;
    let (event, answer) = within(runtime).await.unwrap();

    assert_eq!(event.status, StatusCode::OK);
    assert_eq!(&event.body[..], b"{\"a\":1}");
    assert_eq!(event.header("lambda-runtime-aws-request-id"), Some("req-1"));
    assert_eq!(
        event.header("lambda-runtime-deadline-ms"),
        Some("1700000000123")
    );
    assert_eq!(
        event.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:us-east-1:012345678912:function:fn")
    );
    assert_eq!(
        event.header("lambda-runtime-trace-id"),
        Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    );
    assert_eq!(
        event.header("lambda-runtime-client-context"),
        Some(r#"{"client":{"app_title":"t"},"custom":{},"env":{}}"#)
    );
    assert_eq!(
        event.header("lambda-runtime-cognito-identity"),
        Some(r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#)
    );
    assert_eq!(event.header("content-type"), Some("application/x-custom"));

    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(&answer.body[..], br#"{"status":"OK"}"#);
    match outcome {
        Outcome::Response { body, content_type } => {
            assert_eq!(&body[..], b"result");
            assert_eq!(content_type.as_deref(), Some("text/plain"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn optional_headers_are_omitted_and_content_type_defaults_to_json() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        respond(addr, "plain", "null").await;
        event
    });
    let outcome =
        within(endpoint.invoke(Invocation::new("plain", Bytes::from_static(b"{}"), 5))).await;
    let event = within(runtime).await.unwrap();
    assert_eq!(event.header("content-type"), Some("application/json"));
    assert_eq!(event.header("lambda-runtime-deadline-ms"), Some("5"));
    for absent in [
        "lambda-runtime-invoked-function-arn",
        "lambda-runtime-trace-id",
        "lambda-runtime-client-context",
        "lambda-runtime-cognito-identity",
    ] {
        assert!(
            event.headers.get(absent).is_none(),
            "{absent} should be omitted"
        );
    }
    assert_eq!(response_body(outcome), serde_json::Value::Null);
}

#[tokio::test]
async fn initialized_resolves_on_the_first_next() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let early = tokio::time::timeout(Duration::from_millis(100), endpoint.initialized()).await;
    assert!(
        early.is_err(),
        "init must not be over before the runtime calls next"
    );
    // The long poll stays open (no invocation yet), but init is over.
    let poll = tokio::spawn(next(addr));
    within(endpoint.initialized()).await.unwrap();
    poll.abort();
}

#[tokio::test]
async fn double_response_and_unknown_id_are_400() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        let id = event
            .header("lambda-runtime-aws-request-id")
            .unwrap()
            .to_string();
        let wrong = respond(addr, "not-the-id", "1").await;
        let first = respond(addr, &id, "2").await;
        let second = respond(addr, &id, "3").await;
        let error_after = post(
            addr,
            &format!("/2018-06-01/runtime/invocation/{id}/error"),
            &[],
            "{}",
        )
        .await;
        (wrong, first, second, error_after)
    });
    let outcome = within(endpoint.invoke(invocation("id-1", "{}"))).await;
    let (wrong, first, second, error_after) = within(runtime).await.unwrap();
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(&wrong.body[..], INVALID_REQUEST_ID.as_bytes());
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(&second.body[..], INVALID_REQUEST_ID.as_bytes());
    assert_eq!(error_after.status, StatusCode::BAD_REQUEST);
    assert_eq!(response_body(outcome), serde_json::json!(2));
}

#[tokio::test]
async fn next_while_an_invoke_is_outstanding_is_403() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        let second = next(addr).await;
        let id = event
            .header("lambda-runtime-aws-request-id")
            .unwrap()
            .to_string();
        respond(addr, &id, "{}").await;
        second
    });
    let outcome = within(endpoint.invoke(invocation("busy", "{}"))).await;
    let second = within(runtime).await.unwrap();
    assert_eq!(second.status, StatusCode::FORBIDDEN);
    assert_eq!(second.json()["errorType"], "InvalidStateTransition");
    assert!(matches!(outcome, Outcome::Response { .. }));
}

#[tokio::test]
async fn response_before_any_next_is_403() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let reply = within(respond(endpoint.addr(), "whatever", "{}")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["errorType"], "InvalidStateTransition");
}

#[tokio::test]
async fn oversized_response_is_413_and_the_next_invoke_works() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let size = MAX_PAYLOAD_SIZE as usize + 1;
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        let id = event
            .header("lambda-runtime-aws-request-id")
            .unwrap()
            .to_string();
        let big = post(
            addr,
            &format!("/2018-06-01/runtime/invocation/{id}/response"),
            &[],
            vec![b'x'; size],
        )
        .await;
        let event = next(addr).await;
        let id = event
            .header("lambda-runtime-aws-request-id")
            .unwrap()
            .to_string();
        // Exactly at the limit is still fine.
        let max = post(
            addr,
            &format!("/2018-06-01/runtime/invocation/{id}/response"),
            &[],
            vec![b'y'; MAX_PAYLOAD_SIZE as usize],
        )
        .await;
        (big, max)
    });
    let first = within(endpoint.invoke(invocation("big", "{}"))).await;
    let second = within(endpoint.invoke(invocation("max", "{}"))).await;
    let (big, max) = within(runtime).await.unwrap();
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        &big.body[..],
        br#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#
    );
    assert!(
        matches!(first, Outcome::ResponseTooLarge { size: s } if s == size as u64),
        "{first:?}"
    );
    assert_eq!(max.status, StatusCode::ACCEPTED);
    match second {
        Outcome::Response { body, .. } => assert_eq!(body.len() as u64, MAX_PAYLOAD_SIZE),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn error_types_are_sanitised_and_bodies_kept() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let cases = [
        (Some("Function.MyError"), "Function.MyError"),
        (Some("Function.my_error"), "Function.Unknown"),
        (Some("Runtime.Unhandled"), "Runtime.Unhandled"),
        (Some("unhandled"), "Runtime.Unknown"),
        (None, "Runtime.Unknown"),
    ];
    let body = r#"{"errorMessage":"bad","errorType":"ValueError","stackTrace":["a"]}"#;
    for (i, (header, expected)) in cases.into_iter().enumerate() {
        let id = format!("err-{i}");
        let path = format!("/2018-06-01/runtime/invocation/{id}/error");
        let runtime = tokio::spawn(async move {
            next(addr).await;
            let mut headers = vec![("content-type", "application/json")];
            if let Some(value) = header {
                headers.push(("lambda-runtime-function-error-type", value));
            }
            post(addr, &path, &headers, body).await
        });
        let outcome = within(endpoint.invoke(invocation(&id, "{}"))).await;
        let reply = within(runtime).await.unwrap();
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert_eq!(&reply.body[..], br#"{"status":"OK"}"#);
        match outcome {
            Outcome::Error {
                error_type,
                body: got,
            } => {
                assert_eq!(error_type, expected, "header {header:?}");
                assert_eq!(&got[..], body.as_bytes());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn error_cause_is_stripped_from_the_body() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        next(addr).await;
        post(
            addr,
            "/2018-06-01/runtime/invocation/cause/error",
            &[
                ("content-type", "application/vnd.aws.lambda.error.cause+json"),
                ("lambda-runtime-function-error-type", "Runtime.Unhandled"),
            ],
            r#"{"errorMessage":"m","errorType":"E","stackTrace":[],"errorCause":{"exceptions":[]}}"#,
        )
        .await
    });
    let (error_type, body) =
        error_outcome(within(endpoint.invoke(invocation("cause", "{}"))).await);
    assert_eq!(within(runtime).await.unwrap().status, StatusCode::ACCEPTED);
    assert_eq!(error_type, "Runtime.Unhandled");
    assert_eq!(
        body,
        serde_json::json!({"errorMessage":"m","errorType":"E","stackTrace":[]})
    );
}

#[tokio::test]
async fn init_error_fails_initialized_and_the_waiting_invoke() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let waiting = async { endpoint.invoke(invocation("first", "{}")).await };
    let runtime = async {
        // Give the invoke time to queue, so it is the one that fails.
        tokio::time::sleep(Duration::from_millis(50)).await;
        post(
            addr,
            "/2018-06-01/runtime/init/error",
            &[("lambda-runtime-function-error-type", "Runtime.ImportModuleError")],
            r#"{"errorMessage":"Unable to import module 'app'","errorType":"Runtime.ImportModuleError"}"#,
        )
        .await
    };
    let (outcome, reply) = within(async { tokio::join!(waiting, runtime) }).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let failure = within(endpoint.initialized()).await.unwrap_err();
    assert_eq!(failure.error_type, "Runtime.ImportModuleError");
    assert_eq!(failure.content_type, "application/json");
    assert!(std::str::from_utf8(&failure.body)
        .unwrap()
        .contains("Unable to import module"));
    let (error_type, body) = error_outcome(outcome);
    assert_eq!(error_type, "Runtime.ImportModuleError");
    assert_eq!(body["errorMessage"], "Unable to import module 'app'");

    // Later invokes fail at once too; the runtime can neither init/error again nor call next.
    let (error_type, _) = error_outcome(within(endpoint.invoke(invocation("later", "{}"))).await);
    assert_eq!(error_type, "Runtime.ImportModuleError");
    let again = within(post(addr, "/2018-06-01/runtime/init/error", &[], "x")).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    let next_reply = within(next(addr)).await;
    assert_eq!(next_reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn init_error_with_a_text_body_is_octet_stream() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let reply = within(post(
        addr,
        "/2018-06-01/runtime/init/error",
        &[],
        "not json",
    ))
    .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let failure = within(endpoint.initialized()).await.unwrap_err();
    assert_eq!(failure.error_type, "Runtime.Unknown");
    assert_eq!(failure.content_type, "application/octet-stream");
    assert_eq!(&failure.body[..], b"not json");
    // The invoker still gets JSON.
    let (_, body) = error_outcome(within(endpoint.invoke(invocation("x", "{}"))).await);
    assert_eq!(body["errorMessage"], "not json");
}

#[tokio::test]
async fn init_error_after_init_is_403() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let poll = tokio::spawn(next(addr));
    within(endpoint.initialized()).await.unwrap();
    let reply = within(post(addr, "/2018-06-01/runtime/init/error", &[], "{}")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["errorType"], "InvalidStateTransition");
    poll.abort();
}

#[tokio::test]
async fn invalid_response_mode_is_400() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        next(addr).await;
        post(
            addr,
            "/2018-06-01/runtime/invocation/mode/response",
            &[("lambda-runtime-function-response-mode", "sideways")],
            "{}",
        )
        .await
    });
    let outcome = within(endpoint.invoke(invocation("mode", "{}"))).await;
    let reply = within(runtime).await.unwrap();
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        &reply.body[..],
        br#"{"errorMessage":"Invalid function response mode","errorType":"InvalidFunctionResponseMode"}"#
    );
    let (error_type, body) = error_outcome(outcome);
    assert_eq!(error_type, "Runtime.InvalidResponseModeHeader");
    assert_eq!(body["errorType"], "Runtime.InvalidResponseModeHeader");
}

/// Starts a streamed `/response` for `id`; returns the frame sender and the
/// task that resolves to the runtime's reply.
fn stream_response(
    addr: std::net::SocketAddr,
    id: &str,
) -> (mpsc::Sender<Frame<Bytes>>, tokio::task::JoinHandle<Reply>) {
    let (tx, rx) = mpsc::channel(4);
    let req = Request::post(format!("/2018-06-01/runtime/invocation/{id}/response"))
        .header("host", "runtime")
        .header("content-type", "text/event-stream")
        .header("lambda-runtime-function-response-mode", "streaming")
        .header("transfer-encoding", "chunked")
        .header(
            "trailer",
            "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
        )
        .body(ChannelBody(rx))
        .unwrap();
    (tx, tokio::spawn(send(addr, req)))
}

async fn streaming_outcome(
    endpoint: &RuntimeEndpoint,
    id: &str,
) -> rouse_runtime_api::ResponseStream {
    match within(endpoint.invoke(invocation(id, "{}"))).await {
        Outcome::Streaming { content_type, body } => {
            assert_eq!(content_type.as_deref(), Some("text/event-stream"));
            body
        }
        other => panic!("expected a stream, got {other:?}"),
    }
}

#[tokio::test]
async fn streamed_response_arrives_chunk_by_chunk() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let poll = tokio::spawn(next(addr));
    let invoke = streaming_outcome(&endpoint, "s1");
    let runtime = async {
        within(poll).await.unwrap();
        stream_response(addr, "s1")
    };
    let (mut body, (tx, reply)) = tokio::join!(invoke, runtime);
    tx.send(Frame::data(Bytes::from_static(b"data: one\n\n")))
        .await
        .unwrap();
    // The first chunk is readable while the runtime has not finished.
    let first = within(body.frame()).await.unwrap().unwrap();
    assert_eq!(
        first.into_data().unwrap(),
        Bytes::from_static(b"data: one\n\n")
    );
    tx.send(Frame::data(Bytes::from_static(b"data: two\n\n")))
        .await
        .unwrap();
    drop(tx);
    let rest = within(body.collect()).await.unwrap();
    assert!(rest.trailers().is_none());
    assert_eq!(rest.to_bytes(), Bytes::from_static(b"data: two\n\n"));
    let reply = within(reply).await.unwrap();
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    // The invocation is over: the next one goes through.
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        assert_eq!(event.header("lambda-runtime-aws-request-id"), Some("after"));
        respond(addr, "after", "1").await
    });
    assert_eq!(
        response_body(within(endpoint.invoke(invocation("after", "{}"))).await),
        1
    );
    within(runtime).await.unwrap();
}

#[tokio::test]
async fn streamed_response_with_error_trailers() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let poll = tokio::spawn(next(addr));
    let invoke = streaming_outcome(&endpoint, "s2");
    let runtime = async {
        within(poll).await.unwrap();
        stream_response(addr, "s2")
    };
    let (body, (tx, reply)) = tokio::join!(invoke, runtime);
    tx.send(Frame::data(Bytes::from_static(b"partial")))
        .await
        .unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert(
        "lambda-runtime-function-error-type",
        "Function.StreamFailed".parse().unwrap(),
    );
    trailers.insert(
        "lambda-runtime-function-error-body",
        "eyJlcnJvck1lc3NhZ2UiOiJ4In0=".parse().unwrap(),
    );
    tx.send(Frame::trailers(trailers)).await.unwrap();
    drop(tx);
    let collected = within(body.collect()).await.unwrap();
    let trailers = collected.trailers().expect("trailers forwarded").clone();
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"partial"));
    assert_eq!(trailers[ERROR_TYPE_TRAILER], "Function.StreamFailed");
    assert_eq!(trailers[ERROR_BODY_TRAILER], "eyJlcnJvck1lc3NhZ2UiOiJ4In0=");
    assert_eq!(within(reply).await.unwrap().status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn rust_runtime_in_body_error_becomes_trailers() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let poll = tokio::spawn(next(addr));
    let invoke = streaming_outcome(&endpoint, "s3");
    let runtime = async {
        within(poll).await.unwrap();
        stream_response(addr, "s3")
    };
    let (body, (tx, reply)) = tokio::join!(invoke, runtime);
    tx.send(Frame::data(Bytes::from_static(b"hello ")))
        .await
        .unwrap();
    tx.send(Frame::data(Bytes::from_static(
        b"Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: Ym9vbQ==\r\n",
    )))
    .await
    .unwrap();
    drop(tx);
    let collected = within(body.collect()).await.unwrap();
    let trailers = collected
        .trailers()
        .expect("in-body error as trailers")
        .clone();
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"hello "));
    assert_eq!(trailers[ERROR_TYPE_TRAILER], "Runtime.StreamError");
    assert_eq!(trailers[ERROR_BODY_TRAILER], "Ym9vbQ==");
    assert_eq!(within(reply).await.unwrap().status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn broken_response_body_is_a_truncated_error() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        next(addr).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                b"POST /2018-06-01/runtime/invocation/cut/response HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten..",
            )
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply).await;
    });
    let (error_type, body) = error_outcome(within(endpoint.invoke(invocation("cut", "{}"))).await);
    within(runtime).await.unwrap();
    assert_eq!(error_type, "Runtime.TruncatedResponse");
    assert_eq!(body["errorType"], "Runtime.TruncatedResponse");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let missing = within(get(addr, "/2018-06-01/runtime/nothing")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("content-type"), Some("application/json"));
    assert!(missing.json()["errorMessage"].is_string());
    assert!(missing.json()["errorType"].is_string());
    let wrong = within(get(addr, "/2018-06-01/runtime/init/error")).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong.json()["errorType"].is_string());
    let ping = within(get(addr, "/2018-06-01/ping")).await;
    assert_eq!(ping.status, StatusCode::OK);
}

#[tokio::test]
async fn abandoned_invoke_is_withdrawn_before_delivery() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    // The caller gives up before any runtime asked for work.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        endpoint.invoke(invocation("stale", "{}")),
    )
    .await;
    assert!(gave_up.is_err());
    let runtime = tokio::spawn(async move {
        let event = next(addr).await;
        let id = event
            .header("lambda-runtime-aws-request-id")
            .unwrap()
            .to_string();
        respond(addr, &id, "{}").await;
        id
    });
    let outcome = within(endpoint.invoke(invocation("fresh", "{}"))).await;
    assert_eq!(within(runtime).await.unwrap(), "fresh");
    assert!(matches!(outcome, Outcome::Response { .. }));
}

#[tokio::test]
async fn concurrent_invokes_take_turns() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let runtime = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let event = next(addr).await;
            let id = event
                .header("lambda-runtime-aws-request-id")
                .unwrap()
                .to_string();
            let reply = post(
                addr,
                &format!("/2018-06-01/runtime/invocation/{id}/response"),
                &[],
                format!("\"{id}\""),
            )
            .await;
            assert_eq!(reply.status, StatusCode::ACCEPTED);
            seen.push(id);
        }
        seen
    });
    let (a, b) = within(async {
        tokio::join!(
            endpoint.invoke(invocation("a", "{}")),
            endpoint.invoke(invocation("b", "{}"))
        )
    })
    .await;
    assert_eq!(response_body(a), "a");
    assert_eq!(response_body(b), "b");
    let mut seen = within(runtime).await.unwrap();
    seen.sort();
    assert_eq!(seen, ["a", "b"]);
}

#[tokio::test]
async fn dropping_the_endpoint_stops_the_server() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    // A long poll in flight is cut off too.
    let poll = tokio::spawn(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = Request::get("/2018-06-01/runtime/invocation/next")
            .header("host", "runtime")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        sender.send_request(req).await
    });
    within(endpoint.initialized()).await.unwrap();
    drop(endpoint);
    assert!(within(poll).await.unwrap().is_err());
    // Give the runtime a moment to close the listener.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn extension_register_stub() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let registered = within(post(
        addr,
        "/2020-01-01/extension/register",
        &[("lambda-extension-name", "ext")],
        r#"{"events":["INVOKE","SHUTDOWN"]}"#,
    ))
    .await;
    assert_eq!(registered.status, StatusCode::OK);
    let id = registered
        .header("lambda-extension-identifier")
        .unwrap()
        .to_string();
    assert!(!id.is_empty());

    let missing = within(get(addr, "/2020-01-01/extension/event/next")).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert_eq!(
        missing.json()["errorType"],
        "Extension.MissingExtensionIdentifier"
    );

    // A registered extension's event/next blocks (no events yet).
    let req = Request::get("/2020-01-01/extension/event/next")
        .header("host", "runtime")
        .header("lambda-extension-identifier", id)
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let blocked = tokio::time::timeout(Duration::from_millis(100), send(addr, req)).await;
    assert!(blocked.is_err());

    // Registration closes with init.
    let poll = tokio::spawn(next(addr));
    within(endpoint.initialized()).await.unwrap();
    let late = within(post(addr, "/2020-01-01/extension/register", &[], "{}")).await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    poll.abort();
}

#[tokio::test]
async fn a_second_waiting_next_is_403_and_the_first_still_gets_the_event() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let first = tokio::spawn(next(addr));
    within(endpoint.initialized()).await.unwrap();
    // The first poll is registered once init is over; give its call a moment
    // to reach the wait.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let thief = within(next(addr)).await;
    assert_eq!(thief.status, StatusCode::FORBIDDEN);
    assert_eq!(thief.json()["errorType"], "InvalidStateTransition");

    let invoke = endpoint.invoke(invocation("mine", r#"{"n":1}"#));
    let runtime = async {
        let event = within(first).await.unwrap();
        let id = event
            .header("lambda-runtime-aws-request-id")
            .unwrap()
            .to_string();
        respond(addr, &id, r#""answer""#).await;
        id
    };
    let (outcome, id) = tokio::join!(within(invoke), runtime);
    assert_eq!(id, "mine");
    assert_eq!(response_body(outcome), "answer");
}

#[tokio::test]
async fn a_poll_whose_connection_closed_does_not_block_the_next_one() {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let addr = endpoint.addr();
    let mut gone = tokio::net::TcpStream::connect(addr).await.unwrap();
    gone.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n")
        .await
        .unwrap();
    within(endpoint.initialized()).await.unwrap();
    drop(gone);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let poll = tokio::spawn(next(addr));
    let outcome = within(async {
        let invoke = endpoint.invoke(invocation("after", "{}"));
        let runtime = async {
            let event = within(poll).await.unwrap();
            assert_eq!(event.status, StatusCode::OK);
            respond(addr, "after", "1").await;
        };
        tokio::join!(invoke, runtime).0
    })
    .await;
    assert_eq!(response_body(outcome), serde_json::json!(1));
}

#[tokio::test]
async fn connections_the_admission_refuses_are_closed_unanswered() {
    let endpoint =
        RuntimeEndpoint::bind_admitting(rouse_runtime_api::Admission::only(|_local, _peer| false))
            .await
            .unwrap();
    let mut stream = tokio::net::TcpStream::connect(endpoint.addr())
        .await
        .unwrap();
    let _ = stream
        .write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = within(stream.read_to_end(&mut answer)).await;
    assert!(read.is_err() || answer.is_empty(), "got {answer:?}");
    // Init never ended: nobody reached the endpoint.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), endpoint.initialized())
            .await
            .is_err()
    );
}
