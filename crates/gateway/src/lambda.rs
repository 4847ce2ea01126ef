//! Running one invocation on a lambda function: acquire an instance, hand
//! the event to its runtime within the function timeout, and write the
//! `START` / `END` / `REPORT` lines Lambda users read their logs by.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use rouse_pool::metrics::ErrorKind;
use rouse_pool::{AcquireError, Invocation, InvokeFailure, Lease, Outcome};

use crate::Gateway;

/// What the Invoke API, HTTP routes and `rouse invoke` ask for.
pub struct LambdaCall<'a> {
    pub function: &'a str,
    /// A version to run other than the current one (alias, qualifier).
    pub version: Option<u32>,
    pub request_id: String,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub trace_id: Option<String>,
}

/// How the invocation ended, from the caller's side.
pub enum LambdaResult {
    Ok {
        body: Bytes,
        content_type: Option<String>,
    },
    /// The handler (or its runtime) failed; `body` is the error JSON for
    /// the caller, sent with `X-Amz-Function-Error: Unhandled`.
    FunctionError { error_type: String, body: Bytes },
}

pub struct Invoked {
    pub result: LambdaResult,
    /// The last 4 KB of the invocation's log, for `X-Amz-Log-Result`.
    pub log_tail: String,
}

/// Largest response a buffered invocation returns (Lambda's 6 MB + 100).
const MAX_RESPONSE: usize = rouse_runtime_api::MAX_PAYLOAD_SIZE as usize;

impl Gateway {
    /// Runs one invocation; errors are only those that happen before an
    /// instance is found (not found, throttled, shutting down).
    pub async fn call_lambda(&self, call: LambdaCall<'_>) -> Result<Invoked, AcquireError> {
        let acquiring = Instant::now();
        let lease = match self
            .inner
            .pool
            .acquire_version(call.function, call.version)
            .await
        {
            Ok(lease) => lease,
            Err(AcquireError::StartFailed(failure)) => return Ok(init_failed(&failure)),
            Err(err) => return Err(err),
        };
        let spec = &lease.deployment().spec;
        let timeout = Duration::from_secs_f64(spec.timeout_secs);
        let memory_mb = spec.memory_size;
        let id = call.request_id.clone();
        lease.start_log_capture();
        lease.log(&format!(
            "START RequestId: {id} Version: {}",
            lease.deployment().lambda_version()
        ));
        let deadline = SystemTime::now() + timeout;
        let invocation = Invocation {
            request_id: id.clone(),
            payload: call.payload,
            content_type: Some("application/json".into()),
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            invoked_function_arn: rouse_pool::lambda::function_arn(call.function),
            trace_id: call.trace_id,
            client_context: call.client_context,
            cognito_identity: None,
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, async {
            match lease.invoke(invocation).await {
                Ok(outcome) => Ok(buffer(outcome).await),
                Err(err) => Err(err),
            }
        })
        .await;
        let elapsed = started.elapsed();
        let error = match &outcome {
            Ok(Ok(LambdaResult::Ok { .. })) => None,
            Ok(Ok(LambdaResult::FunctionError { .. })) | Ok(Err(InvokeFailure::NotLambda(_))) => {
                Some(ErrorKind::FunctionError)
            }
            Ok(Err(InvokeFailure::Exited(_) | InvokeFailure::OutOfMemory)) => {
                Some(ErrorKind::Crash)
            }
            Err(_) => Some(ErrorKind::Timeout),
        };
        // From before the acquire, as for web functions: a caller waits
        // through cold starts and queueing too.
        lease.record(error, acquiring.elapsed());
        let (result, status) = match outcome {
            Ok(Ok(result)) => {
                let status = match &result {
                    LambdaResult::Ok { .. } => None,
                    LambdaResult::FunctionError { error_type, .. } => Some(error_type.clone()),
                };
                (result, status)
            }
            Ok(Err(InvokeFailure::Exited(exit))) => {
                lease.log(&format!(
                    "RequestId: {id} Error: Runtime exited with error: {exit}"
                ));
                (
                    platform_error(
                        "Runtime.ExitError",
                        &format!("RequestId: {id} Error: Runtime exited with error: {exit}"),
                    ),
                    Some("Runtime.ExitError".into()),
                )
            }
            Ok(Err(InvokeFailure::OutOfMemory)) => {
                // Lambda's words for a runtime killed at its memory limit.
                let message =
                    format!("RequestId: {id} Error: Runtime exited with error: signal: killed");
                lease.log(&message);
                (
                    platform_error("Runtime.OutOfMemory", &message),
                    Some("Runtime.OutOfMemory".into()),
                )
            }
            Ok(Err(InvokeFailure::NotLambda(name))) => (
                platform_error(
                    "Runtime.InvalidEntrypoint",
                    &format!("function {name} is a web function; call it over HTTP"),
                ),
                Some("Runtime.InvalidEntrypoint".into()),
            ),
            Err(_) => {
                let message = format!(
                    "{} {id} Task timed out after {:.2} seconds",
                    humantime::format_rfc3339_millis(SystemTime::now()),
                    timeout.as_secs_f64()
                );
                lease.log(&message);
                lease.replace_instance("timed out; replacing it");
                (
                    platform_error("Sandbox.Timedout", &message),
                    Some("timeout".into()),
                )
            }
        };
        lease.log(&format!("END RequestId: {id}"));
        lease.log(&report_line(
            &lease,
            &id,
            elapsed,
            memory_mb,
            status.as_deref(),
        ));
        Ok(Invoked {
            result,
            log_tail: lease.take_log_tail(),
        })
    }
}

/// Buffers a streamed response (the Invoke API and HTTP routes answer with
/// the whole payload) and maps the runtime's outcome to the caller's.
async fn buffer(outcome: Outcome) -> LambdaResult {
    match outcome {
        Outcome::Response { body, content_type } => LambdaResult::Ok { body, content_type },
        Outcome::Error { error_type, body } => LambdaResult::FunctionError { error_type, body },
        Outcome::ResponseTooLarge { size } => LambdaResult::FunctionError {
            error_type: "Function.ResponseSizeTooLarge".into(),
            body: rouse_runtime_api::response_too_large_body(size),
        },
        Outcome::Streaming { content_type, body } => {
            match http_body_util::Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
            {
                Ok(collected) => {
                    let trailers = collected.trailers().cloned();
                    let body = collected.to_bytes();
                    match trailers
                        .as_ref()
                        .and_then(|t| t.get(rouse_runtime_api::ERROR_TYPE_TRAILER))
                    {
                        Some(error_type) => LambdaResult::FunctionError {
                            error_type: error_type
                                .to_str()
                                .unwrap_or("Runtime.Unknown")
                                .to_string(),
                            body: trailers
                                .as_ref()
                                .and_then(|t| t.get(rouse_runtime_api::ERROR_BODY_TRAILER))
                                .and_then(|b| base64_decode(b.as_bytes()))
                                .map(Bytes::from)
                                .unwrap_or_else(|| body.clone()),
                        },
                        None => LambdaResult::Ok { body, content_type },
                    }
                }
                Err(err) => platform_error("Runtime.TruncatedResponse", &err.to_string()),
            }
        }
    }
}

fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(input).ok()
}

/// A failed cold start, as Lambda reports it to the first invoker: the
/// runtime's own `init/error` body if it posted one, else `Runtime.InitError`.
fn init_failed(failure: &rouse_pool::StartFailure) -> Invoked {
    let result = match &failure.init_error {
        Some(init) if init.content_type == "application/json" => LambdaResult::FunctionError {
            error_type: init.error_type.clone(),
            body: init.body.clone(),
        },
        _ => platform_error("Runtime.InitError", &failure.message),
    };
    Invoked {
        result,
        log_tail: failure.message.clone(),
    }
}

fn platform_error(error_type: &str, message: &str) -> LambdaResult {
    let body = serde_json::json!({ "errorType": error_type, "errorMessage": message });
    LambdaResult::FunctionError {
        error_type: error_type.to_string(),
        body: Bytes::from(body.to_string()),
    }
}

/// Lambda's REPORT line: tab-separated, Init Duration after Max Memory
/// Used and only on a cold start.
fn report_line(
    lease: &Lease,
    id: &str,
    elapsed: Duration,
    memory_mb: u32,
    status: Option<&str>,
) -> String {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut line = format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {} MB\t",
        ms.ceil() as u64,
        lease.max_memory_used_mb().unwrap_or(0),
    );
    if let Some(init) = lease.init_duration() {
        line.push_str(&format!(
            "Init Duration: {:.2} ms\t",
            init.as_secs_f64() * 1000.0
        ));
    }
    match status {
        Some("timeout") => line.push_str("Status: timeout"),
        Some(error_type) => line.push_str(&format!("Status: error\tError Type: {error_type}")),
        None => {}
    }
    line
}
