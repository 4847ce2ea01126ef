//! What happens after a failed attempt of an async invocation: retry when,
//! or give up why. Lambda's rules: a function error is retried
//! `maximumRetryAttempts` times (default 2), one and then two retry delays
//! after the failure; a throttle (or any failure to get an instance) is
//! retried with back-off from 1 s doubling to 5 min; nothing is retried past
//! `maximumEventAge` (default 6 h) from acceptance.

use std::time::Duration;

use rouse_manifest::AsyncInvoke;
use rouse_pool::backoff::Schedule;

/// Waits after throttles in a row: 1 s, doubling, at most 5 min.
const THROTTLE_BACKOFF: Schedule = Schedule::new(Duration::from_secs(1), Duration::from_secs(300));

/// Delay before the first retry of a failed async invocation (the second
/// waits twice as long), as on Lambda; `--async-retry-delay` changes it.
pub(crate) const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(60);

/// A function's retry settings, with the server's retry delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub max_retries: u32,
    pub max_age: Duration,
    /// Wait before the first retry of a function error (`--async-retry-delay`).
    pub retry_delay: Duration,
}

impl Policy {
    pub(crate) fn of(config: &AsyncInvoke, retry_delay: Duration) -> Policy {
        Policy {
            max_retries: config.maximum_retry_attempts,
            max_age: Duration::from_secs(u64::from(config.maximum_event_age_secs)),
            retry_delay,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The function ran and failed (error, crash, timeout).
    Function,
    /// No instance could take it (throttled, backing off, start failed).
    Throttled,
}

/// Why an event was given up, in Lambda's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Try again at this time (ms since the epoch).
    RetryAt(i64),
    GiveUp(Condition),
}

/// After a failure at `now_ms`. `attempts` counts the times the function
/// ran, this one included; `throttles` the throttles in a row, this one
/// included.
pub(crate) fn after_failure(
    policy: &Policy,
    failure: Failure,
    attempts: u32,
    throttles: u32,
    accepted_at_ms: i64,
    now_ms: i64,
) -> Decision {
    let wait = match failure {
        Failure::Function => {
            if attempts > policy.max_retries {
                return Decision::GiveUp(Condition::RetriesExhausted);
            }
            policy.retry_delay.saturating_mul(attempts.max(1))
        }
        Failure::Throttled => THROTTLE_BACKOFF.delay(throttles.saturating_sub(1)),
    };
    let at = now_ms.saturating_add(millis(wait));
    if at.saturating_sub(accepted_at_ms) > millis(policy.max_age) {
        return Decision::GiveUp(Condition::EventAgeExceeded);
    }
    Decision::RetryAt(at)
}

/// An event that waited longer than the function allows is not run at all.
pub(crate) fn too_old(policy: &Policy, accepted_at_ms: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(accepted_at_ms) > millis(policy.max_age)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn policy(max_retries: u32, max_age_secs: u64) -> Policy {
        Policy {
            max_retries,
            max_age: Duration::from_secs(max_age_secs),
            retry_delay: Duration::from_secs(60),
        }
    }

    #[test]
    fn decisions() {
        use Condition::*;
        use Decision::*;
        use Failure::*;
        let lambda = policy(2, 21_600);
        // (policy, failure, attempts, throttles, accepted, now, decision)
        let cases = [
            // Function errors: 1 and 2 retry delays, then exhausted.
            (lambda, Function, 1, 0, 0, 1_000, RetryAt(61_000)),
            (lambda, Function, 2, 0, 0, 61_000, RetryAt(181_000)),
            (lambda, Function, 3, 0, 0, 181_000, GiveUp(RetriesExhausted)),
            (
                policy(0, 21_600),
                Function,
                1,
                0,
                0,
                1_000,
                GiveUp(RetriesExhausted),
            ),
            (policy(1, 21_600), Function, 1, 0, 0, 1_000, RetryAt(61_000)),
            (
                policy(1, 21_600),
                Function,
                2,
                0,
                0,
                1_000,
                GiveUp(RetriesExhausted),
            ),
            // A retry that would land past the event age is not made.
            (
                policy(2, 60),
                Function,
                1,
                0,
                0,
                1_000,
                GiveUp(EventAgeExceeded),
            ),
            // Throttles: 1 s doubling, capped at 5 min, attempts do not count.
            (lambda, Throttled, 0, 1, 0, 0, RetryAt(1_000)),
            (lambda, Throttled, 0, 2, 0, 0, RetryAt(2_000)),
            (lambda, Throttled, 0, 4, 0, 0, RetryAt(8_000)),
            (lambda, Throttled, 0, 9, 0, 0, RetryAt(256_000)),
            (lambda, Throttled, 0, 10, 0, 0, RetryAt(300_000)),
            (lambda, Throttled, 2, 500, 0, 0, RetryAt(300_000)),
            // ... until the 6 h event age.
            (lambda, Throttled, 0, 80, 0, 6 * H - 300_000, RetryAt(6 * H)),
            (
                lambda,
                Throttled,
                0,
                80,
                0,
                6 * H - 299_999,
                GiveUp(EventAgeExceeded),
            ),
        ];
        for (policy, failure, attempts, throttles, accepted, now, expected) in cases {
            assert_eq!(
                after_failure(&policy, failure, attempts, throttles, accepted, now),
                expected,
                "{failure:?} attempts {attempts} throttles {throttles} at {now} (max {} retries)",
                policy.max_retries
            );
        }
    }

    #[test]
    fn events_past_their_age_are_not_run() {
        let p = policy(2, 60);
        assert!(!too_old(&p, 0, 60_000));
        assert!(too_old(&p, 0, 60_001));
    }

    #[test]
    fn policy_comes_from_the_manifest() {
        let config = AsyncInvoke {
            maximum_retry_attempts: 1,
            maximum_event_age_secs: 120,
            ..AsyncInvoke::default()
        };
        let p = Policy::of(&config, Duration::from_millis(200));
        assert_eq!(
            p,
            Policy {
                max_retries: 1,
                max_age: Duration::from_secs(120),
                retry_delay: Duration::from_millis(200),
            }
        );
    }
}
