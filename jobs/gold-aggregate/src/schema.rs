//! The gold tables of tables.md, plus `viewer_daily` (distinct viewers per
//! day, for the daily KPIs); column names and meanings are the
//! contract of metrics.md.

use std::sync::{Arc, LazyLock};

use silver_enrich::schema::{float_list, string_list, timestamp};
use streamreel_lake::arrow::datatypes::{DataType, Field, Schema};
use streamreel_lake::delta::TableSpec;

pub const LOADED_AT: &str = "_loaded_at";
pub const EVENT_DATE: &str = "event_date";

fn f(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

pub static ENGAGEMENT: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/user_video_engagement",
    schema: Arc::new(Schema::new(vec![
        f("customer_id", DataType::Utf8, false),
        f("title_id", DataType::Utf8, false),
        f("title", DataType::Utf8, true),
        f("genre", DataType::Utf8, true),
        f("creator", DataType::Utf8, true),
        // Of the viewer's first session of the video.
        f("country", DataType::Utf8, false),
        f("device_type", DataType::Utf8, false),
        f("duration_seconds", DataType::Float64, true),
        f("total_watch_seconds", DataType::Float64, false),
        f("unique_watch_seconds", DataType::Float64, false),
        f("max_position_seconds", DataType::Float64, false),
        f("watch_percentage", DataType::Float64, true),
        f("unique_watch_percentage", DataType::Float64, true),
        f("completion_percentage", DataType::Float64, true),
        f("session_count", DataType::Int64, false),
        f("completion_count", DataType::Int64, false),
        f("pause_count", DataType::Int64, false),
        f("avg_pauses_per_session", DataType::Float64, false),
        f("forward_skips", DataType::Int64, false),
        f("backward_skips", DataType::Int64, false),
        f("seek_count", DataType::Int64, false),
        f("first_watched_at", timestamp(), false),
        f("last_watched_at", timestamp(), false),
        f("engagement_score", DataType::Float64, true),
        f("engagement_tier", DataType::Utf8, false),
        f("quality_flags", string_list(), false),
        // The union of the viewer's watched segments, flattened as
        // [start, end, start, end, …] seconds: what retention is built from.
        f("unique_watch_intervals", float_list(), false),
        f(LOADED_AT, timestamp(), false),
    ])),
    partition_columns: &[],
    stats_columns: &["title_id", "customer_id"],
    plain_columns: &["customer_id"],
});

pub static VIDEO_DAILY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/video_daily",
    schema: Arc::new(Schema::new(vec![
        f(EVENT_DATE, DataType::Date32, false),
        f("title_id", DataType::Utf8, false),
        f("title", DataType::Utf8, true),
        f("genre", DataType::Utf8, true),
        f("creator", DataType::Utf8, true),
        f("country", DataType::Utf8, false),
        f("device_type", DataType::Utf8, false),
        f("viewers", DataType::Int64, false),
        f("sessions", DataType::Int64, false),
        f("total_watch_hours", DataType::Float64, false),
        f("unique_watch_hours", DataType::Float64, false),
        f("avg_watch_percentage", DataType::Float64, true),
        f("avg_completion_percentage", DataType::Float64, true),
        f("completion_rate", DataType::Float64, false),
        f("avg_engagement_score", DataType::Float64, true),
        f(LOADED_AT, timestamp(), false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["title_id"],
    plain_columns: &[],
});

pub static VIEWER_DAILY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/viewer_daily",
    schema: Arc::new(Schema::new(vec![
        f(EVENT_DATE, DataType::Date32, false),
        f("customer_id", DataType::Utf8, false),
        f("sessions", DataType::Int64, false),
        f("titles_watched", DataType::Int64, false),
        f("watch_seconds", DataType::Float64, false),
        f("completed_sessions", DataType::Int64, false),
        f(LOADED_AT, timestamp(), false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["customer_id"],
    plain_columns: &["customer_id"],
});

pub static RETENTION: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/video_retention",
    schema: Arc::new(Schema::new(vec![
        f("title_id", DataType::Utf8, false),
        f("title", DataType::Utf8, true),
        f("bucket", DataType::Int32, false),
        f("bucket_start_seconds", DataType::Float64, false),
        f("bucket_end_seconds", DataType::Float64, false),
        f("viewers", DataType::Int64, false),
        f("retention_share", DataType::Float64, true),
        f("dropoff_viewers", DataType::Int64, false),
        f("total_viewers", DataType::Int64, false),
        f(LOADED_AT, timestamp(), false),
    ])),
    partition_columns: &[],
    stats_columns: &["title_id"],
    plain_columns: &[],
});

pub static QOS_HOURLY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/qos_hourly",
    schema: Arc::new(Schema::new(vec![
        f("event_hour", timestamp(), false),
        f("isp", DataType::Utf8, false),
        f("device_type", DataType::Utf8, false),
        f("country", DataType::Utf8, false),
        f("quality", DataType::Utf8, false),
        f("sessions", DataType::Int64, false),
        f("buffering_events", DataType::Int64, false),
        f("buffering_seconds", DataType::Float64, false),
        f("watch_seconds", DataType::Float64, false),
        f("rebuffer_ratio", DataType::Float64, true),
        f("sessions_with_errors", DataType::Int64, false),
        f("avg_bandwidth_mbps", DataType::Float64, true),
        f(EVENT_DATE, DataType::Date32, false),
        f(LOADED_AT, timestamp(), false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["event_hour"],
    plain_columns: &[],
});

pub static CONCURRENCY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/concurrency_5min",
    schema: Arc::new(Schema::new(vec![
        f("interval_start", timestamp(), false),
        f("concurrent_sessions", DataType::Int64, false),
        f("daily_peak_sessions", DataType::Int64, false),
        f("is_daily_peak", DataType::Boolean, false),
        f(EVENT_DATE, DataType::Date32, false),
        f(LOADED_AT, timestamp(), false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["interval_start"],
    plain_columns: &[],
});
