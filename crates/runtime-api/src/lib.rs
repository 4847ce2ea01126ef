//! The AWS Lambda Runtime API (`2018-06-01`) for ONE lambda instance, and the
//! Python and Node bootstraps rouse ships inside its binary.
//!
//! Each instance gets its own [`RuntimeEndpoint`]: an HTTP/1.1 server on
//! `127.0.0.1:0` whose address goes into the instance's
//! `AWS_LAMBDA_RUNTIME_API`. A listener per instance makes the state machine
//! trivially per instance (one invocation at a time, Lambda's rule) and keeps
//! instances from seeing each other's events. The same listener answers the
//! Extensions API (`/2020-01-01/extension/…`); for now `register` and
//! `event/next` are stubs so extensions can start.
//!
//! Typical use by the pool:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use rouse_runtime_api::{Invocation, Outcome, RuntimeEndpoint};
//! let endpoint = RuntimeEndpoint::bind().await?;
//! // spawn the runtime with AWS_LAMBDA_RUNTIME_API = endpoint.runtime_api()
//! if let Err(failure) = endpoint.initialized().await {
//!     // the runtime posted init/error: report failure.body to the first caller
//! #   let _ = failure;
//! }
//! let outcome = endpoint
//!     .invoke(Invocation::new("req-1", bytes::Bytes::from_static(b"{}"), 0))
//!     .await;
//! # let _ = outcome;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod bootstraps;
mod errors;
mod extensions;
mod quickack;
mod server;
mod state;
mod stream;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use bootstraps::{
    write_bootstraps, NODE_BOOTSTRAP, NODE_BOOTSTRAP_FILE, PYTHON_BOOTSTRAP, PYTHON_BOOTSTRAP_FILE,
    RUBY_BOOTSTRAP, RUBY_BOOTSTRAP_FILE,
};
pub use errors::{
    response_too_large_body, sanitize_error_type, MAX_PAYLOAD_SIZE, MAX_STREAMED_RESPONSE_SIZE,
};
pub use stream::{ResponseStream, StreamError, ERROR_BODY_TRAILER, ERROR_TYPE_TRAILER};

use state::{InitState, Shared};

/// One event for the runtime, with what goes into the `next` headers.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id` (a uuid v4 on Lambda).
    pub request_id: String,
    /// The event, sent as the `next` body.
    pub payload: Bytes,
    /// `Content-Type` of the event; `application/json` when `None`.
    pub content_type: Option<String>,
    /// `Lambda-Runtime-Deadline-Ms`: absolute Unix epoch milliseconds.
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id` (`Root=1-…;Parent=…;Sampled=…`).
    pub trace_id: Option<String>,
    /// `Lambda-Runtime-Client-Context`: JSON, already base64-decoded.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`: JSON.
    pub cognito_identity: Option<String>,
}

impl Invocation {
    /// An invocation with the required fields; the rest can be set directly.
    pub fn new(request_id: impl Into<String>, payload: Bytes, deadline_ms: u64) -> Invocation {
        Invocation {
            request_id: request_id.into(),
            payload,
            deadline_ms,
            ..Invocation::default()
        }
    }
}

/// How an invocation ended, as far as the runtime is concerned.
#[derive(Debug)]
pub enum Outcome {
    /// A buffered `/response` (at most [`MAX_PAYLOAD_SIZE`] bytes).
    Response {
        body: Bytes,
        content_type: Option<String>,
    },
    /// A `/response` with `Lambda-Runtime-Function-Response-Mode: streaming`:
    /// the body streams as the runtime writes it; a mid-stream failure shows
    /// up as trailers (see [`ResponseStream`]). The invocation is over when
    /// the body has ended.
    Streaming {
        content_type: Option<String>,
        body: ResponseStream,
    },
    /// The function (or runtime) failed. `error_type` is sanitised (see
    /// [`sanitize_error_type`]) and meant for logs and metrics; `body` is
    /// the JSON for the caller (`{"errorMessage","errorType","stackTrace"?}`
    /// as the runtime sent it, or synthesised if it sent no JSON). Also used
    /// for protocol failures: `Runtime.TruncatedResponse`,
    /// `Runtime.InvalidResponseModeHeader`, and an init failure reported
    /// while this invocation was waiting.
    Error { error_type: String, body: Bytes },
    /// The buffered response (or error body) was `size` bytes, over
    /// [`MAX_PAYLOAD_SIZE`]; the runtime got 413. Answer the caller with
    /// `Function.ResponseSizeTooLarge` ([`response_too_large_body`]).
    ResponseTooLarge { size: u64 },
}

/// What the runtime reported with `POST /runtime/init/error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("runtime init failed ({error_type})")]
pub struct InitFailure {
    /// Sanitised `Lambda-Runtime-Function-Error-Type`.
    pub error_type: String,
    /// The body as posted (returned to the first invoker).
    pub body: Bytes,
    /// `application/json` if `body` is valid JSON, else `application/octet-stream`.
    pub content_type: String,
}

/// Which connections an endpoint serves: loopback is shared by every
/// process on the host, so an isolated instance's endpoint answers only
/// sockets its own uid created (see `rouse_sandbox::peer`). Checked once
/// per accepted connection; refused connections are closed unanswered.
#[derive(Clone)]
pub struct Admission(Option<Arc<AdmitFn>>);

type AdmitFn = dyn Fn(SocketAddr, SocketAddr) -> bool + Send + Sync;

impl Admission {
    /// Every connection (no isolation between instances).
    pub fn anyone() -> Admission {
        Admission(None)
    }

    /// Connections for which `admit(local, peer)` says yes.
    pub fn only(
        admit: impl Fn(SocketAddr, SocketAddr) -> bool + Send + Sync + 'static,
    ) -> Admission {
        Admission(Some(Arc::new(admit)))
    }

    pub(crate) fn admits(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        self.0.as_ref().is_none_or(|admit| admit(local, peer))
    }
}

/// The Runtime API endpoint of one instance. Owns the server task; dropping
/// it stops the server and closes every connection.
pub struct RuntimeEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl RuntimeEndpoint {
    /// Listens on `127.0.0.1:0` and serves anyone. Must run inside a tokio runtime.
    pub async fn bind() -> std::io::Result<RuntimeEndpoint> {
        RuntimeEndpoint::bind_admitting(Admission::anyone()).await
    }

    /// Listens on `127.0.0.1:0` and serves the connections `admission` lets in.
    pub async fn bind_admitting(admission: Admission) -> std::io::Result<RuntimeEndpoint> {
        RuntimeEndpoint::bind_on(&Handle::current(), admission)
    }

    /// Like [`RuntimeEndpoint::bind_admitting`], with the server (its
    /// listener and every connection) on the runtime `home`.
    ///
    /// An invocation made from a task on `home` is handed to the waiting
    /// `next` and answered by `/response` without leaving its thread: on a
    /// single-threaded runtime, waking the connection task and being woken
    /// by it are queue pushes rather than cross-thread wake-ups. Invocations
    /// from other runtimes still work, one wake-up each way.
    pub fn bind_on(home: &Handle, admission: Admission) -> std::io::Result<RuntimeEndpoint> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Shared::new();
        let serving = Arc::clone(&shared);
        // Registered with the reactor of the runtime that polls it.
        let server = home.spawn(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => server::serve(listener, serving, admission).await,
                Err(err) => tracing::warn!(%err, "runtime API: cannot register the listener"),
            }
        });
        Ok(RuntimeEndpoint {
            addr,
            shared,
            server,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for the instance's `AWS_LAMBDA_RUNTIME_API` (`host:port`, no scheme).
    pub fn runtime_api(&self) -> String {
        self.addr.to_string()
    }

    /// Resolves when init is over: `Ok` at the runtime's first `GET next`,
    /// `Err` when it posts `init/error` first. Never resolves if the runtime
    /// does neither; the caller bounds it with its init timeout and watches
    /// the process for exit.
    pub async fn initialized(&self) -> Result<(), InitFailure> {
        let mut init = self.shared.init.subscribe();
        // `wait_for` fails only if the sender is gone; `self.shared` keeps it alive.
        let state = init
            .wait_for(|state| !matches!(state, InitState::Pending))
            .await
            .map(|state| state.clone());
        match state {
            Ok(InitState::Failed(failure)) => Err(failure),
            _ => Ok(()),
        }
    }

    /// Hands one invocation to the runtime (to its waiting or its next
    /// `GET next`) and waits for `/response` or `/error`.
    ///
    /// Calls are served one at a time; a concurrent call waits for the
    /// previous one to finish. The caller enforces the timeout by dropping
    /// the future (and then killing the process) and watches the process for
    /// exit. If the future is dropped before the runtime took the event, the
    /// event is withdrawn and never delivered. If init fails while this call
    /// waits, it returns [`Outcome::Error`] with the init error.
    pub async fn invoke(&self, invocation: Invocation) -> Outcome {
        let _turn = self.shared.invoke_turn.lock().await;
        let request_id = invocation.request_id.clone();
        tracing::debug!(request_id = %request_id, "invocation queued for the runtime");
        let (reply_tx, reply_rx) = oneshot::channel();
        self.shared.enqueue(invocation, reply_tx);
        let _withdraw = Withdraw {
            shared: &self.shared,
            request_id: &request_id,
        };
        let mut init = self.shared.init.subscribe();
        tokio::select! {
            reply = reply_rx => reply.unwrap_or_else(|_| Outcome::Error {
                error_type: "Runtime.Unknown".into(),
                body: errors::error_json(
                    "Runtime.Unknown",
                    &format!("RequestId: {request_id} Error: the invocation was lost by the runtime API"),
                ),
            }),
            Some(outcome) = init_failed(&mut init) => outcome,
        }
    }
}

impl Drop for RuntimeEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Takes a not-yet-delivered invocation back out of the queue when
/// [`RuntimeEndpoint::invoke`] ends (normally a no-op: it was delivered).
struct Withdraw<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.shared.withdraw(self.request_id);
    }
}

/// The init failure as an invocation outcome, once init has failed; `None`
/// if the channel closed (impossible while the endpoint holds the sender).
async fn init_failed(init: &mut watch::Receiver<InitState>) -> Option<Outcome> {
    let state = init
        .wait_for(|state| matches!(state, InitState::Failed(_)))
        .await
        .ok()?;
    match &*state {
        InitState::Failed(failure) => Some(init_failure_outcome(failure)),
        _ => None,
    }
}

fn init_failure_outcome(failure: &InitFailure) -> Outcome {
    let body = if failure.content_type == "application/json" {
        failure.body.clone()
    } else {
        errors::error_json(&failure.error_type, &String::from_utf8_lossy(&failure.body))
    };
    Outcome::Error {
        error_type: failure.error_type.clone(),
        body,
    }
}
