//! One landed line to a typed event, or to a reject with its reason: the
//! validation rules of events.md ("Bad input").

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use streamreel_lake::EventType;

/// Why a record went to `bronze/rejects`. The code is what the table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    InvalidJson,
    NotAnObject,
    MissingField,
    WrongType,
    BadTimestamp,
    TimestampOutOfRange,
    MissingPosition,
    NegativeValue,
    LineTooLong,
    UnreadableObject,
}

impl RejectReason {
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
            RejectReason::MissingPosition => "missing_position",
            RejectReason::NegativeValue => "negative_value",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::UnreadableObject => "unreadable_object",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reason: RejectReason,
    pub detail: String,
}

fn reject(reason: RejectReason, detail: impl Into<String>) -> Reject {
    Reject { reason, detail: detail.into() }
}

/// A JSON value as loosely typed as the validation needs.
#[derive(Debug, Default, Clone, PartialEq)]
enum Loose<'a> {
    #[default]
    Missing,
    Null,
    Text(Cow<'a, str>),
    Number(f64),
    Bool(bool),
    Nested,
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LooseVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Loose::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Loose::Number(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Nested)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Nested)
            }
        }
        deserializer.deserialize_any(LooseVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    event_id: Loose<'a>,
    #[serde(borrow, default)]
    customer_id: Loose<'a>,
    #[serde(borrow, default)]
    title_id: Loose<'a>,
    #[serde(borrow, default)]
    session_id: Loose<'a>,
    #[serde(borrow, default)]
    event_type: Loose<'a>,
    #[serde(borrow, default)]
    event_timestamp: Loose<'a>,
    #[serde(borrow, default)]
    position_seconds: Loose<'a>,
    #[serde(borrow, default)]
    watch_duration_seconds: Loose<'a>,
    #[serde(borrow, default)]
    completion_percentage: Loose<'a>,
    #[serde(borrow, default)]
    device_type: Loose<'a>,
    #[serde(borrow, default)]
    device_id: Loose<'a>,
    #[serde(borrow, default)]
    device_os: Loose<'a>,
    #[serde(borrow, default)]
    app_version: Loose<'a>,
    #[serde(borrow, default)]
    quality: Loose<'a>,
    #[serde(borrow, default)]
    bandwidth_mbps: Loose<'a>,
    #[serde(borrow, default)]
    buffering_events: Loose<'a>,
    #[serde(borrow, default)]
    buffering_duration_seconds: Loose<'a>,
    #[serde(borrow, default)]
    error_count: Loose<'a>,
    #[serde(borrow, default)]
    ip_address: Loose<'a>,
    #[serde(borrow, default)]
    country: Loose<'a>,
    #[serde(borrow, default)]
    state: Loose<'a>,
    #[serde(borrow, default)]
    city: Loose<'a>,
    #[serde(borrow, default)]
    isp: Loose<'a>,
    #[serde(borrow, default)]
    connection_type: Loose<'a>,
}

/// A valid event, borrowing from its line where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub event_id: Cow<'a, str>,
    pub customer_id: Cow<'a, str>,
    pub title_id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    pub timestamp_micros: i64,
    pub position_seconds: Option<f64>,
    pub watch_duration_seconds: Option<f64>,
    pub completion_percentage: Option<f64>,
    pub bandwidth_mbps: Option<f64>,
    pub buffering_events: Option<i64>,
    pub buffering_duration_seconds: Option<f64>,
    pub error_count: Option<i64>,
    /// In the order of `schema::OPTIONAL_TEXT_FIELDS`.
    pub texts: [Option<Cow<'a, str>>; 12],
}

/// What a line is checked against besides its own content.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events stamped later than this are absurd (landing hour end + allowance).
    pub latest_micros: i64,
}

/// 2000-01-01T00:00:00Z: anything earlier is absurd.
pub const EARLIEST_MICROS: i64 = 946_684_800_000_000;

pub fn parse_line<'a>(line: &'a [u8], limits: &Limits) -> Result<Event<'a>, Reject> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    let raw: RawEvent<'a> = match serde_json::from_slice(line) {
        Ok(raw) if first == Some(&b'{') => raw,
        Ok(_) => return Err(reject(RejectReason::NotAnObject, "the line is JSON but not an object")),
        Err(e) => {
            return Err(if first != Some(&b'{') && serde_json::from_slice::<IgnoredAny>(line).is_ok() {
                reject(RejectReason::NotAnObject, "the line is JSON but not an object")
            } else {
                reject(RejectReason::InvalidJson, e.to_string())
            });
        }
    };

    let event_id = required_text(raw.event_id, "event_id")?;
    let customer_id = required_text(raw.customer_id, "customer_id")?;
    let title_id = required_text(raw.title_id, "title_id")?;
    let event_type = required_text(raw.event_type, "event_type")?;
    let timestamp_micros = match raw.event_timestamp {
        Loose::Missing | Loose::Null => return Err(reject(RejectReason::MissingField, "event_timestamp is missing")),
        Loose::Text(text) => parse_timestamp(&text)
            .ok_or_else(|| reject(RejectReason::BadTimestamp, format!("event_timestamp {text:?} is not an ISO 8601 time")))?,
        other => return Err(reject(RejectReason::WrongType, format!("event_timestamp is {}, not a string", kind(&other)))),
    };
    if timestamp_micros < EARLIEST_MICROS || timestamp_micros > limits.latest_micros {
        return Err(reject(
            RejectReason::TimestampOutOfRange,
            format!("event_timestamp {} is before 2000 or too far in the future", format_micros(timestamp_micros)),
        ));
    }

    let position_seconds = number(raw.position_seconds, "position_seconds")?;
    if position_seconds.is_none() && EventType::parse(&event_type).is_playback() {
        return Err(reject(
            RejectReason::MissingPosition,
            format!("{event_type} event without a numeric position_seconds"),
        ));
    }
    let watch_duration_seconds = number(raw.watch_duration_seconds, "watch_duration_seconds")?;
    let buffering_duration_seconds = number(raw.buffering_duration_seconds, "buffering_duration_seconds")?;
    let buffering_events = number(raw.buffering_events, "buffering_events")?;
    let error_count = number(raw.error_count, "error_count")?;
    for (name, value) in [
        ("position_seconds", position_seconds),
        ("watch_duration_seconds", watch_duration_seconds),
        ("buffering_duration_seconds", buffering_duration_seconds),
        ("buffering_events", buffering_events),
        ("error_count", error_count),
    ] {
        if let Some(v) = value.filter(|v| *v < 0.0) {
            return Err(reject(RejectReason::NegativeValue, format!("{name} is negative ({v})")));
        }
    }

    Ok(Event {
        event_id,
        customer_id,
        title_id,
        event_type,
        timestamp_micros,
        position_seconds,
        watch_duration_seconds,
        completion_percentage: number(raw.completion_percentage, "completion_percentage")?,
        bandwidth_mbps: number(raw.bandwidth_mbps, "bandwidth_mbps")?,
        buffering_events: buffering_events.map(|v| v.round() as i64),
        buffering_duration_seconds,
        error_count: error_count.map(|v| v.round() as i64),
        texts: [
            optional_text(raw.device_type),
            optional_text(raw.device_id),
            optional_text(raw.device_os),
            optional_text(raw.app_version),
            optional_text(raw.quality),
            optional_text(raw.ip_address),
            optional_text(raw.country),
            optional_text(raw.state),
            optional_text(raw.city),
            optional_text(raw.isp),
            optional_text(raw.connection_type),
            optional_text(raw.session_id),
        ],
    })
}

fn kind(value: &Loose) -> &'static str {
    match value {
        Loose::Missing => "missing",
        Loose::Null => "null",
        Loose::Text(_) => "a string",
        Loose::Number(_) => "a number",
        Loose::Bool(_) => "a boolean",
        Loose::Nested => "an array or object",
    }
}

fn required_text<'a>(value: Loose<'a>, name: &str) -> Result<Cow<'a, str>, Reject> {
    match value {
        Loose::Text(text) if !text.trim().is_empty() => Ok(text),
        Loose::Missing | Loose::Null | Loose::Text(_) => {
            Err(reject(RejectReason::MissingField, format!("{name} is missing or empty")))
        }
        other => Err(reject(RejectReason::WrongType, format!("{name} is {}, not a string", kind(&other)))),
    }
}

/// Optional text: empty means absent; a number or boolean is kept as text.
fn optional_text(value: Loose<'_>) -> Option<Cow<'_, str>> {
    match value {
        Loose::Text(text) if !text.trim().is_empty() => Some(text),
        Loose::Number(n) => Some(Cow::Owned(n.to_string())),
        Loose::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        _ => None,
    }
}

/// A number, or a string holding one; anything else present is the wrong type.
fn number(value: Loose<'_>, name: &str) -> Result<Option<f64>, Reject> {
    match value {
        Loose::Missing | Loose::Null => Ok(None),
        Loose::Number(n) => Ok(Some(n)),
        Loose::Text(text) if text.trim().is_empty() => Ok(None),
        Loose::Text(text) => match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(reject(RejectReason::WrongType, format!("{name} is {text:?}, not a number"))),
        },
        other => Err(reject(RejectReason::WrongType, format!("{name} is {}, not a number", kind(&other)))),
    }
}

/// RFC 3339 / ISO 8601 to microseconds since the epoch; no offset means UTC.
/// The common `2025-08-11T14:30:45.123Z` shape takes a fast path.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    fast_timestamp(text.as_bytes()).or_else(|| {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Some(t.with_timezone(&Utc).timestamp_micros());
        }
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|naive| naive.and_utc().timestamp_micros())
            .or_else(|| {
                DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z").ok().map(|t| t.timestamp_micros())
            })
    })
}

fn fast_timestamp(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
    };
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let fraction_digits = i - start;
        if fraction_digits == 0 {
            return None;
        }
        for _ in fraction_digits..6 {
            micros *= 10;
        }
    }
    let offset_seconds: i64 = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let two = |a: u8, c: u8| (a.is_ascii_digit() && c.is_ascii_digit()).then(|| ((a - b'0') * 10 + (c - b'0')) as i64);
            let seconds = two(*h1, *h2)? * 3600 + two(*m1, *m2)? * 60;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => return None,
    };
    let days = (date - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

pub fn format_micros(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAR_FUTURE: Limits = Limits { latest_micros: i64::MAX };

    fn good() -> serde_json::Value {
        serde_json::json!({
            "event_id": "e1", "customer_id": "c1", "title_id": "t1", "session_id": "s1",
            "event_type": "play", "event_timestamp": "2025-08-11T14:30:45.123Z",
            "position_seconds": 12.5, "device_type": "tv", "buffering_events": 2,
            "bandwidth_mbps": "25.5", "extra_field": {"kept": "in raw_line"}
        })
    }

    fn reason_of(value: serde_json::Value) -> RejectReason {
        let line = value.to_string();
        parse_line(line.as_bytes(), &FAR_FUTURE).unwrap_err().reason
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut v = good();
        v[key] = value;
        v
    }

    fn without(key: &str) -> serde_json::Value {
        let mut v = good();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn a_good_line_is_typed() {
        let line = good().to_string();
        let event = parse_line(line.as_bytes(), &FAR_FUTURE).unwrap();
        assert_eq!(event.event_id, "e1");
        assert_eq!(event.event_type, "play");
        assert_eq!(event.position_seconds, Some(12.5));
        assert_eq!(event.bandwidth_mbps, Some(25.5));
        assert_eq!(event.buffering_events, Some(2));
        assert_eq!(format_micros(event.timestamp_micros), "2025-08-11T14:30:45.123000Z");
        assert_eq!(event.texts[0].as_deref(), Some("tv"));
        assert_eq!(event.texts[11].as_deref(), Some("s1"));
    }

    #[test]
    fn every_bad_input_case_of_events_md_has_its_reason() {
        assert_eq!(parse_line(b"{not json", &FAR_FUTURE).unwrap_err().reason, RejectReason::InvalidJson);
        assert_eq!(parse_line(b"[1,2]", &FAR_FUTURE).unwrap_err().reason, RejectReason::NotAnObject);
        assert_eq!(parse_line(b"\"text\"", &FAR_FUTURE).unwrap_err().reason, RejectReason::NotAnObject);
        assert_eq!(reason_of(without("event_id")), RejectReason::MissingField);
        assert_eq!(reason_of(with("customer_id", "".into())), RejectReason::MissingField);
        assert_eq!(reason_of(without("event_timestamp")), RejectReason::MissingField);
        assert_eq!(reason_of(with("title_id", 42.into())), RejectReason::WrongType);
        assert_eq!(reason_of(with("event_timestamp", 1_723_000_000.into())), RejectReason::WrongType);
        assert_eq!(reason_of(with("event_timestamp", "yesterday".into())), RejectReason::BadTimestamp);
        assert_eq!(reason_of(with("event_timestamp", "1999-12-31T23:59:59Z".into())), RejectReason::TimestampOutOfRange);
        assert_eq!(reason_of(without("position_seconds")), RejectReason::MissingPosition);
        assert_eq!(reason_of(with("position_seconds", serde_json::Value::Null)), RejectReason::MissingPosition);
        assert_eq!(reason_of(with("position_seconds", "abc".into())), RejectReason::WrongType);
        assert_eq!(reason_of(with("position_seconds", (-1).into())), RejectReason::NegativeValue);
        assert_eq!(reason_of(with("error_count", (-3).into())), RejectReason::NegativeValue);
        assert_eq!(reason_of(with("buffering_duration_seconds", (-0.5).into())), RejectReason::NegativeValue);
    }

    #[test]
    fn future_timestamps_are_judged_against_the_limit() {
        let line = good().to_string();
        let limit = Limits { latest_micros: parse_timestamp("2025-08-11T14:00:00Z").unwrap() };
        assert_eq!(parse_line(line.as_bytes(), &limit).unwrap_err().reason, RejectReason::TimestampOutOfRange);
    }

    #[test]
    fn quality_events_need_no_position() {
        let mut v = without("position_seconds");
        v["event_type"] = "buffer_start".into();
        assert!(parse_line(v.to_string().as_bytes(), &FAR_FUTURE).is_ok());
        v["event_type"] = "ad_impression".into();
        assert!(parse_line(v.to_string().as_bytes(), &FAR_FUTURE).is_ok());
    }

    #[test]
    fn timestamps_in_all_accepted_shapes() {
        let expected = parse_timestamp("2025-08-11T14:30:45Z").unwrap();
        for text in [
            "2025-08-11T14:30:45Z",
            "2025-08-11T14:30:45",
            "2025-08-11 14:30:45",
            "2025-08-11T16:30:45+02:00",
            "2025-08-11T12:30:45-0200",
            "2025-08-11T14:30:45.000Z",
        ] {
            assert_eq!(parse_timestamp(text), Some(expected), "{text}");
        }
        assert_eq!(parse_timestamp("2025-08-11T14:30:45.1234567Z"), Some(expected + 123_456));
        assert_eq!(parse_timestamp("2025-02-30T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2025-08-11T25:00:00Z"), None);
        // The slow path agrees with the fast one.
        assert_eq!(
            parse_timestamp("2025-08-11T14:30:45.5+00:00"),
            DateTime::parse_from_rfc3339("2025-08-11T14:30:45.5+00:00").ok().map(|t| t.timestamp_micros())
        );
    }

    #[test]
    fn escaped_strings_and_unicode_survive() {
        let line = with("customer_id", "c\"ü\\1".into()).to_string();
        let event = parse_line(line.as_bytes(), &FAR_FUTURE).unwrap();
        assert_eq!(event.customer_id, "c\"ü\\1");
    }
}
