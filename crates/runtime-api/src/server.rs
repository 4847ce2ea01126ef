//! The HTTP side: accept loop, routing and the Runtime API handlers.
//!
//! One listener per instance. Handlers translate HTTP into calls on
//! [`Shared`] (the state machine) and back; they never block the state lock
//! across an await.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::errors::{
    error_json, invoker_error_body, is_json, sanitize_error_type, ApiError, MAX_PAYLOAD_SIZE,
};
use crate::extensions;
use crate::quickack::QuickAck;
use crate::state::{Answer, Shared};
use crate::stream::{self, PumpEnd};
use crate::{Admission, InitFailure, Invocation, Outcome};

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Bodies of rejected or oversized requests are read (and dropped) up to
/// this many bytes before answering: a runtime that is still writing its body
/// when the connection closes would see a reset instead of the status.
const MAX_DRAIN: u64 = 64 * 1024 * 1024;

const RUNTIME_PREFIX: &str = "/2018-06-01/runtime/";
const EXTENSION_PREFIX: &str = "/2020-01-01/extension/";

const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
const FUNCTION_ARN: HeaderName = HeaderName::from_static("lambda-runtime-invoked-function-arn");
const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");
const CLIENT_CONTEXT: HeaderName = HeaderName::from_static("lambda-runtime-client-context");
const COGNITO_IDENTITY: HeaderName = HeaderName::from_static("lambda-runtime-cognito-identity");
const ERROR_TYPE: HeaderName = HeaderName::from_static("lambda-runtime-function-error-type");
const RESPONSE_MODE: HeaderName = HeaderName::from_static("lambda-runtime-function-response-mode");

/// Accepts connections until the task is aborted; aborting also ends every
/// connection, because they live in this task's [`JoinSet`].
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, admission: Admission) {
    let mut connections = JoinSet::new();
    let mut refused: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let local = stream.local_addr().unwrap_or(peer);
                    if !admission.admits(local, peer) {
                        refused += 1;
                        // The first refusal is news; a loop of them is one
                        // process probing, and must not flood the log.
                        if refused == 1 {
                            tracing::warn!(%peer, "runtime API: refused a connection from a process that is not this instance");
                        } else {
                            tracing::debug!(%peer, refused, "runtime API: refused a connection");
                        }
                        continue;
                    }
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                Err(err) => {
                    // Usually EMFILE: back off instead of spinning on it.
                    tracing::warn!(%err, "runtime API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow forever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    // Small request/response pairs on a local socket: Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(req, shared).await) }
    });
    let mut builder = http1::Builder::new();
    // `next` long-polls and a warm runtime may sit idle on its keep-alive
    // connection for as long as the instance lives: no timeouts here (the
    // pool bounds the instance's life instead).
    builder.keep_alive(true).header_read_timeout(None);
    if let Err(err) = builder
        .serve_connection(TokioIo::new(QuickAck(stream)), service)
        .await
    {
        tracing::debug!(%err, "runtime API connection ended with an error");
    }
}

/// A Runtime API (or Extensions API) call, parsed from method and path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Next,
    Response(String),
    Error(String),
    InitError,
    Ping,
    ExtensionRegister,
    ExtensionNext,
}

impl Route {
    fn parse(method: &Method, path: &str) -> Result<Route, ApiError> {
        let (route, allowed) = if let Some(rest) = path.strip_prefix(RUNTIME_PREFIX) {
            match rest {
                "invocation/next" => (Route::Next, Method::GET),
                "init/error" => (Route::InitError, Method::POST),
                // `invocation/{id}/response|error`; the id cannot contain '/'.
                _ => match rest
                    .strip_prefix("invocation/")
                    .and_then(|r| r.split_once('/'))
                {
                    Some((id, "response")) if !id.is_empty() => {
                        (Route::Response(id.to_string()), Method::POST)
                    }
                    Some((id, "error")) if !id.is_empty() => {
                        (Route::Error(id.to_string()), Method::POST)
                    }
                    _ => return Err(ApiError::NotFound),
                },
            }
        } else if let Some(rest) = path.strip_prefix(EXTENSION_PREFIX) {
            match rest {
                "register" => (Route::ExtensionRegister, Method::POST),
                "event/next" => (Route::ExtensionNext, Method::GET),
                _ => return Err(ApiError::NotFound),
            }
        } else if path == "/2018-06-01/ping" {
            (Route::Ping, Method::GET)
        } else {
            return Err(ApiError::NotFound);
        };
        if *method == allowed {
            Ok(route)
        } else {
            Err(ApiError::MethodNotAllowed)
        }
    }
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> HttpResponse {
    let route = match Route::parse(req.method(), req.uri().path()) {
        Ok(route) => route,
        Err(err) => return reject(req.into_body(), err).await,
    };
    match route {
        Route::Next => match shared.next_invocation().await {
            Ok(invocation) => event_response(invocation),
            Err(err) => api_error(&err),
        },
        Route::Response(id) => post_response(&shared, &id, req).await,
        Route::Error(id) => post_error(&shared, &id, req).await,
        Route::InitError => post_init_error(&shared, req).await,
        Route::Ping => plain(StatusCode::OK, "pong"),
        Route::ExtensionRegister => extensions::register(&shared, req).await,
        Route::ExtensionNext => extensions::event_next(&shared, req).await,
    }
}

/// `GET next` answer: the event body plus the invocation headers, each only
/// when it has a value (the Rust runtime panics if id or deadline is missing,
/// so those two are always sent).
fn event_response(invocation: Invocation) -> HttpResponse {
    let Invocation {
        request_id,
        payload,
        content_type,
        deadline_ms,
        invoked_function_arn,
        trace_id,
        client_context,
        cognito_identity,
    } = invocation;
    let mut response = Response::new(Full::new(payload));
    let headers = response.headers_mut();
    let content_type = content_type.unwrap_or_else(|| "application/json".into());
    let values = [
        (CONTENT_TYPE, Some(content_type)),
        (REQUEST_ID, Some(request_id)),
        (DEADLINE_MS, Some(deadline_ms.to_string())),
        (FUNCTION_ARN, Some(invoked_function_arn)),
        (TRACE_ID, trace_id),
        (CLIENT_CONTEXT, client_context),
        (COGNITO_IDENTITY, cognito_identity),
    ];
    for (name, value) in values {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                headers.insert(name, value);
            }
            // The invoker builds these from its own input; a value that cannot
            // be a header (control characters) is dropped rather than failing
            // the whole invocation.
            Err(_) => {
                tracing::warn!(header = %name, "invocation header value is not valid in HTTP; omitted")
            }
        }
    }
    response
}

/// `POST /runtime/invocation/{id}/response`.
async fn post_response(
    shared: &Arc<Shared>,
    request_id: &str,
    req: Request<Incoming>,
) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let mut answer = match shared.claim(request_id) {
        Ok(answer) => answer,
        Err(err) => return reject(body, err).await,
    };
    let content_type = header_str(&parts.headers, &CONTENT_TYPE).map(str::to_string);
    let streaming = match header_str(&parts.headers, &RESPONSE_MODE) {
        None => false,
        Some(mode) if mode.eq_ignore_ascii_case("buffered") => false,
        Some(mode) if mode.eq_ignore_ascii_case("streaming") => true,
        Some(_) => {
            drain(body).await;
            let error_type = "Runtime.InvalidResponseModeHeader";
            let message = format!(
                "RequestId: {} Error: Invalid function response mode",
                answer.request_id()
            );
            answer.finish(Outcome::Error {
                error_type: error_type.into(),
                body: error_json(error_type, &message),
            });
            return api_error(&ApiError::InvalidResponseMode);
        }
    };

    if streaming {
        let (pump, stream) = stream::channel();
        // The invoker starts reading while the runtime is still writing; the
        // invocation stays outstanding until the body is complete.
        answer.deliver(Outcome::Streaming {
            content_type,
            body: stream,
        });
        let end = pump.run(body).await;
        drop(answer);
        return match end {
            PumpEnd::Complete => accepted(),
            PumpEnd::Truncated => api_error(&ApiError::Truncated),
            PumpEnd::Oversized => api_error(&ApiError::TooLarge),
        };
    }

    finish_buffered(answer, body, |body| Outcome::Response {
        body,
        content_type,
    })
    .await
}

/// `POST /runtime/invocation/{id}/error`.
async fn post_error(
    shared: &Arc<Shared>,
    request_id: &str,
    req: Request<Incoming>,
) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let answer = match shared.claim(request_id) {
        Ok(answer) => answer,
        Err(err) => return reject(body, err).await,
    };
    let error_type = sanitize_error_type(header_str(&parts.headers, &ERROR_TYPE));
    let content_type = header_str(&parts.headers, &CONTENT_TYPE);
    finish_buffered(answer, body, |raw| {
        let body = invoker_error_body(&error_type, content_type, &raw);
        Outcome::Error { error_type, body }
    })
    .await
}

/// Reads a buffered `/response` or `/error` body within the payload limit
/// and ends the invocation with `outcome(body)`, or with the size error, or
/// (body cut short) by dropping the answer, which the invoker sees as a
/// truncated response.
async fn finish_buffered(
    answer: Answer,
    body: Incoming,
    outcome: impl FnOnce(Bytes) -> Outcome,
) -> HttpResponse {
    match read_limited(body, MAX_PAYLOAD_SIZE).await {
        Read::Complete(body) => {
            answer.finish(outcome(body));
            accepted()
        }
        Read::TooLarge(size) => {
            answer.finish(Outcome::ResponseTooLarge { size });
            api_error(&ApiError::TooLarge)
        }
        Read::Truncated => {
            drop(answer);
            api_error(&ApiError::Truncated)
        }
    }
}

/// `POST /runtime/init/error`.
async fn post_init_error(shared: &Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let (parts, body) = req.into_parts();
    let error_type = sanitize_error_type(header_str(&parts.headers, &ERROR_TYPE));
    let (failure, too_large) = match read_limited(body, MAX_PAYLOAD_SIZE).await {
        Read::Complete(body) => {
            let content_type = if is_json(&body) {
                "application/json"
            } else {
                "application/octet-stream"
            };
            let failure = InitFailure {
                error_type,
                body,
                content_type: content_type.into(),
            };
            (failure, false)
        }
        // Init still failed; the runtime only said too much about why.
        Read::TooLarge(size) => {
            let message =
                format!("init error body of {size} bytes exceeded {MAX_PAYLOAD_SIZE} bytes");
            let failure = InitFailure {
                body: error_json(&error_type, &message),
                error_type,
                content_type: "application/json".into(),
            };
            (failure, true)
        }
        Read::Truncated => return api_error(&ApiError::Truncated),
    };
    match shared.fail_init(failure) {
        Ok(()) if too_large => api_error(&ApiError::TooLarge),
        Ok(()) => accepted(),
        Err(err) => api_error(&err),
    }
}

enum Read {
    Complete(Bytes),
    /// Total size seen (or declared) when over the limit.
    TooLarge(u64),
    Truncated,
}

/// Reads a request body of at most `limit` bytes. Past the limit the rest is
/// still read (not kept, up to [`MAX_DRAIN`]) to report the size and leave
/// the connection usable.
async fn read_limited(mut body: Incoming, limit: u64) -> Read {
    let declared = body.size_hint().exact();
    let capacity = declared.filter(|&n| n <= limit).unwrap_or(0);
    let mut buf = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return if total > limit {
                Read::TooLarge(total.max(declared.unwrap_or(0)))
            } else {
                Read::Truncated
            };
        };
        // Trailers on a buffered body carry nothing we use.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total <= limit {
            buf.extend_from_slice(&data);
        } else if total > MAX_DRAIN {
            return Read::TooLarge(total.max(declared.unwrap_or(0)));
        } else if !buf.is_empty() {
            buf = BytesMut::new();
        }
    }
    if total > limit {
        Read::TooLarge(total)
    } else {
        Read::Complete(buf.freeze())
    }
}

pub(crate) async fn drain(body: Incoming) {
    let _ = read_limited(body, 0).await;
}

/// Answers a call that is refused before its body was looked at.
async fn reject(body: Incoming, err: ApiError) -> HttpResponse {
    drain(body).await;
    api_error(&err)
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn api_error(err: &ApiError) -> HttpResponse {
    json(err.status(), err.body())
}

fn accepted() -> HttpResponse {
    json(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}

pub(crate) fn json(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn plain(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            Route::parse(&get, "/2018-06-01/runtime/invocation/next"),
            Ok(Route::Next)
        );
        assert_eq!(
            Route::parse(&post, "/2018-06-01/runtime/invocation/abc/response"),
            Ok(Route::Response("abc".into()))
        );
        assert_eq!(
            Route::parse(&post, "/2018-06-01/runtime/invocation/abc/error"),
            Ok(Route::Error("abc".into()))
        );
        assert_eq!(
            Route::parse(&post, "/2018-06-01/runtime/init/error"),
            Ok(Route::InitError)
        );
        assert_eq!(Route::parse(&get, "/2018-06-01/ping"), Ok(Route::Ping));
        assert_eq!(
            Route::parse(&post, "/2020-01-01/extension/register"),
            Ok(Route::ExtensionRegister)
        );
        assert_eq!(
            Route::parse(&get, "/2020-01-01/extension/event/next"),
            Ok(Route::ExtensionNext)
        );
    }

    #[test]
    fn bad_routes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            Route::parse(&post, "/2018-06-01/runtime/invocation/next"),
            Err(ApiError::MethodNotAllowed)
        );
        assert_eq!(
            Route::parse(&get, "/2018-06-01/runtime/invocation/abc/response"),
            Err(ApiError::MethodNotAllowed)
        );
        for path in [
            "/",
            "/2018-06-01/runtime/invocation//response",
            "/2018-06-01/runtime/invocation/a/b/response",
            "/2018-06-01/runtime/invocation/abc/other",
            "/2018-06-01/runtime/restore/next",
            "/2020-01-01/extension/init/error",
        ] {
            assert_eq!(Route::parse(&get, path), Err(ApiError::NotFound), "{path}");
        }
    }
}
