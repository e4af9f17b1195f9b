//! Typed, borrowed access to rows of silver event batches, wherever they came
//! from (this window's bronze rows or events already in silver).

use streamreel_lake::EventType;
use streamreel_lake::arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use streamreel_lake::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};

use crate::segments::SessionEvent;

/// A row: (batch index, row index).
pub type RowRef = (u32, u32);

/// The columns sessions and deduplication need, of one silver event batch.
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
}

impl<'a> EventColumns<'a> {
    pub fn new(batch: &'a RecordBatch) -> EventColumns<'a> {
        let text = |name: &str| batch.column_by_name(name).unwrap_or_else(|| panic!("silver column {name}")).as_string::<i32>();
        let float = |name: &str| batch.column_by_name(name).unwrap_or_else(|| panic!("silver column {name}")).as_primitive::<Float64Type>();
        let int = |name: &str| batch.column_by_name(name).unwrap_or_else(|| panic!("silver column {name}")).as_primitive::<Int64Type>();
        EventColumns {
            event_id: text("event_id"),
            customer_id: text("customer_id"),
            title_id: text("title_id"),
            session_key: text("session_key"),
            event_type: text("event_type"),
            timestamp: batch.column_by_name("event_timestamp").expect("timestamp").as_primitive::<TimestampMicrosecondType>(),
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
        }
    }

    /// Where the row came from: the tie-break of duplicates (first wins).
    pub fn rank(&self, row: usize) -> (&'a str, i64) {
        (self.source_object.value(row), self.line_number.value(row))
    }

    /// The content that makes two deliveries of one event the same event.
    pub fn content(&self, row: usize) -> (&'a str, &'a str, &'a str, &'a str, i64, Option<f64>) {
        (
            self.customer_id.value(row),
            self.title_id.value(row),
            self.session_key.value(row),
            self.event_type.value(row),
            self.timestamp.value(row),
            self.position.is_valid(row).then(|| self.position.value(row)),
        )
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
