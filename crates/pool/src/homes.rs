//! What a cluster asks of this node's pool: whether it has a ready instance
//! of a function (then a request is served here rather than forwarded), to
//! drain a function that is no longer homed here (in-flight requests
//! finish, then its instances stop), and whether this node keeps the
//! function's `minInstances` (only its first home does, so they are kept
//! once in the cluster). On a single node none of it is ever called.

use crate::placement::Phase;
use crate::Pool;

impl Pool {
    /// A ready (not draining) instance of `name`, of any version, is here.
    pub fn has_ready(&self, name: &str) -> bool {
        self.pools_of(name).iter().any(|fp| {
            fp.lock_state()
                .slots
                .iter()
                .any(|s| s.phase == Phase::Ready)
        })
    }

    /// Functions with instances here (starting, ready or draining).
    pub fn running_functions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .lock_functions()
            .values()
            .filter(|fp| !fp.lock_state().slots.is_empty())
            .map(|fp| fp.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Drains every instance of `name` (every version): each finishes what
    /// it is serving and stops. Returns how many it drained now; new
    /// requests for it here start instances again.
    pub fn drain_function(&self, name: &str) -> usize {
        let mut drained = 0;
        for fp in self.pools_of(name) {
            let mut state = fp.lock_state();
            for slot in &mut state.slots {
                if slot.phase != Phase::Draining {
                    slot.phase = Phase::Draining;
                    slot.instance.wake.notify_one();
                    drained += 1;
                }
            }
            drop(state);
            fp.changed.notify_waiters();
        }
        drained
    }

    /// From now on `minInstances` are kept only for the functions
    /// [`Pool::set_keeps_min`] names: a cluster keeps them on one node.
    pub fn keep_min_only_where_told(&self) {
        let mut here = self
            .shared
            .min_here
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        here.get_or_insert_with(Default::default);
    }

    /// Whether this node keeps `name`'s `minInstances` (in a cluster: it is
    /// the function's first home). Returns `true` when that changed to
    /// yes, for the caller to start them ([`Pool::warm`]).
    pub fn set_keeps_min(&self, name: &str, keeps: bool) -> bool {
        let mut here = self
            .shared
            .min_here
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(here) = here.as_mut() else {
            return false;
        };
        if keeps {
            here.insert(name.to_string())
        } else {
            here.remove(name);
            false
        }
    }
}

impl crate::Shared {
    /// `minInstances` of a function as this node keeps it: 0 where another
    /// node of the cluster keeps them.
    pub(crate) fn min_instances(&self, name: &str, declared: u32) -> u32 {
        if declared == 0 {
            return 0;
        }
        let here = self.min_here.lock().unwrap_or_else(|e| e.into_inner());
        match here.as_ref() {
            Some(here) if !here.contains(name) => 0,
            _ => declared,
        }
    }
}
