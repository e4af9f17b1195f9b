//! One `silver/watch_sessions` row, owned and typed: what every gold table
//! is computed from.

use streamreel_lake::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use streamreel_lake::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};

#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    pub customer_id: String,
    pub title_id: String,
    pub session_key: String,
    pub session_start: i64,
    pub session_end: i64,
    pub first_playback: i64,
    pub last_playback: i64,
    pub pause_count: i64,
    pub seek_count: i64,
    pub forward_skips: i64,
    pub backward_skips: i64,
    pub completed: bool,
    pub watched_seconds: f64,
    pub max_position: f64,
    pub duration: Option<f64>,
    pub flags: Vec<String>,
    pub device_type: Option<String>,
    pub country: Option<String>,
    pub isp: Option<String>,
    pub quality: Option<String>,
    pub buffering_events: Option<i64>,
    pub buffering_seconds: Option<f64>,
    pub error_count: Option<i64>,
    pub avg_bandwidth: Option<f64>,
    pub session_watched: f64,
    pub watched_intervals: Vec<(f64, f64)>,
    pub playing_intervals: Vec<(i64, i64)>,
    pub event_date: i32,
}

/// The columns of `silver/watch_sessions` gold reads.
pub const SESSION_COLUMNS: &[&str] = &[
    "customer_id",
    "title_id",
    "session_key",
    "session_start",
    "session_end",
    "first_playback_at",
    "last_playback_at",
    "pause_count",
    "seek_count",
    "forward_skips",
    "backward_skips",
    "completed",
    "watched_seconds",
    "max_position_seconds",
    "duration_seconds",
    "quality_flags",
    "device_type",
    "country",
    "isp",
    "quality",
    "session_buffering_events",
    "session_buffering_seconds",
    "session_error_count",
    "session_avg_bandwidth_mbps",
    "session_watched_seconds",
    "watched_intervals",
    "playing_intervals",
    "event_date",
];

fn opt_text(a: &StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

pub fn from_batch(batch: &RecordBatch) -> Vec<SessionFacts> {
    let col = |n: &str| batch.column_by_name(n).unwrap_or_else(|| panic!("watch_sessions column {n}"));
    let text = |n: &str| col(n).as_string::<i32>();
    let int = |n: &str| col(n).as_primitive::<Int64Type>();
    let float = |n: &str| col(n).as_primitive::<Float64Type>();
    let time = |n: &str| col(n).as_primitive::<TimestampMicrosecondType>();
    let (customer, title, key) = (text("customer_id"), text("title_id"), text("session_key"));
    let (start, end, first, last) = (time("session_start"), time("session_end"), time("first_playback_at"), time("last_playback_at"));
    let (pauses, seeks, forward, backward) = (int("pause_count"), int("seek_count"), int("forward_skips"), int("backward_skips"));
    let completed = col("completed").as_boolean();
    let (watched, max_position, duration) = (float("watched_seconds"), float("max_position_seconds"), float("duration_seconds"));
    let flags = col("quality_flags").as_list::<i32>();
    let (device, country, isp, quality) = (text("device_type"), text("country"), text("isp"), text("quality"));
    let (buffering_events, buffering_seconds, errors, bandwidth) =
        (int("session_buffering_events"), float("session_buffering_seconds"), int("session_error_count"), float("session_avg_bandwidth_mbps"));
    let session_watched = float("session_watched_seconds");
    let (positions, playing) = (col("watched_intervals").as_list::<i32>(), col("playing_intervals").as_list::<i32>());
    let date = col("event_date").as_primitive::<Date32Type>();
    (0..batch.num_rows())
        .map(|i| {
            let flag_values = flags.value(i);
            let flag_values = flag_values.as_string::<i32>();
            let position_values = positions.value(i);
            let position_values = position_values.as_primitive::<Float64Type>().values();
            let playing_values = playing.value(i);
            let playing_values = playing_values.as_primitive::<Int64Type>().values();
            SessionFacts {
                customer_id: customer.value(i).to_string(),
                title_id: title.value(i).to_string(),
                session_key: key.value(i).to_string(),
                session_start: start.value(i),
                session_end: end.value(i),
                first_playback: first.value(i),
                last_playback: last.value(i),
                pause_count: pauses.value(i),
                seek_count: seeks.value(i),
                forward_skips: forward.value(i),
                backward_skips: backward.value(i),
                completed: completed.value(i),
                watched_seconds: watched.value(i),
                max_position: max_position.value(i),
                duration: duration.is_valid(i).then(|| duration.value(i)),
                flags: flag_values.iter().flatten().map(str::to_string).collect(),
                device_type: opt_text(device, i),
                country: opt_text(country, i),
                isp: opt_text(isp, i),
                quality: opt_text(quality, i),
                buffering_events: buffering_events.is_valid(i).then(|| buffering_events.value(i)),
                buffering_seconds: buffering_seconds.is_valid(i).then(|| buffering_seconds.value(i)),
                error_count: errors.is_valid(i).then(|| errors.value(i)),
                avg_bandwidth: bandwidth.is_valid(i).then(|| bandwidth.value(i)),
                session_watched: session_watched.value(i),
                watched_intervals: position_values.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
                playing_intervals: playing_values.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
                event_date: date.value(i),
            }
        })
        .collect()
}
