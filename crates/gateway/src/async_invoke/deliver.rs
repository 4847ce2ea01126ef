//! One attempt of one claimed event, and what follows from it: success
//! (and its onSuccess record), a retry, or giving up (onFailure record or
//! dead letter). What to do after a failure is `retry::after_failure`'s.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rouse_manifest::{AsyncInvoke, Destination};
use rouse_pool::AcquireError;
use rouse_store::events::{DeadLetter, EventRecord, NewEvent, Retry};

use super::retry::{self, Condition, Decision, Failure, Policy};
use super::{finish, now_ms, record, Shared, STORE_RETRY};
use crate::lambda::{Invoked, LambdaCall, LambdaResult};
use crate::Gateway;

/// Runs the event once and records what came of it.
pub(super) async fn deliver(shared: &Shared, gateway: Gateway, event: EventRecord) {
    let Some(config) = settings(shared, &event).await else {
        return;
    };
    let policy = Policy::of(&config, shared.retry_delay);
    if retry::too_old(&policy, event.accepted_at_ms, now_ms()) {
        let attempts = event.attempts;
        let condition = Condition::EventAgeExceeded;
        give_up(shared, &gateway, &event, &config, condition, attempts, None);
        return;
    }
    let call = LambdaCall {
        function: &event.function,
        version: event.version,
        request_id: event.id.clone(),
        payload: Bytes::from(event.payload.clone()),
        client_context: None,
        trace_id: None,
    };
    let result = gateway.call_lambda(call).await;
    let failed = !matches!(&result, Ok(i) if matches!(i.result, LambdaResult::Ok { .. }));
    if failed && gateway.pool().is_shutting_down() {
        // Cut short by rouse stopping (its instance was stopped under it):
        // not the function's failure.
        stop(shared);
        return;
    }
    let now = now_ms();
    match attempted(result, &event) {
        Attempted::Succeeded(body) => succeed(shared, &gateway, &event, &config, &body),
        Attempted::Gone => {
            let message = format!(
                "async invocation {} dropped: the function no longer exists",
                event.id
            );
            gateway.pool().platform_log(&event.function, &message);
            finish(shared.queue.complete(&event.id, &shared.node));
        }
        Attempted::Stopping => stop(shared),
        Attempted::Failed(failed) => {
            after_failure(shared, &gateway, event, &config, &policy, failed, now);
        }
    }
}

/// The function's async settings; `None` when the event was dealt with
/// (its function is gone, or the store failed and it is retried soon).
async fn settings(shared: &Shared, event: &EventRecord) -> Option<AsyncInvoke> {
    match shared.functions.get_function(&event.function).await {
        Ok(Some(record)) => Some(record.spec.async_invoke),
        Ok(None) => {
            tracing::warn!(function = %event.function, id = %event.id, "async invocation dropped: the function no longer exists");
            finish(shared.queue.complete(&event.id, &shared.node));
            None
        }
        Err(err) => {
            tracing::error!(%err, "cannot read a function for its async invocation");
            let retry = Retry {
                attempts: event.attempts,
                throttles: event.throttles,
                next_attempt_at_ms: now_ms() + STORE_RETRY.as_millis() as i64,
                last_error: None,
            };
            finish(shared.queue.retry_at(&event.id, &shared.node, &retry));
            None
        }
    }
}

/// rouse is stopping: the event is left claimed, so this node runs it
/// again, uncounted, as soon as it starts.
fn stop(shared: &Shared) {
    shared.stopping.store(true, Ordering::Relaxed);
    shared.wake.notify_one();
}

/// What one attempt came to.
#[derive(Debug, PartialEq)]
enum Attempted {
    Succeeded(Bytes),
    /// The function no longer exists: nothing to retry.
    Gone,
    Stopping,
    Failed(Failed),
}

/// A failed attempt, with the counts it leaves the event with.
#[derive(Debug, PartialEq)]
struct Failed {
    failure: Failure,
    /// Times the function ran, this one included.
    attempts: u32,
    /// Throttles in a row, this one included.
    throttles: u32,
    error: String,
    response: Attempt,
}

/// Pure: the counts and the record an attempt leaves, from how it ended.
fn attempted(result: Result<Invoked, AcquireError>, event: &EventRecord) -> Attempted {
    match result {
        Ok(invoked) => match invoked.result {
            LambdaResult::Ok { body, .. } => Attempted::Succeeded(body),
            LambdaResult::FunctionError { error_type, body } => Attempted::Failed(Failed {
                failure: Failure::Function,
                attempts: event.attempts + 1,
                throttles: 0,
                error: error_name(&body).unwrap_or(error_type),
                response: Attempt {
                    status: 200,
                    function_error: true,
                    body,
                },
            }),
        },
        Err(AcquireError::NotFound(_)) => Attempted::Gone,
        Err(AcquireError::ShuttingDown) => Attempted::Stopping,
        Err(err) => {
            let status = match err {
                AcquireError::Throttled { .. } => 429,
                _ => 502,
            };
            let message = err.to_string();
            Attempted::Failed(Failed {
                failure: Failure::Throttled,
                attempts: event.attempts,
                throttles: event.throttles + 1,
                error: message.clone(),
                response: Attempt {
                    status,
                    function_error: false,
                    body: Bytes::from(serde_json::json!({ "errorMessage": message }).to_string()),
                },
            })
        }
    }
}

/// Schedules the retry `retry::after_failure` decides on, or gives up.
fn after_failure(
    shared: &Shared,
    gateway: &Gateway,
    mut event: EventRecord,
    config: &AsyncInvoke,
    policy: &Policy,
    failed: Failed,
    now: i64,
) {
    let log = |message: String| gateway.pool().platform_log(&event.function, &message);
    let Failed {
        failure,
        attempts,
        throttles,
        error,
        response,
    } = failed;
    match retry::after_failure(
        policy,
        failure,
        attempts,
        throttles,
        event.accepted_at_ms,
        now,
    ) {
        Decision::RetryAt(at) => {
            if failure == Failure::Function {
                log(format!(
                    "async invocation {} failed ({error}); retry {attempts} of {} in {}s",
                    event.id,
                    policy.max_retries,
                    Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).as_secs_f64()
                ));
            }
            let retry = Retry {
                attempts,
                throttles,
                next_attempt_at_ms: at,
                last_error: Some(error),
            };
            finish(shared.queue.retry_at(&event.id, &shared.node, &retry));
        }
        Decision::GiveUp(condition) => {
            let what = match condition {
                Condition::RetriesExhausted => format!("failed {attempts} times ({error})"),
                Condition::EventAgeExceeded => format!(
                    "is older than its maximumEventAge of {}s ({error})",
                    policy.max_age.as_secs()
                ),
            };
            log(format!("async invocation {} {what}", event.id));
            event.last_error = Some(error);
            let response = Some(response);
            give_up(
                shared, gateway, &event, config, condition, attempts, response,
            );
        }
    }
}

/// The `errorType` the handler raised (`ValueError`), which says more than
/// the runtime's header (`Runtime.Unhandled`).
fn error_name(body: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(doc.get("errorType")?.as_str()?.to_string()).filter(|t| !t.is_empty())
}

/// What one attempt answered, for the record.
#[derive(Debug, PartialEq)]
struct Attempt {
    status: u16,
    function_error: bool,
    body: Bytes,
}

fn succeed(
    shared: &Shared,
    gateway: &Gateway,
    event: &EventRecord,
    config: &AsyncInvoke,
    body: &Bytes,
) {
    if let Some(Destination::Function { name }) = &config.on_success {
        let attempt = Attempt {
            status: 200,
            function_error: false,
            body: body.clone(),
        };
        let record = record_of(event, "Success", event.attempts + 1, Some(&attempt));
        send_to(shared, gateway, event, name, "onSuccess", &record);
    }
    finish(shared.queue.complete(&event.id, &shared.node));
}

fn give_up(
    shared: &Shared,
    gateway: &Gateway,
    event: &EventRecord,
    config: &AsyncInvoke,
    condition: Condition,
    attempts: u32,
    response: Option<Attempt>,
) {
    let record = record_of(event, condition.as_str(), attempts, response.as_ref());
    if let Some(Destination::Function { name }) = &config.on_failure {
        if send_to(shared, gateway, event, name, "onFailure", &record) {
            finish(shared.queue.complete(&event.id, &shared.node));
            return;
        }
    }
    let dead = DeadLetter {
        attempts,
        condition: condition.as_str().to_string(),
        last_error: event.last_error.clone(),
        response: response.map(|r| r.body.to_vec()),
    };
    gateway.pool().platform_log(
        &event.function,
        &format!(
            "async invocation {} kept as a dead letter: `rouse events show {} {}`",
            event.id, event.function, event.id
        ),
    );
    finish(shared.queue.dead_letter(&event.id, &shared.node, &dead));
}

fn record_of(
    event: &EventRecord,
    condition: &str,
    attempts: u32,
    response: Option<&Attempt>,
) -> serde_json::Value {
    let arn = rouse_pool::lambda::function_arn(&event.function);
    record::destination_record(&record::Outcome {
        request_id: &event.id,
        function_arn: &arn,
        version: event.version,
        condition,
        invoke_count: attempts,
        request_payload: &event.payload,
        response: response.map(|r| record::Response {
            status: r.status,
            function_error: r.function_error.then_some("Unhandled"),
            payload: &r.body,
        }),
        at: SystemTime::now(),
    })
}

/// Queues the record as an async invocation of `target`; `false` (and a
/// log line) when that is not possible, so the caller keeps the event.
fn send_to(
    shared: &Shared,
    gateway: &Gateway,
    event: &EventRecord,
    target: &str,
    which: &str,
    record: &serde_json::Value,
) -> bool {
    let log = |message: String| gateway.pool().platform_log(&event.function, &message);
    if !gateway.is_lambda(target) {
        log(format!(
            "async invocation {}: the {which} destination {target} is not a deployed lambda function",
            event.id
        ));
        return false;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let sent = NewEvent {
        id: id.clone(),
        function: target.to_string(),
        version: None,
        payload: record.to_string().into_bytes(),
        accepted_at_ms: now_ms(),
    };
    match shared.queue.enqueue(&sent) {
        Ok(()) => {
            shared.wake.notify_one();
            log(format!(
                "async invocation {} sent to its {which} destination {target} as {id}",
                event.id
            ));
            true
        }
        Err(err) => {
            log(format!(
                "async invocation {}: cannot queue it for {target}: {err}",
                event.id
            ));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rouse_pool::Limit;
    use rouse_store::events::EventState;

    use super::*;

    fn event(attempts: u32, throttles: u32) -> EventRecord {
        EventRecord {
            id: "e1".into(),
            function: "hello".into(),
            version: None,
            payload: b"{}".to_vec(),
            accepted_at_ms: 0,
            attempts,
            throttles,
            next_attempt_at_ms: 0,
            claimed_by: None,
            claim_until_ms: None,
            state: EventState::Pending,
            last_error: None,
            condition: None,
            response: None,
        }
    }

    fn invoked(result: LambdaResult) -> Result<Invoked, AcquireError> {
        Ok(Invoked {
            result,
            log_tail: String::new(),
        })
    }

    fn failed(
        failure: Failure,
        counts: (u32, u32),
        error: &str,
        status: u16,
        body: &str,
    ) -> Attempted {
        Attempted::Failed(Failed {
            failure,
            attempts: counts.0,
            throttles: counts.1,
            error: error.into(),
            response: Attempt {
                status,
                function_error: failure == Failure::Function,
                body: Bytes::from(body.to_string()),
            },
        })
    }

    #[test]
    fn what_an_attempt_comes_to() {
        let raised = r#"{"errorType":"ValueError","errorMessage":"no"}"#;
        let throttled = AcquireError::Throttled {
            function: "hello".into(),
            limit: Limit::MaxInstances,
            retry_after: Duration::from_secs(1),
        };
        let throttle_message = throttled.to_string();
        let throttle_body = serde_json::json!({ "errorMessage": throttle_message }).to_string();
        let backing_off = AcquireError::BackingOff {
            function: "hello".into(),
            retry_after: Duration::from_secs(1),
        };
        let backoff_message = backing_off.to_string();
        let backoff_body = serde_json::json!({ "errorMessage": backoff_message }).to_string();
        let ok = LambdaResult::Ok {
            body: Bytes::from_static(b"1"),
            content_type: None,
        };
        let error = |body: &str| LambdaResult::FunctionError {
            error_type: "Runtime.Unhandled".into(),
            body: Bytes::from(body.to_string()),
        };
        // (result, attempts and throttles so far, outcome)
        #[rustfmt::skip]
        let cases = [
            (invoked(ok), (0, 0), Attempted::Succeeded(Bytes::from_static(b"1"))),
            (invoked(error(raised)), (1, 3), failed(Failure::Function, (2, 0), "ValueError", 200, raised)),
            (invoked(error("{}")), (0, 0), failed(Failure::Function, (1, 0), "Runtime.Unhandled", 200, "{}")),
            (Err(throttled), (1, 2), failed(Failure::Throttled, (1, 3), &throttle_message, 429, &throttle_body)),
            (Err(backing_off), (0, 0), failed(Failure::Throttled, (0, 1), &backoff_message, 502, &backoff_body)),
            (Err(AcquireError::NotFound("hello".into())), (0, 0), Attempted::Gone),
            (Err(AcquireError::ShuttingDown), (0, 0), Attempted::Stopping),
        ];
        for (result, (attempts, throttles), expected) in cases {
            let what = format!("{expected:?}");
            assert_eq!(
                attempted(result, &event(attempts, throttles)),
                expected,
                "{what}"
            );
        }
    }
}
