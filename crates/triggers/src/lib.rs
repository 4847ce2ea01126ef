//! Schedule triggers: functions that run on a timetable.
//!
//! A function's manifest lists schedules in EventBridge syntax,
//! `rate(5 minutes)` or `cron(0 12 * * ? *)`. This crate has two halves:
//!
//! - a pure core with no clocks: [`Schedule::parse`] reads an expression and
//!   [`Schedule::next_after`] answers "when does it fire next after this
//!   instant?"; [`scheduled_event`] builds the EventBridge "Scheduled Event"
//!   payload a handler receives;
//! - the [`Scheduler`], one tokio task that sleeps until the earliest fire
//!   time across all functions and hands each due [`Tick`] to a callback.
//!
//! Times are unix seconds (`i64`, UTC) throughout; [`calendar`] converts
//! them to and from dates and `SystemTime`.
//!
//! ```
//! use rouse_triggers::{calendar::DateTime, Schedule};
//!
//! let noon = Schedule::parse("cron(0 12 * * ? *)").unwrap();
//! let t = DateTime::new(2024, 2, 28, 12, 0, 0).unwrap().to_unix();
//! let next = noon.next_after(t).unwrap();
//! assert_eq!(DateTime::from_unix(next).to_string(), "2024-02-29T12:00:00Z");
//!
//! // Rates count whole periods from an anchor (the epoch unless set).
//! let deployed = DateTime::new(2024, 2, 28, 12, 3, 20).unwrap().to_unix();
//! let every_5 = Schedule::parse("rate(5 minutes)").unwrap().with_anchor(deployed);
//! assert_eq!(every_5.next_after(deployed), Some(deployed + 300));
//! ```

#![forbid(unsafe_code)]

pub mod calendar;
mod cron;
mod event;
mod rate;
mod scheduler;

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

pub use cron::CronField;
pub use event::{scheduled_event, DEFAULT_ACCOUNT, DEFAULT_REGION};
pub use futures_util::future::BoxFuture;
pub use scheduler::{Clock, Invoke, Scheduler, SystemClock, Tick, RECHECK};

/// A parsed `rate(...)` or `cron(...)` schedule expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    /// The expression as written (trimmed), for logs and display.
    expression: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Rate(rate::Rate),
    Cron(cron::Cron),
}

impl Schedule {
    /// Parses an EventBridge schedule expression:
    ///
    /// - `rate(<value> <unit>)` with unit `minute(s)`, `hour(s)` or `day(s)`;
    ///   a value of 1 takes the singular, larger values the plural;
    /// - `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`
    ///   in UTC, where exactly one of day-of-month and day-of-week is `?`.
    ///
    /// Errors say which part is wrong and what was expected.
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        let expression = expression.trim();
        let inner = |prefix: &str| {
            expression
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        let kind = if let Some(inner) = inner("rate(") {
            Kind::Rate(rate::parse(inner, expression)?)
        } else if let Some(inner) = inner("cron(") {
            Kind::Cron(cron::parse(inner)?)
        } else {
            return Err(ScheduleError::Syntax {
                expression: expression.to_string(),
            });
        };
        Ok(Schedule {
            expression: expression.to_string(),
            kind,
        })
    }

    /// Counts a rate schedule's periods from `anchor` (unix seconds) instead
    /// of from the epoch: it then fires at `anchor + period`,
    /// `anchor + 2·period`, …, like an EventBridge rule created at `anchor`.
    /// Cron schedules are wall-clock times and ignore the anchor.
    ///
    /// Without an anchor a rate fires on multiples of its period since
    /// 1970-01-01T00:00Z: `rate(5 minutes)` at :00, :05, …, `rate(1 day)`
    /// at midnight UTC, `rate(2 hours)` on even hours. That is stable across
    /// restarts and identical on every node; anchoring at a function's
    /// deploy time (stored with the version) is too, and matches AWS.
    #[must_use]
    pub fn with_anchor(mut self, anchor: i64) -> Schedule {
        if let Kind::Rate(rate) = &mut self.kind {
            rate.anchor = anchor;
        }
        self
    }

    /// The first fire time strictly after `after`, both in unix seconds.
    ///
    /// `None` when there is none: a cron rule whose years have passed or
    /// whose days never occur (`cron(0 0 30 2 ? *)`), or a time beyond `i64`.
    /// Cron rules fire on whole minutes of years 1970-2199.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match &self.kind {
            Kind::Rate(rate) => rate.next_after(after),
            Kind::Cron(cron) => cron.next_after(after),
        }
    }

    /// [`Schedule::next_after`] for `SystemTime`s. Fractions of a second in
    /// `after` are dropped first, which cannot change the answer: fire times
    /// are whole seconds.
    pub fn next_after_time(&self, after: SystemTime) -> Option<SystemTime> {
        self.next_after(calendar::unix_seconds(after))
            .and_then(calendar::system_time)
    }

    /// The expression as written, without surrounding whitespace.
    pub fn expression(&self) -> &str {
        &self.expression
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// Why a schedule expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Neither `rate(...)` nor `cron(...)`.
    #[error("`{expression}` is not a schedule: expected `rate(<value> <unit>)`, like `rate(5 minutes)`, or `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`, like `cron(0 12 * * ? *)`")]
    Syntax { expression: String },
    /// A malformed `rate(...)`.
    #[error("invalid `{expression}`: {problem}")]
    Rate { expression: String, problem: String },
    /// A `cron(...)` without exactly six fields.
    #[error(
        "cron needs 6 fields (minutes hours day-of-month month day-of-week year), found {found}{}",
        if *found == 5 { "; EventBridge cron has a year field: add ` *` for every year" } else { "" }
    )]
    FieldCount { found: usize },
    /// One cron field is malformed.
    #[error("cron {field} field `{value}`: {problem}")]
    Field {
        field: CronField,
        value: String,
        problem: String,
    },
    /// Day-of-month and day-of-week break the "exactly one is `?`" rule.
    #[error("cron day-of-month `{day_of_month}` and day-of-week `{day_of_week}`: {problem}")]
    DayFields {
        day_of_month: String,
        day_of_week: String,
        problem: String,
    },
}

#[cfg(test)]
mod properties {
    use super::Schedule;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a manifest says, parsing answers (an error at worst).
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = Schedule::parse(&text);
        }

        #[test]
        fn cron_like_input_never_panics(fields in proptest::collection::vec("[0-9*?/,#LW-]{1,4}", 0..8)) {
            let _ = Schedule::parse(&format!("cron({})", fields.join(" ")));
        }
    }
}
