//! Asynchronous (`Event`) invocations: accepted at once, run in the
//! background, retried twice on function errors (after one and then two
//! retry delays) and with back-off while throttled, as Lambda does.
//!
//! Events live in memory: a restart of rouse loses the ones not yet run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rouse_pool::AcquireError;
use tokio::sync::Semaphore;

use crate::lambda::{LambdaCall, LambdaResult};
use crate::Gateway;

/// Attempts of one event: the first and two retries.
const MAX_ATTEMPTS: u32 = 3;
/// Events older than this are dropped (Lambda's default maximum event age).
const MAX_EVENT_AGE: Duration = Duration::from_secs(6 * 3600);
const MAX_THROTTLE_BACKOFF: Duration = Duration::from_secs(300);

/// The async invocation queue is at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the asynchronous invocation queue is full")]
pub struct QueueFull;

pub(crate) struct EventQueue {
    slots: Arc<Semaphore>,
    retry_delay: Duration,
    /// The runtime the queue was made on: events outlive the gateway thread
    /// that accepted them.
    runtime: tokio::runtime::Handle,
}

impl EventQueue {
    /// Must be called inside the tokio runtime that runs the events.
    pub(crate) fn new(capacity: usize, retry_delay: Duration) -> EventQueue {
        EventQueue {
            slots: Arc::new(Semaphore::new(capacity)),
            retry_delay,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Queues an event.
    pub(crate) fn submit(
        &self,
        gateway: Gateway,
        function: String,
        version: Option<u32>,
        request_id: String,
        payload: Bytes,
    ) -> Result<(), QueueFull> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| QueueFull)?;
        let retry_delay = self.retry_delay;
        self.runtime.spawn(async move {
            let _permit = permit;
            deliver(gateway, function, version, request_id, payload, retry_delay).await;
        });
        Ok(())
    }
}

async fn deliver(
    gateway: Gateway,
    function: String,
    version: Option<u32>,
    request_id: String,
    payload: Bytes,
    retry_delay: Duration,
) {
    let received = Instant::now();
    let mut attempt = 1;
    let mut throttle_backoff = Duration::from_secs(1);
    let log = |message: String| gateway.pool().platform_log(&function, &message);
    loop {
        let call = LambdaCall {
            function: &function,
            version,
            request_id: request_id.clone(),
            payload: payload.clone(),
            client_context: None,
            trace_id: None,
        };
        match gateway.call_lambda(call).await {
            Ok(invoked) => match invoked.result {
                LambdaResult::Ok { .. } => return,
                LambdaResult::FunctionError { error_type, .. } => {
                    if attempt >= MAX_ATTEMPTS {
                        log(format!(
                            "async invocation {request_id} failed {attempt} times ({error_type}); dropped"
                        ));
                        return;
                    }
                    let wait = retry_delay * attempt;
                    log(format!(
                        "async invocation {request_id} failed ({error_type}); retry {attempt} of {} in {}s",
                        MAX_ATTEMPTS - 1,
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            },
            Err(AcquireError::NotFound(_)) => return,
            Err(AcquireError::ShuttingDown) => {
                tracing::warn!(%function, %request_id, "async invocation not run: rouse is shutting down");
                return;
            }
            Err(err) => {
                if received.elapsed() > MAX_EVENT_AGE {
                    log(format!(
                        "async invocation {request_id} dropped after 6 hours: {err}"
                    ));
                    return;
                }
                tokio::time::sleep(throttle_backoff).await;
                throttle_backoff = (throttle_backoff * 2).min(MAX_THROTTLE_BACKOFF);
            }
        }
    }
}
