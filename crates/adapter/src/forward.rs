//! One invocation: event → request to the app → result to Lambda.

use std::future::Future;
use std::process::ExitStatus;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use rouse_events::{HttpResponse, Shape};
use serde_json::Value;

use crate::app::{describe, App};
use crate::config::{Config, InvokeMode};
use crate::context;
use crate::runtime::{ErrorReport, Invocation, RuntimeClient};
use crate::stream::Streamed;
use crate::upstream::Upstream;
use crate::BoxError;

/// How long a failed request waits to learn whether the app is exiting.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Everything an invocation needs but the app process.
pub(crate) struct Adapter {
    pub config: Config,
    pub runtime: RuntimeClient,
    pub upstream: Upstream,
    /// `env_config` of the lambda-context header, fixed for the process.
    pub env_config: Value,
}

/// How an invocation ended, for the main loop.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Answered (a response or a reported error); take the next event.
    Answered,
    /// The app exited; the invocation got `Runtime.ExitError`. The adapter
    /// must exit too, so Lambda replaces the environment.
    AppExited,
}

/// Why the app gave no answer.
enum Failure {
    AppExited(ExitStatus),
    Report(ErrorReport),
}

impl From<ErrorReport> for Failure {
    fn from(report: ErrorReport) -> Self {
        Failure::Report(report)
    }
}

/// Handles one invocation, reporting its result or error to Lambda. Errors
/// are only the Runtime API's own failures, after which nothing can be
/// reported.
pub(crate) async fn invoke(
    adapter: &Adapter,
    app: &mut App,
    invocation: Invocation,
) -> Result<Ended, BoxError> {
    let id = invocation.request_id.clone();
    let event = serde_json::from_slice::<Value>(&invocation.event).ok();
    let shape = event.as_ref().and_then(rouse_events::detect);
    let outcome = match (shape, &event) {
        (Some(shape), Some(event)) => http_event(adapter, app, &invocation, shape, event).await,
        // Not an HTTP event (or not JSON at all): the app decides what it is.
        _ => pass_through(adapter, app, &invocation).await,
    };
    match outcome {
        Ok(()) => Ok(Ended::Answered),
        Err(Failure::Report(report)) => {
            eprintln!("rouse-adapter: invocation {id} failed: {}", report.message);
            adapter.runtime.invocation_error(&id, &report).await?;
            Ok(Ended::Answered)
        }
        Err(Failure::AppExited(status)) => {
            let report = ErrorReport {
                error_type: "Runtime.ExitError",
                message: format!(
                    "RequestId: {id} Error: Runtime exited with error: {}",
                    describe(status)
                ),
            };
            eprintln!(
                "rouse-adapter: the app exited during invocation {id} ({})",
                describe(status)
            );
            adapter.runtime.invocation_error(&id, &report).await?;
            Ok(Ended::AppExited)
        }
    }
}

/// An HTTP event: the request it describes goes to the app, the app's
/// response goes back in the shape the front end expects.
async fn http_event(
    adapter: &Adapter,
    app: &mut App,
    invocation: &Invocation,
    shape: Shape,
    event: &Value,
) -> Result<(), Failure> {
    let req = rouse_events::from_event(shape, event).map_err(|err| ErrorReport {
        error_type: "Runtime.MalformedEvent",
        message: err.to_string(),
    })?;
    let path = match &adapter.config.remove_base_path {
        Some(base) => remove_base_path(&req.path, base),
        None => &req.path,
    };
    let target = match &req.query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let uri = adapter.upstream.uri(&target).map_err(|err| ErrorReport {
        error_type: "Runtime.MalformedEvent",
        message: format!("request target {target:?}: {err}"),
    })?;
    let mut request = Request::new(Full::new(req.body));
    *request.method_mut() = req.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = req.headers;
    let headers = request.headers_mut();
    if let Some(value) = context::request_context(event) {
        headers.insert(context::REQUEST_CONTEXT, value);
    }
    context::insert_invocation_headers(headers, invocation, &adapter.env_config);

    let response = watch(app, adapter.upstream.send(request)).await?;
    let id = &invocation.request_id;
    match adapter.config.invoke_mode {
        InvokeMode::Buffered => {
            let (parts, body) = response.into_parts();
            let body = watch(app, body.collect()).await?.to_bytes();
            let response = HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            };
            let result = rouse_events::to_result(shape, &response);
            respond(adapter, id, Bytes::from(result.to_string())).await
        }
        InvokeMode::ResponseStream => {
            let (parts, body) = response.into_parts();
            let prelude = rouse_events::streaming_prelude(parts.status, &parts.headers);
            let body = Streamed::new(prelude, body).boxed_unsync();
            let sent = adapter
                .runtime
                .respond_streaming(id, rouse_events::STREAMING_CONTENT_TYPE, body)
                .await;
            log_refusal(id, sent);
            Ok(())
        }
    }
}

/// A non-HTTP event is POSTed to the app as it is; the app's body is the
/// result when it is JSON, else `null` (a result must be JSON).
async fn pass_through(
    adapter: &Adapter,
    app: &mut App,
    invocation: &Invocation,
) -> Result<(), Failure> {
    let target = &adapter.config.pass_through_path;
    let uri = adapter.upstream.uri(target).map_err(|err| ErrorReport {
        error_type: "Runtime.AppError",
        message: format!("pass-through path {target:?}: {err}"),
    })?;
    let mut request = Request::new(Full::new(invocation.event.clone()));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    context::insert_invocation_headers(headers, invocation, &adapter.env_config);
    let response = watch(app, adapter.upstream.send(request)).await?;
    let body = watch(app, response.into_body().collect()).await?.to_bytes();
    respond(adapter, &invocation.request_id, json_or_null(body)).await
}

async fn respond(adapter: &Adapter, id: &str, payload: Bytes) -> Result<(), Failure> {
    let sent = adapter.runtime.respond(id, payload).await;
    log_refusal(id, sent);
    Ok(())
}

/// Lambda refusing a result (too large, say) has already told the caller;
/// the adapter can go on with the next event.
fn log_refusal(id: &str, sent: Result<(), BoxError>) {
    if let Err(err) = sent {
        eprintln!("rouse-adapter: the result of {id} was not accepted: {err}");
    }
}

/// Runs a step of the exchange with the app while watching the app's
/// process: its exit ends the step with [`Failure::AppExited`]; a failed
/// step whose cause turns out to be the app exiting is reported as that.
async fn watch<T, E: std::fmt::Display>(
    app: &mut App,
    step: impl Future<Output = Result<T, E>>,
) -> Result<T, Failure> {
    let result = tokio::select! {
        result = step => result,
        status = app.exited() => return Err(Failure::AppExited(status)),
    };
    match result {
        Ok(value) => Ok(value),
        Err(err) => match app.exited_within(EXIT_GRACE).await {
            Some(status) => Err(Failure::AppExited(status)),
            None => Err(Failure::Report(ErrorReport {
                error_type: "Runtime.AppError",
                message: format!("the request to the app failed: {err}"),
            })),
        },
    }
}

/// The path with `base` (no trailing `/`) cut off the front, when it is a
/// whole leading segment run: `/orders/7` → `/7`, `/orders` → `/`, but
/// `/ordersx` stays.
fn remove_base_path<'a>(path: &'a str, base: &str) -> &'a str {
    match path.strip_prefix(base) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The app's pass-through answer as a result payload.
fn json_or_null(body: Bytes) -> Bytes {
    if serde_json::from_slice::<Value>(&body).is_ok() {
        body
    } else {
        Bytes::from_static(b"null")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_table() {
        let cases = [
            ("/orders/7", "/orders", "/7"),
            ("/orders", "/orders", "/"),
            ("/orders/", "/orders", "/"),
            ("/ordersx/7", "/orders", "/ordersx/7"),
            ("/other/7", "/orders", "/other/7"),
            ("/a/b/c", "/a/b", "/c"),
            ("/", "/orders", "/"),
        ];
        for (path, base, expected) in cases {
            assert_eq!(remove_base_path(path, base), expected, "{path} - {base}");
        }
    }

    #[test]
    fn pass_through_results_must_be_json() {
        let cases: [(&[u8], &[u8]); 5] = [
            (br#"{"ok":true}"#, br#"{"ok":true}"#),
            (b"[1,2]", b"[1,2]"),
            (b"\"done\"", b"\"done\""),
            (b"done", b"null"),
            (b"", b"null"),
        ];
        for (body, expected) in cases {
            assert_eq!(&json_or_null(Bytes::from_static(body))[..], expected);
        }
    }
}
