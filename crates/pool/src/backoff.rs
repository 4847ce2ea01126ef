//! Crash-loop back-off: an app that keeps dying soon after start must not be
//! respawned in a hot loop. Pure, so the schedule is tested without sleeping.

use std::time::Duration;

/// An instance that exits on its own within this time of starting counts as a
/// crash of the same loop; one that lived longer resets the streak.
pub const SHORT_LIFE: Duration = Duration::from_secs(10);
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CrashStreak(u32);

impl CrashStreak {
    /// Records an unplanned exit after `lived`; returns how long to wait before
    /// the next start. The first crash restarts at once (a single crash is
    /// usually a bad request, not a broken app).
    pub fn record_exit(&mut self, lived: Duration) -> Duration {
        if lived >= SHORT_LIFE {
            self.0 = 1;
            return Duration::ZERO;
        }
        self.0 = self.0.saturating_add(1);
        delay_for(self.0)
    }

    pub fn reset(&mut self) {
        self.0 = 0;
    }
}

fn delay_for(streak: u32) -> Duration {
    if streak < 2 {
        return Duration::ZERO;
    }
    let doublings = (streak - 2).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_and_caps() {
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
