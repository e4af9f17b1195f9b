//! The silver tables: clean deduplicated events, the copies that lost
//! deduplication, watched segments, per-session facts, and the change log
//! that tells gold which sessions a run rewrote. All but the change log are
//! partitioned by date and by the customer's bucket: every row of a viewer
//! lives in that viewer's bucket.

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use streamreel_lake::TableSpec;
use streamreel_lake::arrow::array::{
    Array, ArrayBuilder, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Date32Builder, Float64Array, Float64Builder, Int32Array, Int32Builder,
    Int64Array, Int64Builder, ListArray, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use streamreel_lake::arrow::datatypes::{DataType, Schema};
use streamreel_lake::table::{PartitionKey, date_value, parse_date_value};

use crate::builders::{finish_flags, finish_numbers, finish_text};
use crate::fields::{boolean, date, float, int, int32, list, text, timestamp};

pub const EVENT_DATE: &str = "event_date";
pub const CUSTOMER_BUCKET: &str = "customer_bucket";

/// The partition of a silver row: (event_date, customer_bucket).
pub fn partition(day: i32, bucket: u32) -> PartitionKey {
    vec![Some(date_value(day)), Some(bucket.to_string())]
}

/// The (day, bucket) of a silver partition key.
pub fn day_and_bucket(key: &PartitionKey) -> Option<(i32, u32)> {
    Some((parse_date_value(key.first()?.as_deref()?)?, key.get(1)?.as_deref()?.parse().ok()?))
}

pub static EVENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/events",
    schema: Arc::new(Schema::new(vec![
        text("event_id", false),
        text("customer_id", false),
        text("title_id", false),
        text("session_id", true),
        // session_id, or customer_id|device_id when the player sent none; a
        // session is (customer_id, session_key).
        text("session_key", false),
        // Canonical name; other types lower-cased as sent.
        text("event_type", false),
        text("event_type_raw", false),
        timestamp("event_timestamp", false),
        float("position_seconds", true),
        float("watch_duration_seconds", true),
        float("completion_percentage", true),
        float("bandwidth_mbps", true),
        int("buffering_events", true),
        float("buffering_duration_seconds", true),
        int("error_count", true),
        text("device_type", true),
        text("device_id", true),
        text("device_os", true),
        text("app_version", true),
        text("quality", true),
        // Keyed hash of the address, the key's fingerprint, and the address's
        // /24 (IPv4) or /48 (IPv6) network.
        text("ip_hash", true),
        text("ip_hash_key_id", true),
        text("ip_network", true),
        text("country", true),
        text("state", true),
        text("city", true),
        text("isp", true),
        text("connection_type", true),
        text("title", true),
        text("genre", true),
        text("creator", true),
        float("duration_seconds", true),
        // The metadata CSV's other columns, as a JSON object.
        text("metadata_extra", true),
        list("quality_flags", DataType::Utf8),
        list("invalid_fields", DataType::Utf8),
        text("source_object", false),
        int("line_number", false),
        // Hashes of (customer_id, event_id) and (customer_id, session_key):
        // compact keys for the lookups of later runs.
        int("event_key", false),
        int("session_hash", false),
        date(EVENT_DATE),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &["event_timestamp", "title_id", "event_type"],
    // Only values unique per event: texts repeated per session or viewer
    // (session key, device, address hash, the metadata's extra columns) keep
    // their dictionaries, as a row group holds a few hundred sessions (plain,
    // the table was a fifth larger: 231 against 188 MB for a 5M-event day).
    // Playhead positions and running watch totals are nearly unique per
    // event: dictionaries made them larger, not smaller (0.71 + 0.60 MB
    // against 0.57 + 0.49 MB for an hour), and as plain numbers they keep
    // no chunk statistics, which span a row group's whole range anyway
    // (docs/tables.md); completion percentages repeat (a tenth of a point)
    // and keep their dictionary.
    plain_columns: &["event_id", "event_key", "event_timestamp", "line_number", "position_seconds", "watch_duration_seconds"],
    sort_columns: &["event_timestamp"],
    file_hours: None,
    sort_by_hour: true,
    row_group_rows: 16 * 1024,
    bucketed: true,
    private: false,
    // Deduplication looks copies up by event_key over a week of files.
    key_columns: &["event_key"],
});

/// Copies that lost deduplication (and winners later displaced by an
/// earlier copy): what later runs chain new copies to.
pub static DUPLICATES: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/duplicates",
    schema: Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("event_id", false),
        int("event_key", false),
        timestamp("event_timestamp", false),
        text("source_object", false),
        int("line_number", false),
        date(EVENT_DATE),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &["event_timestamp"],
    plain_columns: &["event_id", "event_key", "event_timestamp", "line_number"],
    sort_columns: &["event_timestamp"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &["event_key"],
});

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DuplicateRow {
    pub customer_id: String,
    pub event_id: String,
    pub event_key: i64,
    pub event_timestamp: i64,
    pub source_object: String,
    pub line_number: i64,
    pub event_date: i32,
    pub customer_bucket: i32,
}

pub static SEGMENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/watch_segments",
    schema: Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("title_id", false),
        text("session_key", false),
        timestamp("session_start", false),
        int("segment_index", false),
        float("start_position", false),
        float("end_position", false),
        float("watched_seconds", false),
        timestamp("wall_start", false),
        timestamp("wall_end", false),
        text("end_event_type", false),
        boolean("ends_in_skip"),
        float("duration_seconds", true),
        text("device_type", true),
        text("country", true),
        text("isp", true),
        text("quality", true),
        // The day the session started.
        date(EVENT_DATE),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &["session_start", "wall_start", "title_id"],
    plain_columns: &["wall_start", "wall_end"],
    sort_columns: &["session_start", "customer_id", "session_key", "segment_index"],
    file_hours: Some("session_start"),
    sort_by_hour: false,
    row_group_rows: 32 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

/// One `silver/watch_segments` row, borrowing from the events it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow<'a> {
    pub customer_id: &'a str,
    pub title_id: &'a str,
    pub session_key: &'a str,
    pub session_start: i64,
    pub segment_index: i64,
    pub start_position: f64,
    pub end_position: f64,
    pub watched_seconds: f64,
    pub wall_start: i64,
    pub wall_end: i64,
    pub end_event_type: &'a str,
    pub ends_in_skip: bool,
    pub duration_seconds: Option<f64>,
    pub device_type: Option<&'a str>,
    pub country: Option<&'a str>,
    pub isp: Option<&'a str>,
    pub quality: Option<&'a str>,
    pub event_date: i32,
    pub customer_bucket: i32,
}

/// Builds `silver/watch_segments` batches column by column, in schema order:
/// the same batches as `rows::encode` of the rows (a unit test holds it to
/// that). Segments are most of a chunk's rows; an owned row per segment and
/// serde's per-field dispatch were a tenth of silver's planning.
pub struct SegmentBatchBuilder {
    /// customer_id, title_id, session_key.
    keys: [StringBuilder; 3],
    session_start: TimestampMicrosecondBuilder,
    segment_index: Int64Builder,
    /// start_position, end_position, watched_seconds.
    positions: [Float64Builder; 3],
    /// wall_start, wall_end.
    walls: [TimestampMicrosecondBuilder; 2],
    end_event_type: StringBuilder,
    ends_in_skip: BooleanBuilder,
    duration_seconds: Float64Builder,
    /// device_type, country, isp, quality.
    qos: [StringBuilder; 4],
    event_date: Date32Builder,
    customer_bucket: Int32Builder,
}

impl Default for SegmentBatchBuilder {
    fn default() -> Self {
        let timestamps = || TimestampMicrosecondBuilder::new().with_data_type(crate::fields::timestamp_type());
        SegmentBatchBuilder {
            keys: Default::default(),
            session_start: timestamps(),
            segment_index: Int64Builder::new(),
            positions: Default::default(),
            walls: [timestamps(), timestamps()],
            end_event_type: StringBuilder::new(),
            ends_in_skip: BooleanBuilder::new(),
            duration_seconds: Float64Builder::new(),
            qos: Default::default(),
            event_date: Date32Builder::new(),
            customer_bucket: Int32Builder::new(),
        }
    }
}

impl SegmentBatchBuilder {
    pub fn push(&mut self, row: &SegmentRow<'_>) {
        for (builder, value) in self.keys.iter_mut().zip([row.customer_id, row.title_id, row.session_key]) {
            builder.append_value(value);
        }
        self.session_start.append_value(row.session_start);
        self.segment_index.append_value(row.segment_index);
        for (builder, value) in self.positions.iter_mut().zip([row.start_position, row.end_position, row.watched_seconds]) {
            builder.append_value(value);
        }
        for (builder, value) in self.walls.iter_mut().zip([row.wall_start, row.wall_end]) {
            builder.append_value(value);
        }
        self.end_event_type.append_value(row.end_event_type);
        self.ends_in_skip.append_value(row.ends_in_skip);
        self.duration_seconds.append_option(row.duration_seconds);
        for (builder, value) in self.qos.iter_mut().zip([row.device_type, row.country, row.isp, row.quality]) {
            builder.append_option(value);
        }
        self.event_date.append_value(row.event_date);
        self.customer_bucket.append_value(row.customer_bucket);
    }

    pub fn len(&self) -> usize {
        self.segment_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows pushed so far; the builder starts over empty.
    pub fn finish(&mut self) -> streamreel_lake::Result<RecordBatch> {
        let rows = self.len();
        let [customer_id, title_id, session_key] = &mut self.keys;
        let [start_position, end_position, watched_seconds] = &mut self.positions;
        let [wall_start, wall_end] = &mut self.walls;
        let [device_type, country, isp, quality] = &mut self.qos;
        let columns: Vec<ArrayRef> = vec![
            finish_text(customer_id, rows),
            finish_text(title_id, rows),
            finish_text(session_key, rows),
            finish_numbers(&mut self.session_start, rows),
            finish_numbers(&mut self.segment_index, rows),
            finish_numbers(start_position, rows),
            finish_numbers(end_position, rows),
            finish_numbers(watched_seconds, rows),
            finish_numbers(wall_start, rows),
            finish_numbers(wall_end, rows),
            finish_text(&mut self.end_event_type, rows),
            finish_flags(&mut self.ends_in_skip, rows),
            finish_numbers(&mut self.duration_seconds, rows),
            finish_text(device_type, rows),
            finish_text(country, rows),
            finish_text(isp, rows),
            finish_text(quality, rows),
            finish_numbers(&mut self.event_date, rows),
            finish_numbers(&mut self.customer_bucket, rows),
        ];
        RecordBatch::try_new(SEGMENTS.schema.clone(), columns).map_err(|e| streamreel_lake::LakeError::data("building silver/watch_segments rows", e))
    }
}

/// One row per (session, title): what gold counts per viewer and video, and
/// the session's quality-of-service totals.
pub static SESSIONS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/watch_sessions",
    schema: Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("title_id", false),
        text("session_key", false),
        timestamp("session_start", false),
        timestamp("session_end", false),
        timestamp("first_playback_at", false),
        timestamp("last_playback_at", false),
        int("playback_events", false),
        int("pause_count", false),
        int("seek_count", false),
        int("forward_skips", false),
        int("backward_skips", false),
        boolean("complete_event"),
        boolean("completed"),
        float("watched_seconds", false),
        float("max_position_seconds", false),
        float("duration_seconds", true),
        list("quality_flags", DataType::Utf8),
        text("device_type", true),
        text("country", true),
        text("isp", true),
        text("quality", true),
        // The whole session's (all titles') last running totals.
        int("session_buffering_events", true),
        float("session_buffering_seconds", true),
        int("session_error_count", true),
        float("session_avg_bandwidth_mbps", true),
        float("session_watched_seconds", false),
        // The union of this video's watched segments, flattened as
        // [start, end, start, end, …] positions in seconds.
        list("watched_intervals", DataType::Float64),
        // When the video was playing, flattened [start, end, …] wall-clock
        // microseconds since the epoch (UTC).
        list("playing_intervals", DataType::Int64),
        // The day the session started.
        date(EVENT_DATE),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &["session_start", "title_id"],
    plain_columns: &["session_key"],
    sort_columns: &["session_start", "customer_id", "session_key", "title_id"],
    // One file per partition, not per hour of session_start: a partition
    // holds about 1,700 sessions a day at 5M events, so hourly files were
    // ~70 rows each, and opening, encoding and committing them cost more
    // than rewriting a whole partition's sessions does.
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 32 * 1024,
    bucketed: true,
    private: false,
    // Gold reads a returning viewer-title's sessions over its whole span.
    key_columns: &["customer_id", "title_id"],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub customer_id: String,
    pub title_id: String,
    pub session_key: String,
    pub session_start: i64,
    pub session_end: i64,
    pub first_playback_at: i64,
    pub last_playback_at: i64,
    pub playback_events: i64,
    pub pause_count: i64,
    pub seek_count: i64,
    pub forward_skips: i64,
    pub backward_skips: i64,
    pub complete_event: bool,
    pub completed: bool,
    pub watched_seconds: f64,
    pub max_position_seconds: f64,
    pub duration_seconds: Option<f64>,
    pub quality_flags: Vec<String>,
    pub device_type: Option<String>,
    pub country: Option<String>,
    pub isp: Option<String>,
    pub quality: Option<String>,
    pub session_buffering_events: Option<i64>,
    pub session_buffering_seconds: Option<f64>,
    pub session_error_count: Option<i64>,
    pub session_avg_bandwidth_mbps: Option<f64>,
    pub session_watched_seconds: f64,
    pub watched_intervals: Vec<f64>,
    pub playing_intervals: Vec<i64>,
    pub event_date: i32,
    pub customer_bucket: i32,
}

impl SessionRow {
    /// Every row of a `silver/watch_sessions` batch: what `rows::decode`
    /// gives (a unit test holds the two equal), without serde's lookup of
    /// each field by name and second check of each text. Gold decodes every
    /// session of the viewer-videos it recomputes: with many titles per
    /// viewer that was an eighth of its time.
    pub fn from_batch(batch: &RecordBatch) -> streamreel_lake::Result<Vec<SessionRow>> {
        let c = SessionColumns(batch);
        let text = |name| c.get::<StringArray>(name, false);
        let optional_text = |name| c.get::<StringArray>(name, true);
        let time = |name| c.get::<TimestampMicrosecondArray>(name, false);
        let count = |name| c.get::<Int64Array>(name, false);
        let flag = |name| c.get::<BooleanArray>(name, false);
        let (customer_id, title_id, session_key) = (text("customer_id")?, text("title_id")?, text("session_key")?);
        let (session_start, session_end) = (time("session_start")?, time("session_end")?);
        let (first_playback_at, last_playback_at) = (time("first_playback_at")?, time("last_playback_at")?);
        let (playback_events, pause_count, seek_count) = (count("playback_events")?, count("pause_count")?, count("seek_count")?);
        let (forward_skips, backward_skips) = (count("forward_skips")?, count("backward_skips")?);
        let (complete_event, completed) = (flag("complete_event")?, flag("completed")?);
        let watched_seconds = c.get::<Float64Array>("watched_seconds", false)?;
        let max_position_seconds = c.get::<Float64Array>("max_position_seconds", false)?;
        let duration_seconds = c.get::<Float64Array>("duration_seconds", true)?;
        let (quality_flags, flag_texts) = c.list::<StringArray>("quality_flags")?;
        let (device_type, country, isp, quality) =
            (optional_text("device_type")?, optional_text("country")?, optional_text("isp")?, optional_text("quality")?);
        let session_buffering_events = c.get::<Int64Array>("session_buffering_events", true)?;
        let session_buffering_seconds = c.get::<Float64Array>("session_buffering_seconds", true)?;
        let session_error_count = c.get::<Int64Array>("session_error_count", true)?;
        let session_avg_bandwidth_mbps = c.get::<Float64Array>("session_avg_bandwidth_mbps", true)?;
        let session_watched_seconds = c.get::<Float64Array>("session_watched_seconds", false)?;
        let (watched_intervals, watched_positions) = c.list::<Float64Array>("watched_intervals")?;
        let (playing_intervals, playing_times) = c.list::<Int64Array>("playing_intervals")?;
        let event_date = c.get::<Date32Array>(EVENT_DATE, false)?;
        let customer_bucket = c.get::<Int32Array>(CUSTOMER_BUCKET, false)?;

        let owned = |texts: &StringArray, row: usize| texts.value(row).to_string();
        let maybe = |texts: &StringArray, row: usize| texts.is_valid(row).then(|| texts.value(row).to_string());
        let range = |list: &ListArray, row: usize| list.value_offsets()[row] as usize..list.value_offsets()[row + 1] as usize;
        Ok((0..batch.num_rows())
            .map(|row| SessionRow {
                customer_id: owned(customer_id, row),
                title_id: owned(title_id, row),
                session_key: owned(session_key, row),
                session_start: session_start.value(row),
                session_end: session_end.value(row),
                first_playback_at: first_playback_at.value(row),
                last_playback_at: last_playback_at.value(row),
                playback_events: playback_events.value(row),
                pause_count: pause_count.value(row),
                seek_count: seek_count.value(row),
                forward_skips: forward_skips.value(row),
                backward_skips: backward_skips.value(row),
                complete_event: complete_event.value(row),
                completed: completed.value(row),
                watched_seconds: watched_seconds.value(row),
                max_position_seconds: max_position_seconds.value(row),
                duration_seconds: duration_seconds.is_valid(row).then(|| duration_seconds.value(row)),
                quality_flags: range(quality_flags, row).map(|i| owned(flag_texts, i)).collect(),
                device_type: maybe(device_type, row),
                country: maybe(country, row),
                isp: maybe(isp, row),
                quality: maybe(quality, row),
                session_buffering_events: session_buffering_events.is_valid(row).then(|| session_buffering_events.value(row)),
                session_buffering_seconds: session_buffering_seconds.is_valid(row).then(|| session_buffering_seconds.value(row)),
                session_error_count: session_error_count.is_valid(row).then(|| session_error_count.value(row)),
                session_avg_bandwidth_mbps: session_avg_bandwidth_mbps.is_valid(row).then(|| session_avg_bandwidth_mbps.value(row)),
                session_watched_seconds: session_watched_seconds.value(row),
                watched_intervals: watched_positions.values()[range(watched_intervals, row)].to_vec(),
                playing_intervals: playing_times.values()[range(playing_intervals, row)].to_vec(),
                event_date: event_date.value(row),
                customer_bucket: customer_bucket.value(row),
            })
            .collect())
    }
}

/// A `silver/watch_sessions` batch's columns by name and type; a missing
/// column, another type or a null where the schema has none is an error.
struct SessionColumns<'b>(&'b RecordBatch);

impl<'b> SessionColumns<'b> {
    fn get<T: Array + 'static>(&self, name: &str, nullable: bool) -> streamreel_lake::Result<&'b T> {
        let column = self.0.column_by_name(name).ok_or_else(|| session_error(name, "is missing"))?;
        Self::typed(column, name, nullable)
    }

    /// A list column and its items.
    fn list<T: Array + 'static>(&self, name: &str) -> streamreel_lake::Result<(&'b ListArray, &'b T)> {
        let list = self.get::<ListArray>(name, false)?;
        Ok((list, Self::typed(list.values(), name, false)?))
    }

    fn typed<T: Array + 'static>(column: &'b ArrayRef, name: &str, nullable: bool) -> streamreel_lake::Result<&'b T> {
        if !nullable && column.null_count() > 0 {
            return Err(session_error(name, "has nulls"));
        }
        column.as_any().downcast_ref::<T>().ok_or_else(|| session_error(name, format!("is {}", column.data_type())))
    }
}

fn session_error(column: &str, problem: impl std::fmt::Display) -> streamreel_lake::LakeError {
    streamreel_lake::LakeError::data("decoding silver/watch_sessions rows", format!("column {column} {problem}"))
}

/// The sessions a silver run rewrote, old and new versions, appended by
/// every run under its window: gold recomputes exactly the keys these rows
/// name. Internal to the pipeline; rows may repeat across reruns.
pub static CHANGES: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/changes",
    schema: Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("title_id", false),
        text("session_key", false),
        timestamp("session_start", false),
        timestamp("session_end", false),
        int32(CUSTOMER_BUCKET),
        text("window_start", false),
        text("window_end", false),
    ])),
    partition_columns: &["window_start", "window_end"],
    stats_columns: &["customer_bucket", "session_start"],
    plain_columns: &["session_key"],
    sort_columns: &["customer_bucket", "customer_id", "title_id", "session_start"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: false,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChangeRow {
    pub customer_id: String,
    pub title_id: String,
    pub session_key: String,
    pub session_start: i64,
    pub session_end: i64,
    pub customer_bucket: i32,
    pub window_start: String,
    pub window_end: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_types_round_trip_through_their_schemas() {
        let session = SessionRow {
            customer_id: "c".into(),
            title_id: "t".into(),
            session_key: "s".into(),
            session_start: 10,
            session_end: 20,
            first_playback_at: 10,
            last_playback_at: 20,
            playback_events: 2,
            pause_count: 1,
            seek_count: 0,
            forward_skips: 0,
            backward_skips: 0,
            complete_event: false,
            completed: false,
            watched_seconds: 5.0,
            max_position_seconds: 5.0,
            duration_seconds: None,
            quality_flags: vec!["missing_metadata".into()],
            device_type: Some("tv".into()),
            country: None,
            isp: None,
            quality: None,
            session_buffering_events: None,
            session_buffering_seconds: Some(1.5),
            session_error_count: None,
            session_avg_bandwidth_mbps: None,
            session_watched_seconds: 5.0,
            watched_intervals: vec![0.0, 5.0],
            playing_intervals: vec![10, 20],
            event_date: 20_311,
            customer_bucket: 3,
        };
        let batch = streamreel_lake::rows::encode(&SESSIONS.schema, std::slice::from_ref(&session)).unwrap();
        assert_eq!(streamreel_lake::rows::decode::<SessionRow>(&batch).unwrap(), vec![session.clone()]);

        // The hand decoder gives what serde gives, for nulls, empty lists and
        // a batch sliced out of a larger one.
        let other = SessionRow {
            customer_id: "c2".into(),
            duration_seconds: Some(300.0),
            quality_flags: vec![],
            device_type: None,
            country: Some("US".into()),
            session_buffering_events: Some(3),
            session_buffering_seconds: None,
            session_error_count: Some(1),
            session_avg_bandwidth_mbps: Some(4.5),
            watched_intervals: vec![],
            playing_intervals: vec![1, 2, 3, 4],
            ..session.clone()
        };
        let rows = vec![other.clone(), session.clone(), other, session];
        let batch = streamreel_lake::rows::encode(&SESSIONS.schema, &rows).unwrap();
        assert_eq!(SessionRow::from_batch(&batch).unwrap(), rows);
        assert_eq!(SessionRow::from_batch(&batch.slice(1, 2)).unwrap(), rows[1..3]);
        assert!(SessionRow::from_batch(&batch.project(&[0, 1]).unwrap()).is_err(), "a missing column is an error");
        assert_eq!(day_and_bucket(&partition(20_311, 3)), Some((20_311, 3)));
    }

    #[test]
    fn the_segment_batch_builder_encodes_like_serde() {
        let qos = ["tv", "US", "isp", "HD"];
        let rows: Vec<SegmentRow> = (0..5)
            .map(|i| {
                let text = |k: usize| (!(i + k).is_multiple_of(3)).then_some(qos[k]);
                SegmentRow {
                    customer_id: ["c1", "c2"][i % 2],
                    title_id: "t",
                    session_key: ["s1", "s22", "s333"][i % 3],
                    session_start: 1_754_900_000_000_000 + i as i64,
                    segment_index: i as i64,
                    start_position: i as f64 * 1.5,
                    end_position: i as f64 * 2.5,
                    watched_seconds: i as f64,
                    wall_start: 1_754_900_000_000_000 + 10 * i as i64,
                    wall_end: 1_754_900_000_000_000 + 20 * i as i64,
                    end_event_type: ["pause", "stop"][i % 2],
                    ends_in_skip: i % 2 == 0,
                    duration_seconds: (i % 4 != 1).then_some(300.0 + i as f64),
                    device_type: text(0),
                    country: text(1),
                    isp: text(2),
                    quality: text(3),
                    event_date: 20_311 + i as i32,
                    customer_bucket: 7 - i as i32,
                }
            })
            .collect();
        let mut builder = SegmentBatchBuilder::default();
        // Twice: a finished builder starts over empty.
        for part in [&rows[..3], &rows[3..]] {
            for row in part {
                builder.push(row);
            }
            assert_eq!(builder.len(), part.len());
            let built = builder.finish().unwrap();
            assert!(builder.is_empty());
            assert_eq!(built, streamreel_lake::rows::encode(&SEGMENTS.schema, part).unwrap());
        }
    }
}
