//! EventBridge cron expressions:
//! `cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`,
//! evaluated in UTC with one-minute resolution.
//!
//! The days a rule runs on come from exactly one of day-of-month and
//! day-of-week (the other is `?`), so [`Days`] holds whichever was given.

mod field;
mod next;
mod parse;

pub use field::CronField;
pub(crate) use parse::parse;

use field::ValueSet;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Cron {
    minutes: ValueSet,
    hours: ValueSet,
    days: Days,
    months: ValueSet,
    years: ValueSet,
}

/// Which days of a month the rule runs on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Days {
    /// Day-of-week is `?`.
    OfMonth(DayOfMonth),
    /// Day-of-month is `?`.
    OfWeek(DayOfWeek),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DayOfMonth {
    /// `*`, numbers, ranges, increments: days past the month's end never match.
    Set(ValueSet),
    /// `L`: the month's last day.
    Last,
    /// `LW`: the month's last weekday (Monday-Friday).
    LastWeekday,
    /// `15W`: the weekday nearest the 15th, without leaving the month.
    NearestWeekday(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DayOfWeek {
    /// `*`, days 1-7 (1 = SUN), names, ranges. `L` alone (the last day of
    /// the week) is Saturday.
    Set(ValueSet),
    /// `5L`: the last Thursday of the month.
    Last(u32),
    /// `3#2`: the second Tuesday of the month.
    Nth { weekday: u32, nth: u32 },
}
