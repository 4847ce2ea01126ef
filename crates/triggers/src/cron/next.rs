//! The next fire time of a [`Cron`]: a field-by-field search from the
//! largest unit down, so it costs at most a few hundred steps even for
//! rules that fire rarely (`cron(0 0 29 2 ? *)`) or never (`cron(0 0 30 2 ? *)`).

use super::{Cron, DayOfMonth, DayOfWeek, Days};
use crate::calendar::{days_in_month, weekday, DateTime};

/// 1970-01-01T00:00:00Z: EventBridge years start at 1970.
const FIRST_FIRE: i64 = 0;
/// 2199-12-31T23:59:00Z: the last minute of the last cron year.
const LAST_FIRE: i64 = 7_258_118_340;

const SATURDAY: u32 = 7;
const SUNDAY: u32 = 1;

impl Cron {
    /// The first minute strictly after `after` (unix seconds) that the
    /// expression matches, or `None` if there is none before 2200.
    pub(crate) fn next_after(&self, after: i64) -> Option<i64> {
        // Fires are on whole minutes: start at the first whole minute
        // strictly after `after`.
        let first = after.div_euclid(60).checked_add(1)?.checked_mul(60)?;
        let first = first.max(FIRST_FIRE);
        if first > LAST_FIRE {
            return None;
        }
        let from = DateTime::from_unix(first);
        // Each level starts at `from`'s value while all larger units still
        // equal `from`'s ("tight"), and at its minimum once a larger unit
        // has moved past it.
        for year in self.years.iter_from(from.year as u32) {
            let year = year as i32;
            let tight_year = year == from.year;
            let first_month = if tight_year { from.month } else { 1 };
            for month in self.months.iter_from(first_month) {
                let tight_month = tight_year && month == from.month;
                let first_day = if tight_month { from.day } else { 1 };
                let days = self.days.in_month(year, month);
                for day in (first_day..=31).filter(|day| days & (1 << day) != 0) {
                    let tight_day = tight_month && day == from.day;
                    let first_hour = if tight_day { from.hour } else { 0 };
                    for hour in self.hours.iter_from(first_hour) {
                        let tight_hour = tight_day && hour == from.hour;
                        let first_minute = if tight_hour { from.minute } else { 0 };
                        if let Some(minute) = self.minutes.first_at_or_after(first_minute) {
                            let at = DateTime {
                                year,
                                month,
                                day,
                                hour,
                                minute,
                                second: 0,
                            };
                            return Some(at.to_unix());
                        }
                    }
                }
            }
        }
        None
    }
}

impl Days {
    /// The days of `month` in `year` the rule runs on, as a mask with bit
    /// `d` set for day `d`.
    fn in_month(&self, year: i32, month: u32) -> u32 {
        let len = days_in_month(year, month);
        let whole_month = ((1u64 << (len + 1)) - 2) as u32; // bits 1..=len
        let first_weekday = weekday(year, month, 1);
        // Weekday of day `d`, counting on from the 1st.
        let weekday_of = |day: u32| (first_weekday - 1 + day - 1) % 7 + 1;
        let day = |day: u32| 1u32 << day;
        match self {
            Days::OfMonth(DayOfMonth::Set(set)) => set.low_mask() & whole_month,
            Days::OfMonth(DayOfMonth::Last) => day(len),
            Days::OfMonth(DayOfMonth::LastWeekday) => match weekday_of(len) {
                SATURDAY => day(len - 1),
                SUNDAY => day(len - 2),
                _ => day(len),
            },
            Days::OfMonth(DayOfMonth::NearestWeekday(target)) => {
                let target = *target;
                if target > len {
                    // `31W` in a 30-day month: no such day, so no fire.
                    return 0;
                }
                // The nearest weekday never leaves the month: a Saturday
                // 1st moves forward to Monday the 3rd, a Sunday last day
                // back to Friday.
                match weekday_of(target) {
                    SATURDAY if target == 1 => day(3),
                    SATURDAY => day(target - 1),
                    SUNDAY if target == len => day(target - 2),
                    SUNDAY => day(target + 1),
                    _ => day(target),
                }
            }
            Days::OfWeek(DayOfWeek::Set(set)) => {
                let weekdays = set.low_mask();
                (1..=len)
                    .filter(|d| weekdays & (1 << weekday_of(*d)) != 0)
                    .fold(0, |mask, d| mask | day(d))
            }
            Days::OfWeek(DayOfWeek::Last(target)) => {
                let back = (weekday_of(len) + 7 - target) % 7;
                day(len - back)
            }
            Days::OfWeek(DayOfWeek::Nth { weekday, nth }) => {
                let first = 1 + (weekday + 7 - first_weekday) % 7;
                let date = first + 7 * (nth - 1);
                if date <= len {
                    day(date)
                } else {
                    // `MON#5` in a month with four Mondays: no fire.
                    0
                }
            }
        }
    }
}
