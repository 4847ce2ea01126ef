//! The request-time format API Gateway uses (`15/May/2020:06:01:09 +0000`),
//! computed from epoch milliseconds without a date library.

use crate::civil::civil_from_days;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats `epoch_ms` in UTC as `dd/Mon/yyyy:HH:MM:SS +0000`, the Common Log
/// Format timestamp that REST (`requestTime`) and HTTP API (`time`) report.
/// Milliseconds are truncated, as AWS does.
pub(crate) fn clf(epoch_ms: i64) -> String {
    // Euclidean division keeps times before 1970 on the correct day.
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{day:02}/{}/{year:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::clf;

    #[test]
    fn clf_table() {
        let cases = [
            (1_589_522_469_000, "15/May/2020:06:01:09 +0000"),
            (0, "01/Jan/1970:00:00:00 +0000"),
            (-1, "31/Dec/1969:23:59:59 +0000"),
            (951_782_400_000, "29/Feb/2000:00:00:00 +0000"),
            (1_709_164_800_123, "29/Feb/2024:00:00:00 +0000"),
            (1_583_348_638_390, "04/Mar/2020:19:03:58 +0000"),
            (1_700_000_000_000, "14/Nov/2023:22:13:20 +0000"),
            (253_402_300_799_999, "31/Dec/9999:23:59:59 +0000"),
        ];
        for (ms, expected) in cases {
            assert_eq!(clf(ms), expected, "epoch ms {ms}");
        }
    }

    #[test]
    fn matches_a_naive_calendar_walk_across_leap_rules() {
        // Step day by day from 1899-12-31 to 2101-01-01 with a plain
        // month-length calendar and compare; this crosses the 1900 and 2100
        // non-leap centuries and the 2000 leap century.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: usize| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1899_i64, 12_usize, 31_i64);
        let mut days = -25_568_i64; // 1899-12-31
        while (y, m, d) != (2101, 1, 1) {
            let expected = format!("{d:02}/{}/{y:04}:00:00:00 +0000", super::MONTHS[m - 1]);
            assert_eq!(clf(days * 86_400_000), expected);
            days += 1;
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
