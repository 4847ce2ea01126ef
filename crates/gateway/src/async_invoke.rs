//! Asynchronous (`Event`) invocations, durable: an event is committed to the
//! store before its 202 is sent, and one dispatcher task per server claims
//! due events (with a lease) and runs them through the pool. A crash loses
//! nothing: at the next start the node takes its claims back, and a claim
//! of a node that never comes back expires and is claimed again — at least
//! once, as Lambda promises.
//!
//! The dispatcher never polls: an enqueue or a finished delivery wakes it,
//! and otherwise it sleeps until the earliest next attempt in the store.
//! What to do after a failure is decided in `retry`; what a destination
//! receives is built in `record`.

mod record;
pub(crate) mod retry;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rouse_manifest::Destination;
use rouse_pool::AcquireError;
use rouse_store::events::{DeadLetter, EventRecord, NewEvent, Retry};
use rouse_store::{AsyncEvents, Store, StoreError};
use tokio::sync::{Notify, Semaphore};

use crate::lambda::{LambdaCall, LambdaResult};
use crate::{Gateway, Inner};
use retry::{Condition, Decision, Failure, Policy};

/// Events running at once on this node; the rest wait in the store.
const MAX_IN_FLIGHT: usize = 256;
/// How long a claim lasts. A delivery still running when it ends has its
/// claim renewed by the next round of claims; a node that died loses it.
const CLAIM_LEASE: Duration = Duration::from_secs(300);
/// Back-off when the store itself fails.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Where this node's id lives: beside the data, not in the store, so nodes
/// sharing one store (a cluster) still each have their own.
const NODE_ID_FILE: &str = "node-id";

/// The event could not be stored, so it was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("the asynchronous invocation could not be queued: {0}")]
pub struct EnqueueError(#[from] pub StoreError);

pub(crate) struct EventQueue {
    shared: Arc<Shared>,
}

struct Shared {
    /// The queue, whichever engine keeps it.
    queue: Arc<dyn AsyncEvents + Send + Sync>,
    /// Function settings (retries, destinations).
    functions: Arc<Store>,
    node: String,
    retry_delay: Duration,
    wake: Notify,
    /// Ids being delivered here, so a renewed claim does not start a second run.
    running: Mutex<HashSet<String>>,
    slots: Arc<Semaphore>,
    /// Set once the pool refuses work because rouse is stopping.
    stopping: AtomicBool,
}

impl EventQueue {
    /// Must be called inside the tokio runtime that runs the events.
    pub(crate) fn new(store: Arc<Store>, retry_delay: Duration) -> Result<EventQueue, StoreError> {
        let node = node_id(store.data_dir())?;
        Ok(EventQueue {
            shared: Arc::new(Shared {
                queue: store.clone(),
                functions: store,
                node,
                retry_delay,
                wake: Notify::new(),
                running: Mutex::new(HashSet::new()),
                slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                stopping: AtomicBool::new(false),
            }),
        })
    }

    /// Starts the dispatcher; it ends when the gateway is dropped.
    pub(crate) fn start(&self, gateway: Weak<Inner>) {
        let shared = self.shared.clone();
        tokio::spawn(dispatch(shared, gateway));
    }

    /// Commits the event; the dispatcher is woken to run it.
    pub(crate) fn submit_now(&self, event: &NewEvent) -> Result<(), EnqueueError> {
        self.shared.queue.enqueue(event)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// [`EventQueue::submit_now`] off the calling thread (a gateway thread
    /// must not wait for a disk write).
    pub(crate) async fn submit(&self, event: NewEvent) -> Result<(), EnqueueError> {
        let shared = self.shared.clone();
        let queue = shared.queue.clone();
        tokio::task::spawn_blocking(move || queue.enqueue(&event))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        shared.wake.notify_one();
        Ok(())
    }

    /// Wakes the dispatcher (after a redrive).
    pub(crate) fn wake(&self) {
        self.shared.wake.notify_one();
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The node's id from `DATA/node-id`, created on first start.
fn node_id(data_dir: &Path) -> Result<String, StoreError> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err.into()),
    }
    let id = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, format!("{id}\n"))?;
    Ok(id)
}

async fn dispatch(shared: Arc<Shared>, gateway: Weak<Inner>) {
    let store = &shared.queue;
    match store.release_claims(&shared.node) {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            events = n,
            "taking back async events claimed before a restart"
        ),
        Err(err) => tracing::error!(%err, "cannot release this node's async event claims"),
    }
    loop {
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        let free = shared.slots.available_permits();
        let wait = if free == 0 {
            // A finished delivery wakes us.
            None
        } else {
            match claim_and_start(&shared, &gateway, free) {
                Ok(Some(wait)) => Some(wait),
                Ok(None) => None,
                Err(Gone) => return,
            }
        };
        match wait {
            Some(wait) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

struct Gone;

/// Claims what is due and starts it; returns how long to sleep before the
/// next event is due (`None`: nothing pending).
fn claim_and_start(
    shared: &Arc<Shared>,
    gateway: &Weak<Inner>,
    free: usize,
) -> Result<Option<Duration>, Gone> {
    let store = &shared.queue;
    let now = now_ms();
    let claimed = match store.claim_due(&shared.node, now, CLAIM_LEASE, free) {
        Ok(claimed) => claimed,
        Err(err) => {
            tracing::error!(%err, "cannot claim async events");
            return Ok(Some(STORE_RETRY));
        }
    };
    for event in claimed {
        let fresh = lock(&shared.running).insert(event.id.clone());
        if !fresh {
            // Still running here: the claim was just renewed.
            continue;
        }
        let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
            // Not expected (only this loop takes slots, and it claimed no
            // more than were free), but an event must never sit claimed and
            // unrun: hand it back as it was.
            lock(&shared.running).remove(&event.id);
            let unchanged = Retry {
                attempts: event.attempts,
                throttles: event.throttles,
                next_attempt_at_ms: event.next_attempt_at_ms,
                last_error: None,
            };
            finish(store.retry_at(&event.id, &shared.node, &unchanged));
            continue;
        };
        let Some(inner) = gateway.upgrade() else {
            return Err(Gone);
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let id = event.id.clone();
            deliver(&shared, Gateway { inner }, event).await;
            lock(&shared.running).remove(&id);
            drop(permit);
            shared.wake.notify_one();
        });
    }
    match store.next_due() {
        Ok(Some(at)) => Ok(Some(Duration::from_millis(
            u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0),
        ))),
        Ok(None) => Ok(None),
        Err(err) => {
            tracing::error!(%err, "cannot read when the next async event is due");
            Ok(Some(STORE_RETRY))
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One attempt of one claimed event, and what follows from it.
async fn deliver(shared: &Shared, gateway: Gateway, event: EventRecord) {
    let store = &shared.queue;
    let log = |message: String| gateway.pool().platform_log(&event.function, &message);
    let config = match shared.functions.get_function(&event.function).await {
        Ok(Some(record)) => record.spec.async_invoke,
        Ok(None) => {
            tracing::warn!(function = %event.function, id = %event.id, "async invocation dropped: the function no longer exists");
            finish(store.complete(&event.id, &shared.node));
            return;
        }
        Err(err) => {
            tracing::error!(%err, "cannot read a function for its async invocation");
            let retry = Retry {
                attempts: event.attempts,
                throttles: event.throttles,
                next_attempt_at_ms: now_ms() + STORE_RETRY.as_millis() as i64,
                last_error: None,
            };
            finish(store.retry_at(&event.id, &shared.node, &retry));
            return;
        }
    };
    let policy = Policy::of(&config, shared.retry_delay);
    if retry::too_old(&policy, event.accepted_at_ms, now_ms()) {
        give_up(
            shared,
            &gateway,
            &event,
            &config,
            Condition::EventAgeExceeded,
            event.attempts,
            None,
        );
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
        // not the function's failure. Left claimed, so this node runs it
        // again, uncounted, as soon as it starts.
        shared.stopping.store(true, Ordering::Relaxed);
        shared.wake.notify_one();
        return;
    }
    let now = now_ms();
    let (failure, attempts, throttles, error, response) = match result {
        Ok(invoked) => match invoked.result {
            LambdaResult::Ok { body, .. } => {
                succeed(shared, &gateway, &event, &config, &body);
                return;
            }
            LambdaResult::FunctionError { error_type, body } => (
                Failure::Function,
                event.attempts + 1,
                0,
                error_name(&body).unwrap_or(error_type),
                Attempt {
                    status: 200,
                    function_error: true,
                    body,
                },
            ),
        },
        Err(AcquireError::NotFound(_)) => {
            log(format!(
                "async invocation {} dropped: the function no longer exists",
                event.id
            ));
            finish(store.complete(&event.id, &shared.node));
            return;
        }
        Err(AcquireError::ShuttingDown) => {
            // Left claimed: this node takes it back when it starts again.
            shared.stopping.store(true, Ordering::Relaxed);
            shared.wake.notify_one();
            return;
        }
        Err(err) => {
            let status = match err {
                AcquireError::Throttled { .. } => 429,
                _ => 502,
            };
            let message = err.to_string();
            (
                Failure::Throttled,
                event.attempts,
                event.throttles + 1,
                message.clone(),
                Attempt {
                    status,
                    function_error: false,
                    body: Bytes::from(serde_json::json!({ "errorMessage": message }).to_string()),
                },
            )
        }
    };
    match retry::after_failure(
        &policy,
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
            finish(store.retry_at(&event.id, &shared.node, &retry));
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
            let mut event = event;
            event.last_error = Some(error);
            give_up(
                shared,
                &gateway,
                &event,
                &config,
                condition,
                attempts,
                Some(response),
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
struct Attempt {
    status: u16,
    function_error: bool,
    body: Bytes,
}

fn succeed(
    shared: &Shared,
    gateway: &Gateway,
    event: &EventRecord,
    config: &rouse_manifest::AsyncInvoke,
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
    config: &rouse_manifest::AsyncInvoke,
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

/// The outcome of a store write after a delivery. `false` means another
/// node claimed the event meanwhile (our lease ran out); it will run again.
fn finish(result: Result<bool, StoreError>) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!("an async event was claimed by another node meanwhile"),
        Err(err) => tracing::error!(%err, "cannot record the outcome of an async event"),
    }
}
