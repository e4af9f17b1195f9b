//! UTC days and microseconds: how timestamps and dates are stored.

use chrono::{DateTime, NaiveDate, Utc};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The UTC day (days since 1970-01-01) of a timestamp in microseconds.
pub fn day_of(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// Days since 1970-01-01, arrow's Date32.
pub fn date_to_days(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

pub fn days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(days as i64)
}

/// RFC 3339 with microseconds, for messages.
pub fn format_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_negative_times_fall_on_the_day_before() {
        let day = date_to_days(NaiveDate::from_ymd_opt(2025, 8, 11).unwrap());
        assert_eq!(days_to_date(day).to_string(), "2025-08-11");
        assert_eq!(day_of(day as i64 * MICROS_PER_DAY + 5), day);
        assert_eq!(day_of(-1), -1);
    }
}
