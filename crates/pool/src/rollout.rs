//! Redeploys and removals: a new version starts beside the warm old one and
//! takes over once ready (zero downtime); a lowered `maxInstances` drains the
//! surplus; a removed function stops.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::placement::{self, Phase};
use crate::{
    instance, start_instance, warm::keep_min_warm, AcquireError, Deployment, FunctionPool, Pool,
};

impl Pool {
    /// Picks up a new deployment of `name` from the store. Running instances
    /// of the old version keep serving until an instance of the new one is
    /// ready, then drain; a function removed from the store is stopped.
    /// When warm instances had to be replaced, waits until the new
    /// version's first instance is ready (or failed to start, in which case
    /// the old instances keep serving). So when it returns, new requests
    /// reach the new version. `Err(StartFailed)` says the new version did
    /// not start.
    pub async fn reload_and_wait(&self, name: &str) -> Result<(), AcquireError> {
        for instance in self.start_new_version(name).await? {
            instance
                .started_up()
                .await
                .map_err(AcquireError::StartFailed)?;
        }
        Ok(())
    }

    /// Returns the instances it started: the new version's first one when
    /// warm instances are replaced, and those `minInstances` asks for.
    async fn start_new_version(
        &self,
        name: &str,
    ) -> Result<Vec<Arc<instance::Instance>>, AcquireError> {
        let Some(record) = self.shared.store.get_function(name).await? else {
            self.remove(name);
            return Ok(Vec::new());
        };
        let existing = self.lock_functions().get(name).cloned();
        let Some(fp) = existing else {
            if record.spec.scaling.min_instances > 0 {
                return Ok(keep_min_warm(&self.shared, &self.function(name).await?));
            }
            return Ok(Vec::new()); // loaded fresh on its next request
        };
        let deployment = Arc::new(Deployment {
            version: record.version,
            artifact: record.artifact,
            spec: record.spec,
            pinned: false,
        });
        let max_instances = deployment.spec.scaling.max_instances.max(1);
        let memory_mb = u64::from(deployment.spec.memory_size);
        *fp.deployment.lock().unwrap_or_else(|e| e.into_inner()) = deployment;
        let mut state = fp.lock_state();
        state.streak.reset();
        state.backoff_until = None;
        // A lowered `maxInstances` applies now: the surplus finishes its
        // requests and stops.
        let views = fp.views(&state);
        for i in placement::surplus(&views, max_instances) {
            state.slots[i].phase = Phase::Draining;
            state.slots[i].instance.wake.notify_one();
        }
        let warm = state.slots.iter().any(|s| s.phase == Phase::Ready);
        let mut started = Vec::new();
        if warm && !self.shared.shutting_down.load(Ordering::Acquire) {
            // Zero-downtime deploy: start the new version now; its
            // supervisor drains the old instances once it is ready (and
            // then starts the rest of `minInstances`). It may exceed the
            // node's limits for that moment, or a full node could never
            // be redeployed.
            self.shared.reserve(memory_mb, true);
            started.push(start_instance(&self.shared, &fp, &mut state, 0));
        }
        drop(state);
        if !warm {
            started.extend(keep_min_warm(&self.shared, &fp));
        }
        fp.changed.notify_waiters();
        Ok(started)
    }

    /// Stops every instance of `name` (of every version) and forgets it.
    pub fn remove(&self, name: &str) {
        let removed: Vec<Arc<FunctionPool>> = {
            let mut functions = self.lock_functions();
            let pinned_prefix = format!("{name}@");
            let keys: Vec<String> = functions
                .keys()
                .filter(|k| *k == name || k.starts_with(&pinned_prefix))
                .cloned()
                .collect();
            keys.iter().filter_map(|k| functions.remove(k)).collect()
        };
        for fp in removed {
            let mut state = fp.lock_state();
            state.removed = true;
            for slot in &mut state.slots {
                slot.phase = Phase::Draining;
                slot.instance.request_stop("function removed");
            }
            drop(state);
            fp.changed.notify_waiters();
        }
    }
}
