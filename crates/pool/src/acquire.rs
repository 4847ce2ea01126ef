//! The acquire loop: place a request on an instance (serve, share a
//! starting one, start one), or queue it until a slot frees up, its limit
//! lifts or its `queueTimeout` ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::placement::{self, Decision, Gates, Limit, Limits};
use crate::{burst, instance, metrics, start_instance, AcquireError, FunctionPool, Lease, Pool};

/// `Retry-After` when no better estimate exists: slots free up as requests
/// finish, usually well within a second.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The outcome of one placement round in [`Pool::acquire`].
enum Action {
    Serve(Arc<instance::Instance>),
    AwaitStart(Arc<instance::Instance>),
    Queue(Limit, Option<Instant>),
}

/// What one request's placement rounds need from the function's spec,
/// read once per request.
struct Terms {
    limits: Limits,
    queue_timeout: Duration,
    rate: burst::Rate,
    memory_mb: u64,
}

impl Terms {
    fn of(fp: &FunctionPool) -> Terms {
        let dep = fp.deployment();
        let scaling = &dep.spec.scaling;
        Terms {
            limits: Limits {
                concurrency: dep.spec.concurrency.max(1),
                max_instances: scaling.max_instances.max(1),
            },
            queue_timeout: Duration::from_secs_f64(scaling.queue_timeout_secs),
            rate: burst::Rate {
                capacity: scaling.burst.max(1),
                per_minute: scaling.burst_refill_per_minute,
            },
            memory_mb: u64::from(dep.spec.memory_size),
        }
    }
}

impl Pool {
    /// A slot on an instance of `name` that can take one more request.
    /// Waits while an instance starts (sharing it with other waiters) and,
    /// when every instance is busy and no more may start, for up to the
    /// function's `queueTimeout`.
    pub async fn acquire(&self, name: &str) -> Result<Lease, AcquireError> {
        self.acquire_version(name, None).await
    }

    /// [`Pool::acquire`] on a given version of `name` (`None`: the current
    /// one). A version other than the current runs on instances of its own,
    /// started on demand and reaped when idle like any other, so versions
    /// nobody calls cost nothing.
    pub async fn acquire_version(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Lease, AcquireError> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(AcquireError::ShuttingDown);
        }
        let fp = self.function(name).await?;
        let fp = match version {
            Some(v) if v != fp.deployment().version => self.pinned(&fp, v).await?,
            _ => fp,
        };
        let terms = Terms::of(&fp);
        let started = Instant::now();
        let queue_deadline = started + terms.queue_timeout;
        // Held while this request waits for a busy function to free a slot.
        let mut queued = None;
        loop {
            let changed = fp.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let node_changed = self.shared.node_changed.notified();
            tokio::pin!(node_changed);
            node_changed.as_mut().enable();

            let (limit, retry_at) = match self.place(&fp, &terms, started)? {
                Action::Serve(instance) => {
                    return Ok(Lease::new(self.shared.clone(), fp.clone(), instance, false));
                }
                Action::AwaitStart(instance) => {
                    drop(queued);
                    let result = self.await_start(fp.clone(), instance).await;
                    if result.is_err() {
                        fp.metrics
                            .record(Some(metrics::ErrorKind::StartFailed), started.elapsed());
                    }
                    return result;
                }
                Action::Queue(limit, retry_at) => (limit, retry_at),
            };
            let now = Instant::now();
            if now >= queue_deadline {
                fp.metrics.throttled(limit);
                return Err(AcquireError::Throttled {
                    function: name.to_string(),
                    limit,
                    retry_after: retry_after(limit, retry_at, now),
                });
            }
            queued.get_or_insert_with(|| metrics::Gauge::enter(&fp.metrics.queued));
            let _node_waiter = (limit == Limit::Node).then(|| {
                self.stop_an_idle_instance_for(&fp);
                metrics::Gauge::enter(&self.shared.node_waiters)
            });
            let wake_at = retry_at.map_or(queue_deadline, |at| at.min(queue_deadline));
            tokio::select! {
                _ = changed => {}
                _ = node_changed, if limit == Limit::Node => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
            if self.shared.shutting_down.load(Ordering::Acquire) {
                return Err(AcquireError::ShuttingDown);
            }
        }
    }

    /// One placement round under the function's lock: takes a slot, starts
    /// an instance, or says what to queue on.
    fn place(
        &self,
        fp: &Arc<FunctionPool>,
        terms: &Terms,
        started: Instant,
    ) -> Result<Action, AcquireError> {
        let mut state = fp.lock_state();
        if state.removed {
            return Err(AcquireError::NotFound(fp.name.clone()));
        }
        let views = fp.views(&state);
        let now = Instant::now();
        let gates = Gates {
            backoff_until: state.backoff_until,
            burst: state.bucket.blocked_until(terms.rate, now),
            node_full: false,
        };
        let mut decision = placement::decide(&views, &terms.limits, &gates, now);
        // The node is the last gate; checking it only here keeps the
        // node-wide lock off the warm path.
        if decision == Decision::Start && !self.shared.reserve(terms.memory_mb, false) {
            decision = Decision::Queue {
                limit: Limit::Node,
                retry_at: None,
            };
        }
        Ok(match decision {
            Decision::Use(i) => {
                let slot = &mut state.slots[i];
                slot.in_flight += 1;
                Action::Serve(slot.instance.clone())
            }
            Decision::Join(i) => {
                let slot = &mut state.slots[i];
                slot.in_flight += 1;
                Action::AwaitStart(slot.instance.clone())
            }
            Decision::Start => {
                state.bucket.take(terms.rate, now);
                Action::AwaitStart(start_instance(&self.shared, fp, &mut state, 1))
            }
            Decision::BackingOff { until } => {
                fp.metrics
                    .record(Some(metrics::ErrorKind::StartFailed), started.elapsed());
                return Err(AcquireError::BackingOff {
                    function: fp.name.clone(),
                    retry_after: until.saturating_duration_since(now),
                });
            }
            Decision::Queue { limit, retry_at } => Action::Queue(limit, retry_at),
        })
    }

    /// Waits for a starting instance on which a slot is already reserved.
    async fn await_start(
        &self,
        fp: Arc<FunctionPool>,
        instance: Arc<instance::Instance>,
    ) -> Result<Lease, AcquireError> {
        // The lease exists before the wait so a cancelled request (client
        // gone) still gives its reserved slot back.
        let lease = Lease::new(self.shared.clone(), fp, instance.clone(), true);
        instance
            .started_up()
            .await
            .map_err(AcquireError::StartFailed)?;
        Ok(lease)
    }
}

/// `Retry-After` for a request throttled by `limit`: when the next
/// scale-out token arrives, or [`DEFAULT_RETRY_AFTER`] for a busy function
/// or node. A bucket that never refills suggests a minute.
fn retry_after(limit: Limit, retry_at: Option<Instant>, now: Instant) -> Duration {
    match (limit, retry_at) {
        (Limit::Burst, Some(at)) => at.saturating_duration_since(now).max(DEFAULT_RETRY_AFTER),
        (Limit::Burst, None) => Duration::from_secs(60),
        _ => DEFAULT_RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_follows_the_limit() {
        let now = Instant::now();
        let soon = now + Duration::from_millis(300);
        let later = now + Duration::from_secs(5);
        let cases = [
            (Limit::MaxInstances, None, DEFAULT_RETRY_AFTER),
            (Limit::Node, None, DEFAULT_RETRY_AFTER),
            (Limit::Burst, Some(soon), DEFAULT_RETRY_AFTER),
            (Limit::Burst, Some(later), Duration::from_secs(5)),
            (Limit::Burst, None, Duration::from_secs(60)),
        ];
        for (limit, retry_at, want) in cases {
            assert_eq!(
                retry_after(limit, retry_at, now),
                want,
                "{limit:?} {retry_at:?}"
            );
        }
    }
}
