//! The silver tables: clean events, watched segments, per-session facts, and
//! the change log that tells gold which keys a run touched.

use std::sync::{Arc, LazyLock};

use streamreel_lake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use streamreel_lake::delta::TableSpec;

pub const EVENT_DATE: &str = "event_date";

pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

pub fn float_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
}

pub fn int_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn float(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

pub static EVENTS_SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        text("event_id", false),
        text("customer_id", false),
        text("title_id", false),
        text("session_id", true),
        // session_id, or customer_id|device_id when the player sent none.
        text("session_key", false),
        // Canonical name (events.md); other types lower-cased as sent.
        text("event_type", false),
        text("event_type_raw", false),
        Field::new("event_timestamp", timestamp(), false),
        float("position_seconds"),
        float("watch_duration_seconds"),
        float("completion_percentage"),
        float("bandwidth_mbps"),
        Field::new("buffering_events", DataType::Int64, true),
        float("buffering_duration_seconds"),
        Field::new("error_count", DataType::Int64, true),
        text("device_type", true),
        text("device_id", true),
        text("device_os", true),
        text("app_version", true),
        text("quality", true),
        // Keyed hash of the address and its /24 (IPv4) or /48 (IPv6) network.
        text("ip_hash", true),
        text("ip_network", true),
        text("country", true),
        text("state", true),
        text("city", true),
        text("isp", true),
        text("connection_type", true),
        text("title", true),
        text("genre", true),
        text("creator", true),
        float("duration_seconds"),
        // The metadata CSV's other columns, as a JSON object.
        text("metadata_extra", true),
        Field::new("quality_flags", string_list(), false),
        text("source_object", false),
        Field::new("line_number", DataType::Int64, false),
        Field::new(EVENT_DATE, DataType::Date32, false),
    ]))
});

pub static EVENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/events",
    schema: EVENTS_SCHEMA.clone(),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["event_timestamp", "title_id", "event_type"],
    plain_columns: &["event_id", "session_key", "session_id", "ip_hash", "device_id", "metadata_extra"],
});

pub static SEGMENTS_SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("title_id", false),
        text("session_key", false),
        Field::new("session_start", timestamp(), false),
        int("segment_index"),
        Field::new("start_position", DataType::Float64, false),
        Field::new("end_position", DataType::Float64, false),
        Field::new("watched_seconds", DataType::Float64, false),
        Field::new("wall_start", timestamp(), false),
        Field::new("wall_end", timestamp(), false),
        text("end_event_type", false),
        Field::new("ends_in_skip", DataType::Boolean, false),
        float("duration_seconds"),
        text("device_type", true),
        text("country", true),
        text("isp", true),
        text("quality", true),
        Field::new(EVENT_DATE, DataType::Date32, false),
    ]))
});

pub static SEGMENTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/watch_segments",
    schema: SEGMENTS_SCHEMA.clone(),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["session_start", "wall_start", "title_id"],
    plain_columns: &["session_key"],
});

/// One row per (session, title): what gold counts per viewer and video, and
/// the session's quality-of-service totals.
pub static SESSIONS_SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("title_id", false),
        text("session_key", false),
        Field::new("session_start", timestamp(), false),
        Field::new("session_end", timestamp(), false),
        Field::new("first_playback_at", timestamp(), false),
        Field::new("last_playback_at", timestamp(), false),
        int("playback_events"),
        int("pause_count"),
        int("seek_count"),
        int("forward_skips"),
        int("backward_skips"),
        Field::new("complete_event", DataType::Boolean, false),
        Field::new("completed", DataType::Boolean, false),
        Field::new("watched_seconds", DataType::Float64, false),
        Field::new("max_position_seconds", DataType::Float64, false),
        float("duration_seconds"),
        Field::new("quality_flags", string_list(), false),
        text("device_type", true),
        text("country", true),
        text("isp", true),
        text("quality", true),
        // The whole session's (all titles') last running totals.
        Field::new("session_buffering_events", DataType::Int64, true),
        float("session_buffering_seconds"),
        Field::new("session_error_count", DataType::Int64, true),
        float("session_avg_bandwidth_mbps"),
        Field::new("session_watched_seconds", DataType::Float64, false),
        // The union of this video's watched segments, flattened as
        // [start, end, start, end, …] positions in seconds.
        Field::new("watched_intervals", float_list(), false),
        // When the video was playing, flattened [start, end, …] wall-clock
        // microseconds since the epoch (UTC).
        Field::new("playing_intervals", int_list(), false),
        Field::new(EVENT_DATE, DataType::Date32, false),
    ]))
});

pub static SESSIONS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/watch_sessions",
    schema: SESSIONS_SCHEMA.clone(),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["session_start", "title_id"],
    plain_columns: &["session_key"],
});

/// The sessions a silver run rewrote, old and new versions: gold recomputes
/// exactly the keys these rows name. Internal to the pipeline. The columns
/// are those of `watch_sessions` that name a session and its gold keys, plus
/// the run's window.
pub const CHANGE_KEY_COLUMNS: [&str; 10] =
    ["customer_id", "title_id", "session_key", "session_start", "session_end", "device_type", "country", "isp", "quality", EVENT_DATE];

pub static CHANGES_SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| {
    let mut fields: Vec<Field> = CHANGE_KEY_COLUMNS
        .iter()
        .map(|name| SESSIONS_SCHEMA.field_with_name(name).expect("a watch_sessions column").clone())
        .collect();
    fields.extend([text("window_start", false), text("window_end", false)]);
    Arc::new(Schema::new(fields))
});

pub static CHANGES: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "silver/changes",
    schema: CHANGES_SCHEMA.clone(),
    partition_columns: &["window_start", "window_end"],
    stats_columns: &[],
    plain_columns: &["session_key"],
});
