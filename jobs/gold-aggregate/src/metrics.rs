//! The gold formulas of docs/metrics.md as pure functions over session
//! rows: per viewer and video, per viewer and day, and one bucket's partial
//! sums of the title-level tables (per video and day, retention, quality of
//! service, concurrency), which `finalize` adds up over buckets.

use std::collections::BTreeSet;
use std::hash::Hash;

use ahash::AHashMap;

use streamreel_lake::config::MetricSettings;
use streamreel_lake::rows::positive_zero;
use streamreel_lake::time::{MICROS_PER_DAY, MICROS_PER_HOUR};
use streamreel_tables::Metadata;
use streamreel_tables::gold::{ConcurrencyPart, EngagementRow, QosPart, RETENTION_BUCKETS, RetentionPart, VideoDailyPart, ViewerDailyRow};
use streamreel_tables::intervals::{flatten, merge_intervals, pairs};
use streamreel_tables::silver::SessionRow;

pub const WATCH_EXCEEDS_DURATION: &str = "watch_exceeds_duration";
pub const MISSING_METADATA: &str = "missing_metadata";

/// The numbers of one viewer-video (all of a customer's sessions of a
/// title, or those of one `video_daily` group), before any text is copied.
struct Measures {
    duration: Option<f64>,
    total: f64,
    union: Vec<(f64, f64)>,
    unique: f64,
    max_position: f64,
    completion_count: i64,
    score: Option<f64>,
}

impl Measures {
    fn of(sessions: &[&SessionRow], settings: &MetricSettings) -> Measures {
        let duration = sessions.iter().filter_map(|s| s.duration_seconds).reduce(f64::max);
        let total: f64 = sessions.iter().map(|s| s.watched_seconds).sum();
        let mut intervals: Vec<(f64, f64)> = sessions.iter().flat_map(|s| pairs(&s.watched_intervals)).collect();
        let union = merge_intervals(&mut intervals);
        let unique: f64 = union.iter().map(|(a, b)| b - a).sum();
        let max_position = sessions.iter().map(|s| s.max_position_seconds).fold(0.0, f64::max);
        let completion_count = sessions.iter().filter(|s| s.completed).count() as i64;
        let score = duration.map(|d| {
            let w = &settings.engagement_weights;
            let raw = 100.0
                * (w.unique * (unique / d).min(1.0)
                    + w.reach * (max_position / d).min(1.0)
                    + w.completed * f64::from(u8::from(completion_count > 0)));
            // 100 · (0.6 + 0.3 + 0.1) is 99.999… in binary floating point: round
            // away the representation error so tier boundaries hold exactly.
            positive_zero((raw * 1e9).round() / 1e9)
        });
        Measures { duration, total, union, unique, max_position, completion_count, score }
    }

    /// `value` as a percentage of the duration, when it is known.
    fn percent(&self, value: f64) -> Option<f64> {
        self.duration.map(|d| positive_zero(100.0 * value / d))
    }
}

/// Aggregates all of one (customer, title)'s sessions, for all time.
pub fn engagement(sessions: &[&SessionRow], settings: &MetricSettings, metadata: &Metadata, loaded_at: i64) -> EngagementRow {
    let first = sessions.iter().min_by_key(|s| (s.session_start, s.session_key.as_str())).expect("a viewer-video has sessions");
    let m = Measures::of(sessions, settings);
    let duration = m.duration;
    let session_count = sessions.len() as i64;
    let pause_count: i64 = sessions.iter().map(|s| s.pause_count).sum();
    let mut flags: BTreeSet<String> = sessions.iter().flat_map(|s| s.quality_flags.iter().cloned()).collect();
    if duration.is_none() {
        flags.insert(MISSING_METADATA.into());
    }
    if duration.is_some_and(|d| m.total > d) {
        flags.insert(WATCH_EXCEEDS_DURATION.into());
    }
    let video = metadata.get(&first.title_id);
    EngagementRow {
        customer_id: first.customer_id.clone(),
        title_id: first.title_id.clone(),
        title: video.and_then(|v| v.title.clone()),
        genre: video.and_then(|v| v.genre.clone()),
        creator: video.and_then(|v| v.creator.clone()),
        country: dim(&first.country),
        device_type: dim(&first.device_type),
        duration_seconds: duration,
        total_watch_seconds: positive_zero(m.total),
        unique_watch_seconds: positive_zero(m.unique),
        max_position_seconds: positive_zero(m.max_position),
        watch_percentage: m.percent(m.total),
        unique_watch_percentage: m.percent(m.unique),
        completion_percentage: m.percent(m.max_position),
        session_count,
        completion_count: m.completion_count,
        pause_count,
        avg_pauses_per_session: positive_zero(pause_count as f64 / session_count as f64),
        forward_skips: sessions.iter().map(|s| s.forward_skips).sum(),
        backward_skips: sessions.iter().map(|s| s.backward_skips).sum(),
        seek_count: sessions.iter().map(|s| s.seek_count).sum(),
        first_watched_at: sessions.iter().map(|s| s.first_playback_at).min().unwrap_or(0),
        last_watched_at: sessions.iter().map(|s| s.last_playback_at).max().unwrap_or(0),
        engagement_score: m.score,
        engagement_tier: tier(m.score, settings).to_string(),
        quality_flags: flags.into_iter().collect(),
        unique_watch_intervals: flatten(&m.union),
        _loaded_at: loaded_at,
        customer_bucket: first.customer_bucket,
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
    dim_str(value).to_string()
}

fn dim_str(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("unknown")
}

/// `items` grouped by `key`, the groups in key order and each group's items
/// in the order given: what a `BTreeMap<K, Vec<T>>` gives, for one hash per
/// item where a tree search compares the item's texts with a dozen others.
pub fn grouped<T, K: Hash + Eq + Ord>(items: impl IntoIterator<Item = T>, key: impl Fn(&T) -> K) -> Vec<(K, Vec<T>)> {
    let mut groups: AHashMap<K, Vec<T>> = AHashMap::new();
    for item in items {
        groups.entry(key(&item)).or_default().push(item);
    }
    let mut groups: Vec<(K, Vec<T>)> = groups.into_iter().collect();
    // Keys are distinct: the unstable sort has one result.
    groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    groups
}

/// How many distinct values `values` holds: sorted in place, as a group
/// holds a few rows and a hash set per group cost more than its lookups.
fn distinct_count<T: Ord>(values: impl Iterator<Item = T>) -> usize {
    let mut values: Vec<T> = values.collect();
    values.sort_unstable();
    values.dedup();
    values.len()
}

/// A session: (customer, session key, start).
type SessionId<'a> = (&'a str, &'a str, i64);

fn session_id(s: &SessionRow) -> SessionId<'_> {
    (s.customer_id.as_str(), s.session_key.as_str(), s.session_start)
}

/// One bucket's `video_daily` sums for the sessions that started on its
/// days: per (day, title, country, device type), each viewer measured on
/// their own sessions of the group with the viewer-video formulas.
pub fn video_daily_parts(sessions: &[SessionRow], settings: &MetricSettings) -> Vec<VideoDailyPart> {
    grouped(sessions, |s| (s.event_date, s.title_id.as_str(), dim_str(&s.country), dim_str(&s.device_type)))
        .into_iter()
        .map(|((event_date, title_id, country, device_type), mut rows)| {
            // Each viewer measured as `engagement` measures a viewer-video, on
            // their sessions in the order given (the sort is stable). Most
            // groups hold a few rows: hash maps per group were most of the cost.
            rows.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
            // A session is one viewer's: the distinct sessions of the group
            // are counted per viewer, among a few rows each.
            let mut distinct_sessions = 0;
            let per_viewer: Vec<Measures> = rows
                .chunk_by(|a, b| a.customer_id == b.customer_id)
                .map(|own| {
                    distinct_sessions += match own {
                        [_] => 1,
                        _ => distinct_count(own.iter().map(|s| session_id(s))),
                    };
                    Measures::of(own, settings)
                })
                .collect();
            let sum = |f: &dyn Fn(&Measures) -> Option<f64>| -> (f64, i64) {
                let values: Vec<f64> = per_viewer.iter().filter_map(f).collect();
                (positive_zero(values.iter().sum()), values.len() as i64)
            };
            let (watch_percentage_sum, watch_percentage_count) = sum(&|m| m.percent(m.total));
            let (completion_percentage_sum, completion_percentage_count) = sum(&|m| m.percent(m.max_position));
            let (engagement_score_sum, engagement_score_count) = sum(&|m| m.score);
            VideoDailyPart {
                event_date,
                viewers: per_viewer.len() as i64,
                sessions: distinct_sessions as i64,
                session_rows: rows.len() as i64,
                completed_rows: rows.iter().filter(|s| s.completed).count() as i64,
                total_watch_seconds: positive_zero(per_viewer.iter().map(|m| positive_zero(m.total)).sum()),
                unique_watch_seconds: positive_zero(per_viewer.iter().map(|m| positive_zero(m.unique)).sum()),
                watch_percentage_sum,
                watch_percentage_count,
                completion_percentage_sum,
                completion_percentage_count,
                engagement_score_sum,
                engagement_score_count,
                customer_bucket: rows[0].customer_bucket,
                title_id: title_id.to_string(),
                country: country.to_string(),
                device_type: device_type.to_string(),
            }
        })
        .collect()
}

/// Per day (of session start) and viewer: what daily KPIs count distinct
/// viewers from. Sessions are (session, video) pairs, as in `video_daily`.
pub fn viewer_daily(sessions: &[SessionRow], loaded_at: i64) -> Vec<ViewerDailyRow> {
    grouped(sessions, |s| (s.event_date, s.customer_id.as_str()))
        .into_iter()
        .map(|((event_date, customer_id), rows)| ViewerDailyRow {
            event_date,
            customer_id: customer_id.to_string(),
            sessions: rows.len() as i64,
            titles_watched: distinct_count(rows.iter().map(|s| s.title_id.as_str())) as i64,
            watch_seconds: positive_zero(rows.iter().map(|s| s.watched_seconds).sum()),
            completed_sessions: rows.iter().filter(|s| s.completed).count() as i64,
            _loaded_at: loaded_at,
            customer_bucket: rows[0].customer_bucket,
        })
        .collect()
}

/// What retention reads of a viewer-video (an `EngagementRow`'s
/// `unique_watch_intervals` and `max_position_seconds`), borrowed from a row
/// or straight from a stored batch's columns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewing<'a> {
    /// The watched union, as flat (start, end) pairs.
    pub intervals: &'a [f64],
    pub max_position: f64,
}

impl<'a> Viewing<'a> {
    pub fn of(row: &'a EngagementRow) -> Viewing<'a> {
        Viewing { intervals: &row.unique_watch_intervals, max_position: row.max_position_seconds }
    }
}

/// One bucket's retention of a title: for each 1 % bucket of its duration,
/// the viewers whose watched union covers the whole bucket, and the viewers
/// whose furthest position falls in it. Only viewers who watched something
/// count. The duration is positive and finite, as the metadata holds it.
pub fn retention_part(title_id: &str, duration: f64, viewers: &[Viewing<'_>], customer_bucket: i32) -> Option<RetentionPart> {
    const _: () = assert!(RETENTION_BUCKETS <= 128, "a viewer's covered buckets are a u128 mask");
    debug_assert!(duration.is_finite() && duration > 0.0, "duration {duration}");
    let watched: Vec<&Viewing<'_>> = viewers.iter().filter(|v| !v.intervals.is_empty()).collect();
    if watched.is_empty() {
        return None;
    }
    let limits = coverage_limits(duration);
    // Viewers covering each bucket, as changes from the bucket before: a
    // viewer adds one per run of covered buckets, not one per bucket.
    let mut changes = vec![0i64; RETENTION_BUCKETS + 1];
    let mut dropoff = vec![0i64; RETENTION_BUCKETS];
    let buckets = RETENTION_BUCKETS as f64;
    for viewer in &watched {
        let mut covered = covered_buckets(&limits, viewer.intervals);
        while covered != 0 {
            let from = covered.trailing_zeros() as usize;
            let run = (covered >> from).trailing_ones() as usize;
            changes[from] += 1;
            changes[from + run] -= 1;
            covered &= !(mask(run) << from);
        }
        let bucket = ((buckets * viewer.max_position / duration).floor() as i64).clamp(0, RETENTION_BUCKETS as i64 - 1) as usize;
        dropoff[bucket] += 1;
    }
    let covering = changes[..RETENTION_BUCKETS]
        .iter()
        .scan(0i64, |viewers, change| {
            *viewers += change;
            Some(*viewers)
        })
        .collect();
    Some(RetentionPart {
        title_id: title_id.to_string(),
        viewers: covering,
        dropoff_viewers: dropoff,
        total_viewers: watched.len() as i64,
        customer_bucket,
    })
}

/// Slack for positions rounded on their way through the tables.
const COVERAGE_EPSILON: f64 = 1e-9;

/// A retention bucket's start and end in seconds of a title: what
/// `gold/video_retention` publishes, and what coverage is measured against.
pub fn retention_bucket_bounds(duration: f64, bucket: usize) -> (f64, f64) {
    let buckets = RETENTION_BUCKETS as f64;
    (duration * bucket as f64 / buckets, duration * (bucket + 1) as f64 / buckets)
}

/// Per retention bucket, the latest start and the earliest end of an
/// interval that covers it: (start + ε, end − ε) of the bucket.
fn coverage_limits(duration: f64) -> Vec<(f64, f64)> {
    (0..RETENTION_BUCKETS)
        .map(|bucket| {
            let (start, end) = retention_bucket_bounds(duration, bucket);
            (start + COVERAGE_EPSILON, end - COVERAGE_EPSILON)
        })
        .collect()
}

/// The buckets some interval (a, b) of the flat pairs covers whole (a ≤ the
/// bucket's start limit and its end limit ≤ b), as a mask. Both limits grow
/// with the bucket, so an interval covers one range of buckets, found by
/// bisection; a bucket two intervals cover counts once.
fn covered_buckets(limits: &[(f64, f64)], intervals: &[f64]) -> u128 {
    let mut covered = 0u128;
    for pair in intervals.chunks_exact(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.is_nan() {
            continue;
        }
        let from = limits.partition_point(|&(start, _)| start < a);
        let to = limits.partition_point(|&(_, end)| end <= b);
        if from < to {
            covered |= mask(to - from) << from;
        }
    }
    covered
}

/// The lowest `n` bits (1 ≤ n ≤ 128).
fn mask(n: usize) -> u128 {
    u128::MAX >> (128 - n)
}

/// One bucket's quality of service per hour of session start and the
/// session's ISP, device, country and (first) quality. Buffering and errors
/// are the session's last running totals; watch seconds are all of the
/// session's watched segments.
pub fn qos_parts(sessions: &[SessionRow]) -> Vec<QosPart> {
    // One entry per session (its first row): its facts are repeated on each
    // of its videos.
    let distinct = grouped(sessions, |s| session_id(s)).into_iter().map(|(_, rows)| rows[0]);
    grouped(distinct, |s| {
        let hour = s.session_start.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR;
        (hour, dim_str(&s.isp), dim_str(&s.device_type), dim_str(&s.country), dim_str(&s.quality))
    })
    .into_iter()
    .map(|((event_hour, isp, device_type, country, quality), rows)| {
        let bandwidths: Vec<f64> = rows.iter().filter_map(|s| s.session_avg_bandwidth_mbps).collect();
        QosPart {
            event_hour,
            isp: isp.to_string(),
            device_type: device_type.to_string(),
            country: country.to_string(),
            quality: quality.to_string(),
            sessions: rows.len() as i64,
            buffering_events: rows.iter().filter_map(|s| s.session_buffering_events).sum(),
            buffering_seconds: positive_zero(rows.iter().filter_map(|s| s.session_buffering_seconds).sum()),
            watch_seconds: positive_zero(rows.iter().map(|s| s.session_watched_seconds).sum()),
            sessions_with_errors: rows.iter().filter(|s| s.session_error_count.unwrap_or(0) > 0).count() as i64,
            bandwidth_sum: positive_zero(bandwidths.iter().sum()),
            bandwidth_count: bandwidths.len() as i64,
            event_date: rows[0].event_date,
            customer_bucket: rows[0].customer_bucket,
        }
    })
    .collect()
}

pub const INTERVAL_MICROS: i64 = 5 * 60 * 1_000_000;
pub const INTERVALS_PER_DAY: usize = 288;

/// One bucket's sessions playing (a watched segment overlapping in
/// wall-clock time) in each 5-minute interval of `day`; intervals with none
/// are left out.
pub fn concurrency_parts(day: i32, sessions: &[SessionRow], customer_bucket: i32) -> Vec<ConcurrencyPart> {
    let day_start = day as i64 * MICROS_PER_DAY;
    let mut counts = vec![0i64; INTERVALS_PER_DAY];
    // Counts add up in any order.
    let mut by_session: AHashMap<SessionId<'_>, Vec<i64>> = AHashMap::new();
    for s in sessions {
        by_session.entry(session_id(s)).or_default().extend(s.playing_intervals.iter().copied());
    }
    for flat in by_session.values() {
        let mut hit = [false; INTERVALS_PER_DAY];
        for pair in flat.chunks_exact(2) {
            let (start, end) = (pair[0], pair[1]);
            if end <= start || end <= day_start || start >= day_start + MICROS_PER_DAY {
                continue;
            }
            // Intervals [a, a + 5 min) with a < end and a + 5 min > start.
            let first = (start - day_start).div_euclid(INTERVAL_MICROS).max(0);
            let last = (end - 1 - day_start).div_euclid(INTERVAL_MICROS).min(INTERVALS_PER_DAY as i64 - 1);
            for i in first..=last {
                hit[i as usize] = true;
            }
        }
        for (count, h) in counts.iter_mut().zip(hit) {
            *count += i64::from(h);
        }
    }
    counts
        .into_iter()
        .enumerate()
        .filter(|(_, c)| *c > 0)
        .map(|(i, c)| ConcurrencyPart {
            interval_start: day_start + i as i64 * INTERVAL_MICROS,
            concurrent_sessions: c,
            event_date: day,
            customer_bucket,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_come_in_key_order_with_their_items_in_the_order_given() {
        let items = ["b1", "a1", "c1", "a2", "b2", "a3"];
        assert_eq!(grouped(items, |item| &item[..1]), vec![("a", vec!["a1", "a2", "a3"]), ("b", vec!["b1", "b2"]), ("c", vec!["c1"])]);
        assert!(grouped(Vec::<&str>::new(), |item| *item).is_empty());
        // As a BTreeMap groups them, with enough keys that a hash order is never the sorted one.
        let items: Vec<(u32, u32)> = (0..2000).map(|i| ((i * 7919) % 97, i)).collect();
        let mut expected: std::collections::BTreeMap<u32, Vec<(u32, u32)>> = Default::default();
        for item in &items {
            expected.entry(item.0).or_default().push(*item);
        }
        assert_eq!(grouped(items, |item| item.0), expected.into_iter().collect::<Vec<_>>());
    }

    fn peter() -> SessionRow {
        SessionRow {
            customer_id: "peter".into(),
            title_id: "video_001".into(),
            session_key: "s1".into(),
            session_start: 0,
            session_end: 140_000_000,
            first_playback_at: 0,
            last_playback_at: 140_000_000,
            playback_events: 6,
            pause_count: 3,
            seek_count: 0,
            forward_skips: 0,
            backward_skips: 1,
            complete_event: false,
            completed: false,
            watched_seconds: 130.0,
            max_position_seconds: 120.0,
            duration_seconds: Some(300.0),
            quality_flags: vec![],
            device_type: Some("tv".into()),
            country: None,
            isp: Some("Comcast".into()),
            quality: Some("HD".into()),
            session_buffering_events: Some(2),
            session_buffering_seconds: Some(10.0),
            session_error_count: Some(0),
            session_avg_bandwidth_mbps: Some(20.0),
            session_watched_seconds: 130.0,
            watched_intervals: vec![0.0, 120.0],
            playing_intervals: vec![0, 30_000_000, 35_000_000, 140_000_000],
            event_date: 0,
            customer_bucket: 7,
        }
    }

    fn metadata() -> Metadata {
        Metadata::parse(b"title_id,title,genre,creator,duration_seconds\nvideo_001,Worked Example,Documentary,Seed,300\n", "test").unwrap()
    }

    #[test]
    fn the_worked_example_gives_the_documented_figures() {
        let settings = MetricSettings::default();
        let facts = peter();
        let e = engagement(&[&facts], &settings, &metadata(), 1);
        assert_eq!(e.total_watch_seconds, 130.0);
        assert_eq!(e.unique_watch_seconds, 120.0);
        assert_eq!(e.max_position_seconds, 120.0);
        assert_eq!(format!("{:.2}", e.watch_percentage.unwrap()), "43.33");
        assert_eq!(format!("{:.2}", e.unique_watch_percentage.unwrap()), "40.00");
        assert_eq!(format!("{:.2}", e.completion_percentage.unwrap()), "40.00");
        assert_eq!((e.session_count, e.completion_count, e.pause_count), (1, 0, 3));
        assert!((e.engagement_score.unwrap() - 36.0).abs() < 1e-9);
        assert_eq!(e.engagement_tier, "Low");
        assert_eq!(e.title.as_deref(), Some("Worked Example"));
        assert!(e.quality_flags.is_empty());
    }

    #[test]
    fn replays_count_in_total_once_in_unique_and_flag_excess() {
        let settings = MetricSettings::default();
        let mut a = peter();
        a.watched_seconds = 300.0;
        a.watched_intervals = vec![0.0, 300.0];
        a.max_position_seconds = 300.0;
        a.completed = true;
        let mut b = a.clone();
        b.session_start = 10;
        let e = engagement(&[&a, &b], &settings, &metadata(), 1);
        assert_eq!((e.total_watch_seconds, e.unique_watch_seconds), (600.0, 300.0));
        assert_eq!(e.watch_percentage, Some(200.0));
        assert_eq!(e.engagement_score, Some(100.0));
        assert_eq!(e.engagement_tier, "High");
        assert_eq!(e.quality_flags, vec![WATCH_EXCEEDS_DURATION.to_string()]);
    }

    #[test]
    fn country_and_device_are_those_of_the_first_session_whatever_the_order() {
        let mut later = peter();
        later.session_start = 86_400_000_000;
        later.country = Some("DE".into());
        later.device_type = Some("mobile".into());
        let e = engagement(&[&later, &peter()], &MetricSettings::default(), &metadata(), 1);
        assert_eq!((e.country.as_str(), e.device_type.as_str()), ("unknown", "tv"));
    }

    #[test]
    fn sums_of_nothing_are_positive_zero() {
        let mut idle = peter();
        idle.watched_seconds = 0.0;
        idle.watched_intervals = vec![];
        idle.max_position_seconds = 0.0;
        let e = engagement(&[&idle], &MetricSettings::default(), &metadata(), 1);
        assert!(e.unique_watch_seconds.is_sign_positive() && e.total_watch_seconds.is_sign_positive());
        let parts = video_daily_parts(&[idle], &MetricSettings::default());
        assert!(parts[0].unique_watch_seconds.is_sign_positive());
    }

    #[test]
    fn video_daily_measures_each_viewer_on_their_own_sessions_of_the_group() {
        // A session of the worked example's video that watched [from, to].
        let watched = |customer: &str, key: &str, start: i64, from: f64, to: f64| SessionRow {
            customer_id: customer.into(),
            session_key: key.into(),
            session_start: start,
            watched_seconds: to - from,
            watched_intervals: vec![from, to],
            max_position_seconds: to,
            ..peter()
        };
        let again = watched("peter", "s2", 2, 100.0, 200.0);
        let other = watched("anna", "s1", 1, 0.0, 60.0);
        // Another country: a group of its own.
        let mut abroad = other.clone();
        abroad.session_key = "s3".into();
        abroad.session_start = 3;
        abroad.country = Some("DE".into());
        let parts = video_daily_parts(&[peter(), other, again, abroad], &MetricSettings::default());
        assert_eq!(parts.iter().map(|p| p.country.as_str()).collect::<Vec<_>>(), ["DE", "unknown"]);
        let p = &parts[1];
        assert_eq!((p.viewers, p.sessions, p.session_rows), (2, 3, 3));
        // peter: 130 + 100 watched, [0, 200] unique, reached 200; anna: 60, 60, 60.
        assert_eq!((p.total_watch_seconds, p.unique_watch_seconds), (290.0, 260.0));
        assert_eq!(p.watch_percentage_count, 2);
        assert!((p.watch_percentage_sum - (100.0 * 230.0 / 300.0 + 20.0)).abs() < 1e-9);
        assert!((p.completion_percentage_sum - (100.0 * 200.0 / 300.0 + 20.0)).abs() < 1e-9);
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
        // A second session of a title watched that day: one title more for nobody.
        let mut again = peter();
        again.session_key = "s2".into();
        let days = viewer_daily(&[peter(), other_title, next_day, other_viewer, again], 1);
        let got: Vec<(i32, &str, i64, i64, f64, i64)> = days
            .iter()
            .map(|d| (d.event_date, d.customer_id.as_str(), d.sessions, d.titles_watched, d.watch_seconds, d.completed_sessions))
            .collect();
        assert_eq!(got, vec![(0, "ana", 1, 1, 130.0, 0), (0, "peter", 3, 2, 390.0, 1), (1, "peter", 1, 1, 130.0, 0)]);
    }

    #[test]
    fn retention_counts_buckets_fully_covered_and_where_viewers_stopped() {
        let mk = |intervals: Vec<f64>, max: f64| {
            let mut e = engagement(&[&peter()], &MetricSettings::default(), &metadata(), 1);
            e.unique_watch_intervals = intervals;
            e.max_position_seconds = max;
            e
        };
        let (a, b, idle) = (mk(vec![0.0, 120.0], 120.0), mk(vec![0.0, 3.0, 150.0, 300.0], 300.0), mk(vec![], 0.0));
        let (a, b, idle) = (Viewing::of(&a), Viewing::of(&b), Viewing::of(&idle));
        let part = retention_part("video_001", 300.0, &[a, b, idle], 7).expect("two viewers watched");
        assert_eq!((part.viewers.len(), part.dropoff_viewers.len()), (100, 100));
        assert_eq!((part.viewers[0], part.viewers[39], part.viewers[40], part.viewers[60]), (2, 1, 0, 1));
        assert_eq!((part.dropoff_viewers[40], part.dropoff_viewers[99]), (1, 1));
        assert_eq!(part.total_viewers, 2, "a viewer who watched nothing is not counted");
        assert_eq!(retention_part("video_001", 300.0, &[idle], 7), None, "no part without a viewer who watched");
    }

    /// Randomized equivalence with the definition, bucket by bucket: a
    /// bucket is covered when some interval reaches from its start to its
    /// end (within ε). `STREAMREEL_FUZZ_SEED` reruns a printed seed.
    #[test]
    fn covered_buckets_agree_with_a_bucket_by_bucket_check() {
        use rand::{Rng, SeedableRng};
        let seed = streamreel_testkit::fuzz_seed();
        println!(
            "retention fuzz seed {seed}; rerun it: STREAMREEL_FUZZ_SEED={seed} cargo test --release -p gold-aggregate covered_buckets -- --nocapture"
        );
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let (mut partly, mut whole) = (0, 0);
        for case in 0..20_000 {
            let duration = match rng.random_range(0..4) {
                0 => rng.random_range(1..5_000) as f64,
                1 => rng.random_range(1e-9..1e-6),
                _ => rng.random_range(0.5..10_000.0),
            };
            // Positions on and near bucket edges, past either end, unsorted,
            // overlapping, reversed, and now and then not a number.
            let position = |rng: &mut rand_pcg::Pcg64| match rng.random_range(0..10) {
                0 => f64::NAN,
                1..=4 => duration * rng.random_range(0..=100) as f64 / 100.0 + rng.random_range(-2..=2) as f64 * 1e-9,
                _ => rng.random_range(-0.1..1.1) * duration,
            };
            let intervals: Vec<f64> = (0..rng.random_range(0..5) * 2).map(|_| position(&mut rng)).collect();
            let covered = covered_buckets(&coverage_limits(duration), &intervals);
            for bucket in 0..RETENTION_BUCKETS {
                let (from, to) = (duration * bucket as f64 / 100.0, duration * (bucket + 1) as f64 / 100.0);
                let expected = intervals.chunks_exact(2).any(|p| p[0] <= from + 1e-9 && to - 1e-9 <= p[1]);
                assert_eq!(
                    covered >> bucket & 1 == 1,
                    expected,
                    "seed {seed}, case {case}: bucket {bucket} of {duration} s, intervals {intervals:?}"
                );
            }
            match covered.count_ones() {
                0 => {}
                100 => whole += 1,
                _ => partly += 1,
            }
        }
        // Both kinds of answer given often: the comparison means something.
        assert!(partly > 2_000 && whole > 50, "partly {partly}, whole {whole}");
    }

    #[test]
    fn concurrency_counts_each_session_once_per_interval() {
        let mut a = peter();
        a.playing_intervals = vec![0, 60_000_000, 120_000_000, 400_000_000];
        let mut b = a.clone();
        b.session_key = "s2".into();
        b.playing_intervals = vec![300_000_000, 301_000_000];
        let rows = concurrency_parts(0, &[a, b], 7);
        let counts: Vec<(i64, i64)> = rows.iter().map(|r| (r.interval_start / INTERVAL_MICROS, r.concurrent_sessions)).collect();
        assert_eq!(counts, vec![(0, 1), (1, 2)], "a's two intervals in the first count once; empty intervals are left out");
    }

    #[test]
    fn qos_uses_each_session_once_and_its_running_totals() {
        let a = peter();
        let mut same_session_other_title = a.clone();
        same_session_other_title.title_id = "v2".into();
        let mut other_viewer_same_key = a.clone();
        other_viewer_same_key.customer_id = "ana".into();
        let rows = qos_parts(&[a, same_session_other_title, other_viewer_same_key]);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].sessions, rows[0].buffering_events), (2, 4), "sessions are per viewer");
        assert_eq!(rows[0].country, "unknown");
    }
}
