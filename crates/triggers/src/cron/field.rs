//! One cron field: its bounds and names, and the list syntax every field
//! shares (`*`, `a`, `a-b`, `a/b`, `*/b`, `a-b/c`, and comma lists of them).

use std::fmt;

use crate::ScheduleError;

/// A field of an EventBridge cron expression, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    Minutes,
    Hours,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
/// EventBridge numbers days of the week from Sunday: SUN = 1 … SAT = 7.
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl CronField {
    /// The field's name as EventBridge's documentation writes it.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minutes => "minutes",
            CronField::Hours => "hours",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }

    pub(crate) fn min(self) -> u32 {
        match self {
            CronField::Minutes | CronField::Hours => 0,
            CronField::DayOfMonth | CronField::Month | CronField::DayOfWeek => 1,
            CronField::Year => 1970,
        }
    }

    pub(crate) fn max(self) -> u32 {
        match self {
            CronField::Minutes => 59,
            CronField::Hours => 23,
            CronField::DayOfMonth => 31,
            CronField::Month => 12,
            CronField::DayOfWeek => 7,
            CronField::Year => 2199,
        }
    }

    /// Names standing for `min()`, `min() + 1`, …
    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &MONTH_NAMES,
            CronField::DayOfWeek => &DAY_NAMES,
            _ => &[],
        }
    }

    /// What one value of this field looks like, for error messages.
    fn value_shape(self) -> &'static str {
        match self {
            CronField::Minutes => "a minute 0-59",
            CronField::Hours => "an hour 0-23",
            CronField::DayOfMonth => "a day of the month 1-31",
            CronField::Month => "a month 1-12 or JAN-DEC",
            CronField::DayOfWeek => "a day of the week 1-7 (1 = SUN) or SUN-SAT",
            CronField::Year => "a year 1970-2199",
        }
    }

    /// The smallest value-set representation that holds the field: years
    /// are stored relative to 1970 so every field fits 256 bits.
    fn set_base(self) -> u32 {
        match self {
            CronField::Year => 1970,
            _ => 0,
        }
    }

    pub(crate) fn error(self, value: &str, problem: impl Into<String>) -> ScheduleError {
        ScheduleError::Field {
            field: self,
            value: value.to_string(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of field values, 256 of them counted from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ValueSet {
    base: u32,
    bits: [u64; 4],
}

impl ValueSet {
    pub(crate) fn empty(field: CronField) -> ValueSet {
        ValueSet {
            base: field.set_base(),
            bits: [0; 4],
        }
    }

    /// Adds `value`; values outside the 256-value window are ignored
    /// (parsing never produces them).
    pub(crate) fn insert(&mut self, value: u32) {
        if let Some(index) = self.index(value) {
            self.bits[index / 64] |= 1 << (index % 64);
        }
    }

    /// The smallest member that is `>= value`.
    pub(crate) fn first_at_or_after(&self, value: u32) -> Option<u32> {
        let mut index = value.saturating_sub(self.base) as usize;
        while index < 256 {
            // Drop the bits below `index` in its word, then look for the
            // lowest remaining one; move to the next word if there is none.
            let word = self.bits[index / 64] >> (index % 64);
            if word != 0 {
                return Some(self.base + (index + word.trailing_zeros() as usize) as u32);
            }
            index = (index / 64 + 1) * 64;
        }
        None
    }

    /// Members from `value` upwards, in order.
    pub(crate) fn iter_from(&self, value: u32) -> impl Iterator<Item = u32> + '_ {
        let mut next = self.first_at_or_after(value);
        std::iter::from_fn(move || {
            let current = next?;
            next = current
                .checked_add(1)
                .and_then(|v| self.first_at_or_after(v));
            Some(current)
        })
    }

    /// Members 0-31 as a bit mask (bit `n` for value `n`), for day-of-month
    /// and day-of-week sets, whose values are all below 32.
    pub(crate) fn low_mask(&self) -> u32 {
        debug_assert_eq!(self.base, 0);
        self.bits[0] as u32
    }

    fn index(&self, value: u32) -> Option<usize> {
        let index = value.checked_sub(self.base)? as usize;
        (index < 256).then_some(index)
    }
}

/// Parses a comma list of values, ranges and increments for `field`.
///
/// Names (`JAN`, `mon`) are matched in any case.
pub(crate) fn parse_list(field: CronField, text: &str) -> Result<ValueSet, ScheduleError> {
    let mut set = ValueSet::empty(field);
    for item in text.split(',') {
        let (start, end, step) = parse_item(field, item).map_err(|p| field.error(text, p))?;
        // `step_by` needs usize; the bounds are at most 2199, so this is exact.
        for value in (start..=end).step_by(step as usize) {
            set.insert(value);
        }
    }
    Ok(set)
}

/// One list item as (first, last, step).
fn parse_item(field: CronField, item: &str) -> Result<(u32, u32, u32), String> {
    if item.is_empty() {
        return Err(format!(
            "empty list item: expected {} between single commas",
            field.value_shape()
        ));
    }
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => {
            // EventBridge lists `, - * ? L #` for day-of-week: no increments.
            if field == CronField::DayOfWeek {
                return Err(
                    "increments (`/`) are not allowed in day-of-week; use a list or range, like `MON,WED,FRI`"
                        .to_string(),
                );
            }
            (range, Some(parse_step(field, step)?))
        }
        None => (item, None),
    };
    let (start, end) = if range == "*" {
        (field.min(), field.max())
    } else if let Some((first, last)) = range.split_once('-') {
        if first.is_empty() || last.is_empty() {
            return Err(format!(
                "the range `{range}` needs a start and an end, like `{}-{}`",
                field.min(),
                field.max()
            ));
        }
        let (first, last) = (parse_value(field, first)?, parse_value(field, last)?);
        // A wrapping range like `FRI-MON` or `22-2` is ambiguous enough that
        // spelling it as a list is clearer; EventBridge users rarely need it.
        if first > last {
            return Err(format!(
                "the range `{range}` runs backwards: the start must not be after the end (a wrapping range can be written as a list, like `{first}-{},{}-{last}`)",
                field.max(),
                field.min()
            ));
        }
        (first, last)
    } else {
        let first = parse_value(field, range)?;
        // `a/b` means "from a to the end of the field, every b".
        (first, if step.is_some() { field.max() } else { first })
    };
    Ok((start, end, step.unwrap_or(1)))
}

fn parse_step(field: CronField, text: &str) -> Result<u32, String> {
    let limit = field.max() - field.min();
    parse_number(text)
        .filter(|step| (1..=limit).contains(step))
        .ok_or_else(|| format!("the increment `{text}` must be a whole number from 1 to {limit}"))
}

/// One value: a number in the field's bounds or one of its names.
pub(crate) fn parse_value(field: CronField, token: &str) -> Result<u32, String> {
    if is_digits(token) {
        if let Some(number) =
            parse_number(token).filter(|n| (field.min()..=field.max()).contains(n))
        {
            return Ok(number);
        }
        return Err(format!(
            "`{token}` is out of range: expected {}",
            field.value_shape()
        ));
    }
    if let Some(position) = field
        .names()
        .iter()
        .position(|name| name.eq_ignore_ascii_case(token))
    {
        return Ok(field.min() + position as u32);
    }
    Err(misplaced_hint(field, token).unwrap_or_else(|| {
        format!(
            "`{token}` is not {}; expected {}",
            field.value_shape(),
            list_shape(field)
        )
    }))
}

/// Explains EventBridge's special characters found where they don't belong.
fn misplaced_hint(field: CronField, token: &str) -> Option<String> {
    let day_field = matches!(field, CronField::DayOfMonth | CronField::DayOfWeek);
    if token == "?" {
        return Some(if day_field {
            format!("`?` must be the whole {field} field")
        } else {
            "`?` is only allowed in day-of-month or day-of-week".to_string()
        });
    }
    let special = looks_special(token);
    match field {
        CronField::DayOfMonth if special => Some(
            "`L` and `W` must be the whole day-of-month field, like `L`, `LW` or `15W`".to_string(),
        ),
        CronField::DayOfWeek if special => Some(
            "`L` and `#` must be the whole day-of-week field, like `L`, `6L` or `3#2`".to_string(),
        ),
        _ if special => Some(format!(
            "`L`, `W` and `#` are only allowed in day-of-month or day-of-week, not in {field}"
        )),
        _ => None,
    }
}

/// `L`, `LW`, `15W`, `5L`, `FRIL`, `3#2`: the shapes of EventBridge's special
/// day syntax (but not a misspelt name such as `JULY`).
fn looks_special(token: &str) -> bool {
    if token.contains('#') {
        return true;
    }
    let core = strip_suffix_ignore_case(token, "LW")
        .or_else(|| strip_suffix_ignore_case(token, "L"))
        .or_else(|| strip_suffix_ignore_case(token, "W"));
    core.is_some_and(|core| {
        core.bytes().all(|b| b.is_ascii_digit())
            || DAY_NAMES.iter().any(|name| name.eq_ignore_ascii_case(core))
    })
}

/// `text` without `suffix`, compared ignoring ASCII case.
pub(crate) fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let split = text.len().checked_sub(suffix.len())?;
    let (head, tail) = (text.get(..split)?, text.get(split..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

/// The syntax a field accepts, for error messages.
fn list_shape(field: CronField) -> String {
    let increments = if field == CronField::DayOfWeek {
        ""
    } else {
        " or an increment `a/b`"
    };
    format!(
        "{}, `*`, a list `a,b`, a range `a-b`{increments}",
        field.value_shape()
    )
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Digits only, so `+5` and `-5` are not numbers; `None` past `u32`.
pub(crate) fn parse_number(text: &str) -> Option<u32> {
    if !is_digits(text) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(field: CronField, text: &str) -> Vec<u32> {
        let set = parse_list(field, text).expect(text);
        set.iter_from(0).collect()
    }

    #[test]
    fn lists_ranges_and_increments() {
        let cases: &[(CronField, &str, &[u32])] = &[
            (CronField::Minutes, "0", &[0]),
            (CronField::Minutes, "*/15", &[0, 15, 30, 45]),
            (CronField::Minutes, "0/15", &[0, 15, 30, 45]),
            (CronField::Minutes, "5/20", &[5, 25, 45]),
            (CronField::Minutes, "10-13", &[10, 11, 12, 13]),
            (CronField::Minutes, "10-20/5", &[10, 15, 20]),
            (CronField::Minutes, "1,3,3,59", &[1, 3, 59]),
            (CronField::Hours, "8-17/4,23", &[8, 12, 16, 23]),
            (CronField::DayOfMonth, "1/10", &[1, 11, 21, 31]),
            (CronField::Month, "JAN,MAR-MAY", &[1, 3, 4, 5]),
            (CronField::Month, "jan,Mar-may", &[1, 3, 4, 5]),
            (CronField::Month, "*/6", &[1, 7]),
            (CronField::DayOfWeek, "MON-FRI", &[2, 3, 4, 5, 6]),
            (CronField::DayOfWeek, "SUN,7", &[1, 7]),
            (CronField::Year, "2024-2026,2199", &[2024, 2025, 2026, 2199]),
            (CronField::Year, "2190/5", &[2190, 2195]),
        ];
        for (field, text, expected) in cases {
            assert_eq!(members(*field, text), *expected, "{field} `{text}`");
        }
        assert_eq!(members(CronField::Hours, "*").len(), 24);
        assert_eq!(members(CronField::Year, "*").len(), 230);
    }

    #[test]
    fn invalid_items_name_the_problem() {
        let cases: &[(CronField, &str, &str)] = &[
            (
                CronField::Minutes,
                "60",
                "out of range: expected a minute 0-59",
            ),
            (CronField::Hours, "24", "expected an hour 0-23"),
            (
                CronField::DayOfMonth,
                "0",
                "expected a day of the month 1-31",
            ),
            (CronField::Month, "13", "expected a month 1-12 or JAN-DEC"),
            (CronField::Month, "JANUARY", "is not a month"),
            (CronField::DayOfWeek, "8", "1-7 (1 = SUN) or SUN-SAT"),
            (CronField::Year, "1969", "expected a year 1970-2199"),
            (CronField::Year, "2200", "expected a year 1970-2199"),
            (CronField::Minutes, "10-5", "runs backwards"),
            (CronField::DayOfWeek, "FRI-MON", "runs backwards"),
            (
                CronField::Minutes,
                "5-",
                "needs a start and an end, like `0-59`",
            ),
            (CronField::Minutes, "-5", "needs a start and an end"),
            (
                CronField::Month,
                "JULY",
                "`JULY` is not a month 1-12 or JAN-DEC",
            ),
            (
                CronField::DayOfMonth,
                "WED",
                "`WED` is not a day of the month",
            ),
            (CronField::Minutes, "1,,2", "empty list item"),
            (CronField::Minutes, "1,", "empty list item"),
            (
                CronField::Minutes,
                "*/0",
                "increment `0` must be a whole number from 1 to 59",
            ),
            (CronField::Minutes, "0/60", "from 1 to 59"),
            (CronField::Minutes, "0/x", "increment `x`"),
            (CronField::Minutes, "+5", "is not a minute"),
            (
                CronField::Hours,
                "?",
                "only allowed in day-of-month or day-of-week",
            ),
            (CronField::Hours, "L", "not in hours"),
            (
                CronField::DayOfWeek,
                "1/2",
                "increments (`/`) are not allowed in day-of-week",
            ),
            (
                CronField::DayOfWeek,
                "MON,5L",
                "must be the whole day-of-week field",
            ),
            (
                CronField::DayOfMonth,
                "1,L",
                "must be the whole day-of-month field",
            ),
            (CronField::Minutes, "99999999999", "out of range"),
        ];
        for (field, text, problem) in cases {
            let err = parse_list(*field, text).expect_err(text).to_string();
            assert!(
                err.contains(problem),
                "{field} `{text}`: `{err}` lacks `{problem}`"
            );
            assert!(
                err.contains(&format!("cron {field} field `{text}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn value_set_search() {
        let mut set = ValueSet::empty(CronField::Year);
        for year in [1970, 2033, 2100, 2199] {
            set.insert(year);
        }
        assert_eq!(set.first_at_or_after(0), Some(1970));
        assert_eq!(set.first_at_or_after(1971), Some(2033));
        assert_eq!(set.first_at_or_after(2034), Some(2100));
        assert_eq!(set.first_at_or_after(2199), Some(2199));
        assert_eq!(set.first_at_or_after(2200), None);
        assert_eq!(set.first_at_or_after(2101), Some(2199));
        assert_eq!(
            set.iter_from(2000).collect::<Vec<_>>(),
            vec![2033, 2100, 2199]
        );
    }
}
