//! When does a warm instance stop? Pure decisions for its supervisor, with
//! time as a parameter: the idle verdict (stop now, or sleep until when)
//! and the `maxLifetime` mark after which it drains.

use std::time::Duration;
use tokio::time::Instant;

use crate::placement::Phase;

/// What the idle verdict needs to know about the instance's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotState {
    pub phase: Phase,
    pub in_flight: u32,
    pub last_used: Instant,
}

/// What the supervisor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Stop the instance; the reason goes to the log.
    Stop(String),
    /// Nothing to do before this instant (`None`: until woken, by the last
    /// request of a draining instance or a stop request).
    Sleep { until: Option<Instant> },
}

/// The supervisor's verdict at `now` on an instance whose slot is `slot`
/// (`None`: it was taken out of the pool). `stop` is a requested stop's
/// reason; `live` counts the function's current-version instances that are
/// not draining and `min` is how many of them `minInstances` keeps warm
/// (0 for an older version, which is reaped when idle).
pub(crate) fn idle_verdict(
    stop: Option<&str>,
    slot: Option<SlotState>,
    live: usize,
    min: usize,
    idle_timeout: Duration,
    now: Instant,
) -> Next {
    if let Some(reason) = stop {
        return Next::Stop(reason.to_string());
    }
    let Some(slot) = slot else {
        return Next::Stop("removed".into());
    };
    if slot.phase == Phase::Draining {
        if slot.in_flight == 0 {
            return Next::Stop("drained".into());
        }
        return Next::Sleep { until: None };
    }
    let idle_deadline = if slot.in_flight > 0 {
        now + idle_timeout
    } else {
        slot.last_used + idle_timeout
    };
    if slot.in_flight == 0 && idle_deadline <= now {
        if live > min {
            return Next::Stop(format!("idle for {}s", idle_timeout.as_secs_f64()));
        }
        // Kept warm for `minInstances`: look again an idle timeout later,
        // when another instance may have made it surplus.
        return Next::Sleep {
            until: Some(now + idle_timeout),
        };
    }
    Next::Sleep {
        until: Some(idle_deadline),
    }
}

/// When an instance started at `started` has lived its `maxLifetime` and
/// drains (finishing its requests on the way out). Past that mark the
/// supervisor no longer waits for it.
pub(crate) fn retire_at(started: Instant, max_lifetime: Duration) -> Instant {
    started + max_lifetime
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(10);

    /// Name, requested stop, slot, live, min, now, verdict.
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<SlotState>,
        usize,
        usize,
        Instant,
        Next,
    );

    #[test]
    fn idle_verdict_table() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let slot = |phase, in_flight, last_used| {
            Some(SlotState {
                phase,
                in_flight,
                last_used,
            })
        };
        let sleep = |until| Next::Sleep { until };
        let stop = |reason: &str| Next::Stop(reason.to_string());
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("a requested stop wins", Some("function removed"), slot(Phase::Ready, 3, t0), 1, 0, t0, stop("function removed")),
            ("taken out of the pool", None, None, 0, 0, t0, stop("removed")),
            ("drained", None, slot(Phase::Draining, 0, t0), 0, 0, t0, stop("drained")),
            ("draining with requests: wait for the last", None, slot(Phase::Draining, 2, t0), 0, 0, at(99), sleep(None)),
            ("busy: the idle clock starts after the request", None, slot(Phase::Ready, 1, t0), 1, 0, at(30), sleep(Some(at(40)))),
            ("idle, not yet for long enough", None, slot(Phase::Ready, 0, t0), 1, 0, at(4), sleep(Some(at(10)))),
            ("idle for exactly the timeout", None, slot(Phase::Ready, 0, t0), 1, 0, at(10), stop("idle for 10s")),
            ("idle for long", None, slot(Phase::Ready, 0, t0), 2, 1, at(50), stop("idle for 10s")),
            ("idle but kept for minInstances", None, slot(Phase::Ready, 0, t0), 1, 1, at(50), sleep(Some(at(60)))),
            ("the idle clock runs from the last use", None, slot(Phase::Starting, 0, at(5)), 1, 0, at(6), sleep(Some(at(15)))),
        ];
        for (name, requested, slot, live, min, now, want) in cases {
            assert_eq!(
                idle_verdict(requested, slot, live, min, IDLE, now),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn retire_at_is_max_lifetime_after_the_start() {
        let t0 = Instant::now();
        let cases = [
            (Duration::from_secs(1), t0 + Duration::from_secs(1)),
            (
                Duration::from_secs(14_400),
                t0 + Duration::from_secs(14_400),
            ),
            (Duration::ZERO, t0),
        ];
        for (lifetime, want) in cases {
            assert_eq!(retire_at(t0, lifetime), want, "{lifetime:?}");
        }
    }
}
