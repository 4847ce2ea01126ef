//! The scale-out rate of one function: a token bucket spent on instance
//! starts. It holds a count and a timestamp and refills lazily from the time
//! that passed, so an idle function costs nothing (no timer, no task).

use std::time::Duration;
use tokio::time::Instant;

/// The bucket's size and refill rate, from the function's `scaling:`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Starts that may happen at once (`burst`).
    pub capacity: u32,
    /// Starts added back per minute (`burstRefillPerMinute`); 0 never refills.
    pub per_minute: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    /// Tokens at `updated`; fractional, because refill is continuous.
    tokens: f64,
    updated: Option<Instant>,
}

impl Default for TokenBucket {
    /// A full bucket: a function's first starts are never throttled.
    fn default() -> Self {
        TokenBucket {
            tokens: f64::INFINITY,
            updated: None,
        }
    }
}

impl TokenBucket {
    /// Tokens at `now`, refilled since the last update and capped at the
    /// capacity (unused capacity is not banked).
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = self
            .updated
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let refill = elapsed.as_secs_f64() * f64::from(rate.per_minute) / 60.0;
        (self.tokens + refill).min(f64::from(rate.capacity))
    }

    /// `None` if a start may happen at `now`, otherwise until when it may not.
    pub(crate) fn blocked_until(&self, rate: Rate, now: Instant) -> Option<Blocked> {
        let level = self.level(rate, now);
        if level >= 1.0 {
            return None;
        }
        if rate.per_minute == 0 {
            return Some(Blocked::Forever);
        }
        let missing = 1.0 - level;
        let wait = Duration::from_secs_f64(missing * 60.0 / f64::from(rate.per_minute));
        Some(Blocked::Until(now + wait))
    }

    /// Spends one token at `now`; the caller checked
    /// [`TokenBucket::blocked_until`] first.
    pub(crate) fn take(&mut self, rate: Rate, now: Instant) {
        self.tokens = (self.level(rate, now) - 1.0).max(0.0);
        self.updated = Some(now);
    }
}

/// Why a start may not happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// The next token arrives then.
    Until(Instant),
    /// The bucket is empty and never refills.
    Forever,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        capacity: 3,
        per_minute: 60, // one a second
    };

    #[test]
    fn a_full_bucket_allows_a_burst_of_its_capacity_then_blocks() {
        let now = Instant::now();
        let mut bucket = TokenBucket::default();
        for _ in 0..3 {
            assert_eq!(bucket.blocked_until(RATE, now), None);
            bucket.take(RATE, now);
        }
        assert_eq!(
            bucket.blocked_until(RATE, now),
            Some(Blocked::Until(now + Duration::from_secs(1)))
        );
    }

    #[test]
    fn refill_is_continuous_and_capped_at_the_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::default();
        for _ in 0..3 {
            bucket.take(RATE, start);
        }
        let half = start + Duration::from_millis(500);
        assert_eq!(
            bucket.blocked_until(RATE, half),
            Some(Blocked::Until(start + Duration::from_secs(1)))
        );
        let later = start + Duration::from_secs(1);
        assert_eq!(bucket.blocked_until(RATE, later), None);
        bucket.take(RATE, later);
        assert!(bucket.blocked_until(RATE, later).is_some());

        // An hour idle banks no more than the capacity.
        let idle = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(bucket.blocked_until(RATE, idle), None);
            bucket.take(RATE, idle);
        }
        assert!(bucket.blocked_until(RATE, idle).is_some());
    }

    #[test]
    fn no_refill_blocks_forever_once_empty() {
        let rate = Rate {
            capacity: 1,
            per_minute: 0,
        };
        let now = Instant::now();
        let mut bucket = TokenBucket::default();
        bucket.take(rate, now);
        assert_eq!(
            bucket.blocked_until(rate, now + Duration::from_secs(86_400)),
            Some(Blocked::Forever)
        );
    }

    #[test]
    fn a_smaller_capacity_after_a_redeploy_applies_at_once() {
        let now = Instant::now();
        let mut bucket = TokenBucket::default();
        let big = Rate {
            capacity: 1000,
            per_minute: 6000,
        };
        bucket.take(big, now);
        let small = Rate {
            capacity: 1,
            per_minute: 60,
        };
        bucket.take(small, now);
        assert!(bucket.blocked_until(small, now).is_some());
    }
}
