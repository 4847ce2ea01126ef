//! `rate(<value> <unit>)`: a fixed period, anchored at a point in time.

use crate::ScheduleError;

/// A schedule that fires every `period` seconds at `anchor + k·period`,
/// `k ≥ 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Rate {
    /// Seconds between fires; always positive.
    pub(crate) period: i64,
    /// Unix second the fires are counted from (0, the epoch, by default).
    pub(crate) anchor: i64,
}

impl Rate {
    /// The first fire time strictly after `after`.
    ///
    /// The anchor itself is not a fire time: a rule anchored at its deploy
    /// time first fires one period later, as EventBridge does, rather than
    /// at the instant it is deployed.
    pub(crate) fn next_after(&self, after: i64) -> Option<i64> {
        let periods = if after < self.anchor {
            1
        } else {
            // Floor division is exact here because both sides are >= 0.
            after.checked_sub(self.anchor)? / self.period + 1
        };
        self.anchor.checked_add(periods.checked_mul(self.period)?)
    }
}

/// Parses the inside of `rate(...)`, e.g. `5 minutes`. `expression` is the
/// whole text, for error messages.
pub(crate) fn parse(inner: &str, expression: &str) -> Result<Rate, ScheduleError> {
    let problem = |problem: String| ScheduleError::Rate {
        expression: expression.to_string(),
        problem,
    };
    let mut words = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err(problem(
            "expected a value and a unit, like `rate(5 minutes)`".to_string(),
        ));
    };
    // Digits only: no sign, no fraction, no exponent.
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let number = digits
        .then(|| value.parse::<i64>())
        .ok_or_else(|| {
            problem(format!(
                "the value `{value}` must be a positive whole number"
            ))
        })?
        .map_err(|_| problem(format!("the value `{value}` is too large")))?;
    if number == 0 {
        return Err(problem(format!(
            "the value `{value}` must be a positive whole number"
        )));
    }
    let (seconds, singular, plural) = match unit {
        "minute" | "minutes" => (60, "minute", "minutes"),
        "hour" | "hours" => (3_600, "hour", "hours"),
        "day" | "days" => (86_400, "day", "days"),
        _ => {
            return Err(problem(format!(
                "the unit `{unit}` must be one of minute, minutes, hour, hours, day, days"
            )))
        }
    };
    // EventBridge insists on grammatical agreement: `rate(1 hours)` and
    // `rate(5 hour)` are both rejected there, so they are rejected here too
    // and a manifest that works on rouse also deploys to AWS.
    if number == 1 && unit != singular {
        return Err(problem(format!(
            "a value of 1 takes the singular unit: `rate(1 {singular})`"
        )));
    }
    if number > 1 && unit != plural {
        return Err(problem(format!(
            "a value above 1 takes the plural unit: `rate({number} {plural})`"
        )));
    }
    let period = number
        .checked_mul(seconds)
        .ok_or_else(|| problem(format!("the value `{value}` is too large")))?;
    Ok(Rate { period, anchor: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_after_counts_whole_periods_from_the_anchor() {
        let rate = Rate {
            period: 300,
            anchor: 1_000,
        };
        let cases = [
            (0, 1_300),     // before the anchor: one period after it
            (999, 1_300),   //
            (1_000, 1_300), // the anchor itself does not fire
            (1_299, 1_300),
            (1_300, 1_600), // strictly after
            (1_301, 1_600),
            (-5_000, 1_300),
        ];
        for (after, next) in cases {
            assert_eq!(rate.next_after(after), Some(next), "after {after}");
        }
    }

    #[test]
    fn next_after_reports_overflow_as_none() {
        let rate = Rate {
            period: i64::MAX / 2,
            anchor: 0,
        };
        assert_eq!(rate.next_after(i64::MAX - 1), None);
        let anchored_far_below = Rate {
            period: 60,
            anchor: i64::MIN,
        };
        assert_eq!(anchored_far_below.next_after(i64::MAX), None);
    }
}
