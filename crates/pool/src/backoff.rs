//! Back-off: how long to wait before trying again after repeated failures.
//! [`Schedule`] is the one exponential schedule in rouse (the gateway's
//! async-event retries after throttles use it too); [`CrashStreak`] applies it to instances
//! that keep dying soon after start, so a broken app is not respawned in a
//! hot loop. Pure, so schedules are tested without sleeping.

use std::time::Duration;

/// An exponential back-off: the first wait is `first`, each next one twice
/// the last, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first: Duration,
    pub max: Duration,
}

impl Schedule {
    pub const fn new(first: Duration, max: Duration) -> Schedule {
        Schedule { first, max }
    }

    /// The wait before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        // 2^16 times any sensible `first` is past any sensible `max`; the
        // cap on the exponent keeps the shift defined.
        self.first.saturating_mul(1 << retry.min(16)).min(self.max)
    }
}

/// An instance that exits on its own within this time of starting counts as a
/// crash of the same loop; one that lived longer resets the streak.
pub(crate) const SHORT_LIFE: Duration = Duration::from_secs(10);

/// Waits between starts of a crash-looping function: 100 ms, doubling, at
/// most 30 s.
const CRASH_BACKOFF: Schedule = Schedule::new(Duration::from_millis(100), Duration::from_secs(30));

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CrashStreak(u32);

impl CrashStreak {
    /// Records an unplanned exit after `lived`; returns how long to wait before
    /// the next start. The first crash restarts at once (a single crash is
    /// usually a bad request, not a broken app).
    pub(crate) fn record_exit(&mut self, lived: Duration) -> Duration {
        if lived >= SHORT_LIFE {
            self.0 = 1;
            return Duration::ZERO;
        }
        self.0 = self.0.saturating_add(1);
        match self.0 {
            0 | 1 => Duration::ZERO,
            streak => CRASH_BACKOFF.delay(streak - 2),
        }
    }

    pub(crate) fn reset(&mut self) {
        self.0 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_doubles_and_caps() {
        let s = Schedule::new(Duration::from_secs(1), Duration::from_secs(300));
        let cases = [
            (0, 1),
            (1, 2),
            (2, 4),
            (8, 256),
            (9, 300),
            (16, 300),
            (u32::MAX, 300),
        ];
        for (retry, want) in cases {
            assert_eq!(s.delay(retry), Duration::from_secs(want), "retry {retry}");
        }
        let huge = Schedule::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.delay(3), Duration::MAX, "saturates");
    }

    #[test]
    fn crash_schedule_doubles_and_caps() {
        let mut streak = CrashStreak::default();
        let quick = Duration::from_millis(50);
        let delays: Vec<u128> = (0..12)
            .map(|_| streak.record_exit(quick).as_millis())
            .collect();
        assert_eq!(
            delays,
            [0, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
    }

    #[test]
    fn a_long_life_resets_the_streak() {
        let mut streak = CrashStreak::default();
        for _ in 0..5 {
            streak.record_exit(Duration::from_millis(1));
        }
        assert_eq!(streak.record_exit(SHORT_LIFE), Duration::ZERO);
        assert_eq!(
            streak.record_exit(Duration::from_millis(1)),
            Duration::from_millis(100)
        );
        streak.reset();
        assert_eq!(streak.record_exit(Duration::from_millis(1)), Duration::ZERO);
    }
}
