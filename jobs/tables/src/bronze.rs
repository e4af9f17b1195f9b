//! The bronze tables: every landed line that parsed, typed (`bronze/events`),
//! and every line or object that could not be used (`bronze/rejects`).
//! Partitioned by landing hour and by the bucket of the landing object's
//! path, so that bronze shards own disjoint partitions.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use streamreel_lake::arrow::array::{
    ArrayBuilder, ArrayRef, Date32Builder, Float64Builder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use streamreel_lake::arrow::datatypes::{DataType, Schema};
use streamreel_lake::table::{PartitionKey, date_value, parse_date_value};
use streamreel_lake::time::MICROS_PER_HOUR;
use streamreel_lake::{TableSpec, time};

use crate::builders::{finish_numbers, finish_text};
use crate::fields::{float, int, int32, list, text, timestamp};

pub const LANDING_DATE: &str = "landing_date";
pub const LANDING_HOUR: &str = "landing_hour";
pub const OBJECT_BUCKET: &str = "object_bucket";

/// Optional text fields of an event, in schema order.
pub const OPTIONAL_TEXT_FIELDS: [&str; 12] = [
    "session_id",
    "device_type",
    "device_id",
    "device_os",
    "app_version",
    "quality",
    "ip_address",
    "country",
    "state",
    "city",
    "isp",
    "connection_type",
];

pub static EVENTS: LazyLock<TableSpec> = LazyLock::new(|| {
    let mut fields = vec![
        text("event_id", false),
        text("customer_id", false),
        text("title_id", false),
        text("event_type", false),
        timestamp("event_timestamp", false),
        float("position_seconds", true),
        float("watch_duration_seconds", true),
        float("completion_percentage", true),
        float("bandwidth_mbps", true),
        int("buffering_events", true),
        float("buffering_duration_seconds", true),
        int("error_count", true),
    ];
    fields.extend(OPTIONAL_TEXT_FIELDS.iter().map(|name| text(name, true)));
    fields.extend([
        // Optional fields whose value could not be held; the field is empty.
        list("invalid_fields", DataType::Utf8),
        text("source_object", false),
        int("line_number", false),
        text("run_id", false),
        text("raw_line", false),
        crate::fields::date(LANDING_DATE),
        int32(LANDING_HOUR),
        int32(OBJECT_BUCKET),
    ]);
    TableSpec {
        path: "bronze/events",
        schema: Arc::new(Schema::new(fields)),
        partition_columns: &[LANDING_DATE, LANDING_HOUR, OBJECT_BUCKET],
        stats_columns: &["event_timestamp", "customer_id", "title_id", "event_type", "line_number"],
        // Positions and watch totals are nearly unique per event, so a
        // dictionary only adds to them, and their chunk statistics span
        // everything (see silver's events table).
        plain_columns: &[
            "event_id",
            "raw_line",
            "ip_address",
            "device_id",
            "session_id",
            "event_timestamp",
            "line_number",
            "position_seconds",
            "watch_duration_seconds",
        ],
        sort_columns: &[],
        file_hours: None,
        sort_by_hour: false,
        row_group_rows: 64 * 1024,
        bucketed: true,
        private: true,
        key_columns: &[],
    }
});

/// One `bronze/events` row, borrowing from its landed line.
#[derive(Debug, Serialize)]
pub struct EventRow<'a> {
    pub event_id: &'a str,
    pub customer_id: &'a str,
    pub title_id: &'a str,
    pub event_type: &'a str,
    pub event_timestamp: i64,
    pub position_seconds: Option<f64>,
    pub watch_duration_seconds: Option<f64>,
    pub completion_percentage: Option<f64>,
    pub bandwidth_mbps: Option<f64>,
    pub buffering_events: Option<i64>,
    pub buffering_duration_seconds: Option<f64>,
    pub error_count: Option<i64>,
    pub session_id: Option<&'a str>,
    pub device_type: Option<&'a str>,
    pub device_id: Option<&'a str>,
    pub device_os: Option<&'a str>,
    pub app_version: Option<&'a str>,
    pub quality: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub country: Option<&'a str>,
    pub state: Option<&'a str>,
    pub city: Option<&'a str>,
    pub isp: Option<&'a str>,
    pub connection_type: Option<&'a str>,
    pub invalid_fields: &'a [&'static str],
    pub source_object: &'a str,
    pub line_number: i64,
    pub run_id: &'a str,
    pub raw_line: &'a str,
    pub landing_date: i32,
    pub landing_hour: i32,
    pub object_bucket: i32,
}

/// Builds `bronze/events` batches column by column, in schema order: the
/// same batches as `rows::encode` of the rows (a unit test holds it to that),
/// without serde's per-field dispatch, which cost bronze a fifth of its CPU
/// (one row per landed line). Reuse one across objects: a finished builder
/// keeps room for a batch like its last.
pub struct EventBatchBuilder {
    /// event_id, customer_id, title_id, event_type.
    required: [StringBuilder; 4],
    event_timestamp: TimestampMicrosecondBuilder,
    /// position, watch duration, completion, bandwidth, buffering seconds.
    floats: [Float64Builder; 5],
    /// buffering_events, error_count.
    counts: [Int64Builder; 2],
    /// In the order of `OPTIONAL_TEXT_FIELDS`.
    texts: [StringBuilder; 12],
    invalid_fields: ListBuilder<StringBuilder>,
    source_object: StringBuilder,
    line_number: Int64Builder,
    run_id: StringBuilder,
    raw_line: StringBuilder,
    landing_date: Date32Builder,
    landing_hour: Int32Builder,
    object_bucket: Int32Builder,
    /// The most rows a batch had: the room each builder keeps after one, so
    /// the short last batch of an object leaves room for the next object's.
    room: usize,
}

impl Default for EventBatchBuilder {
    fn default() -> Self {
        EventBatchBuilder {
            required: Default::default(),
            event_timestamp: TimestampMicrosecondBuilder::new().with_data_type(crate::fields::timestamp_type()),
            floats: Default::default(),
            counts: Default::default(),
            texts: Default::default(),
            invalid_fields: ListBuilder::new(StringBuilder::new()),
            source_object: StringBuilder::new(),
            line_number: Int64Builder::new(),
            run_id: StringBuilder::new(),
            raw_line: StringBuilder::new(),
            landing_date: Date32Builder::new(),
            landing_hour: Int32Builder::new(),
            object_bucket: Int32Builder::new(),
            room: 0,
        }
    }
}

impl EventBatchBuilder {
    pub fn push(&mut self, row: &EventRow<'_>) {
        for (builder, value) in self.required.iter_mut().zip([row.event_id, row.customer_id, row.title_id, row.event_type]) {
            builder.append_value(value);
        }
        self.event_timestamp.append_value(row.event_timestamp);
        let floats =
            [row.position_seconds, row.watch_duration_seconds, row.completion_percentage, row.bandwidth_mbps, row.buffering_duration_seconds];
        for (builder, value) in self.floats.iter_mut().zip(floats) {
            builder.append_option(value);
        }
        for (builder, value) in self.counts.iter_mut().zip([row.buffering_events, row.error_count]) {
            builder.append_option(value);
        }
        let texts = [
            row.session_id,
            row.device_type,
            row.device_id,
            row.device_os,
            row.app_version,
            row.quality,
            row.ip_address,
            row.country,
            row.state,
            row.city,
            row.isp,
            row.connection_type,
        ];
        for (builder, value) in self.texts.iter_mut().zip(texts) {
            builder.append_option(value);
        }
        for field in row.invalid_fields {
            self.invalid_fields.values().append_value(field);
        }
        self.invalid_fields.append(true);
        self.source_object.append_value(row.source_object);
        self.line_number.append_value(row.line_number);
        self.run_id.append_value(row.run_id);
        self.raw_line.append_value(row.raw_line);
        self.landing_date.append_value(row.landing_date);
        self.landing_hour.append_value(row.landing_hour);
        self.object_bucket.append_value(row.object_bucket);
    }

    pub fn len(&self) -> usize {
        self.line_number.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows pushed so far; the builder starts over empty.
    pub fn finish(&mut self) -> streamreel_lake::Result<RecordBatch> {
        self.room = self.room.max(self.len());
        let room = self.room;
        let [event_id, customer_id, title_id, event_type] = &mut self.required;
        let [position, watch, completion, bandwidth, buffering_seconds] = &mut self.floats;
        let [buffering_events, error_count] = &mut self.counts;
        let mut columns: Vec<ArrayRef> = vec![
            finish_text(event_id, room),
            finish_text(customer_id, room),
            finish_text(title_id, room),
            finish_text(event_type, room),
            finish_numbers(&mut self.event_timestamp, room),
            finish_numbers(position, room),
            finish_numbers(watch, room),
            finish_numbers(completion, room),
            finish_numbers(bandwidth, room),
            finish_numbers(buffering_events, room),
            finish_numbers(buffering_seconds, room),
            finish_numbers(error_count, room),
        ];
        columns.extend(self.texts.iter_mut().map(|builder| finish_text(builder, room)));
        columns.extend([
            Arc::new(self.invalid_fields.finish()) as ArrayRef,
            finish_text(&mut self.source_object, room),
            finish_numbers(&mut self.line_number, room),
            finish_text(&mut self.run_id, room),
            finish_text(&mut self.raw_line, room),
            finish_numbers(&mut self.landing_date, room),
            finish_numbers(&mut self.landing_hour, room),
            finish_numbers(&mut self.object_bucket, room),
        ]);
        RecordBatch::try_new(EVENTS.schema.clone(), columns).map_err(|e| streamreel_lake::LakeError::data("building bronze/events rows", e))
    }
}

pub static REJECTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "bronze/rejects",
    schema: Arc::new(Schema::new(vec![
        text("source_object", false),
        // Null for a whole object that could not be read.
        int("line_number", true),
        text("reason", false),
        text("detail", false),
        text("raw_line", true),
        text("run_id", false),
        crate::fields::date(LANDING_DATE),
        int32(LANDING_HOUR),
        int32(OBJECT_BUCKET),
    ])),
    partition_columns: &[LANDING_DATE, LANDING_HOUR, OBJECT_BUCKET],
    stats_columns: &["reason", "line_number"],
    plain_columns: &["raw_line"],
    sort_columns: &[],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: true,
    key_columns: &[],
});

#[derive(Debug, Serialize)]
pub struct RejectRow<'a> {
    pub source_object: &'a str,
    pub line_number: Option<i64>,
    pub reason: &'a str,
    pub detail: &'a str,
    pub raw_line: Option<&'a str>,
    pub run_id: &'a str,
    pub landing_date: i32,
    pub landing_hour: i32,
    pub object_bucket: i32,
}

/// Where a landing object's rows go: its landing hour and the bucket of its
/// path relative to the landing root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LandingPartition {
    pub hour: DateTime<Utc>,
    pub object_bucket: u32,
}

impl LandingPartition {
    pub fn of(hour: DateTime<Utc>, relative_path: &str, buckets: u32) -> LandingPartition {
        LandingPartition { hour, object_bucket: streamreel_lake::shard::bucket_of(relative_path, buckets) }
    }

    pub fn key(&self) -> PartitionKey {
        vec![Some(date_value(time::day_of(self.hour.timestamp_micros()))), Some(self.hour.hour().to_string()), Some(self.object_bucket.to_string())]
    }

    pub fn from_key(key: &PartitionKey) -> Option<LandingPartition> {
        let day = parse_date_value(key.first()?.as_deref()?)?;
        let hour: i64 = key.get(1)?.as_deref()?.parse().ok()?;
        let object_bucket = key.get(2)?.as_deref()?.parse().ok()?;
        let hour = DateTime::from_timestamp_micros(day as i64 * time::MICROS_PER_DAY + hour * MICROS_PER_HOUR)?;
        Some(LandingPartition { hour, object_bucket })
    }

    /// The (landing_date, landing_hour, object_bucket) column values.
    pub fn columns(&self) -> (i32, i32, i32) {
        (time::day_of(self.hour.timestamp_micros()), self.hour.hour() as i32, self.object_bucket as i32)
    }
}

/// The folder of one landing hour, relative to the landing root.
pub fn hour_folder(hour: DateTime<Utc>) -> String {
    hour.format("year=%Y/month=%m/day=%d/hour=%H").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_partitions_round_trip_through_their_keys() {
        let hour = DateTime::parse_from_rfc3339("2025-08-11T14:00:00Z").unwrap().with_timezone(&Utc);
        let partition = LandingPartition::of(hour, "year=2025/month=08/day=11/hour=14/a.json.gz", 64);
        assert_eq!(LandingPartition::from_key(&partition.key()), Some(partition));
        assert_eq!(partition.key()[0].as_deref(), Some("2025-08-11"));
        assert_eq!(hour_folder(hour), "year=2025/month=08/day=11/hour=14");
    }

    #[test]
    fn the_event_batch_builder_encodes_like_serde() {
        let texts = ["s", "mobile", "d", "ios", "1.2", "HD", "10.0.0.1", "US", "CA", "LA", "isp", "wifi"];
        let rows: Vec<EventRow> = (0..5)
            .map(|i| {
                let some_f = |k: usize| (!(i + k).is_multiple_of(3)).then_some((i * 10 + k) as f64 + 0.5);
                let text = |k: usize| (!(i + k).is_multiple_of(4)).then_some(texts[k]);
                EventRow {
                    event_id: ["e1", "e2", "e3", "", "e5"][i],
                    customer_id: "c",
                    title_id: ["t1", "t2"][i % 2],
                    event_type: "heartbeat",
                    event_timestamp: 1_754_900_000_000_000 + i as i64,
                    position_seconds: some_f(0),
                    watch_duration_seconds: some_f(1),
                    completion_percentage: some_f(2),
                    bandwidth_mbps: some_f(3),
                    buffering_events: ((i % 2) == 0).then_some(i as i64),
                    buffering_duration_seconds: some_f(4),
                    error_count: ((i % 3) == 1).then_some(7),
                    session_id: text(0),
                    device_type: text(1),
                    device_id: text(2),
                    device_os: text(3),
                    app_version: text(4),
                    quality: text(5),
                    ip_address: text(6),
                    country: text(7),
                    state: text(8),
                    city: text(9),
                    isp: text(10),
                    connection_type: text(11),
                    invalid_fields: [&[][..], &["bandwidth_mbps"], &["quality", "error_count"]][i % 3],
                    source_object: "year=2025/a.json.gz",
                    line_number: i as i64 + 1,
                    run_id: "r",
                    raw_line: ["{}", "{\"a\":1}"][i % 2],
                    landing_date: 20_000,
                    landing_hour: i as i32,
                    object_bucket: 7,
                }
            })
            .collect();
        let mut builder = EventBatchBuilder::default();
        // Twice: a finished builder starts over empty.
        for part in [&rows[..2], &rows[2..]] {
            for row in part {
                builder.push(row);
            }
            assert_eq!(builder.len(), part.len());
            let built = builder.finish().unwrap();
            assert!(builder.is_empty());
            assert_eq!(built, streamreel_lake::rows::encode(&EVENTS.schema, part).unwrap());
        }
    }

    #[test]
    fn row_types_encode_into_their_schemas() {
        let row = EventRow {
            event_id: "e",
            customer_id: "c",
            title_id: "t",
            event_type: "start",
            event_timestamp: 1,
            position_seconds: Some(0.0),
            watch_duration_seconds: None,
            completion_percentage: None,
            bandwidth_mbps: None,
            buffering_events: None,
            buffering_duration_seconds: None,
            error_count: None,
            session_id: None,
            device_type: None,
            device_id: None,
            device_os: None,
            app_version: None,
            quality: None,
            ip_address: None,
            country: None,
            state: None,
            city: None,
            isp: None,
            connection_type: None,
            invalid_fields: &["bandwidth_mbps"],
            source_object: "o",
            line_number: 1,
            run_id: "r",
            raw_line: "{}",
            landing_date: 20_000,
            landing_hour: 3,
            object_bucket: 7,
        };
        let batch = streamreel_lake::rows::encode(&EVENTS.schema, &[row]).unwrap();
        assert_eq!(batch.num_rows(), 1);
        let reject = RejectRow {
            source_object: "o",
            line_number: None,
            reason: "invalid_json",
            detail: "d",
            raw_line: None,
            run_id: "r",
            landing_date: 1,
            landing_hour: 0,
            object_bucket: 0,
        };
        assert_eq!(streamreel_lake::rows::encode(&REJECTS.schema, &[reject]).unwrap().num_rows(), 1);
    }
}
