//! Asynchronous (`Event`) invocations, durable: an event is committed to the
//! store before its 202 is sent, and one dispatcher task per server claims
//! due events (with a lease) and runs them through the pool. A crash loses
//! nothing: at the next start the node takes its claims back, and a claim
//! of a node that never comes back expires and is claimed again — at least
//! once, as Lambda promises.
//!
//! The dispatcher never polls: an enqueue or a finished delivery wakes it,
//! and otherwise it sleeps until the earliest next attempt in the store.
//! One attempt and what follows from it is `deliver`; what to do after a
//! failure is decided in `retry`; what a destination receives is built in
//! `record`.

mod deliver;
mod record;
pub(crate) mod retry;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rouse_store::events::{NewEvent, Retry};
use rouse_store::{AsyncEvents, Store, StoreError};
use tokio::sync::{Notify, Semaphore};

use crate::{Gateway, Inner};
use deliver::deliver;

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

    /// This node's id (`DATA/node-id`): the name its claims and stream
    /// leases are held under.
    pub(crate) fn node(&self) -> &str {
        &self.shared.node
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

/// The outcome of a store write after a delivery. `false` means another
/// node claimed the event meanwhile (our lease ran out); it will run again.
fn finish(result: Result<bool, StoreError>) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::info!("an async event was claimed by another node meanwhile"),
        Err(err) => tracing::error!(%err, "cannot record the outcome of an async event"),
    }
}
