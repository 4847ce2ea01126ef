//! `minInstances`: starting what is missing at deploy, at rouse's start and
//! whenever an instance stops; during a crash back-off, once it ends. No
//! task or timer of its own.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

use crate::placement::{self, SlotView};
use crate::{instance, start_instance, AcquireError, FunctionPool, Pool, Shared};

impl Pool {
    /// Starts instances of `name` until its `minInstances` are up (without
    /// spending its scale-out tokens: they are provisioned, not demanded).
    /// Returns how many it started. A node without room starts fewer, and
    /// says so in the function's log.
    pub async fn warm(&self, name: &str) -> Result<usize, AcquireError> {
        let fp = self.function(name).await?;
        Ok(keep_min_warm(&self.shared, &fp).len())
    }

    /// [`Pool::warm`] for every deployed function with `minInstances`, when
    /// rouse starts. Returns how many instances were started.
    pub async fn warm_all(&self) -> Result<usize, AcquireError> {
        let mut started = 0;
        for record in self.shared.store.list_functions().await? {
            if record.spec.scaling.min_instances > 0 {
                started += self.warm(&record.name).await?;
            }
        }
        Ok(started)
    }
}

/// Starts instances of `fp` until its `minInstances` are up, as far as the
/// node has room; during a crash back-off, once it ends. Returns the
/// instances started.
pub(crate) fn keep_min_warm(
    shared: &Arc<Shared>,
    fp: &Arc<FunctionPool>,
) -> Vec<Arc<instance::Instance>> {
    let dep = fp.deployment();
    let min = shared.min_instances(&fp.name, dep.spec.scaling.min_instances);
    let mut started = Vec::new();
    if min == 0 || shared.shutting_down.load(Ordering::Acquire) {
        return started;
    }
    let mut state = fp.lock_state();
    if state.removed {
        return started;
    }
    // Instances of an older version do not count: they drain once the
    // current version is ready.
    let current: Vec<SlotView> = fp.views(&state).into_iter().filter(|v| v.current).collect();
    let missing = placement::missing_for_min(&current, min);
    if missing == 0 {
        return started;
    }
    if let Some(until) = state.backoff_until.filter(|&t| t > Instant::now()) {
        if !std::mem::replace(&mut state.warm_retry_pending, true) {
            let (shared, fp) = (shared.clone(), fp.clone());
            shared.runtime.clone().spawn(async move {
                tokio::time::sleep_until(until).await;
                fp.lock_state().warm_retry_pending = false;
                keep_min_warm(&shared, &fp);
            });
        }
        return started;
    }
    for _ in 0..missing {
        if !shared.reserve(u64::from(dep.spec.memory_size), false) {
            shared.logs.platform(
                &fp.name,
                &format!(
                    "minInstances: {} of {min} running; the node has no room for more (see --max-instances, --memory-budget)",
                    min - missing + started.len() as u32
                ),
            );
            break;
        }
        started.push(start_instance(shared, fp, &mut state, 0));
    }
    started
}
