//! The gold formulas of metrics.md, as pure functions over session facts:
//! per viewer and video, per video and day, retention, quality of service
//! and concurrency.

use std::collections::{BTreeMap, BTreeSet};

use silver_enrich::segments::merge_intervals;
use streamreel_lake::config::MetricSettings;

use crate::facts::SessionFacts;

/// One `user_video_engagement` row (the metadata columns are joined later).
#[derive(Debug, Clone, PartialEq)]
pub struct Engagement {
    pub customer_id: String,
    pub title_id: String,
    /// Of the viewer's first session of the video: where and on what they
    /// watch, for retention by region and completion by device.
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
    pub engagement_tier: &'static str,
    pub quality_flags: Vec<String>,
    pub unique_watch_intervals: Vec<(f64, f64)>,
}

/// Aggregates all of one (customer, title)'s sessions, for all time.
pub fn engagement(sessions: &[&SessionFacts], settings: &MetricSettings) -> Engagement {
    let first = sessions.iter().min_by_key(|s| (s.session_start, s.session_key.as_str())).expect("a viewer-video has sessions");
    let duration = sessions.iter().filter_map(|s| s.duration).reduce(f64::max);
    let total: f64 = sessions.iter().map(|s| s.watched_seconds).sum();
    let mut intervals: Vec<(f64, f64)> = sessions.iter().flat_map(|s| s.watched_intervals.iter().copied()).collect();
    let union = merge_intervals(&mut intervals);
    let unique: f64 = union.iter().map(|(a, b)| b - a).sum();
    let max_position = sessions.iter().map(|s| s.max_position).fold(0.0, f64::max);
    let session_count = sessions.len() as i64;
    let completion_count = sessions.iter().filter(|s| s.completed).count() as i64;
    let pause_count: i64 = sessions.iter().map(|s| s.pause_count).sum();
    let percent = |value: f64| duration.map(|d| 100.0 * value / d);
    let score = duration.map(|d| {
        let w = &settings.engagement_weights;
        let raw = 100.0 * (w.unique * (unique / d).min(1.0) + w.reach * (max_position / d).min(1.0) + w.completed * f64::from(u8::from(completion_count > 0)));
        // 100 · (0.6 + 0.3 + 0.1) is 99.999… in binary floating point: round
        // away the representation error so tier boundaries hold exactly.
        (raw * 1e9).round() / 1e9
    });
    let mut flags: BTreeSet<String> = sessions.iter().flat_map(|s| s.flags.iter().cloned()).collect();
    if duration.is_none() {
        flags.insert("missing_metadata".into());
    }
    if duration.is_some_and(|d| total > d) {
        flags.insert("watch_exceeds_duration".into());
    }
    Engagement {
        customer_id: first.customer_id.clone(),
        title_id: first.title_id.clone(),
        country: dim(&first.country),
        device_type: dim(&first.device_type),
        duration_seconds: duration,
        total_watch_seconds: total,
        unique_watch_seconds: unique,
        max_position_seconds: max_position,
        watch_percentage: percent(total),
        unique_watch_percentage: percent(unique),
        completion_percentage: percent(max_position),
        session_count,
        completion_count,
        pause_count,
        avg_pauses_per_session: pause_count as f64 / session_count as f64,
        forward_skips: sessions.iter().map(|s| s.forward_skips).sum(),
        backward_skips: sessions.iter().map(|s| s.backward_skips).sum(),
        seek_count: sessions.iter().map(|s| s.seek_count).sum(),
        first_watched_at: sessions.iter().map(|s| s.first_playback).min().unwrap_or(0),
        last_watched_at: sessions.iter().map(|s| s.last_playback).max().unwrap_or(0),
        engagement_score: score,
        engagement_tier: tier(score, settings),
        quality_flags: flags.into_iter().collect(),
        unique_watch_intervals: union,
    }
}

pub fn tier(score: Option<f64>, settings: &MetricSettings) -> &'static str {
    let t = &settings.engagement_tiers;
    match score {
        None => "Unknown",
        Some(s) if s >= t.high => "High",
        Some(s) if s >= t.medium => "Medium",
        Some(s) if s >= t.low => "Low",
        Some(_) => "Minimal",
    }
}

/// A dimension value of a gold key: missing values group as `unknown`.
pub fn dim(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "unknown".into())
}

pub use streamreel_lake::delta::MICROS_PER_DAY;
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// One `video_daily` row.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoDay {
    pub event_date: i32,
    pub title_id: String,
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
}

/// Per day (of session start), title, country and device type. Averages
/// are over the group's viewers, each measured on their own sessions of the
/// group with the viewer-video formulas (so a day's row depends on that day
/// alone, and hourly runs stay exact).
pub fn video_daily(sessions: &[SessionFacts], settings: &MetricSettings) -> Vec<VideoDay> {
    type Key = (i32, String, String, String);
    let mut groups: BTreeMap<Key, Vec<&SessionFacts>> = BTreeMap::new();
    for s in sessions {
        groups.entry((s.event_date, s.title_id.clone(), dim(&s.country), dim(&s.device_type))).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|((event_date, title_id, country, device_type), rows)| {
            let mut viewers: BTreeMap<&str, Vec<&SessionFacts>> = BTreeMap::new();
            for s in &rows {
                viewers.entry(s.customer_id.as_str()).or_default().push(s);
            }
            let per_viewer: Vec<Engagement> = viewers.values().map(|own| engagement(own, settings)).collect();
            let mean = |f: fn(&Engagement) -> Option<f64>| -> Option<f64> {
                let values: Vec<f64> = per_viewer.iter().filter_map(f).collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            let distinct_sessions: BTreeSet<(&str, i64)> = rows.iter().map(|s| (s.session_key.as_str(), s.session_start)).collect();
            VideoDay {
                event_date,
                viewers: per_viewer.len() as i64,
                sessions: distinct_sessions.len() as i64,
                total_watch_hours: per_viewer.iter().map(|e| e.total_watch_seconds).sum::<f64>() / 3600.0,
                unique_watch_hours: per_viewer.iter().map(|e| e.unique_watch_seconds).sum::<f64>() / 3600.0,
                avg_watch_percentage: mean(|e| e.watch_percentage),
                avg_completion_percentage: mean(|e| e.completion_percentage),
                completion_rate: rows.iter().filter(|s| s.completed).count() as f64 / rows.len() as f64,
                avg_engagement_score: mean(|e| e.engagement_score),
                title_id,
                country,
                device_type,
            }
        })
        .collect()
}

/// One `viewer_daily` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewerDay {
    pub event_date: i32,
    pub customer_id: String,
    pub sessions: i64,
    pub titles_watched: i64,
    pub watch_seconds: f64,
    pub completed_sessions: i64,
}

/// Per day (of session start) and viewer: what daily KPIs count distinct
/// viewers from, since viewers of `video_daily` rows do not add up.
/// Sessions are (session, video) pairs, as in `video_daily`.
pub fn viewer_daily(sessions: &[SessionFacts]) -> Vec<ViewerDay> {
    let mut groups: BTreeMap<(i32, &str), Vec<&SessionFacts>> = BTreeMap::new();
    for s in sessions {
        groups.entry((s.event_date, s.customer_id.as_str())).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|((event_date, customer_id), rows)| ViewerDay {
            event_date,
            customer_id: customer_id.to_string(),
            sessions: rows.len() as i64,
            titles_watched: rows.iter().map(|s| s.title_id.as_str()).collect::<BTreeSet<_>>().len() as i64,
            watch_seconds: rows.iter().map(|s| s.watched_seconds).sum(),
            completed_sessions: rows.iter().filter(|s| s.completed).count() as i64,
        })
        .collect()
}

/// One `video_retention` row.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionBucket {
    pub title_id: String,
    pub bucket: i32,
    pub bucket_start_seconds: f64,
    pub bucket_end_seconds: f64,
    pub viewers: i64,
    pub retention_share: Option<f64>,
    pub dropoff_viewers: i64,
    pub total_viewers: i64,
}

/// For each 1 % bucket of one title's duration: the viewers whose watched
/// union covers the whole bucket, that count as a share of bucket 0's, and
/// the viewers whose furthest position falls in the bucket. Only viewers
/// who watched something count.
pub fn retention(title_id: &str, duration: f64, viewers: &[(&[(f64, f64)], f64)]) -> Vec<RetentionBucket> {
    const EPSILON: f64 = 1e-9;
    let watched: Vec<&(&[(f64, f64)], f64)> = viewers.iter().filter(|(union, _)| !union.is_empty()).collect();
    let mut covering = [0i64; 100];
    let mut dropoff = [0i64; 100];
    for (union, max_position) in &watched {
        for (bucket, count) in covering.iter_mut().enumerate() {
            let (from, to) = (duration * bucket as f64 / 100.0, duration * (bucket + 1) as f64 / 100.0);
            if union.iter().any(|(a, b)| *a <= from + EPSILON && to - EPSILON <= *b) {
                *count += 1;
            }
        }
        let bucket = ((100.0 * max_position / duration).floor() as i64).clamp(0, 99) as usize;
        dropoff[bucket] += 1;
    }
    (0..100)
        .map(|bucket| RetentionBucket {
            title_id: title_id.to_string(),
            bucket: bucket as i32,
            bucket_start_seconds: duration * bucket as f64 / 100.0,
            bucket_end_seconds: duration * (bucket + 1) as f64 / 100.0,
            viewers: covering[bucket],
            retention_share: (covering[0] > 0).then(|| covering[bucket] as f64 / covering[0] as f64),
            dropoff_viewers: dropoff[bucket],
            total_viewers: watched.len() as i64,
        })
        .collect()
}

/// One `qos_hourly` row.
#[derive(Debug, Clone, PartialEq)]
pub struct QosHour {
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
}

/// Per hour of session start and the session's ISP, device, country and
/// (first) quality. Buffering and errors are the session's last running
/// totals; watch seconds are all of the session's watched segments.
pub fn qos_hourly(sessions: &[SessionFacts]) -> Vec<QosHour> {
    // One entry per session: its facts are repeated on each of its videos.
    let mut distinct: BTreeMap<(&str, i64), &SessionFacts> = BTreeMap::new();
    for s in sessions {
        distinct.entry((s.session_key.as_str(), s.session_start)).or_insert(s);
    }
    type Key = (i64, String, String, String, String);
    let mut groups: BTreeMap<Key, Vec<&SessionFacts>> = BTreeMap::new();
    for s in distinct.into_values() {
        let hour = s.session_start.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
        groups.entry((hour, dim(&s.isp), dim(&s.device_type), dim(&s.country), dim(&s.quality))).or_default().push(s);
    }
    groups
        .into_iter()
        .map(|((event_hour, isp, device_type, country, quality), rows)| {
            let buffering_seconds: f64 = rows.iter().filter_map(|s| s.buffering_seconds).sum();
            let watch_seconds: f64 = rows.iter().map(|s| s.session_watched).sum();
            let bandwidths: Vec<f64> = rows.iter().filter_map(|s| s.avg_bandwidth).collect();
            QosHour {
                event_hour,
                isp,
                device_type,
                country,
                quality,
                sessions: rows.len() as i64,
                buffering_events: rows.iter().filter_map(|s| s.buffering_events).sum(),
                buffering_seconds,
                watch_seconds,
                rebuffer_ratio: (buffering_seconds + watch_seconds > 0.0).then(|| buffering_seconds / (buffering_seconds + watch_seconds)),
                sessions_with_errors: rows.iter().filter(|s| s.error_count.unwrap_or(0) > 0).count() as i64,
                avg_bandwidth_mbps: (!bandwidths.is_empty()).then(|| bandwidths.iter().sum::<f64>() / bandwidths.len() as f64),
            }
        })
        .collect()
}

pub const INTERVAL_MICROS: i64 = 5 * 60 * 1_000_000;

/// Sessions playing (a watched segment overlapping in wall-clock time) in
/// each 5-minute interval of `day`: all 288 intervals, zeros included.
pub fn concurrency(day: i32, sessions: &[SessionFacts]) -> Vec<(i64, i64)> {
    let day_start = day as i64 * MICROS_PER_DAY;
    let mut counts = vec![0i64; 288];
    let mut by_session: BTreeMap<(&str, i64), Vec<(i64, i64)>> = BTreeMap::new();
    for s in sessions {
        by_session.entry((s.session_key.as_str(), s.session_start)).or_default().extend(s.playing_intervals.iter().copied());
    }
    for intervals in by_session.values() {
        let mut hit = [false; 288];
        for &(start, end) in intervals {
            if end <= start {
                continue;
            }
            // Intervals [a, a + 5 min) with a < end and a + 5 min > start.
            let first = (start - day_start).div_euclid(INTERVAL_MICROS).max(0);
            let last = (end - 1 - day_start).div_euclid(INTERVAL_MICROS).min(287);
            for i in first..=last {
                hit[i as usize] = true;
            }
        }
        for (count, h) in counts.iter_mut().zip(hit) {
            *count += i64::from(h);
        }
    }
    counts.into_iter().enumerate().map(|(i, c)| (day_start + i as i64 * INTERVAL_MICROS, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peter() -> SessionFacts {
        SessionFacts {
            customer_id: "peter".into(),
            title_id: "video_001".into(),
            session_key: "s1".into(),
            session_start: 0,
            session_end: 140_000_000,
            first_playback: 0,
            last_playback: 140_000_000,
            pause_count: 3,
            seek_count: 0,
            forward_skips: 0,
            backward_skips: 1,
            completed: false,
            watched_seconds: 130.0,
            max_position: 120.0,
            duration: Some(300.0),
            flags: vec![],
            device_type: Some("tv".into()),
            country: None,
            isp: Some("Comcast".into()),
            quality: Some("HD".into()),
            buffering_events: Some(2),
            buffering_seconds: Some(10.0),
            error_count: Some(0),
            avg_bandwidth: Some(20.0),
            session_watched: 130.0,
            watched_intervals: vec![(0.0, 120.0)],
            playing_intervals: vec![(0, 30_000_000), (35_000_000, 140_000_000)],
            event_date: 0,
        }
    }

    #[test]
    fn the_worked_example_gives_the_figures_of_metrics_md() {
        let settings = MetricSettings::default();
        let facts = peter();
        let e = engagement(&[&facts], &settings);
        assert_eq!(e.total_watch_seconds, 130.0);
        assert_eq!(e.unique_watch_seconds, 120.0);
        assert_eq!(e.max_position_seconds, 120.0);
        assert_eq!(format!("{:.2}", e.watch_percentage.unwrap()), "43.33");
        assert_eq!(format!("{:.2}", e.unique_watch_percentage.unwrap()), "40.00");
        assert_eq!(format!("{:.2}", e.completion_percentage.unwrap()), "40.00");
        assert_eq!((e.session_count, e.completion_count, e.pause_count), (1, 0, 3));
        assert!((e.engagement_score.unwrap() - 36.0).abs() < 1e-9);
        assert_eq!(e.engagement_tier, "Low");
        assert!(e.quality_flags.is_empty());
    }

    #[test]
    fn replays_count_in_total_once_in_unique_and_flag_excess() {
        let settings = MetricSettings::default();
        let mut a = peter();
        a.watched_seconds = 300.0;
        a.watched_intervals = vec![(0.0, 300.0)];
        a.max_position = 300.0;
        a.completed = true;
        let mut b = a.clone();
        b.session_start = 10;
        let e = engagement(&[&a, &b], &settings);
        assert_eq!((e.total_watch_seconds, e.unique_watch_seconds), (600.0, 300.0));
        assert_eq!(e.watch_percentage, Some(200.0));
        assert_eq!(e.engagement_score, Some(100.0));
        assert_eq!(e.engagement_tier, "High");
        assert_eq!(e.quality_flags, vec!["watch_exceeds_duration".to_string()]);
    }

    #[test]
    fn country_and_device_are_those_of_the_first_session_whatever_the_order() {
        let mut later = peter();
        later.session_start = 86_400_000_000;
        later.country = Some("DE".into());
        later.device_type = Some("mobile".into());
        let e = engagement(&[&later, &peter()], &MetricSettings::default());
        assert_eq!((e.country.as_str(), e.device_type.as_str()), ("unknown", "tv"));
    }

    #[test]
    fn viewer_daily_counts_each_viewers_sessions_titles_and_completions_per_day() {
        let mut other_title = peter();
        other_title.title_id = "video_002".into();
        other_title.completed = true;
        let mut next_day = peter();
        next_day.event_date = 1;
        let mut other_viewer = peter();
        other_viewer.customer_id = "ana".into();
        let days = viewer_daily(&[peter(), other_title, next_day, other_viewer]);
        let got: Vec<(i32, &str, i64, i64, f64, i64)> = days
            .iter()
            .map(|d| (d.event_date, d.customer_id.as_str(), d.sessions, d.titles_watched, d.watch_seconds, d.completed_sessions))
            .collect();
        assert_eq!(got, vec![(0, "ana", 1, 1, 130.0, 0), (0, "peter", 2, 2, 260.0, 1), (1, "peter", 1, 1, 130.0, 0)]);
    }

    #[test]
    fn unknown_duration_gives_null_percentages_and_unknown_tier() {
        let mut a = peter();
        a.duration = None;
        let e = engagement(&[&a], &MetricSettings::default());
        assert_eq!((e.watch_percentage, e.engagement_score, e.engagement_tier), (None, None, "Unknown"));
        assert_eq!(e.quality_flags, vec!["missing_metadata".to_string()]);
    }

    #[test]
    fn retention_counts_buckets_fully_covered_and_where_viewers_stopped() {
        let union = [(0.0, 120.0)];
        let other = [(0.0, 3.0), (150.0, 300.0)];
        let rows = retention("video_001", 300.0, &[(&union, 120.0), (&other, 300.0), (&[], 0.0)]);
        assert_eq!(rows.len(), 100);
        assert_eq!((rows[0].viewers, rows[39].viewers, rows[40].viewers, rows[60].viewers), (2, 1, 0, 1));
        assert_eq!(rows[39].retention_share, Some(0.5));
        assert_eq!((rows[40].dropoff_viewers, rows[99].dropoff_viewers), (1, 1));
        assert_eq!(rows[0].total_viewers, 2, "a viewer who watched nothing is not counted");
    }

    #[test]
    fn concurrency_counts_each_session_once_per_interval() {
        let mut a = peter();
        a.playing_intervals = vec![(0, 60_000_000), (120_000_000, 400_000_000)];
        let mut b = a.clone();
        b.session_key = "s2".into();
        b.playing_intervals = vec![(300_000_000, 301_000_000)];
        let rows = concurrency(0, &[a, b]);
        assert_eq!(rows.len(), 288);
        assert_eq!((rows[0].1, rows[1].1, rows[2].1), (1, 2, 0), "a's two intervals in the first count once");
    }

    #[test]
    fn qos_uses_each_session_once_and_its_running_totals() {
        let a = peter();
        let mut same_session_other_title = a.clone();
        same_session_other_title.title_id = "v2".into();
        let rows = qos_hourly(&[a, same_session_other_title]);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].sessions, rows[0].buffering_events), (1, 2));
        assert!((rows[0].rebuffer_ratio.unwrap() - 10.0 / 140.0).abs() < 1e-12);
        assert_eq!(rows[0].country, "unknown");
    }
}
