//! The gold tables that dbt and BI read, and the per-bucket partials the
//! title-level ones add up from. Per-viewer tables are partitioned by the
//! customer's bucket; title-level tables are the sums of their partials over
//! buckets (disjoint viewer sets), made by `gold-aggregate --finalize`.

use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};
use streamreel_lake::TableSpec;
use streamreel_lake::arrow::array::{
    ArrayRef, Float64Array, Float64Builder, Int32Array, Int64Array, ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use streamreel_lake::arrow::datatypes::{DataType, Schema};

use crate::fields::{boolean, date, float, int, int32, list, text, timestamp, timestamp_type};
use crate::silver::{CUSTOMER_BUCKET, EVENT_DATE};

pub const LOADED_AT: &str = "_loaded_at";

pub static ENGAGEMENT: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/user_video_engagement",
    schema: Arc::new(Schema::new(vec![
        text("customer_id", false),
        text("title_id", false),
        text("title", true),
        text("genre", true),
        text("creator", true),
        // Of the viewer's first session of the video.
        text("country", false),
        text("device_type", false),
        float("duration_seconds", true),
        float("total_watch_seconds", false),
        float("unique_watch_seconds", false),
        float("max_position_seconds", false),
        float("watch_percentage", true),
        float("unique_watch_percentage", true),
        float("completion_percentage", true),
        int("session_count", false),
        int("completion_count", false),
        int("pause_count", false),
        float("avg_pauses_per_session", false),
        int("forward_skips", false),
        int("backward_skips", false),
        int("seek_count", false),
        timestamp("first_watched_at", false),
        timestamp("last_watched_at", false),
        float("engagement_score", true),
        text("engagement_tier", false),
        list("quality_flags", DataType::Utf8),
        // The union of the viewer's watched segments, flattened as
        // [start, end, start, end, …] seconds: what retention is built from.
        list("unique_watch_intervals", DataType::Float64),
        timestamp(LOADED_AT, false),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[CUSTOMER_BUCKET],
    stats_columns: &["customer_id", "title_id"],
    plain_columns: &[],
    sort_columns: &["customer_id", "title_id"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementRow {
    pub customer_id: String,
    pub title_id: String,
    pub title: Option<String>,
    pub genre: Option<String>,
    pub creator: Option<String>,
    pub country: String,
    pub device_type: String,
    pub duration_seconds: Option<f64>,
    pub total_watch_seconds: f64,
    pub unique_watch_seconds: f64,
    pub max_position_seconds: f64,
    pub watch_percentage: Option<f64>,
    pub unique_watch_percentage: Option<f64>,
    pub completion_percentage: Option<f64>,
    pub session_count: i64,
    pub completion_count: i64,
    pub pause_count: i64,
    pub avg_pauses_per_session: f64,
    pub forward_skips: i64,
    pub backward_skips: i64,
    pub seek_count: i64,
    pub first_watched_at: i64,
    pub last_watched_at: i64,
    pub engagement_score: Option<f64>,
    pub engagement_tier: String,
    pub quality_flags: Vec<String>,
    pub unique_watch_intervals: Vec<f64>,
    pub _loaded_at: i64,
    pub customer_bucket: i32,
}

impl EngagementRow {
    /// `rows` as one batch of the table's schema, column by column: the
    /// batch `rows::encode` makes (a unit test holds it to that), without
    /// serde's per-field dispatch, which was a tenth of gold's time on a day
    /// of viewers who each watch many titles.
    pub fn batch(rows: &[EngagementRow]) -> streamreel_lake::Result<RecordBatch> {
        let texts = |f: fn(&EngagementRow) -> &str| Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef;
        let maybe_texts = |f: fn(&EngagementRow) -> Option<&str>| Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef;
        let floats = |f: fn(&EngagementRow) -> f64| Arc::new(Float64Array::from_iter_values(rows.iter().map(f))) as ArrayRef;
        let maybe_floats = |f: fn(&EngagementRow) -> Option<f64>| Arc::new(rows.iter().map(f).collect::<Float64Array>()) as ArrayRef;
        let ints = |f: fn(&EngagementRow) -> i64| Arc::new(Int64Array::from_iter_values(rows.iter().map(f))) as ArrayRef;
        let times = |f: fn(&EngagementRow) -> i64| {
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(f)).with_data_type(timestamp_type())) as ArrayRef
        };
        let mut flags = ListBuilder::new(StringBuilder::new());
        let mut intervals = ListBuilder::new(Float64Builder::new());
        for row in rows {
            flags.append_value(row.quality_flags.iter().map(Some));
            intervals.values().append_slice(&row.unique_watch_intervals);
            intervals.append(true);
        }
        let columns: Vec<ArrayRef> = vec![
            texts(|r| &r.customer_id),
            texts(|r| &r.title_id),
            maybe_texts(|r| r.title.as_deref()),
            maybe_texts(|r| r.genre.as_deref()),
            maybe_texts(|r| r.creator.as_deref()),
            texts(|r| &r.country),
            texts(|r| &r.device_type),
            maybe_floats(|r| r.duration_seconds),
            floats(|r| r.total_watch_seconds),
            floats(|r| r.unique_watch_seconds),
            floats(|r| r.max_position_seconds),
            maybe_floats(|r| r.watch_percentage),
            maybe_floats(|r| r.unique_watch_percentage),
            maybe_floats(|r| r.completion_percentage),
            ints(|r| r.session_count),
            ints(|r| r.completion_count),
            ints(|r| r.pause_count),
            floats(|r| r.avg_pauses_per_session),
            ints(|r| r.forward_skips),
            ints(|r| r.backward_skips),
            ints(|r| r.seek_count),
            times(|r| r.first_watched_at),
            times(|r| r.last_watched_at),
            maybe_floats(|r| r.engagement_score),
            texts(|r| &r.engagement_tier),
            Arc::new(flags.finish()),
            Arc::new(intervals.finish()),
            times(|r| r._loaded_at),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.customer_bucket))),
        ];
        RecordBatch::try_new(ENGAGEMENT.schema.clone(), columns)
            .map_err(|e| streamreel_lake::LakeError::data("building gold/user_video_engagement rows", e))
    }
}

pub static VIEWER_DAILY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/viewer_daily",
    schema: Arc::new(Schema::new(vec![
        date(EVENT_DATE),
        text("customer_id", false),
        int("sessions", false),
        int("titles_watched", false),
        float("watch_seconds", false),
        int("completed_sessions", false),
        timestamp(LOADED_AT, false),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &["customer_id"],
    plain_columns: &[],
    sort_columns: &["customer_id"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewerDailyRow {
    pub event_date: i32,
    pub customer_id: String,
    pub sessions: i64,
    pub titles_watched: i64,
    pub watch_seconds: f64,
    pub completed_sessions: i64,
    pub _loaded_at: i64,
    pub customer_bucket: i32,
}

pub static VIDEO_DAILY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/video_daily",
    schema: Arc::new(Schema::new(vec![
        date(EVENT_DATE),
        text("title_id", false),
        text("title", true),
        text("genre", true),
        text("creator", true),
        text("country", false),
        text("device_type", false),
        int("viewers", false),
        int("sessions", false),
        float("total_watch_hours", false),
        float("unique_watch_hours", false),
        float("avg_watch_percentage", true),
        float("avg_completion_percentage", true),
        float("completion_rate", false),
        float("avg_engagement_score", true),
        timestamp(LOADED_AT, false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["title_id"],
    plain_columns: &[],
    sort_columns: &["title_id", "country", "device_type"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: false,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDailyRow {
    pub event_date: i32,
    pub title_id: String,
    pub title: Option<String>,
    pub genre: Option<String>,
    pub creator: Option<String>,
    pub country: String,
    pub device_type: String,
    pub viewers: i64,
    pub sessions: i64,
    pub total_watch_hours: f64,
    pub unique_watch_hours: f64,
    pub avg_watch_percentage: Option<f64>,
    pub avg_completion_percentage: Option<f64>,
    pub completion_rate: f64,
    pub avg_engagement_score: Option<f64>,
    pub _loaded_at: i64,
}

/// One bucket's share of a `video_daily` row: sums and counts that add up
/// over buckets.
pub static VIDEO_DAILY_PARTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/partials/video_daily",
    schema: Arc::new(Schema::new(vec![
        date(EVENT_DATE),
        text("title_id", false),
        text("country", false),
        text("device_type", false),
        int("viewers", false),
        int("sessions", false),
        int("session_rows", false),
        int("completed_rows", false),
        float("total_watch_seconds", false),
        float("unique_watch_seconds", false),
        float("watch_percentage_sum", false),
        int("watch_percentage_count", false),
        float("completion_percentage_sum", false),
        int("completion_percentage_count", false),
        float("engagement_score_sum", false),
        int("engagement_score_count", false),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &[],
    plain_columns: &[],
    sort_columns: &["title_id", "country", "device_type"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDailyPart {
    pub event_date: i32,
    pub title_id: String,
    pub country: String,
    pub device_type: String,
    pub viewers: i64,
    pub sessions: i64,
    pub session_rows: i64,
    pub completed_rows: i64,
    pub total_watch_seconds: f64,
    pub unique_watch_seconds: f64,
    pub watch_percentage_sum: f64,
    pub watch_percentage_count: i64,
    pub completion_percentage_sum: f64,
    pub completion_percentage_count: i64,
    pub engagement_score_sum: f64,
    pub engagement_score_count: i64,
    pub customer_bucket: i32,
}

pub static RETENTION: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/video_retention",
    schema: Arc::new(Schema::new(vec![
        text("title_id", false),
        text("title", true),
        int32("bucket"),
        float("bucket_start_seconds", false),
        float("bucket_end_seconds", false),
        int("viewers", false),
        float("retention_share", true),
        int("dropoff_viewers", false),
        int("total_viewers", false),
        timestamp(LOADED_AT, false),
    ])),
    partition_columns: &[],
    stats_columns: &["title_id"],
    plain_columns: &[],
    sort_columns: &["title_id", "bucket"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: false,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionRow {
    pub title_id: String,
    pub title: Option<String>,
    pub bucket: i32,
    pub bucket_start_seconds: f64,
    pub bucket_end_seconds: f64,
    pub viewers: i64,
    pub retention_share: Option<f64>,
    pub dropoff_viewers: i64,
    pub total_viewers: i64,
    pub _loaded_at: i64,
}

/// One customer bucket's viewers of each 1 % bucket of a title: one row per
/// (title, customer bucket) with the 100 counts as lists, so that a run reads
/// and rewrites a hundred times fewer rows than one row per 1 % bucket.
pub static RETENTION_PARTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/partials/title_retention",
    schema: Arc::new(Schema::new(vec![
        text("title_id", false),
        list("viewers", DataType::Int64),
        list("dropoff_viewers", DataType::Int64),
        int("total_viewers", false),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[CUSTOMER_BUCKET],
    stats_columns: &["title_id"],
    plain_columns: &[],
    sort_columns: &["title_id"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

/// `viewers[i]` covered the whole of 1 % bucket `i`; `dropoff_viewers[i]`
/// stopped in it. Both hold [`RETENTION_BUCKETS`] counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionPart {
    pub title_id: String,
    pub viewers: Vec<i64>,
    pub dropoff_viewers: Vec<i64>,
    pub total_viewers: i64,
    pub customer_bucket: i32,
}

/// The 1 % buckets of a title's retention curve.
pub const RETENTION_BUCKETS: usize = 100;

pub static QOS_HOURLY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/qos_hourly",
    schema: Arc::new(Schema::new(vec![
        timestamp("event_hour", false),
        text("isp", false),
        text("device_type", false),
        text("country", false),
        text("quality", false),
        int("sessions", false),
        int("buffering_events", false),
        float("buffering_seconds", false),
        float("watch_seconds", false),
        float("rebuffer_ratio", true),
        int("sessions_with_errors", false),
        float("avg_bandwidth_mbps", true),
        date(EVENT_DATE),
        timestamp(LOADED_AT, false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["event_hour"],
    plain_columns: &[],
    sort_columns: &["event_hour", "isp", "device_type", "country", "quality"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: false,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QosRow {
    pub event_hour: i64,
    pub isp: String,
    pub device_type: String,
    pub country: String,
    pub quality: String,
    pub sessions: i64,
    pub buffering_events: i64,
    pub buffering_seconds: f64,
    pub watch_seconds: f64,
    pub rebuffer_ratio: Option<f64>,
    pub sessions_with_errors: i64,
    pub avg_bandwidth_mbps: Option<f64>,
    pub event_date: i32,
    pub _loaded_at: i64,
}

pub static QOS_HOURLY_PARTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/partials/qos_hourly",
    schema: Arc::new(Schema::new(vec![
        timestamp("event_hour", false),
        text("isp", false),
        text("device_type", false),
        text("country", false),
        text("quality", false),
        int("sessions", false),
        int("buffering_events", false),
        float("buffering_seconds", false),
        float("watch_seconds", false),
        int("sessions_with_errors", false),
        float("bandwidth_sum", false),
        int("bandwidth_count", false),
        date(EVENT_DATE),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &[],
    plain_columns: &[],
    sort_columns: &["event_hour", "isp", "device_type", "country", "quality"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QosPart {
    pub event_hour: i64,
    pub isp: String,
    pub device_type: String,
    pub country: String,
    pub quality: String,
    pub sessions: i64,
    pub buffering_events: i64,
    pub buffering_seconds: f64,
    pub watch_seconds: f64,
    pub sessions_with_errors: i64,
    pub bandwidth_sum: f64,
    pub bandwidth_count: i64,
    pub event_date: i32,
    pub customer_bucket: i32,
}

pub static CONCURRENCY: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/concurrency_5min",
    schema: Arc::new(Schema::new(vec![
        timestamp("interval_start", false),
        int("concurrent_sessions", false),
        int("daily_peak_sessions", false),
        boolean("is_daily_peak"),
        date(EVENT_DATE),
        timestamp(LOADED_AT, false),
    ])),
    partition_columns: &[EVENT_DATE],
    stats_columns: &["interval_start"],
    plain_columns: &[],
    sort_columns: &["interval_start"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: false,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyRow {
    pub interval_start: i64,
    pub concurrent_sessions: i64,
    pub daily_peak_sessions: i64,
    pub is_daily_peak: bool,
    pub event_date: i32,
    pub _loaded_at: i64,
}

/// One customer bucket's playing sessions per 5 minutes (intervals with none
/// are left out).
pub static CONCURRENCY_PARTS: LazyLock<TableSpec> = LazyLock::new(|| TableSpec {
    path: "gold/partials/concurrency_5min",
    schema: Arc::new(Schema::new(vec![
        timestamp("interval_start", false),
        int("concurrent_sessions", false),
        date(EVENT_DATE),
        int32(CUSTOMER_BUCKET),
    ])),
    partition_columns: &[EVENT_DATE, CUSTOMER_BUCKET],
    stats_columns: &[],
    plain_columns: &[],
    sort_columns: &["interval_start"],
    file_hours: None,
    sort_by_hour: false,
    row_group_rows: 64 * 1024,
    bucketed: true,
    private: false,
    key_columns: &[],
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyPart {
    pub interval_start: i64,
    pub concurrent_sessions: i64,
    pub event_date: i32,
    pub customer_bucket: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_rows_encode_into_their_schemas() {
        let part = RetentionPart { title_id: "t".into(), viewers: vec![2, 1], dropoff_viewers: vec![0, 1], total_viewers: 2, customer_bucket: 5 };
        let batch = streamreel_lake::rows::encode(&RETENTION_PARTS.schema, std::slice::from_ref(&part)).unwrap();
        assert_eq!(streamreel_lake::rows::decode::<RetentionPart>(&batch).unwrap(), vec![part]);
        let row =
            ConcurrencyRow { interval_start: 0, concurrent_sessions: 1, daily_peak_sessions: 1, is_daily_peak: true, event_date: 0, _loaded_at: 1 };
        assert_eq!(streamreel_lake::rows::encode(&CONCURRENCY.schema, &[row]).unwrap().num_rows(), 1);
    }

    #[test]
    fn engagement_rows_batch_as_serde_encodes_them() {
        let rows: Vec<EngagementRow> = (0..5)
            .map(|i| {
                let some = |k: usize| !(i + k).is_multiple_of(3);
                EngagementRow {
                    customer_id: format!("c{i}"),
                    title_id: ["t1", "t22"][i % 2].into(),
                    title: some(0).then(|| "A title".into()),
                    genre: some(1).then(|| "drama".into()),
                    creator: some(2).then(|| "someone".into()),
                    country: ["US", ""][i % 2].into(),
                    device_type: "tv".into(),
                    duration_seconds: some(0).then_some(300.0),
                    total_watch_seconds: 10.5 * i as f64,
                    unique_watch_seconds: 9.5 * i as f64,
                    max_position_seconds: 8.25 * i as f64,
                    watch_percentage: some(1).then_some(1.5 * i as f64),
                    unique_watch_percentage: some(2).then_some(2.5 * i as f64),
                    completion_percentage: some(0).then_some(3.5 * i as f64),
                    session_count: i as i64 + 1,
                    completion_count: i as i64 % 2,
                    pause_count: 3 * i as i64,
                    avg_pauses_per_session: 0.5 * i as f64,
                    forward_skips: i as i64,
                    backward_skips: 2 * i as i64,
                    seek_count: 4 * i as i64,
                    first_watched_at: 1_754_900_000_000_000 + i as i64,
                    last_watched_at: 1_754_900_100_000_000 + i as i64,
                    engagement_score: some(1).then_some(40.0 + i as f64),
                    engagement_tier: ["Low", "Unknown"][i % 2].into(),
                    quality_flags: (0..i % 3).map(|k| format!("flag_{k}")).collect(),
                    unique_watch_intervals: (0..2 * (i % 3)).map(|k| k as f64 * 1.25).collect(),
                    _loaded_at: 1_764_000_000_000_000,
                    customer_bucket: 7 - i as i32,
                }
            })
            .collect();
        for part in [&rows[..], &rows[1..4], &rows[..0]] {
            assert_eq!(EngagementRow::batch(part).unwrap(), streamreel_lake::rows::encode(&ENGAGEMENT.schema, part).unwrap());
        }
    }
}
