//! Test helpers: a minimal HTTP client playing the runtime, and a harness
//! that runs the real bootstraps against an endpoint.

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper_util::rt::TokioIo;
use rouse_runtime_api::{Invocation, Outcome, RuntimeEndpoint};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Every wait in the tests is bounded by this, so a hang fails fast.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

pub(crate) async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut).await.expect("timed out")
}

/// A response as the runtime sees it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub(crate) async fn send<B>(addr: SocketAddr, req: Request<B>) -> Reply
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    let req = Request::get(path)
        .header("host", "runtime")
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, req).await
}

pub(crate) async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut req = Request::post(path).header("host", "runtime");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(addr, req.body(Full::new(body.into())).unwrap()).await
}

pub(crate) async fn next(addr: SocketAddr) -> Reply {
    get(addr, "/2018-06-01/runtime/invocation/next").await
}

pub(crate) async fn respond(addr: SocketAddr, id: &str, body: &'static str) -> Reply {
    post(
        addr,
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[("content-type", "application/json")],
        body,
    )
    .await
}

/// A request body fed frame by frame from the test.
pub(crate) struct ChannelBody(pub mpsc::Receiver<Frame<Bytes>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

pub(crate) fn deadline_in(secs: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    (now + Duration::from_secs(secs)).as_millis() as u64
}

pub(crate) fn invocation(id: &str, payload: &'static str) -> Invocation {
    Invocation {
        invoked_function_arn: "arn:aws:lambda:us-east-1:012345678912:function:fn".into(),
        ..Invocation::new(id, Bytes::from_static(payload.as_bytes()), deadline_in(30))
    }
}

/// The body of a buffered response, or a panic naming what came instead.
pub(crate) fn response_body(outcome: Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Response { body, .. } => serde_json::from_slice(&body).expect("JSON response"),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// `error_type` and parsed body of an error outcome.
pub(crate) fn error_outcome(outcome: Outcome) -> (String, serde_json::Value) {
    match outcome {
        Outcome::Error { error_type, body } => (
            error_type,
            serde_json::from_slice(&body).expect("JSON error body"),
        ),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Lang {
    Python,
    Node,
    Ruby,
}

/// A real bootstrap process talking to its own endpoint.
pub(crate) struct Instance {
    pub endpoint: RuntimeEndpoint,
    pub child: Child,
    _runtime_dir: tempfile::TempDir,
}

pub(crate) fn fixtures(lang: Lang) -> PathBuf {
    let sub = match lang {
        Lang::Python => "python",
        Lang::Node => "node",
        Lang::Ruby => "ruby",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

/// Starts `python3 bootstrap.py` / `node bootstrap.js` / `ruby bootstrap.rb` for `handler` with the
/// Lambda environment. Stdout is piped (to check what the runtime prints);
/// stderr goes to the test output.
pub(crate) async fn start(lang: Lang, handler: &str) -> Instance {
    let endpoint = RuntimeEndpoint::bind().await.unwrap();
    let runtime_dir = tempfile::tempdir().unwrap();
    rouse_runtime_api::write_bootstraps(runtime_dir.path()).unwrap();
    let (program, script) = match lang {
        Lang::Python => ("python3", rouse_runtime_api::PYTHON_BOOTSTRAP_FILE),
        Lang::Node => ("node", rouse_runtime_api::NODE_BOOTSTRAP_FILE),
        Lang::Ruby => ("ruby", rouse_runtime_api::RUBY_BOOTSTRAP_FILE),
    };
    let task_root = fixtures(lang);
    let child = Command::new(program)
        .arg(runtime_dir.path().join(script))
        .current_dir(&task_root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", endpoint.runtime_api())
        .env("_HANDLER", handler)
        .env("LAMBDA_TASK_ROOT", &task_root)
        .env("AWS_LAMBDA_FUNCTION_NAME", "test-fn")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test-fn")
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]0123456789abcdef",
        )
        // Keeps Python from writing __pycache__ into the fixtures.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Instance {
        endpoint,
        child,
        _runtime_dir: runtime_dir,
    }
}

impl Instance {
    /// Waits for init, failing the test if it failed.
    pub(crate) async fn ready(&self) {
        within(self.endpoint.initialized())
            .await
            .expect("runtime init failed");
    }

    pub(crate) async fn invoke(&self, invocation: Invocation) -> Outcome {
        within(self.endpoint.invoke(invocation)).await
    }

    /// Waits for the process to exit and returns its status code.
    pub(crate) async fn exit_code(&mut self) -> Option<i32> {
        within(self.child.wait()).await.unwrap().code()
    }
}
