//! Versions run beside the current one (for an alias or a qualified
//! invoke): each in a pool of its own keyed `name@version`, created on first
//! use, sharing the function's metrics and uid.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::placement::Phase;
use crate::{AcquireError, Deployment, FunctionPool, Pool, State};

impl Pool {
    /// Drains the instances of versions of `name` run beside its current one
    /// that are not in `keep` (the versions its aliases still serve), so a
    /// version no alias points at stops costing memory at once rather than
    /// after `idleTimeout`. Calling it by number starts it again.
    pub fn drain_versions_except(&self, name: &str, keep: &[u32]) {
        for fp in self.pools_of(name) {
            if fp.pinned.is_none_or(|v| keep.contains(&v)) {
                continue;
            }
            let mut state = fp.lock_state();
            for slot in &mut state.slots {
                if slot.phase != Phase::Draining {
                    slot.phase = Phase::Draining;
                    slot.instance.wake.notify_one();
                }
            }
            drop(state);
            fp.changed.notify_waiters();
        }
    }

    /// The pool running version `version` of the function `main` beside
    /// its current one, created on first use.
    pub(crate) async fn pinned(
        &self,
        main: &Arc<FunctionPool>,
        version: u32,
    ) -> Result<Arc<FunctionPool>, AcquireError> {
        let key = format!("{}@{version}", main.name);
        if let Some(fp) = self.lock_functions().get(&key) {
            return Ok(fp.clone());
        }
        let record = self
            .shared
            .store
            .version(&main.name, version)
            .await?
            .ok_or_else(|| AcquireError::NotFound(format!("{}:{version}", main.name)))?;
        let fp = Arc::new(FunctionPool {
            name: main.name.clone(),
            pinned: Some(version),
            deployment: Mutex::new(Arc::new(Deployment {
                version,
                artifact: record.artifact,
                spec: record.spec,
                pinned: true,
            })),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            metrics: main.metrics.clone(),
            // Versions of one function run as the same user.
            uid: main.uid,
        });
        Ok(self.lock_functions().entry(key).or_insert(fp).clone())
    }

    /// The pools of `name`: its current version first, then pinned ones.
    pub(crate) fn pools_of(&self, name: &str) -> Vec<Arc<FunctionPool>> {
        let functions = self.lock_functions();
        let mut pools: Vec<Arc<FunctionPool>> = functions.get(name).cloned().into_iter().collect();
        let pinned_prefix = format!("{name}@");
        pools.extend(
            functions
                .iter()
                .filter(|(k, _)| k.starts_with(&pinned_prefix))
                .map(|(_, fp)| fp.clone()),
        );
        pools
    }
}
