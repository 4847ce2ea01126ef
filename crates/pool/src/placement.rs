//! Where does the next request go? A pure decision over the instances of one
//! function, so the rules (pack onto warm instances, share a starting one,
//! start another only past its concurrency, respect the cap and the crash
//! back-off) are tested without processes or clocks.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spawned, not yet ready; requests may reserve a slot and wait for it.
    Starting,
    Ready,
    /// Takes no new requests; stops when its in-flight requests finish.
    Draining,
}

/// What placement needs to know about one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    pub phase: Phase,
    pub in_flight: u32,
    /// Runs the function's current version (older ones are only used while no
    /// current instance is ready, during a rolling deploy).
    pub current: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve on this ready instance.
    Use(usize),
    /// Reserve a slot on this starting instance and wait for it.
    Join(usize),
    /// Start a new instance and wait for it.
    Start,
    /// Nothing free and nothing may start now; wait for a change (or until the
    /// back-off ends) and decide again.
    Wait { until: Option<Instant> },
}

pub struct Limits {
    pub concurrency: u32,
    pub max_instances: u32,
}

pub fn decide(
    slots: &[SlotView],
    limits: &Limits,
    backoff_until: Option<Instant>,
    now: Instant,
) -> Decision {
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
        return Decision::Wait { until: None };
    }
    match backoff_until {
        Some(until) if until > now => Decision::Wait { until: Some(until) },
        _ => Decision::Start,
    }
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
                Decision::Wait { until: None },
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
                Decision::Wait { until: Some(later) },
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
        for (name, slots, backoff, want) in cases {
            assert_eq!(decide(&slots, &LIMITS, backoff, now), want, "{name}");
        }
    }
}
