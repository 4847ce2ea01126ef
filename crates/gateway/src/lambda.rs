//! Running one invocation on a lambda function: acquire an instance, hand
//! the event to its runtime within the function timeout, and write the
//! `START` / `END` / `REPORT` lines Lambda users read their logs by.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use rouse_pool::metrics::ErrorKind;
use rouse_pool::{AcquireError, Invocation, InvokeFailure, Outcome};

use crate::Gateway;

/// What the Invoke API, HTTP routes and `rouse invoke` ask for.
pub(crate) struct LambdaCall<'a> {
    pub function: &'a str,
    /// A version to run other than the current one (alias, qualifier).
    pub version: Option<u32>,
    pub request_id: String,
    pub payload: Bytes,
    pub client_context: Option<String>,
    pub trace_id: Option<String>,
}

/// How the invocation ended, from the caller's side.
pub(crate) enum LambdaResult {
    Ok {
        body: Bytes,
        content_type: Option<String>,
    },
    /// The handler (or its runtime) failed; `body` is the error JSON for
    /// the caller, sent with `X-Amz-Function-Error: Unhandled`.
    FunctionError { error_type: String, body: Bytes },
}

pub(crate) struct Invoked {
    pub result: LambdaResult,
    /// The last 4 KB of the invocation's log, for `X-Amz-Log-Result`.
    pub log_tail: String,
}

/// Largest response a buffered invocation returns (Lambda's 6 MB + 100).
const MAX_RESPONSE: usize = rouse_runtime_api::MAX_PAYLOAD_SIZE as usize;

impl Gateway {
    /// Runs one invocation; errors are only those that happen before an
    /// instance is found (not found, throttled, shutting down).
    pub(crate) async fn call_lambda(&self, call: LambdaCall<'_>) -> Result<Invoked, AcquireError> {
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
        let ending = match outcome {
            Ok(Ok(result)) => Ending::Answered(result),
            Ok(Err(failure)) => Ending::Failed(failure),
            Err(_) => Ending::TimedOut,
        };
        let verdict = verdict(ending, &id, timeout, SystemTime::now());
        // From before the acquire, as for web functions: a caller waits
        // through cold starts and queueing too.
        lease.record(verdict.metric, acquiring.elapsed());
        if let Some(line) = &verdict.log {
            lease.log(line);
        }
        if verdict.replace {
            lease.replace_instance("timed out; replacing it");
        }
        lease.log(&format!("END RequestId: {id}"));
        lease.log(&report_line(&Report {
            id: &id,
            elapsed,
            memory_mb,
            max_memory_used_mb: lease.max_memory_used_mb().unwrap_or(0),
            init_duration: lease.init_duration(),
            status: verdict.status.as_deref(),
        }));
        let result = verdict.result;
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

/// How an invocation ended, before it is told to the caller.
pub(crate) enum Ending {
    /// The runtime answered (a result or the handler's error).
    Answered(LambdaResult),
    Failed(InvokeFailure),
    /// The function timeout passed first.
    TimedOut,
}

/// What one ending means for the caller, the metrics and the log.
pub(crate) struct Verdict {
    pub result: LambdaResult,
    pub metric: Option<ErrorKind>,
    /// Lambda's line for the failure, logged before `END`.
    pub log: Option<String>,
    /// The REPORT line's status: `None` for success, `"timeout"`, or the
    /// error type.
    pub status: Option<String>,
    /// The instance may still be running the handler: replace it.
    pub replace: bool,
}

/// Maps an ending to the caller's result, the error metric and the log
/// lines, in Lambda's words; `now` dates the timeout message.
pub(crate) fn verdict(ending: Ending, id: &str, timeout: Duration, now: SystemTime) -> Verdict {
    let plain = |result: LambdaResult, metric, log, status: &str| Verdict {
        result,
        metric: Some(metric),
        log,
        status: Some(status.to_string()),
        replace: false,
    };
    match ending {
        Ending::Answered(result) => {
            let (metric, status) = match &result {
                LambdaResult::Ok { .. } => (None, None),
                LambdaResult::FunctionError { error_type, .. } => {
                    (Some(ErrorKind::FunctionError), Some(error_type.clone()))
                }
            };
            Verdict {
                result,
                metric,
                log: None,
                status,
                replace: false,
            }
        }
        Ending::Failed(InvokeFailure::Exited(exit)) => {
            let message = format!("RequestId: {id} Error: Runtime exited with error: {exit}");
            plain(
                platform_error("Runtime.ExitError", &message),
                ErrorKind::Crash,
                Some(message),
                "Runtime.ExitError",
            )
        }
        Ending::Failed(InvokeFailure::OutOfMemory) => {
            // Lambda's words for a runtime killed at its memory limit.
            let message =
                format!("RequestId: {id} Error: Runtime exited with error: signal: killed");
            plain(
                platform_error("Runtime.OutOfMemory", &message),
                ErrorKind::Crash,
                Some(message),
                "Runtime.OutOfMemory",
            )
        }
        Ending::Failed(InvokeFailure::NotLambda(name)) => plain(
            platform_error(
                "Runtime.InvalidEntrypoint",
                &format!("function {name} is a web function; call it over HTTP"),
            ),
            ErrorKind::FunctionError,
            None,
            "Runtime.InvalidEntrypoint",
        ),
        Ending::TimedOut => {
            let message = format!(
                "{} {id} Task timed out after {:.2} seconds",
                humantime::format_rfc3339_millis(now),
                timeout.as_secs_f64()
            );
            Verdict {
                replace: true,
                ..plain(
                    platform_error("Sandbox.Timedout", &message),
                    ErrorKind::Timeout,
                    Some(message),
                    "timeout",
                )
            }
        }
    }
}

/// What the REPORT line says about one invocation.
pub(crate) struct Report<'a> {
    pub id: &'a str,
    pub elapsed: Duration,
    pub memory_mb: u32,
    pub max_memory_used_mb: u64,
    /// Only on a cold start.
    pub init_duration: Option<Duration>,
    pub status: Option<&'a str>,
}

/// Lambda's REPORT line: tab-separated, Init Duration after Max Memory
/// Used and only on a cold start.
pub(crate) fn report_line(report: &Report<'_>) -> String {
    let Report { id, memory_mb, .. } = report;
    let ms = report.elapsed.as_secs_f64() * 1000.0;
    let mut line = format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {} MB\t",
        ms.ceil() as u64,
        report.max_memory_used_mb,
    );
    if let Some(init) = report.init_duration {
        line.push_str(&format!(
            "Init Duration: {:.2} ms\t",
            init.as_secs_f64() * 1000.0
        ));
    }
    match report.status {
        Some("timeout") => line.push_str("Status: timeout"),
        Some(error_type) => line.push_str(&format!("Status: error\tError Type: {error_type}")),
        None => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> LambdaResult {
        LambdaResult::Ok {
            body: Bytes::from_static(b"{}"),
            content_type: None,
        }
    }

    fn handler_error() -> LambdaResult {
        LambdaResult::FunctionError {
            error_type: "Handled.Oops".into(),
            body: Bytes::from_static(b"{}"),
        }
    }

    fn error_type(result: &LambdaResult) -> Option<&str> {
        match result {
            LambdaResult::Ok { .. } => None,
            LambdaResult::FunctionError { error_type, .. } => Some(error_type),
        }
    }

    #[test]
    fn endings_map_to_results_metrics_and_log_lines() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        // (ending, result's error type, metric, log line, REPORT status, replace)
        type Row = (
            Ending,
            Option<&'static str>,
            Option<ErrorKind>,
            Option<&'static str>,
            Option<&'static str>,
            bool,
        );
        let table: Vec<Row> = vec![
            (Ending::Answered(ok()), None, None, None, None, false),
            (
                Ending::Answered(handler_error()),
                Some("Handled.Oops"),
                Some(ErrorKind::FunctionError),
                None,
                Some("Handled.Oops"),
                false,
            ),
            (
                Ending::Failed(InvokeFailure::Exited("exit status 3".into())),
                Some("Runtime.ExitError"),
                Some(ErrorKind::Crash),
                Some("RequestId: r1 Error: Runtime exited with error: exit status 3"),
                Some("Runtime.ExitError"),
                false,
            ),
            (
                Ending::Failed(InvokeFailure::OutOfMemory),
                Some("Runtime.OutOfMemory"),
                Some(ErrorKind::Crash),
                Some("RequestId: r1 Error: Runtime exited with error: signal: killed"),
                Some("Runtime.OutOfMemory"),
                false,
            ),
            (
                Ending::Failed(InvokeFailure::NotLambda("web".into())),
                Some("Runtime.InvalidEntrypoint"),
                Some(ErrorKind::FunctionError),
                None,
                Some("Runtime.InvalidEntrypoint"),
                false,
            ),
            (
                Ending::TimedOut,
                Some("Sandbox.Timedout"),
                Some(ErrorKind::Timeout),
                Some("2023-11-14T22:13:20.123Z r1 Task timed out after 3.00 seconds"),
                Some("timeout"),
                true,
            ),
        ];
        for (ending, result, metric, log, status, replace) in table {
            let v = verdict(ending, "r1", Duration::from_secs(3), now);
            assert_eq!(error_type(&v.result), result);
            assert_eq!(v.metric, metric, "{result:?}");
            assert_eq!(v.log.as_deref(), log, "{result:?}");
            assert_eq!(v.status.as_deref(), status, "{result:?}");
            assert_eq!(v.replace, replace, "{result:?}");
        }
    }

    #[test]
    fn platform_errors_carry_lambdas_error_json() {
        let v = verdict(
            Ending::Failed(InvokeFailure::NotLambda("web".into())),
            "r1",
            Duration::from_secs(3),
            UNIX_EPOCH,
        );
        let LambdaResult::FunctionError { body, .. } = v.result else {
            panic!("not an error");
        };
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["errorType"], "Runtime.InvalidEntrypoint");
        assert_eq!(
            json["errorMessage"],
            "function web is a web function; call it over HTTP"
        );
    }

    #[test]
    fn report_lines() {
        let report = |init, status| Report {
            id: "r1",
            elapsed: Duration::from_micros(12_346),
            memory_mb: 128,
            max_memory_used_mb: 40,
            init_duration: init,
            status,
        };
        let base = "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\t";
        let table = [
            (report(None, None), base.to_string()),
            (
                report(Some(Duration::from_micros(250_500)), None),
                format!("{base}Init Duration: 250.50 ms\t"),
            ),
            (
                report(None, Some("timeout")),
                format!("{base}Status: timeout"),
            ),
            (
                report(Some(Duration::from_millis(5)), Some("Runtime.ExitError")),
                format!(
                    "{base}Init Duration: 5.00 ms\tStatus: error\tError Type: Runtime.ExitError"
                ),
            ),
        ];
        for (report, line) in table {
            assert_eq!(report_line(&report), line);
        }
    }
}
