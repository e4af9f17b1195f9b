//! One landed line to a typed event, or to a reject with its reason: the
//! input contract of docs/input.md. Only the required fields (and the
//! position of a playback event) can reject a line; an optional field whose
//! value it cannot hold is left empty and named in `invalid_fields`.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use streamreel_lake::time::format_micros;
use streamreel_tables::EventType;

/// Why a record went to `bronze/rejects`. The code is what the table stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    InvalidUtf8,
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
            RejectReason::InvalidUtf8 => "invalid_utf8",
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
pub(crate) enum Loose<'a> {
    #[default]
    Missing,
    Null,
    Text(Cow<'a, str>),
    /// A JSON integer, exact: a numeric id (`"device_id": 12345678901234567890`)
    /// is kept as text digit for digit, which an `f64` would round. Those
    /// above `i64::MAX` are `Unsigned`: as a number, an i64 converts in one
    /// instruction where an i128 takes a software routine (1 % of bronze).
    Integer(i64),
    Unsigned(u64),
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
                Ok(Loose::Integer(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or(Loose::Unsigned(v), Loose::Integer))
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

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawEvent<'a> {
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

impl<'a> RawEvent<'a> {
    /// The line read by the fast reader, when it is in the subset that
    /// reader takes (`crate::flat`).
    pub(crate) fn read_flat(line: &'a str) -> Option<RawEvent<'a>> {
        let mut raw = RawEvent::default();
        crate::flat::read_flat(line, |key, value| match raw.field(key) {
            // A second value for a field: serde's message rejects the line.
            Some(slot) if !matches!(slot, Loose::Missing) => false,
            Some(slot) => {
                *slot = value;
                true
            }
            None => true,
        })?;
        Some(raw)
    }

    /// The field a key names, if the contract knows it.
    fn field(&mut self, key: &str) -> Option<&mut Loose<'a>> {
        Some(match key {
            "event_id" => &mut self.event_id,
            "customer_id" => &mut self.customer_id,
            "title_id" => &mut self.title_id,
            "session_id" => &mut self.session_id,
            "event_type" => &mut self.event_type,
            "event_timestamp" => &mut self.event_timestamp,
            "position_seconds" => &mut self.position_seconds,
            "watch_duration_seconds" => &mut self.watch_duration_seconds,
            "completion_percentage" => &mut self.completion_percentage,
            "device_type" => &mut self.device_type,
            "device_id" => &mut self.device_id,
            "device_os" => &mut self.device_os,
            "app_version" => &mut self.app_version,
            "quality" => &mut self.quality,
            "bandwidth_mbps" => &mut self.bandwidth_mbps,
            "buffering_events" => &mut self.buffering_events,
            "buffering_duration_seconds" => &mut self.buffering_duration_seconds,
            "error_count" => &mut self.error_count,
            "ip_address" => &mut self.ip_address,
            "country" => &mut self.country,
            "state" => &mut self.state,
            "city" => &mut self.city,
            "isp" => &mut self.isp,
            "connection_type" => &mut self.connection_type,
            _ => return None,
        })
    }
}

/// A valid event, borrowing from its line where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// The whole line, checked to be UTF-8: what bronze keeps as `raw_line`.
    pub line: &'a str,
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
    /// In the order of `bronze::OPTIONAL_TEXT_FIELDS`.
    pub texts: [Option<Cow<'a, str>>; 12],
    /// Optional fields sent with a value they cannot hold, left empty.
    pub invalid_fields: Vec<&'static str>,
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
    // Checked once here, so that the JSON reader takes its strings as they are
    // (from bytes it would check each string again) and the line is kept as
    // it is. The vectorized check is the fast path; std's finds the position
    // of the bad byte for the reject's message.
    let Ok(line) = simdutf8::basic::from_utf8(line) else {
        return Err(invalid_utf8(line));
    };
    let raw = match RawEvent::read_flat(line) {
        Some(raw) => raw,
        None => read_full(line)?,
    };

    let event_id = required_text(raw.event_id, "event_id")?;
    let customer_id = required_text(raw.customer_id, "customer_id")?;
    let title_id = required_text(raw.title_id, "title_id")?;
    let event_type = required_text(raw.event_type, "event_type")?;
    let timestamp_micros = match raw.event_timestamp {
        Loose::Missing | Loose::Null => return Err(reject(RejectReason::MissingField, "event_timestamp is missing")),
        Loose::Text(text) if blank(&text) => return Err(reject(RejectReason::MissingField, "event_timestamp is empty")),
        Loose::Text(text) => {
            parse_timestamp(&text).ok_or_else(|| reject(RejectReason::BadTimestamp, format!("event_timestamp {text:?} is not an RFC 3339 time")))?
        }
        other => return Err(reject(RejectReason::WrongType, format!("event_timestamp is {}, not a string", kind(&other)))),
    };
    if timestamp_micros < EARLIEST_MICROS || timestamp_micros > limits.latest_micros {
        return Err(reject(
            RejectReason::TimestampOutOfRange,
            format!("event_timestamp {} is before 2000 or too far after its landing hour", format_micros(timestamp_micros)),
        ));
    }

    let mut invalid = Vec::new();
    let position_seconds = if EventType::parse(&event_type).is_playback() {
        match number(raw.position_seconds) {
            Ok(Some(p)) if p >= 0.0 => Some(p),
            Ok(Some(p)) => return Err(reject(RejectReason::NegativeValue, format!("position_seconds is negative ({p})"))),
            Ok(None) => {
                return Err(reject(RejectReason::MissingPosition, format!("{event_type} event without a numeric position_seconds")));
            }
            Err(what) => return Err(reject(RejectReason::WrongType, format!("position_seconds is {what}, not a number"))),
        }
    } else {
        optional_number(raw.position_seconds, "position_seconds", Rule::NonNegative, &mut invalid)
    };
    let watch_duration_seconds = optional_number(raw.watch_duration_seconds, "watch_duration_seconds", Rule::NonNegative, &mut invalid);
    let completion_percentage = optional_number(raw.completion_percentage, "completion_percentage", Rule::Percentage, &mut invalid);
    let bandwidth_mbps = optional_number(raw.bandwidth_mbps, "bandwidth_mbps", Rule::NonNegative, &mut invalid);
    let buffering_events = optional_number(raw.buffering_events, "buffering_events", Rule::Count, &mut invalid).map(|v| v as i64);
    let buffering_duration_seconds = optional_number(raw.buffering_duration_seconds, "buffering_duration_seconds", Rule::NonNegative, &mut invalid);
    let error_count = optional_number(raw.error_count, "error_count", Rule::Count, &mut invalid).map(|v| v as i64);
    let mut text = |value: Loose<'a>, name: &'static str| optional_text(value, name, &mut invalid);
    let texts = [
        text(raw.session_id, "session_id"),
        text(raw.device_type, "device_type"),
        text(raw.device_id, "device_id"),
        text(raw.device_os, "device_os"),
        text(raw.app_version, "app_version"),
        text(raw.quality, "quality"),
        text(raw.ip_address, "ip_address"),
        text(raw.country, "country"),
        text(raw.state, "state"),
        text(raw.city, "city"),
        text(raw.isp, "isp"),
        text(raw.connection_type, "connection_type"),
    ];
    Ok(Event {
        line,
        event_id,
        customer_id,
        title_id,
        event_type,
        timestamp_micros,
        position_seconds,
        watch_duration_seconds,
        completion_percentage,
        bandwidth_mbps,
        buffering_events,
        buffering_duration_seconds,
        error_count,
        texts,
        invalid_fields: invalid,
    })
}

/// The reject of a line that is not UTF-8, with the position of its first
/// bad byte.
#[cold]
fn invalid_utf8(line: &[u8]) -> Reject {
    let valid_up_to = std::str::from_utf8(line).err().map_or(0, |e| e.valid_up_to());
    reject(RejectReason::InvalidUtf8, format!("the line is not valid UTF-8 (byte {})", valid_up_to + 1))
}

/// A line the fast reader gave up on, through serde_json; its errors are
/// the reject's message.
fn read_full(line: &str) -> Result<RawEvent<'_>, Reject> {
    // serde reads a struct from an array too: only an object is an event.
    let object = line.bytes().find(|b| !b.is_ascii_whitespace()) == Some(b'{');
    match serde_json::from_str::<RawEvent<'_>>(line) {
        Ok(raw) if object => Ok(raw),
        Ok(_) => Err(reject(RejectReason::NotAnObject, "the line is JSON but not an object")),
        Err(_) if !object && serde_json::from_str::<IgnoredAny>(line).is_ok() => {
            Err(reject(RejectReason::NotAnObject, "the line is JSON but not an object"))
        }
        Err(e) => Err(reject(RejectReason::InvalidJson, e.to_string())),
    }
}

fn kind(value: &Loose) -> &'static str {
    match value {
        Loose::Missing => "missing",
        Loose::Null => "null",
        Loose::Text(_) => "a string",
        Loose::Integer(_) | Loose::Unsigned(_) | Loose::Number(_) => "a number",
        Loose::Bool(_) => "a boolean",
        Loose::Nested => "an array or object",
    }
}

/// Empty or only whitespace. A text starting with a visible ASCII character
/// is answered without the Unicode-aware trim, which was 3 % of bronze.
fn blank(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(b'!'..=b'~') => false,
        _ => text.trim().is_empty(),
    }
}

fn required_text<'a>(value: Loose<'a>, name: &str) -> Result<Cow<'a, str>, Reject> {
    match value {
        Loose::Text(text) if !blank(&text) => Ok(text),
        Loose::Missing | Loose::Null | Loose::Text(_) => Err(reject(RejectReason::MissingField, format!("{name} is missing or empty"))),
        other => Err(reject(RejectReason::WrongType, format!("{name} is {}, not a string", kind(&other)))),
    }
}

/// Optional text: empty means absent; a number or boolean is kept as text;
/// an array or object cannot be held.
fn optional_text<'a>(value: Loose<'a>, name: &'static str, invalid: &mut Vec<&'static str>) -> Option<Cow<'a, str>> {
    match value {
        Loose::Text(text) if !blank(&text) => Some(text),
        Loose::Integer(n) => Some(Cow::Owned(n.to_string())),
        Loose::Unsigned(n) => Some(Cow::Owned(n.to_string())),
        Loose::Number(n) => Some(Cow::Owned(n.to_string())),
        Loose::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        Loose::Nested => {
            invalid.push(name);
            None
        }
        _ => None,
    }
}

/// A number, or a string holding one; `Err` names what else it was.
fn number(value: Loose<'_>) -> Result<Option<f64>, String> {
    match value {
        Loose::Missing | Loose::Null => Ok(None),
        Loose::Integer(n) => Ok(Some(n as f64)),
        Loose::Unsigned(n) => Ok(Some(n as f64)),
        Loose::Number(n) => Ok(Some(n)),
        Loose::Text(text) if blank(&text) => Ok(None),
        Loose::Text(text) => match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(format!("{text:?}")),
        },
        other => Err(kind(&other).to_string()),
    }
}

/// What an optional number must be to be kept.
#[derive(Clone, Copy)]
enum Rule {
    NonNegative,
    Percentage,
    /// A whole number >= 0.
    Count,
}

fn optional_number(value: Loose<'_>, name: &'static str, rule: Rule, invalid: &mut Vec<&'static str>) -> Option<f64> {
    let kept = match number(value) {
        Ok(Some(v)) => match rule {
            Rule::NonNegative => (v >= 0.0).then_some(v),
            Rule::Percentage => (0.0..=100.0).contains(&v).then_some(v),
            Rule::Count => (v >= 0.0 && v.fract() == 0.0 && v < 9.0e15).then_some(v),
        },
        Ok(None) => return None,
        Err(_) => None,
    };
    if kept.is_none() {
        invalid.push(name);
    }
    kept
}

/// Strict RFC 3339 to microseconds since the epoch: `YYYY-MM-DD`, then `T`,
/// `t` or a space, `hh:mm:ss`, any number of fraction digits (kept to the
/// microsecond), then `Z`, `z`, `±hh:mm` (hh <= 23) or nothing (UTC).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
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
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, c: u8| (a.is_ascii_digit() && c.is_ascii_digit()).then(|| ((a - b'0') * 10 + (c - b'0')) as i64);
            let (hours, minutes) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => return None,
    };
    let days = (date - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
    Some(seconds * 1_000_000 + micros)
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

    /// (invalid fields, bandwidth, completion %, error count, session id)
    type Parsed = (Vec<&'static str>, Option<f64>, Option<f64>, Option<i64>, Option<String>);

    fn parsed(value: serde_json::Value) -> Parsed {
        let line = value.to_string();
        let e = parse_line(line.as_bytes(), &FAR_FUTURE).unwrap();
        (e.invalid_fields, e.bandwidth_mbps, e.completion_percentage, e.error_count, e.texts[0].as_ref().map(|s| s.to_string()))
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
        assert_eq!(event.texts[0].as_deref(), Some("s1"));
        assert_eq!(event.texts[1].as_deref(), Some("tv"));
        assert!(event.invalid_fields.is_empty());
        assert_eq!(event.line, line, "the line is kept as it came");
    }

    #[test]
    fn every_bad_input_case_has_its_reason() {
        assert_eq!(parse_line(b"{not json", &FAR_FUTURE).unwrap_err().reason, RejectReason::InvalidJson);
        let not_utf8 = parse_line(b"{\"event_id\": \"\xff\"}", &FAR_FUTURE).unwrap_err();
        assert_eq!((not_utf8.reason, not_utf8.detail.as_str()), (RejectReason::InvalidUtf8, "the line is not valid UTF-8 (byte 15)"));
        assert_eq!(parse_line(b"[1,2]", &FAR_FUTURE).unwrap_err().reason, RejectReason::NotAnObject);
        assert_eq!(parse_line(b"\"text\"", &FAR_FUTURE).unwrap_err().reason, RejectReason::NotAnObject);
        assert_eq!(reason_of(without("event_id")), RejectReason::MissingField);
        assert_eq!(reason_of(with("customer_id", "  ".into())), RejectReason::MissingField);
        assert_eq!(reason_of(without("event_timestamp")), RejectReason::MissingField);
        assert_eq!(reason_of(with("title_id", 42.into())), RejectReason::WrongType);
        assert_eq!(reason_of(with("event_timestamp", 1_723_000_000.into())), RejectReason::WrongType);
        assert_eq!(reason_of(with("event_timestamp", "yesterday".into())), RejectReason::BadTimestamp);
        assert_eq!(reason_of(with("event_timestamp", "1999-12-31T23:59:59Z".into())), RejectReason::TimestampOutOfRange);
        assert_eq!(reason_of(without("position_seconds")), RejectReason::MissingPosition);
        assert_eq!(reason_of(with("position_seconds", serde_json::Value::Null)), RejectReason::MissingPosition);
        assert_eq!(reason_of(with("position_seconds", "abc".into())), RejectReason::WrongType);
        assert_eq!(reason_of(with("position_seconds", (-1).into())), RejectReason::NegativeValue);
    }

    #[test]
    fn a_bad_optional_field_is_emptied_and_named_never_rejected() {
        assert_eq!(parsed(with("bandwidth_mbps", "N/A".into())), (vec!["bandwidth_mbps"], None, None, None, Some("s1".into())));
        assert_eq!(parsed(with("completion_percentage", "n/a".into())).0, vec!["completion_percentage"]);
        assert_eq!(parsed(with("completion_percentage", 140.into())).0, vec!["completion_percentage"]);
        assert_eq!(parsed(with("completion_percentage", "99.5".into())).2, Some(99.5));
        assert_eq!(parsed(with("error_count", (-3).into())).0, vec!["error_count"]);
        assert_eq!(parsed(with("error_count", 2.5.into())).0, vec!["error_count"]);
        assert_eq!(parsed(with("watch_duration_seconds", (-0.5).into())).0, vec!["watch_duration_seconds"]);
        assert_eq!(parsed(with("session_id", serde_json::json!({"a": 1}))), (vec!["session_id"], Some(25.5), None, None, None));
        assert_eq!(parsed(with("session_id", 17.into())).4.as_deref(), Some("17"));
        // Digit for digit, past what an f64 holds exactly (2^53), either sign.
        assert_eq!(parsed(with("session_id", u64::MAX.into())).4.as_deref(), Some("18446744073709551615"));
        assert_eq!(parsed(with("session_id", 9_007_199_254_740_993i64.into())).4.as_deref(), Some("9007199254740993"));
        assert_eq!(parsed(with("session_id", i64::MIN.into())).4.as_deref(), Some("-9223372036854775808"));
        assert_eq!(parsed(with("session_id", 2.5.into())).4.as_deref(), Some("2.5"));
        // Integers past i64 are numbers too.
        assert_eq!(parsed(with("bandwidth_mbps", u64::MAX.into())).1, Some(u64::MAX as f64));
        assert_eq!(parsed(with("bandwidth_mbps", 7.into())).1, Some(7.0));
        let mut quality_event = with("event_type", "buffer_start".into());
        quality_event["position_seconds"] = "abc".into();
        assert_eq!(parsed(quality_event).0, vec!["position_seconds"]);
    }

    #[test]
    fn future_timestamps_are_judged_against_the_limit() {
        let line = good().to_string();
        let limit = Limits { latest_micros: parse_timestamp("2025-08-11T14:00:00Z").unwrap() };
        assert_eq!(parse_line(line.as_bytes(), &limit).unwrap_err().reason, RejectReason::TimestampOutOfRange);
    }

    #[test]
    fn timestamps_are_strict_rfc_3339() {
        let expected = parse_timestamp("2025-08-11T14:30:45Z").unwrap();
        for text in [
            "2025-08-11T14:30:45Z",
            "2025-08-11t14:30:45z",
            "2025-08-11T14:30:45",
            "2025-08-11 14:30:45",
            "2025-08-11T16:30:45+02:00",
            "2025-08-11T12:30:45-02:00",
            "2025-08-11T14:30:45.000Z",
            "2025-08-11T14:30:45.0000000000Z",
        ] {
            assert_eq!(parse_timestamp(text), Some(expected), "{text}");
        }
        assert_eq!(parse_timestamp("2025-08-11T14:30:45.1234567Z"), Some(expected + 123_456));
        for text in [
            "2025-8-12T10:05:00",
            "2025-08-12T10:05:00+24:00",
            "2025-08-12T10:05:60Z",
            "2025-08-12T10:05:00+0200",
            "20250812T100500Z",
            "2025-08-12T10:05Z",
            "2025-08-12",
            "2025-02-30T00:00:00Z",
            "2025-08-11T25:00:00Z",
            " 2025-08-11T14:30:45Z",
            "2025-08-11T14:30:45.Z",
            "1723370400",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text} was accepted");
        }
    }

    #[test]
    fn every_field_name_is_read_into_its_own_field() {
        // Every field of the input contract (docs/input.md).
        let names = "event_id customer_id title_id session_id event_type event_timestamp position_seconds watch_duration_seconds \
            completion_percentage device_type device_id device_os app_version quality bandwidth_mbps buffering_events \
            buffering_duration_seconds error_count ip_address country state city isp connection_type";
        let names: Vec<&str> = names.split_whitespace().collect();
        assert_eq!(names.len(), 24);
        for (position, name) in names.iter().enumerate() {
            let line = format!("{{\"{name}\":\"v{position}\"}}");
            let fast = RawEvent::read_flat(&line).expect("a flat line");
            let full: RawEvent = serde_json::from_str(&line).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{full:?}"), "{name}");
            assert!(format!("{fast:?}").contains(&format!("{name}: Text(\"v{position}\")")), "{fast:?}");
        }
        // In any order, the same values.
        let reversed: Vec<String> = names.iter().rev().map(|name| format!("\"{name}\":\"{name}\"")).collect();
        let line = format!("{{{}}}", reversed.join(","));
        let full: RawEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(format!("{:?}", RawEvent::read_flat(&line).unwrap()), format!("{full:?}"));
    }

    #[test]
    fn blank_means_only_whitespace_unicode_included() {
        for text in ["", " ", "\t\r\n", "\u{a0}", "\u{2003} \u{3000}", "\u{85}"] {
            assert!(blank(text), "{text:?}");
        }
        for text in ["a", " a", "\u{a0}x", "~", "!", "\u{1f}", "\u{7f}", "é"] {
            assert!(!blank(text), "{text:?}");
        }
    }

    #[test]
    fn escaped_strings_and_unicode_survive() {
        let line = with("customer_id", "c\"ü\\1".into()).to_string();
        let event = parse_line(line.as_bytes(), &FAR_FUTURE).unwrap();
        assert_eq!(event.customer_id, "c\"ü\\1");
    }
}
