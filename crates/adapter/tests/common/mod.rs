//! Harness: the real `rouse-adapter` binary in front of the fixture web app,
//! talking to a minimal Runtime API written here (or to rouse's own).

#![allow(dead_code)] // each test binary uses a different subset

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// Long enough for a cold python start on a busy 2-core machine.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The fixture web app (see its docstring for its endpoints).
pub(crate) fn echo_app() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo.py")
}

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// What the adapter posted to the Runtime API.
#[derive(Debug)]
pub(crate) enum Posted {
    Response {
        id: String,
        headers: HeaderMap,
        body: Bytes,
        trailers: Option<HeaderMap>,
    },
    Error {
        id: String,
        error_type: String,
        body: Value,
    },
    InitError {
        error_type: String,
        body: Value,
    },
}

impl Posted {
    /// The body of a `/response`, failing on anything else.
    pub(crate) fn response_body(self) -> Bytes {
        match self {
            Posted::Response { body, .. } => body,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// The buffered result as JSON.
    pub(crate) fn result(self) -> Value {
        let body = self.response_body();
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("result is not JSON ({e}): {body:?}"))
    }
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<(String, Bytes)>>,
    posted: mpsc::UnboundedSender<Posted>,
}

/// A minimal Runtime API: `next` hands out queued events, everything the
/// runtime posts is recorded.
pub(crate) struct TestApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, Bytes)>,
    posted: mpsc::UnboundedReceiver<Posted>,
    server: JoinHandle<()>,
    next_id: u32,
}

impl TestApi {
    pub(crate) async fn start() -> TestApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (posted_tx, posted_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(events_rx),
            posted: posted_tx,
        });
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(req, &shared).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestApi {
            addr,
            events: events_tx,
            posted: posted_rx,
            server,
            next_id: 0,
        }
    }

    pub(crate) fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event and returns its request id.
    pub(crate) fn push(&mut self, event: &Value) -> String {
        self.next_id += 1;
        let id = format!("req-{}", self.next_id);
        let _ = self
            .events
            .send((id.clone(), Bytes::from(event.to_string())));
        id
    }

    /// The next thing the runtime posted.
    pub(crate) async fn posted(&mut self) -> Posted {
        tokio::time::timeout(WAIT, self.posted.recv())
            .await
            .expect("the adapter posted nothing in time")
            .expect("server gone")
    }

    /// Queues `event` and waits for what the adapter posts about it.
    pub(crate) async fn invoke(&mut self, event: &Value) -> Posted {
        let id = self.push(event);
        let posted = self.posted().await;
        match &posted {
            Posted::Response { id: got, .. } | Posted::Error { id: got, .. } => {
                assert_eq!(*got, id, "answer for another invocation")
            }
            Posted::InitError { .. } => {}
        }
        posted
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return status(StatusCode::NOT_FOUND);
    };
    if req.method() == Method::GET && rest == "invocation/next" {
        let next = shared.events.lock().await.recv().await;
        let Some((id, payload)) = next else {
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        };
        return Response::builder()
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", id)
            .header("lambda-runtime-deadline-ms", "4102444800000")
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:web",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793",
            )
            .header("lambda-runtime-aws-tenant-id", "tenant-7")
            .body(Full::new(payload))
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR));
    }
    let (parts, body) = req.into_parts();
    let Ok(collected) = body.collect().await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let trailers = collected.trailers().cloned();
    let body = collected.to_bytes();
    let error_type = parts
        .headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let json = |body: &Bytes| serde_json::from_slice(body).unwrap_or(Value::Null);
    let posted = if rest == "init/error" {
        Posted::InitError {
            error_type,
            body: json(&body),
        }
    } else {
        match rest
            .strip_prefix("invocation/")
            .and_then(|r| r.split_once('/'))
        {
            Some((id, "response")) => Posted::Response {
                id: id.to_owned(),
                headers: parts.headers,
                body,
                trailers,
            },
            Some((id, "error")) => Posted::Error {
                id: id.to_owned(),
                error_type,
                body: json(&body),
            },
            _ => return status(StatusCode::NOT_FOUND),
        }
    };
    let _ = shared.posted.send(posted);
    status(StatusCode::ACCEPTED)
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")));
    *response.status_mut() = code;
    response
}

/// A running `rouse-adapter` (and the app it started). Runs in its own
/// process group, which is killed when this is dropped, so a failed test
/// leaves no app behind.
pub(crate) struct AdapterProcess {
    child: Child,
    pid: Option<u32>,
}

impl AdapterProcess {
    /// Starts the adapter with `args` as the app command and `env` on top of
    /// the test's environment.
    pub(crate) fn start(runtime_api: &str, port: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rouse-adapter"));
        cmd.args(args)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("PORT", port.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "web")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .envs(env.iter().copied())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().expect("start rouse-adapter");
        AdapterProcess {
            pid: child.id(),
            child,
        }
    }

    /// The adapter in front of the fixture app.
    pub(crate) fn echo(runtime_api: &str, env: &[(&str, &str)]) -> Self {
        let app = echo_app();
        let app = app.to_str().expect("utf-8 path");
        AdapterProcess::start(runtime_api, free_port(), &["python3", "-u", app], env)
    }

    /// Waits for the adapter to exit.
    pub(crate) async fn exited(&mut self) -> ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the adapter did not exit in time")
            .expect("wait")
    }
}

impl Drop for AdapterProcess {
    fn drop(&mut self) {
        // The group outlives an adapter that already exited if its app did not.
        if let Some(pid) = self.pid {
            let group = nix::unistd::Pid::from_raw(-(pid as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// The first 16 bytes of a PNG file plus every byte value: not UTF-8.
pub(crate) fn png_bytes() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR".to_vec();
    png.extend(0..=255u8);
    png
}

/// The event a front end of `shape` sends for this request (built by
/// rouse's own forward conversion, which the events crate checks against
/// real events).
pub(crate) fn event(
    shape: rouse_events::Shape,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Value {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (target, None),
    };
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    let request = rouse_events::HttpRequest {
        method: method.parse().expect("method"),
        path: path.to_owned(),
        query,
        version: http::Version::HTTP_11,
        headers: map,
        body: Bytes::copy_from_slice(body),
        source_ip: [203, 0, 113, 7].into(),
    };
    let context = rouse_events::RequestContext {
        stage: "prod".into(),
        request_id: "front-end-request-1".into(),
        time_epoch_ms: 1_700_000_000_000,
        account_id: "123456789012".into(),
        api_id: "a1b2c3".into(),
        domain_name: "a1b2c3.execute-api.us-east-1.amazonaws.com".into(),
        region: "us-east-1".into(),
        function_name: "web".into(),
        ..rouse_events::RequestContext::default()
    };
    rouse_events::to_event(shape, &request, &context)
}

pub(crate) const ALL_SHAPES: [rouse_events::Shape; 5] = [
    rouse_events::Shape::RestV1,
    rouse_events::Shape::HttpApiV2,
    rouse_events::Shape::Alb { multi_value: false },
    rouse_events::Shape::Alb { multi_value: true },
    rouse_events::Shape::FunctionUrl,
];

/// What the echo app reported about the request it got, read back through
/// rouse's own result conversion.
pub(crate) fn echoed(
    shape: rouse_events::Shape,
    result: &[u8],
) -> (rouse_events::HttpResponse, Value) {
    let response = rouse_events::from_result(shape, result)
        .unwrap_or_else(|e| panic!("{shape:?}: {e}: {}", String::from_utf8_lossy(result)));
    let doc = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response, doc)
}
