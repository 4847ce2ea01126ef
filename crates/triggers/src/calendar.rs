//! UTC calendar arithmetic on unix seconds, without a date library.
//!
//! Schedules only need the proleptic Gregorian calendar in UTC (EventBridge
//! evaluates cron in UTC), so a few integer formulas replace a dependency:
//! Howard Hinnant's `days_from_civil` / `civil_from_days` (in
//! `rouse_events::civil`, which API Gateway's timestamps use too) convert
//! between dates and days since 1970-01-01, and everything else follows
//! from them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first year [`DateTime`] represents (ISO 8601 years have four digits).
pub const MIN_YEAR: i32 = 0;
/// The last year [`DateTime`] represents.
pub const MAX_YEAR: i32 = 9999;
/// 0000-01-01T00:00:00Z in unix seconds.
const MIN_UNIX: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z in unix seconds.
const MAX_UNIX: i64 = 253_402_300_799;

const SECONDS_PER_DAY: i64 = 86_400;
/// Whether `year` has a February 29th.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1-12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of the date `year-month-day` (month 1-12).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    rouse_events::civil::days_from_civil(i64::from(year), month, day)
}

/// The date (year, month 1-12, day 1-31) that is `days` after 1970-01-01.
///
/// The year is only meaningful within ±5.8 million years of 1970 (it must
/// fit `i32`); callers clamp first, as [`DateTime::from_unix`] does.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let (year, month, day) = rouse_events::civil::civil_from_days(days);
    (year as i32, month, day)
}

/// Day of the week of `days` after 1970-01-01, numbered as EventBridge
/// numbers them: 1 = Sunday … 7 = Saturday.
pub fn weekday_of_days(days: i64) -> u32 {
    // 1970-01-01 was a Thursday (5).
    ((days + 4).rem_euclid(7) + 1) as u32
}

/// Day of the week of a date: 1 = Sunday … 7 = Saturday.
pub fn weekday(year: i32, month: u32, day: u32) -> u32 {
    weekday_of_days(days_from_civil(year, month, day))
}

/// A UTC date and time to the second, years 0000-9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// A valid date and time, or `None` (no February 30th, no 24:00).
    pub fn new(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Option<DateTime> {
        let valid = (MIN_YEAR..=MAX_YEAR).contains(&year)
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// The UTC date and time of unix second `secs`, clamped to years
    /// 0000-9999 so that any `i64` gives a printable result.
    pub fn from_unix(secs: i64) -> DateTime {
        let secs = secs.clamp(MIN_UNIX, MAX_UNIX);
        let (year, month, day) = civil_from_days(secs.div_euclid(SECONDS_PER_DAY));
        let of_day = secs.rem_euclid(SECONDS_PER_DAY) as u32;
        DateTime {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day % 3600 / 60,
            second: of_day % 60,
        }
    }

    /// Unix seconds of this date and time.
    pub fn to_unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// Day of the week: 1 = Sunday … 7 = Saturday.
    pub fn weekday(&self) -> u32 {
        weekday(self.year, self.month, self.day)
    }
}

/// ISO 8601 in UTC with a `Z` suffix, as EventBridge writes `time`:
/// `2015-10-08T16:53:06Z`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Unix second `secs` as ISO 8601 UTC (`2015-10-08T16:53:06Z`).
pub fn format_utc(secs: i64) -> String {
    DateTime::from_unix(secs).to_string()
}

/// Whole unix seconds of `t`, rounded down (so times before 1970 land on
/// the second they are in, not the one after).
pub fn unix_seconds(t: SystemTime) -> i64 {
    unix_millis(t).div_euclid(1000)
}

/// Unix milliseconds of `t`, rounded down and saturated to `i64`.
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let millis = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
            // A partial millisecond before the epoch belongs to the one below.
            let partial = i64::from(before.subsec_nanos() % 1_000_000 != 0);
            (-millis).saturating_sub(partial)
        }
    }
}

/// The `SystemTime` of unix second `secs`, or `None` when the platform's
/// `SystemTime` cannot represent it.
pub fn system_time(secs: i64) -> Option<SystemTime> {
    let offset = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_every_day_from_1900_to_2400() {
        // Walk day by day so every month length and leap rule is exercised
        // against an independent counter.
        let mut days = days_from_civil(1900, 1, 1);
        for year in 1900..=2400 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(
                        days_from_civil(year, month, day),
                        days,
                        "{year}-{month}-{day}"
                    );
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn known_dates() {
        let cases = [
            ((1970, 1, 1), 0),
            ((1969, 12, 31), -1),
            ((2000, 3, 1), 11_017),
            ((2024, 2, 29), 19_782),
            ((2199, 12, 31), 84_005),
        ];
        for ((y, m, d), days) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn leap_years() {
        let cases = [
            (1900, false),
            (2000, true),
            (2023, false),
            (2024, true),
            (2100, false),
            (2400, true),
        ];
        for (year, leap) in cases {
            assert_eq!(is_leap_year(year), leap, "{year}");
            assert_eq!(days_in_month(year, 2), if leap { 29 } else { 28 });
        }
        assert_eq!(days_in_month(2024, 13), 0);
    }

    #[test]
    fn weekdays_use_eventbridge_numbering() {
        let cases = [
            ((1970, 1, 1), 5), // Thursday
            ((2024, 2, 29), 5),
            ((2024, 3, 3), 1), // Sunday
            ((2024, 3, 9), 7), // Saturday
            ((2000, 1, 1), 7),
            ((1969, 12, 28), 1),
        ];
        for ((y, m, d), weekday_number) in cases {
            assert_eq!(weekday(y, m, d), weekday_number, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn unix_round_trip_and_format() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (1_444_323_186, "2015-10-08T16:53:06Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (MIN_UNIX, "0000-01-01T00:00:00Z"),
            (MAX_UNIX, "9999-12-31T23:59:59Z"),
        ];
        for (secs, text) in cases {
            let dt = DateTime::from_unix(secs);
            assert_eq!(dt.to_string(), text);
            assert_eq!(dt.to_unix(), secs);
        }
        // Out-of-range seconds clamp instead of overflowing.
        assert_eq!(format_utc(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(format_utc(i64::MIN), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn new_rejects_impossible_dates() {
        assert!(DateTime::new(2024, 2, 29, 0, 0, 0).is_some());
        assert!(DateTime::new(2023, 2, 29, 0, 0, 0).is_none());
        assert!(DateTime::new(2024, 4, 31, 0, 0, 0).is_none());
        assert!(DateTime::new(2024, 1, 1, 24, 0, 0).is_none());
        assert!(DateTime::new(2024, 0, 1, 0, 0, 0).is_none());
        assert!(DateTime::new(10_000, 1, 1, 0, 0, 0).is_none());
    }

    #[test]
    fn system_time_conversions_round_down() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(unix_seconds(t), 1);
        assert_eq!(unix_millis(t), 1_500);
        let before = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(unix_seconds(before), -2);
        assert_eq!(unix_millis(before), -1_500);
        let just_before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(unix_millis(just_before), -1);
        assert_eq!(system_time(-2), Some(UNIX_EPOCH - Duration::from_secs(2)));
        assert_eq!(system_time(7), Some(UNIX_EPOCH + Duration::from_secs(7)));
    }
}
