//! Typed, borrowed access to the rows of silver event batches, wherever
//! they came from (this window's bronze rows or events already in silver).

use streamreel_lake::arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use streamreel_lake::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use streamreel_tables::EventType;

use crate::segments::SessionEvent;

/// The columns silver reads back from its own events: what deduplication,
/// sessions and quality of service need.
pub const EVENT_COLUMNS: &[&str] = &[
    "event_id",
    "customer_id",
    "title_id",
    "session_key",
    "event_type",
    "event_timestamp",
    "position_seconds",
    "source_object",
    "line_number",
    "device_type",
    "country",
    "isp",
    "quality",
    "bandwidth_mbps",
    "buffering_events",
    "buffering_duration_seconds",
    "error_count",
    "event_key",
    "session_hash",
];

/// A row: (batch index, row index).
pub type RowRef = (u32, u32);

#[derive(Clone)]
pub struct EventColumns<'a> {
    pub event_id: &'a StringArray,
    pub customer_id: &'a StringArray,
    pub title_id: &'a StringArray,
    pub session_key: &'a StringArray,
    pub event_type: &'a StringArray,
    pub timestamp: &'a TimestampMicrosecondArray,
    pub position: &'a Float64Array,
    pub source_object: &'a StringArray,
    pub line_number: &'a Int64Array,
    pub device_type: &'a StringArray,
    pub country: &'a StringArray,
    pub isp: &'a StringArray,
    pub quality: &'a StringArray,
    pub bandwidth: &'a Float64Array,
    pub buffering_events: &'a Int64Array,
    pub buffering_seconds: &'a Float64Array,
    pub error_count: &'a Int64Array,
    pub event_key: &'a Int64Array,
    pub session_hash: &'a Int64Array,
}

/// The content that makes two deliveries of one event the same event.
pub type Content<'a> = (&'a str, &'a str, &'a str, i64, Option<f64>);

impl<'a> EventColumns<'a> {
    pub fn new(batch: &'a RecordBatch) -> EventColumns<'a> {
        let col = |name: &str| batch.column_by_name(name).unwrap_or_else(|| panic!("silver column {name}"));
        let text = |name: &str| col(name).as_string::<i32>();
        let float = |name: &str| col(name).as_primitive::<Float64Type>();
        let int = |name: &str| col(name).as_primitive::<Int64Type>();
        EventColumns {
            event_id: text("event_id"),
            customer_id: text("customer_id"),
            title_id: text("title_id"),
            session_key: text("session_key"),
            event_type: text("event_type"),
            timestamp: col("event_timestamp").as_primitive::<TimestampMicrosecondType>(),
            position: float("position_seconds"),
            source_object: text("source_object"),
            line_number: int("line_number"),
            device_type: text("device_type"),
            country: text("country"),
            isp: text("isp"),
            quality: text("quality"),
            bandwidth: float("bandwidth_mbps"),
            buffering_events: int("buffering_events"),
            buffering_seconds: float("buffering_duration_seconds"),
            error_count: int("error_count"),
            event_key: int("event_key"),
            session_hash: int("session_hash"),
        }
    }

    pub fn len(&self) -> usize {
        self.event_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.event_id.is_empty()
    }

    /// Where the row came from: the tie-break of duplicates (first wins).
    pub fn rank(&self, row: usize) -> (&'a str, i64) {
        (self.source_object.value(row), self.line_number.value(row))
    }

    pub fn content(&self, row: usize) -> Content<'a> {
        (
            self.title_id.value(row),
            self.session_key.value(row),
            self.event_type.value(row),
            self.timestamp.value(row),
            self.position.is_valid(row).then(|| self.position.value(row)),
        )
    }

    /// The session a row belongs to: (customer_id, session_key).
    pub fn session(&self, row: usize) -> (&'a str, &'a str) {
        (self.customer_id.value(row), self.session_key.value(row))
    }

    pub fn session_event(&self, row: usize) -> SessionEvent<'a> {
        SessionEvent {
            event_id: self.event_id.value(row),
            customer_id: self.customer_id.value(row),
            title_id: self.title_id.value(row),
            kind: EventType::parse(self.event_type.value(row)),
            timestamp_micros: self.timestamp.value(row),
            position_seconds: self.position.is_valid(row).then(|| self.position.value(row)),
        }
    }
}

pub fn text_at(array: &StringArray, row: usize) -> Option<&str> {
    array.is_valid(row).then(|| array.value(row))
}
