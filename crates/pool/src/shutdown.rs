//! Stopping every instance when rouse shuts down.

use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

use crate::placement::Phase;
use crate::Pool;

impl Pool {
    /// True from the start of [`Pool::shutdown`]: failures from then on are
    /// rouse stopping, not the function failing.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// Stops every instance (SIGTERM, then SIGKILL after `grace`) and waits
    /// for them, refusing new requests from now on.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let functions: Vec<_> = self.lock_functions().values().cloned().collect();
        for fp in functions {
            let mut state = fp.lock_state();
            for slot in &mut state.slots {
                slot.phase = Phase::Draining;
                slot.instance.request_stop("rouse is shutting down");
            }
            drop(state);
            fp.changed.notify_waiters();
        }
        let deadline = Instant::now() + grace + Duration::from_secs(2);
        loop {
            let stopped = self.shared.all_stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if self.live_instances() == 0 {
                self.shared.confinement.remove_tree();
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            let _ = tokio::time::timeout_at(deadline, stopped).await;
        }
    }
}
