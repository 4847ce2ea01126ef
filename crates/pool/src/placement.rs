//! Where does the next request go? A pure decision over the instances of one
//! function, so the rules (pack onto warm instances, share a starting one,
//! start another only past its concurrency, respect the cap, the crash
//! back-off, the scale-out rate and the node's limits) are tested without
//! processes or clocks. Also pure: how many instances `minInstances` still
//! needs, and which instances are surplus under a lowered `maxInstances`.

use tokio::time::Instant;

use crate::burst::Blocked;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Spawned, not yet ready; requests may reserve a slot and wait for it.
    Starting,
    Ready,
    /// Takes no new requests; stops when its in-flight requests finish.
    Draining,
}

/// What placement needs to know about one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotView {
    pub phase: Phase,
    pub in_flight: u32,
    /// Runs the function's current version (older ones are only used while no
    /// current instance is ready, during a rolling deploy).
    pub current: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Serve on this ready instance.
    Use(usize),
    /// Reserve a slot on this starting instance and wait for it.
    Join(usize),
    /// Start a new instance and wait for it.
    Start,
    /// The function is crash-looping: no start until then.
    BackingOff { until: Instant },
    /// Nothing free and `limit` forbids a start: queue for a change (a freed
    /// slot, a stopped instance) or until `retry_at`, then decide again.
    Queue {
        limit: Limit,
        retry_at: Option<Instant>,
    },
}

/// What stopped a start; each is its own throttle reason for callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The function's `maxInstances`.
    MaxInstances,
    /// The function's scale-out token bucket is empty.
    Burst,
    /// The node's `--max-instances` or `--memory-budget`.
    Node,
}

impl Limit {
    pub const ALL: [Limit; 3] = [Limit::MaxInstances, Limit::Burst, Limit::Node];

    /// The `reason` label of `rouse_throttles_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxInstances => "max_instances",
            Limit::Burst => "burst",
            Limit::Node => "node",
        }
    }
}

pub(crate) struct Limits {
    pub concurrency: u32,
    pub max_instances: u32,
}

/// What may keep a function from starting an instance right now, besides
/// its own cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Gates {
    /// End of the crash back-off.
    pub backoff_until: Option<Instant>,
    /// The scale-out bucket's verdict at `now`.
    pub burst: Option<Blocked>,
    /// The node has no room for one more instance of this function.
    pub node_full: bool,
}

pub(crate) fn decide(slots: &[SlotView], limits: &Limits, gates: &Gates, now: Instant) -> Decision {
    let has_room = |s: &SlotView| s.in_flight < limits.concurrency;
    // Packing onto the oldest instance with room keeps the rest idle, so the
    // reaper can scale down gradually instead of every instance staying lukewarm.
    let ready = |current: bool| {
        slots
            .iter()
            .position(|s| s.phase == Phase::Ready && s.current == current && has_room(s))
    };
    if let Some(i) = ready(true) {
        return Decision::Use(i);
    }
    if let Some(i) = slots
        .iter()
        .position(|s| s.phase == Phase::Starting && s.current && has_room(s))
    {
        return Decision::Join(i);
    }
    if let Some(i) = ready(false) {
        return Decision::Use(i);
    }
    let live = slots.iter().filter(|s| s.phase != Phase::Draining).count();
    if live as u32 >= limits.max_instances {
        return Decision::Queue {
            limit: Limit::MaxInstances,
            retry_at: None,
        };
    }
    if let Some(until) = gates.backoff_until.filter(|&until| until > now) {
        return Decision::BackingOff { until };
    }
    match gates.burst {
        Some(Blocked::Until(at)) => {
            return Decision::Queue {
                limit: Limit::Burst,
                retry_at: Some(at),
            }
        }
        Some(Blocked::Forever) => {
            return Decision::Queue {
                limit: Limit::Burst,
                retry_at: None,
            }
        }
        None => {}
    }
    if gates.node_full {
        return Decision::Queue {
            limit: Limit::Node,
            retry_at: None,
        };
    }
    Decision::Start
}

/// How many instances to start so that `min` are up (starting or ready).
pub(crate) fn missing_for_min(slots: &[SlotView], min: u32) -> u32 {
    let live = slots.iter().filter(|s| s.phase != Phase::Draining).count();
    min.saturating_sub(u32::try_from(live).unwrap_or(u32::MAX))
}

/// Instances to drain so that at most `max` are up: the least busy first,
/// and among equals the newest, so the longest-warm instances stay.
pub(crate) fn surplus(slots: &[SlotView], max: u32) -> Vec<usize> {
    let mut live: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].phase != Phase::Draining)
        .collect();
    let excess = live.len().saturating_sub(max as usize);
    live.sort_by_key(|&i| (slots[i].in_flight, std::cmp::Reverse(i)));
    live.truncate(excess);
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        concurrency: 2,
        max_instances: 2,
    };

    fn slot(phase: Phase, in_flight: u32) -> SlotView {
        SlotView {
            phase,
            in_flight,
            current: true,
        }
    }

    #[test]
    fn table() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let old_ready = SlotView {
            current: false,
            ..slot(Phase::Ready, 0)
        };
        let queue = |limit| Decision::Queue {
            limit,
            retry_at: None,
        };
        let cases: Vec<(&str, Vec<SlotView>, Option<Instant>, Decision)> = vec![
            ("cold: start one", vec![], None, Decision::Start),
            (
                "warm with room: use it",
                vec![slot(Phase::Ready, 1)],
                None,
                Decision::Use(0),
            ),
            (
                "pack onto the first with room",
                vec![
                    slot(Phase::Ready, 2),
                    slot(Phase::Ready, 1),
                    slot(Phase::Ready, 0),
                ],
                None,
                Decision::Use(1),
            ),
            (
                "starting with room: share it",
                vec![slot(Phase::Starting, 1)],
                None,
                Decision::Join(0),
            ),
            (
                "starting and full: start another",
                vec![slot(Phase::Starting, 2)],
                None,
                Decision::Start,
            ),
            (
                "all full at the cap: wait",
                vec![slot(Phase::Ready, 2), slot(Phase::Starting, 2)],
                None,
                queue(Limit::MaxInstances),
            ),
            (
                "draining ones do not count against the cap",
                vec![slot(Phase::Draining, 2), slot(Phase::Ready, 2)],
                None,
                Decision::Start,
            ),
            (
                "back-off: wait until it ends",
                vec![],
                Some(later),
                Decision::BackingOff { until: later },
            ),
            ("back-off over: start", vec![], Some(now), Decision::Start),
            (
                "rolling deploy: old version serves while the new one starts",
                vec![old_ready, slot(Phase::Starting, 2)],
                None,
                Decision::Use(0),
            ),
            (
                "current version preferred over old",
                vec![old_ready, slot(Phase::Ready, 0)],
                None,
                Decision::Use(1),
            ),
        ];
        for (name, slots, backoff_until, want) in cases {
            let gates = Gates {
                backoff_until,
                ..Gates::default()
            };
            assert_eq!(decide(&slots, &LIMITS, &gates, now), want, "{name}");
        }
    }

    #[test]
    fn burst_and_node_limits_only_stop_starts() {
        let now = Instant::now();
        let next_token = now + Duration::from_millis(300);
        let empty = Gates {
            burst: Some(Blocked::Until(next_token)),
            ..Gates::default()
        };
        let full_node = Gates {
            node_full: true,
            ..Gates::default()
        };
        let cases: Vec<(&str, Vec<SlotView>, Gates, Decision)> = vec![
            (
                "no tokens: queue until the next one",
                vec![slot(Phase::Ready, 2)],
                empty,
                Decision::Queue {
                    limit: Limit::Burst,
                    retry_at: Some(next_token),
                },
            ),
            (
                "no tokens, never refilled: queue for a freed slot",
                vec![],
                Gates {
                    burst: Some(Blocked::Forever),
                    ..Gates::default()
                },
                Decision::Queue {
                    limit: Limit::Burst,
                    retry_at: None,
                },
            ),
            (
                "no tokens but a warm slot: served",
                vec![slot(Phase::Ready, 1)],
                empty,
                Decision::Use(0),
            ),
            (
                "no tokens but a starting slot: shared",
                vec![slot(Phase::Starting, 1)],
                empty,
                Decision::Join(0),
            ),
            (
                "node full: queue",
                vec![],
                full_node,
                Decision::Queue {
                    limit: Limit::Node,
                    retry_at: None,
                },
            ),
            (
                "own cap reported before the node's",
                vec![slot(Phase::Ready, 2), slot(Phase::Ready, 2)],
                full_node,
                Decision::Queue {
                    limit: Limit::MaxInstances,
                    retry_at: None,
                },
            ),
            (
                "back-off reported before the bucket",
                vec![],
                Gates {
                    backoff_until: Some(next_token),
                    ..empty
                },
                Decision::BackingOff { until: next_token },
            ),
        ];
        for (name, slots, gates, want) in cases {
            assert_eq!(decide(&slots, &LIMITS, &gates, now), want, "{name}");
        }
    }

    #[test]
    fn min_instances_counts_starting_and_ready_but_not_draining() {
        let slots = [
            slot(Phase::Ready, 0),
            slot(Phase::Draining, 0),
            slot(Phase::Starting, 0),
        ];
        assert_eq!(missing_for_min(&slots, 0), 0);
        assert_eq!(missing_for_min(&slots, 2), 0);
        assert_eq!(missing_for_min(&slots, 5), 3);
        assert_eq!(missing_for_min(&[], 2), 2);
    }

    #[test]
    fn surplus_drains_idle_and_newest_first() {
        let slots = [
            slot(Phase::Ready, 1),
            slot(Phase::Ready, 0),
            slot(Phase::Draining, 0),
            slot(Phase::Ready, 0),
            slot(Phase::Ready, 3),
        ];
        assert_eq!(surplus(&slots, 4), Vec::<usize>::new());
        assert_eq!(surplus(&slots, 3), vec![3]);
        assert_eq!(surplus(&slots, 2), vec![3, 1]);
        assert_eq!(surplus(&slots, 1), vec![3, 1, 0]);
    }
}
