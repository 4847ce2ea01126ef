//! Limits for the whole node, so one function cannot starve the machine:
//! a cap on live instances over all functions and a memory budget (the sum
//! of the `memorySize` of live instances).

/// Share of the machine's RAM the default memory budget hands out; the rest
/// is left to rouse itself and the system.
const DEFAULT_MEMORY_SHARE: f64 = 0.9;
/// Budget when the machine's RAM cannot be read (not Linux).
const FALLBACK_MEMORY_MB: u64 = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Live instances over all functions (`--max-instances`); `None`: no cap.
    pub max_instances: Option<u32>,
    /// Sum of `memorySize` over live instances, in MB (`--memory-budget`).
    pub memory_mb: u64,
}

impl NodeLimits {
    /// No instance cap, and most of the machine's RAM as the memory budget.
    pub fn for_this_machine() -> NodeLimits {
        NodeLimits {
            max_instances: None,
            memory_mb: default_memory_budget_mb(),
        }
    }
}

/// 90% of the machine's memory (`MemTotal` in `/proc/meminfo`).
pub fn default_memory_budget_mb() -> u64 {
    rouse_sandbox::procfs::mem_total_kb().map_or(FALLBACK_MEMORY_MB, |kb| {
        (kb as f64 / 1024.0 * DEFAULT_MEMORY_SHARE) as u64
    })
}

/// What live instances hold right now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeUsage {
    pub instances: u32,
    pub memory_mb: u64,
}

impl NodeUsage {
    /// Whether one more instance of `memory_mb` fits. An instance larger
    /// than the whole budget still runs when the node is otherwise empty,
    /// so a big function is slow to scale rather than impossible to start.
    pub(crate) fn has_room(&self, limits: &NodeLimits, memory_mb: u64) -> bool {
        let instances_ok = limits.max_instances.is_none_or(|max| self.instances < max);
        let memory_ok = self.instances == 0 || self.memory_mb + memory_mb <= limits.memory_mb;
        instances_ok && memory_ok
    }

    pub(crate) fn add(&mut self, memory_mb: u64) {
        self.instances += 1;
        self.memory_mb += memory_mb;
    }

    pub(crate) fn remove(&mut self, memory_mb: u64) {
        self.instances = self.instances.saturating_sub(1);
        self.memory_mb = self.memory_mb.saturating_sub(memory_mb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_cap_and_memory_budget() {
        let limits = NodeLimits {
            max_instances: Some(2),
            memory_mb: 1000,
        };
        let mut usage = NodeUsage::default();
        assert!(usage.has_room(&limits, 600));
        usage.add(600);
        assert!(!usage.has_room(&limits, 600), "over the memory budget");
        assert!(usage.has_room(&limits, 400), "exactly the budget fits");
        usage.add(400);
        assert!(!usage.has_room(&limits, 1), "over the instance cap");
        usage.remove(600);
        assert!(usage.has_room(&limits, 600));
    }

    #[test]
    fn one_instance_larger_than_the_budget_runs_alone() {
        let limits = NodeLimits {
            max_instances: None,
            memory_mb: 512,
        };
        let mut usage = NodeUsage::default();
        assert!(usage.has_room(&limits, 2048));
        usage.add(2048);
        assert!(!usage.has_room(&limits, 128));
    }
}
