//! The pure core through the public API: which expressions parse, what the
//! errors say, and when each schedule fires next, at fixed times.
//!
//! Expected dates were worked out with a calendar, not with this crate.

use std::time::{Duration, UNIX_EPOCH};

use rouse_triggers::calendar::DateTime;
use rouse_triggers::{CronField, Schedule, ScheduleError};

/// `2024-03-01T18:00:00Z` → unix seconds.
fn t(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> u32 {
        text.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad test time {text}"))
    };
    let year = number(0..4) as i32;
    DateTime::new(
        year,
        number(5..7),
        number(8..10),
        number(11..13),
        number(14..16),
        number(17..19),
    )
    .unwrap_or_else(|| panic!("impossible test time {text}"))
    .to_unix()
}

fn show(secs: Option<i64>) -> String {
    secs.map_or_else(
        || "none".to_string(),
        |s| DateTime::from_unix(s).to_string(),
    )
}

fn schedule(expression: &str) -> Schedule {
    Schedule::parse(expression).unwrap_or_else(|e| panic!("{expression}: {e}"))
}

#[test]
fn next_after_table() {
    // (expression, after, next fire strictly after it)
    let cases = [
        // Weekdays at 18:00: Friday evening rolls over the weekend.
        (
            "cron(0 18 ? * MON-FRI *)",
            "2024-03-01T17:59:59Z",
            "2024-03-01T18:00:00Z",
        ),
        (
            "cron(0 18 ? * MON-FRI *)",
            "2024-03-01T18:00:00Z",
            "2024-03-04T18:00:00Z",
        ),
        (
            "cron(0 18 ? * MON-FRI *)",
            "2024-03-02T12:00:00Z",
            "2024-03-04T18:00:00Z",
        ),
        // Every day at 10:00, across a leap day and a year boundary.
        (
            "cron(0 10 * * ? *)",
            "2024-02-28T10:30:00Z",
            "2024-02-29T10:00:00Z",
        ),
        (
            "cron(0 10 * * ? *)",
            "2024-12-31T10:00:00Z",
            "2025-01-01T10:00:00Z",
        ),
        (
            "cron(0 10 * * ? *)",
            "2023-02-28T10:00:00Z",
            "2023-03-01T10:00:00Z",
        ),
        // Strictly after, to the second.
        (
            "cron(15 12 * * ? *)",
            "2024-05-05T12:14:59Z",
            "2024-05-05T12:15:00Z",
        ),
        (
            "cron(15 12 * * ? *)",
            "2024-05-05T12:15:00Z",
            "2024-05-06T12:15:00Z",
        ),
        (
            "cron(15 12 * * ? *)",
            "2024-05-05T12:15:01Z",
            "2024-05-06T12:15:00Z",
        ),
        // First of the month.
        (
            "cron(0 8 1 * ? *)",
            "2024-01-31T09:00:00Z",
            "2024-02-01T08:00:00Z",
        ),
        (
            "cron(0 8 1 * ? *)",
            "2024-12-01T08:00:00Z",
            "2025-01-01T08:00:00Z",
        ),
        // Every 15 minutes.
        (
            "cron(0/15 * * * ? *)",
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:15:00Z",
        ),
        (
            "cron(0/15 * * * ? *)",
            "2024-01-01T00:14:59Z",
            "2024-01-01T00:15:00Z",
        ),
        (
            "cron(0/15 * * * ? *)",
            "2024-12-31T23:59:30Z",
            "2025-01-01T00:00:00Z",
        ),
        (
            "cron(*/15 * * * ? *)",
            "2024-01-01T00:45:00Z",
            "2024-01-01T01:00:00Z",
        ),
        // Last day of the month.
        (
            "cron(0 0 L * ? *)",
            "2024-02-01T00:00:00Z",
            "2024-02-29T00:00:00Z",
        ),
        (
            "cron(0 0 L * ? *)",
            "2023-02-01T00:00:00Z",
            "2023-02-28T00:00:00Z",
        ),
        (
            "cron(0 0 L * ? *)",
            "2024-02-29T00:00:00Z",
            "2024-03-31T00:00:00Z",
        ),
        (
            "cron(0 0 L * ? *)",
            "2024-04-01T00:00:00Z",
            "2024-04-30T00:00:00Z",
        ),
        (
            "cron(0 0 L * ? *)",
            "2024-12-31T00:00:00Z",
            "2025-01-31T00:00:00Z",
        ),
        // Last Friday (6 = FRI) and last Thursday (5L, here a leap day).
        (
            "cron(0 9 ? * 6L *)",
            "2024-02-01T00:00:00Z",
            "2024-02-23T09:00:00Z",
        ),
        (
            "cron(0 9 ? * 6L *)",
            "2024-02-23T09:00:00Z",
            "2024-03-29T09:00:00Z",
        ),
        (
            "cron(0 0 ? * 5L *)",
            "2024-02-01T00:00:00Z",
            "2024-02-29T00:00:00Z",
        ),
        (
            "cron(0 0 ? * THUL *)",
            "2024-02-01T00:00:00Z",
            "2024-02-29T00:00:00Z",
        ),
        // Nearest weekday to the 15th: Saturday → Friday, Sunday → Monday.
        (
            "cron(0 9 15W * ? *)",
            "2024-05-01T00:00:00Z",
            "2024-05-15T09:00:00Z",
        ),
        (
            "cron(0 9 15W * ? *)",
            "2024-06-01T00:00:00Z",
            "2024-06-14T09:00:00Z",
        ),
        (
            "cron(0 9 15W * ? *)",
            "2024-09-01T00:00:00Z",
            "2024-09-16T09:00:00Z",
        ),
        // `W` never leaves the month: a Saturday 1st moves to Monday the
        // 3rd, a Sunday 31st back to Friday the 29th; no 31st, no fire.
        (
            "cron(0 0 1W * ? *)",
            "2024-05-31T00:00:00Z",
            "2024-06-03T00:00:00Z",
        ),
        (
            "cron(0 0 31W * ? *)",
            "2024-03-01T00:00:00Z",
            "2024-03-29T00:00:00Z",
        ),
        (
            "cron(0 0 31W * ? *)",
            "2024-08-01T00:00:00Z",
            "2024-08-30T00:00:00Z",
        ),
        (
            "cron(0 0 31W * ? *)",
            "2024-04-01T00:00:00Z",
            "2024-05-31T00:00:00Z",
        ),
        // Last weekday of the month.
        (
            "cron(0 0 LW * ? *)",
            "2024-03-01T00:00:00Z",
            "2024-03-29T00:00:00Z",
        ),
        (
            "cron(0 0 LW * ? *)",
            "2024-08-01T00:00:00Z",
            "2024-08-30T00:00:00Z",
        ),
        (
            "cron(0 0 LW * ? *)",
            "2024-02-01T00:00:00Z",
            "2024-02-29T00:00:00Z",
        ),
        // Second Tuesday; fifth Monday only in months that have one.
        (
            "cron(0 12 ? * 3#2 *)",
            "2024-01-01T00:00:00Z",
            "2024-01-09T12:00:00Z",
        ),
        (
            "cron(0 12 ? * 3#2 *)",
            "2024-10-01T00:00:00Z",
            "2024-10-08T12:00:00Z",
        ),
        (
            "cron(0 12 ? * TUE#2 *)",
            "2024-10-08T12:00:00Z",
            "2024-11-12T12:00:00Z",
        ),
        (
            "cron(0 0 ? * MON#5 *)",
            "2024-01-01T00:00:00Z",
            "2024-01-29T00:00:00Z",
        ),
        (
            "cron(0 0 ? * MON#5 *)",
            "2024-01-30T00:00:00Z",
            "2024-04-29T00:00:00Z",
        ),
        // `L` alone in day-of-week is the last day of the week: Saturday.
        (
            "cron(0 0 ? * L *)",
            "2024-03-04T00:00:00Z",
            "2024-03-09T00:00:00Z",
        ),
        // Leap years: 2100 is not one.
        (
            "cron(0 0 29 2 ? *)",
            "2024-03-01T00:00:00Z",
            "2028-02-29T00:00:00Z",
        ),
        (
            "cron(0 0 29 2 ? *)",
            "2096-03-01T00:00:00Z",
            "2104-02-29T00:00:00Z",
        ),
        // Month ends: the 31st skips 30-day months; `1/10` has no Feb 31st.
        (
            "cron(0 0 31 * ? *)",
            "2024-04-01T00:00:00Z",
            "2024-05-31T00:00:00Z",
        ),
        (
            "cron(0 0 1/10 * ? *)",
            "2024-02-21T00:00:00Z",
            "2024-03-01T00:00:00Z",
        ),
        (
            "cron(0 0 1/10 * ? *)",
            "2024-03-21T00:00:00Z",
            "2024-03-31T00:00:00Z",
        ),
        // Year boundaries and year lists.
        (
            "cron(59 23 31 12 ? *)",
            "2024-12-31T23:59:00Z",
            "2025-12-31T23:59:00Z",
        ),
        (
            "cron(0 0 1 1 ? 2030,2040)",
            "2024-06-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
        ),
        (
            "cron(0 0 1 1 ? 2030,2040)",
            "2030-01-01T00:00:00Z",
            "2040-01-01T00:00:00Z",
        ),
        (
            "cron(0 0 31 12 ? 2199)",
            "2199-12-30T00:00:00Z",
            "2199-12-31T00:00:00Z",
        ),
        // Names, in any case, lists and ranges.
        (
            "cron(30 6 ? JAN,JUL SUN *)",
            "2024-06-01T00:00:00Z",
            "2024-07-07T06:30:00Z",
        ),
        (
            "cron(0 0 ? jan-mar sat *)",
            "2024-03-30T00:00:00Z",
            "2025-01-04T00:00:00Z",
        ),
        (
            "cron(0 0 ? * SUN,7 *)",
            "2024-03-04T00:00:00Z",
            "2024-03-09T00:00:00Z",
        ),
        // Increments inside ranges.
        (
            "cron(0/20 8-10 ? * MON-FRI *)",
            "2024-03-01T10:40:00Z",
            "2024-03-04T08:00:00Z",
        ),
        (
            "cron(0/20 8-10 ? * MON-FRI *)",
            "2024-03-04T08:59:00Z",
            "2024-03-04T09:00:00Z",
        ),
        (
            "cron(10-50/20 */6 * * ? *)",
            "2024-03-04T06:30:00Z",
            "2024-03-04T06:50:00Z",
        ),
        (
            "cron(10-50/20 */6 * * ? *)",
            "2024-03-04T06:50:00Z",
            "2024-03-04T12:10:00Z",
        ),
        // Months.
        (
            "cron(0 0 1 */3 ? *)",
            "2024-01-01T00:00:00Z",
            "2024-04-01T00:00:00Z",
        ),
        (
            "cron(0 0 15 DEC ? *)",
            "2024-12-15T00:00:00Z",
            "2025-12-15T00:00:00Z",
        ),
        // Rates count from the epoch unless anchored.
        (
            "rate(5 minutes)",
            "2024-01-01T00:02:30Z",
            "2024-01-01T00:05:00Z",
        ),
        (
            "rate(5 minutes)",
            "2024-01-01T00:05:00Z",
            "2024-01-01T00:10:00Z",
        ),
        (
            "rate(1 minute)",
            "2024-01-01T00:00:59Z",
            "2024-01-01T00:01:00Z",
        ),
        (
            "rate(1 hour)",
            "2024-01-01T23:00:00Z",
            "2024-01-02T00:00:00Z",
        ),
        (
            "rate(2 hours)",
            "2024-01-01T01:00:00Z",
            "2024-01-01T02:00:00Z",
        ),
        (
            "rate(1 day)",
            "2024-02-28T13:00:00Z",
            "2024-02-29T00:00:00Z",
        ),
        // 1970-01-01 was a Thursday, so weekly rates land on Thursdays.
        (
            "rate(7 days)",
            "2024-01-01T00:00:00Z",
            "2024-01-04T00:00:00Z",
        ),
    ];
    for (expression, after, next) in cases {
        let schedule = schedule(expression);
        assert_eq!(
            show(schedule.next_after(t(after))),
            next,
            "{expression} after {after}"
        );
    }
}

#[test]
fn schedules_that_never_fire_again() {
    let cases = [
        ("cron(0 0 30 2 ? *)", "2024-01-01T00:00:00Z"),
        ("cron(0 0 31 4 ? *)", "2024-01-01T00:00:00Z"),
        ("cron(0 0 * * ? 2020)", "2024-01-01T00:00:00Z"),
        ("cron(0 0 31 12 ? 2199)", "2199-12-31T00:00:00Z"),
        ("cron(0/5 * * * ? *)", "2199-12-31T23:59:00Z"),
        ("cron(0 0 ? FEB MON#5 2021-2023)", "2020-01-01T00:00:00Z"),
    ];
    for (expression, after) in cases {
        assert_eq!(
            show(schedule(expression).next_after(t(after))),
            "none",
            "{expression} after {after}"
        );
    }
    // And far beyond the calendar, without overflow.
    assert_eq!(schedule("cron(0 0 * * ? *)").next_after(i64::MAX), None);
    assert_eq!(schedule("rate(1 day)").next_after(i64::MAX), None);
}

#[test]
fn cron_starts_in_1970() {
    let first = schedule("cron(0 0 1 1 ? *)");
    assert_eq!(show(first.next_after(-100_000)), "1970-01-01T00:00:00Z");
    assert_eq!(show(first.next_after(i64::MIN)), "1970-01-01T00:00:00Z");
}

/// Every fire in 2024, to catch a rule that is right in one month only.
#[test]
fn a_year_of_special_days() {
    let cases: [(&str, [&str; 12]); 5] = [
        (
            "cron(0 9 15W * ? *)",
            [
                "01-15", "02-15", "03-15", "04-15", "05-15", "06-14", "07-15", "08-15", "09-16",
                "10-15", "11-15", "12-16",
            ],
        ),
        (
            "cron(0 9 ? * 6L *)",
            [
                "01-26", "02-23", "03-29", "04-26", "05-31", "06-28", "07-26", "08-30", "09-27",
                "10-25", "11-29", "12-27",
            ],
        ),
        (
            "cron(0 9 ? * 3#2 *)",
            [
                "01-09", "02-13", "03-12", "04-09", "05-14", "06-11", "07-09", "08-13", "09-10",
                "10-08", "11-12", "12-10",
            ],
        ),
        (
            "cron(0 9 LW * ? *)",
            [
                "01-31", "02-29", "03-29", "04-30", "05-31", "06-28", "07-31", "08-30", "09-30",
                "10-31", "11-29", "12-31",
            ],
        ),
        (
            "cron(0 9 L * ? *)",
            [
                "01-31", "02-29", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30",
                "10-31", "11-30", "12-31",
            ],
        ),
    ];
    for (expression, days) in cases {
        let schedule = schedule(expression);
        let mut at = t("2023-12-31T23:59:59Z");
        for day in days {
            let next = schedule.next_after(at);
            assert_eq!(show(next), format!("2024-{day}T09:00:00Z"), "{expression}");
            at = next.unwrap_or(i64::MAX);
        }
    }
}

#[test]
fn weekday_schedule_over_a_fortnight() {
    let schedule = schedule("cron(0 18 ? * MON-FRI *)");
    let mut at = t("2024-03-01T00:00:00Z");
    let mut fires = Vec::new();
    for _ in 0..7 {
        let next = schedule.next_after(at).unwrap_or(i64::MAX);
        fires.push(show(Some(next)).get(5..10).unwrap_or_default().to_string());
        at = next;
    }
    assert_eq!(
        fires,
        ["03-01", "03-04", "03-05", "03-06", "03-07", "03-08", "03-11"]
    );
}

#[test]
fn rates_anchor_at_a_given_time() {
    let deployed = t("2024-01-01T00:30:00Z");
    let cases = [
        (
            "rate(2 hours)",
            "2024-01-01T01:00:00Z",
            "2024-01-01T02:30:00Z",
        ),
        (
            "rate(2 hours)",
            "2024-01-01T02:30:00Z",
            "2024-01-01T04:30:00Z",
        ),
        (
            "rate(1 minute)",
            "2024-01-01T00:30:00Z",
            "2024-01-01T00:31:00Z",
        ),
        // Before the anchor: one period after it, never the anchor itself.
        (
            "rate(1 day)",
            "2023-06-01T00:00:00Z",
            "2024-01-02T00:30:00Z",
        ),
        (
            "rate(7 days)",
            "2024-01-09T00:00:00Z",
            "2024-01-15T00:30:00Z",
        ),
        // The anchor does not move cron schedules.
        (
            "cron(0 12 * * ? *)",
            "2024-01-01T01:00:00Z",
            "2024-01-01T12:00:00Z",
        ),
    ];
    for (expression, after, next) in cases {
        let anchored = schedule(expression).with_anchor(deployed);
        assert_eq!(
            show(anchored.next_after(t(after))),
            next,
            "{expression} after {after}"
        );
    }
    // Anchoring makes a different schedule (the scheduler re-plans it).
    assert_ne!(
        schedule("rate(5 minutes)"),
        schedule("rate(5 minutes)").with_anchor(deployed)
    );
}

#[test]
fn next_after_time_drops_fractions_of_a_second() {
    let every_minute = schedule("rate(1 minute)");
    let cases = [
        (Duration::from_millis(59_999), 60),
        (Duration::from_millis(60_000), 120),
        (Duration::from_millis(60_001), 120),
    ];
    for (after, next) in cases {
        assert_eq!(
            every_minute.next_after_time(UNIX_EPOCH + after),
            Some(UNIX_EPOCH + Duration::from_secs(next)),
            "{after:?}"
        );
    }
}

#[test]
fn valid_expressions_parse_and_display_as_written() {
    let cases = [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(2 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0 0 L * ? *)",
        "cron(0 9 ? * 6L *)",
        "cron(0 9 15W * ? *)",
        "cron(0 12 ? * 3#2 *)",
        "cron(0 0 LW * ? *)",
        "cron(0-59/10 0,12 ? JAN-DEC SUN-SAT 1970-2199)",
        "cron(0 0 ? * fri#1 *)",
        "cron(0 0 15w * ? *)",
        "cron(0 0 * * ? 2199)",
    ];
    for expression in cases {
        let parsed = schedule(expression);
        assert_eq!(parsed.to_string(), expression);
        assert_eq!(parsed.expression(), expression);
        assert_eq!(expression.parse::<Schedule>(), Ok(parsed));
    }
    // Surrounding whitespace is not part of the expression.
    assert_eq!(
        schedule("  rate(5 minutes)\n").expression(),
        "rate(5 minutes)"
    );
    assert_eq!(
        schedule("cron( 0  12 * * ? * )").next_after(0),
        Some(12 * 3600)
    );
}

/// How an error must look: its variant, and text its message contains.
enum Expect {
    Syntax,
    Rate(&'static str),
    FieldCount(usize),
    Field(CronField, &'static str),
    DayFields(&'static str),
}

#[test]
fn invalid_expressions_say_what_is_wrong() {
    use Expect::*;
    let cases = [
        ("every 5 minutes", Syntax),
        ("", Syntax),
        ("rate(5 minutes", Syntax),
        ("cron(0 12 * * ? *", Syntax),
        ("Rate(5 minutes)", Syntax),
        (
            "rate(1 minutes)",
            Rate("a value of 1 takes the singular unit: `rate(1 minute)`"),
        ),
        ("rate(1 hours)", Rate("`rate(1 hour)`")),
        (
            "rate(5 minute)",
            Rate("a value above 1 takes the plural unit: `rate(5 minutes)`"),
        ),
        ("rate(2 day)", Rate("`rate(2 days)`")),
        (
            "rate(0 minutes)",
            Rate("the value `0` must be a positive whole number"),
        ),
        ("rate(-5 minutes)", Rate("must be a positive whole number")),
        ("rate(1.5 hours)", Rate("must be a positive whole number")),
        (
            "rate(5 seconds)",
            Rate("the unit `seconds` must be one of minute, minutes"),
        ),
        ("rate(5 Minutes)", Rate("the unit `Minutes`")),
        ("rate(5)", Rate("expected a value and a unit")),
        ("rate()", Rate("expected a value and a unit")),
        ("rate(5 minutes now)", Rate("expected a value and a unit")),
        ("rate(999999999999999 days)", Rate("is too large")),
        ("rate(99999999999999999999 days)", Rate("is too large")),
        (
            "cron(* * ? * ? *)",
            DayFields("only one of them can be `?`"),
        ),
        ("cron(0 12 * * * *)", DayFields("one of them must be `?`")),
        (
            "cron(0 12 15 * MON *)",
            DayFields("one of them must be `?`"),
        ),
        ("cron(0 12 * * ?)", FieldCount(5)),
        ("cron(0 0 12 * * ? *)", FieldCount(7)),
        ("cron()", FieldCount(0)),
        (
            "cron(60 * * * ? *)",
            Field(
                CronField::Minutes,
                "`60` is out of range: expected a minute 0-59",
            ),
        ),
        (
            "cron(0 24 * * ? *)",
            Field(CronField::Hours, "expected an hour 0-23"),
        ),
        (
            "cron(0 18-10 ? * MON *)",
            Field(CronField::Hours, "the range `18-10` runs backwards"),
        ),
        (
            "cron(0 0 32 * ? *)",
            Field(CronField::DayOfMonth, "expected a day of the month 1-31"),
        ),
        (
            "cron(0 0 0 * ? *)",
            Field(CronField::DayOfMonth, "out of range"),
        ),
        (
            "cron(0 0 1 13 ? *)",
            Field(CronField::Month, "expected a month 1-12 or JAN-DEC"),
        ),
        (
            "cron(0 0 1 DEC-JAN ? *)",
            Field(CronField::Month, "runs backwards"),
        ),
        (
            "cron(0 12 ? * 2-9 *)",
            Field(CronField::DayOfWeek, "`9` is out of range"),
        ),
        (
            "cron(0 12 ? * FRI-MON *)",
            Field(CronField::DayOfWeek, "runs backwards"),
        ),
        (
            "cron(0 12 ? * */2 *)",
            Field(CronField::DayOfWeek, "increments (`/`) are not allowed"),
        ),
        (
            "cron(0 0 1 * ? 1969)",
            Field(CronField::Year, "expected a year 1970-2199"),
        ),
        (
            "cron(0 0 1 * ? 2200)",
            Field(CronField::Year, "expected a year 1970-2199"),
        ),
        (
            "cron(0 0 ? * 3#6 *)",
            Field(CronField::DayOfWeek, "which occurrence in the month, 1-5"),
        ),
        ("cron(0 0 ? * 3#0 *)", Field(CronField::DayOfWeek, "1-5")),
        (
            "cron(0 0 ? * 8#1 *)",
            Field(CronField::DayOfWeek, "out of range"),
        ),
        (
            "cron(0 0 ? * MON-FRIL *)",
            Field(CronField::DayOfWeek, "`L` follows a single day of the week"),
        ),
        (
            "cron(0 0 ? * 5L,6L *)",
            Field(CronField::DayOfWeek, "`L` follows a single day"),
        ),
        (
            "cron(0 0 ? * L,MON *)",
            Field(CronField::DayOfWeek, "must be the whole day-of-week field"),
        ),
        (
            "cron(0 0 ? * MON,L *)",
            Field(CronField::DayOfWeek, "`L` follows a single day of the week"),
        ),
        (
            "cron(0 0 1-5W * ? *)",
            Field(CronField::DayOfMonth, "`W` follows a single day 1-31"),
        ),
        (
            "cron(0 0 0W * ? *)",
            Field(CronField::DayOfMonth, "`W` follows a single day 1-31"),
        ),
        (
            "cron(0 0 32W * ? *)",
            Field(CronField::DayOfMonth, "`W` follows a single day"),
        ),
        (
            "cron(0 0 L-2 * ? *)",
            Field(
                CronField::DayOfMonth,
                "must be the whole day-of-month field",
            ),
        ),
        (
            "cron(0 0 1,L * ? *)",
            Field(
                CronField::DayOfMonth,
                "must be the whole day-of-month field",
            ),
        ),
        ("cron(0 L * * ? *)", Field(CronField::Hours, "not in hours")),
        (
            "cron(? 0 * * ? *)",
            Field(
                CronField::Minutes,
                "`?` is only allowed in day-of-month or day-of-week",
            ),
        ),
        (
            "cron(0/0 * * * ? *)",
            Field(
                CronField::Minutes,
                "increment `0` must be a whole number from 1 to 59",
            ),
        ),
        (
            "cron(1,,2 * * * ? *)",
            Field(CronField::Minutes, "empty list item"),
        ),
        (
            "cron(5- * * * ? *)",
            Field(CronField::Minutes, "needs a start and an end"),
        ),
        (
            "cron(0 0 1 * ? 2024-)",
            Field(CronField::Year, "needs a start and an end"),
        ),
    ];
    for (expression, expect) in cases {
        let err = match Schedule::parse(expression) {
            Ok(_) => panic!("{expression} parsed"),
            Err(err) => err,
        };
        let message = err.to_string();
        let (ok, needle) = match (&err, &expect) {
            (ScheduleError::Syntax { .. }, Syntax) => (true, "is not a schedule: expected `rate("),
            (ScheduleError::Rate { .. }, Rate(needle)) => (true, *needle),
            (ScheduleError::FieldCount { found }, FieldCount(want)) => {
                (found == want, "needs 6 fields")
            }
            (ScheduleError::Field { field, .. }, Field(want, needle)) => (field == want, *needle),
            (ScheduleError::DayFields { .. }, DayFields(needle)) => (true, *needle),
            _ => (false, ""),
        };
        assert!(ok, "{expression}: wrong error {err:?}");
        assert!(
            message.contains(needle),
            "{expression}: `{message}` lacks `{needle}`"
        );
    }
}

#[test]
fn error_messages_name_field_and_value() {
    let cases = [
        (
            "cron(0 12 ? * 2-9 *)",
            "cron day-of-week field `2-9`: `9` is out of range: expected a day of the week 1-7 (1 = SUN) or SUN-SAT",
        ),
        (
            "cron(0 12 * * ?)",
            "cron needs 6 fields (minutes hours day-of-month month day-of-week year), found 5; EventBridge cron has a year field: add ` *` for every year",
        ),
        (
            "cron(0 0 1 * ? *x)",
            "cron year field `*x`: `*x` is not a year 1970-2199; expected a year 1970-2199, `*`, a list `a,b`, a range `a-b` or an increment `a/b`",
        ),
        (
            "rate(1 minutes)",
            "invalid `rate(1 minutes)`: a value of 1 takes the singular unit: `rate(1 minute)`",
        ),
        (
            "cron(0 12 * * * *)",
            "cron day-of-month `*` and day-of-week `*`: one of them must be `?`, like `cron(0 12 15 * ? *)` (the 15th) or `cron(0 12 ? * MON *)` (Mondays)",
        ),
    ];
    for (expression, message) in cases {
        let err = Schedule::parse(expression)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(err, Err(message.to_string()), "{expression}");
    }
}
