//! Text → [`Cron`]: splitting the six fields and the day-field syntax
//! (`?`, `L`, `LW`, `15W`, `5L`, `3#2`) that only day fields have.

use super::field::{
    parse_list, parse_number, parse_value, strip_suffix_ignore_case, CronField, ValueSet,
};
use super::{Cron, DayOfMonth, DayOfWeek, Days};
use crate::ScheduleError;

/// Parses the inside of `cron(...)`.
pub(crate) fn parse(inner: &str) -> Result<Cron, ScheduleError> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let [minutes, hours, day_of_month, month, day_of_week, year] = fields[..] else {
        return Err(ScheduleError::FieldCount {
            found: fields.len(),
        });
    };
    let minutes = parse_list(CronField::Minutes, minutes)?;
    let hours = parse_list(CronField::Hours, hours)?;
    let months = parse_list(CronField::Month, month)?;
    let years = parse_list(CronField::Year, year)?;
    let days_error = |problem: &str| ScheduleError::DayFields {
        day_of_month: day_of_month.to_string(),
        day_of_week: day_of_week.to_string(),
        problem: problem.to_string(),
    };
    let days = match (day_of_month == "?", day_of_week == "?") {
        (true, true) => {
            return Err(days_error(
                "only one of them can be `?`; give days in the other, like `cron(0 12 * * ? *)` for every day",
            ))
        }
        (false, false) => {
            return Err(days_error(
                "one of them must be `?`, like `cron(0 12 15 * ? *)` (the 15th) or `cron(0 12 ? * MON *)` (Mondays)",
            ))
        }
        (false, true) => Days::OfMonth(day_of_month_spec(day_of_month)?),
        (true, false) => Days::OfWeek(day_of_week_spec(day_of_week)?),
    };
    Ok(Cron {
        minutes,
        hours,
        days,
        months,
        years,
    })
}

fn day_of_month_spec(text: &str) -> Result<DayOfMonth, ScheduleError> {
    let field = CronField::DayOfMonth;
    if text.eq_ignore_ascii_case("L") {
        return Ok(DayOfMonth::Last);
    }
    if text.eq_ignore_ascii_case("LW") {
        return Ok(DayOfMonth::LastWeekday);
    }
    if let Some(day) = strip_suffix_ignore_case(text, "W") {
        // `W` applies to one day: `1-5W` or `1,15W` have no single nearest day.
        return parse_number(day)
            .filter(|day| (1..=31).contains(day))
            .map(DayOfMonth::NearestWeekday)
            .ok_or_else(|| {
                field.error(
                    text,
                    "`W` follows a single day 1-31, like `15W`, or `L` as `LW`",
                )
            });
    }
    parse_list(field, text).map(DayOfMonth::Set)
}

fn day_of_week_spec(text: &str) -> Result<DayOfWeek, ScheduleError> {
    let field = CronField::DayOfWeek;
    if text.eq_ignore_ascii_case("L") {
        let mut saturday = ValueSet::empty(field);
        saturday.insert(7);
        return Ok(DayOfWeek::Set(saturday));
    }
    if let Some((day, nth)) = text.split_once('#') {
        let weekday = parse_value(field, day).map_err(|p| field.error(text, p))?;
        let nth = parse_number(nth)
            .filter(|nth| (1..=5).contains(nth))
            .ok_or_else(|| {
                field.error(
                    text,
                    format!(
                        "`#` takes which occurrence in the month, 1-5, like `3#2`; got `{nth}`"
                    ),
                )
            })?;
        return Ok(DayOfWeek::Nth { weekday, nth });
    }
    if let Some(day) = strip_suffix_ignore_case(text, "L") {
        // `5L`/`THUL`: one day of the week; a list or range before `L` has
        // no single "last" day.
        return parse_value(field, day)
            .map(DayOfWeek::Last)
            .map_err(|_| {
                field.error(
                    text,
                    "`L` follows a single day of the week, like `5L` or `THUL` (the last Thursday), or stands alone (Saturday)",
                )
            });
    }
    parse_list(field, text).map(DayOfWeek::Set)
}
