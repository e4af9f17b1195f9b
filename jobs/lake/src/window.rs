//! The explicit time window a run covers: whole UTC hours, end excluded.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use crate::error::{LakeError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Window> {
        for t in [start, end] {
            if t.minute() != 0 || t.second() != 0 || t.nanosecond() != 0 {
                return Err(LakeError::Window(format!("{t} is not a whole hour")));
            }
        }
        if end <= start {
            return Err(LakeError::Window(format!("end {} is not after start {}", format_hour(end), format_hour(start))));
        }
        Ok(Window { start, end })
    }

    /// One hour, written `2025-08-11T14`.
    pub fn hour(text: &str) -> Result<Window> {
        let start = parse_hour(text)?;
        Window::new(start, start + Duration::hours(1))
    }

    pub fn range(from: &str, to: &str) -> Result<Window> {
        Window::new(parse_hour(from)?, parse_hour(to)?)
    }

    /// The hours of the window, in order.
    pub fn hours(&self) -> impl DoubleEndedIterator<Item = DateTime<Utc>> + '_ {
        let count = (self.end - self.start).num_hours();
        (0..count).map(move |i| self.start + Duration::hours(i))
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// The UTC dates the window touches.
    pub fn dates(&self) -> Vec<NaiveDate> {
        let mut dates: Vec<NaiveDate> = self.hours().map(|h| h.date_naive()).collect();
        dates.dedup();
        dates
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", format_hour(self.start), format_hour(self.end))
    }
}

pub fn format_hour(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// Accepts `2025-08-11T14`, `2025-08-11T14:00`, `2025-08-11T14:00:00` and
/// RFC 3339 with an offset (what Airflow's `data_interval_start` renders).
pub fn parse_hour(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .or_else(|| NaiveDateTime::parse_from_str(&format!("{text}:00"), "%Y-%m-%dT%H:%M").ok())
            .map(|naive| Utc.from_utc_datetime(&naive))
    });
    parsed.ok_or_else(|| LakeError::Window(format!("cannot read {text:?} as an hour (expected e.g. 2025-08-11T14)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hour_and_ranges() {
        let w = Window::hour("2025-08-11T14").unwrap();
        assert_eq!(w.to_string(), "[2025-08-11T14, 2025-08-11T15)");
        assert_eq!(w.hours().count(), 1);
        let day = Window::range("2025-08-11T00", "2025-08-12T00").unwrap();
        assert_eq!(day.hours().count(), 24);
        assert_eq!(day.dates().len(), 1);
    }

    #[test]
    fn airflow_interval_format_is_accepted() {
        let w = Window::range("2025-08-11T14:00:00+00:00", "2025-08-11T15:00:00+00:00").unwrap();
        assert_eq!(w, Window::hour("2025-08-11T14").unwrap());
    }

    #[test]
    fn partial_hours_and_empty_ranges_are_refused() {
        assert!(Window::hour("2025-08-11T14:30").is_err());
        assert!(Window::range("2025-08-11T14", "2025-08-11T14").is_err());
        assert!(Window::hour("yesterday").is_err());
    }
}
