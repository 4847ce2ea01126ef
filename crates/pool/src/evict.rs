//! Making room on a full node: a request queued on the node's limits stops
//! another function's least recently used idle instance. The choice is a
//! pure function over views of the pools; the shell stops what it picked.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

use crate::placement::Phase;
use crate::{FunctionPool, Pool};

/// What the eviction choice needs to know about one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdleView {
    pub phase: Phase,
    pub in_flight: u32,
    pub last_used: Instant,
}

/// One other function's pool: its instances and its `minInstances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolView {
    pub min: u32,
    pub slots: Vec<IdleView>,
}

/// Which instance to stop, as (pool, slot): the least recently used ready,
/// idle one among pools with more live instances than their
/// `minInstances` (never below it). Ties go to the first seen.
pub(crate) fn choose(pools: &[PoolView]) -> Option<(usize, usize)> {
    let mut oldest: Option<(Instant, usize, usize)> = None;
    for (p, pool) in pools.iter().enumerate() {
        let live = pool
            .slots
            .iter()
            .filter(|s| s.phase != Phase::Draining)
            .count();
        if live <= pool.min as usize {
            continue;
        }
        let idle = pool
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.phase == Phase::Ready && s.in_flight == 0)
            .min_by_key(|(_, s)| s.last_used);
        if let Some((i, slot)) = idle {
            if oldest.is_none_or(|(t, _, _)| slot.last_used < t) {
                oldest = Some((slot.last_used, p, i));
            }
        }
    }
    oldest.map(|(_, p, i)| (p, i))
}

impl Pool {
    /// Node-wide limits are reached and `fp` needs an instance: stop the
    /// least recently used idle instance of another function (never below
    /// its `minInstances`), so one busy function is not starved by others'
    /// idle instances waiting for their `idleTimeout`. Its stop wakes the
    /// requests queued on the node. One eviction at a time: a crowd of
    /// waiters must not empty the node.
    pub(crate) fn stop_an_idle_instance_for(&self, fp: &Arc<FunctionPool>) {
        if self.shared.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let others: Vec<Arc<FunctionPool>> = self
            .lock_functions()
            .values()
            .filter(|other| !Arc::ptr_eq(other, fp))
            .cloned()
            .collect();
        // Each pool is locked on its own while it is looked at, as requests
        // on it go on meanwhile; the chosen instance is taken by identity.
        let mut instances = Vec::with_capacity(others.len());
        let views: Vec<PoolView> = others
            .iter()
            .map(|other| {
                let min = self
                    .shared
                    .min_instances(&other.name, other.deployment().spec.scaling.min_instances);
                let state = other.lock_state();
                instances.push(
                    state
                        .slots
                        .iter()
                        .map(|s| s.instance.clone())
                        .collect::<Vec<_>>(),
                );
                PoolView {
                    min,
                    slots: state
                        .slots
                        .iter()
                        .map(|s| IdleView {
                            phase: s.phase,
                            in_flight: s.in_flight,
                            last_used: s.last_used,
                        })
                        .collect(),
                }
            })
            .collect();
        let Some((p, i)) = choose(&views) else {
            self.shared.evicting.store(false, Ordering::Release);
            return;
        };
        let (other, instance) = (&others[p], &instances[p][i]);
        other.retire(instance);
        let reason = format!("stopped early to make room on the node for {}", fp.name);
        self.shared
            .logs
            .platform(&other.name, &format!("instance {} {reason}", instance.id));
        instance.request_stop(&reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Name, the other pools, and the (pool, slot) to stop.
    type Case = (&'static str, Vec<PoolView>, Option<(usize, usize)>);

    #[test]
    fn choose_table() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let slot = |phase, in_flight, last_used| IdleView {
            phase,
            in_flight,
            last_used,
        };
        let pool = |min, slots| PoolView { min, slots };
        let idle = |secs| slot(Phase::Ready, 0, at(secs));
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("nothing to stop", vec![], None),
            ("an idle instance", vec![pool(0, vec![idle(1)])], Some((0, 0))),
            ("busy ones are kept", vec![pool(0, vec![slot(Phase::Ready, 1, at(1))])], None),
            ("starting ones are kept", vec![pool(0, vec![slot(Phase::Starting, 0, at(1))])], None),
            ("draining ones are going anyway", vec![pool(0, vec![slot(Phase::Draining, 0, at(1))])], None),
            ("never below minInstances", vec![pool(1, vec![idle(1)])], None),
            ("above minInstances: the oldest idle one", vec![pool(1, vec![idle(5), idle(2), slot(Phase::Ready, 1, at(0))])], Some((0, 1))),
            ("draining ones do not count as live", vec![pool(1, vec![idle(1), slot(Phase::Draining, 2, at(0))])], None),
            ("least recently used across pools", vec![pool(0, vec![idle(7)]), pool(0, vec![idle(3), idle(9)])], Some((1, 0))),
            ("ties go to the first seen", vec![pool(0, vec![idle(3)]), pool(0, vec![idle(3)])], Some((0, 0))),
        ];
        for (name, pools, want) in cases {
            assert_eq!(choose(&pools), want, "{name}");
        }
    }
}
