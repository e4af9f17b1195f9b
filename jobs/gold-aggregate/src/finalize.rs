//! `--finalize`: the title-level gold tables as the sums of their per-bucket
//! partials over every bucket (disjoint viewer sets add up), for the days
//! and titles the window changed. Runs once per window, after every gold
//! shard.

use std::collections::{BTreeMap, BTreeSet};

use streamreel_lake::rows::{encode, positive_zero};
use streamreel_lake::table::{CommitMeta, PartitionKey, Table, date_value};
use streamreel_lake::time::MICROS_PER_DAY;
use streamreel_lake::{LakeError, Location};
use streamreel_tables::Metadata;
use streamreel_tables::gold::{
    CONCURRENCY, CONCURRENCY_PARTS, ConcurrencyPart, ConcurrencyRow, QOS_HOURLY, QOS_HOURLY_PARTS, QosPart, QosRow, RETENTION, RETENTION_BUCKETS,
    RETENTION_PARTS, RetentionPart, RetentionRow, VIDEO_DAILY, VIDEO_DAILY_PARTS, VideoDailyPart, VideoDailyRow,
};
use streamreel_tables::silver::day_and_bucket;

use crate::changes::Touched;
use crate::metrics::{INTERVAL_MICROS, INTERVALS_PER_DAY, retention_bucket_bounds};
use crate::shard::read_rows;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct FinalizeCounts {
    pub days: u64,
    pub titles: u64,
}

pub async fn run(
    lake: &Location,
    buckets: u32,
    metadata: &Metadata,
    touched: &Touched,
    loaded_at: i64,
    meta: &CommitMeta,
) -> Result<FinalizeCounts, LakeError> {
    let Touched { start_days: days, playing_days, titles, .. } = touched;
    let mut video_daily = Table::open(lake, &VIDEO_DAILY, buckets).await?;
    let mut qos = Table::open(lake, &QOS_HOURLY, buckets).await?;
    let mut concurrency = Table::open(lake, &CONCURRENCY, buckets).await?;
    let mut retention = Table::open(lake, &RETENTION, buckets).await?;
    let day_keys = |days: &BTreeSet<i32>| -> BTreeSet<PartitionKey> { days.iter().map(|d| vec![Some(date_value(*d))]).collect() };
    let in_days = |days: &BTreeSet<i32>| {
        let days = days.clone();
        move |key: &PartitionKey| day_and_bucket(key).is_some_and(|(d, _)| days.contains(&d))
    };

    let mut parts: Vec<VideoDailyPart> = read_rows(&Table::open(lake, &VIDEO_DAILY_PARTS, buckets).await?, in_days(days)).await?;
    parts.sort_by_key(|p| p.customer_bucket);
    let rows = sum_video_daily(&parts, metadata, loaded_at);
    let change = video_daily.replace_partitions(day_keys(days), &[encode(&VIDEO_DAILY.schema, &rows)?]).await?;
    video_daily.commit(change, meta).await?;

    let mut parts: Vec<QosPart> = read_rows(&Table::open(lake, &QOS_HOURLY_PARTS, buckets).await?, in_days(days)).await?;
    parts.sort_by_key(|p| p.customer_bucket);
    let rows = sum_qos(&parts, loaded_at);
    let change = qos.replace_partitions(day_keys(days), &[encode(&QOS_HOURLY.schema, &rows)?]).await?;
    qos.commit(change, meta).await?;

    let parts: Vec<ConcurrencyPart> = read_rows(&Table::open(lake, &CONCURRENCY_PARTS, buckets).await?, in_days(playing_days)).await?;
    let rows = sum_concurrency(&parts, playing_days, loaded_at);
    let change = concurrency.replace_partitions(day_keys(playing_days), &[encode(&CONCURRENCY.schema, &rows)?]).await?;
    concurrency.commit(change, meta).await?;

    // The retention table is one file: rewritten only when a title changed.
    if !titles.is_empty() {
        let mut parts: Vec<RetentionPart> = read_rows(&Table::open(lake, &RETENTION_PARTS, buckets).await?, |_| true).await?;
        parts.retain(|p| titles.contains(&p.title_id));
        let stored: Vec<RetentionRow> = read_rows(&retention, |_| true).await?;
        let mut rows: Vec<RetentionRow> = stored.into_iter().filter(|r| !titles.contains(&r.title_id)).collect();
        rows.extend(sum_retention(&parts, metadata, loaded_at));
        let change = retention.replace_partitions(BTreeSet::from([Vec::new()]), &[encode(&RETENTION.schema, &rows)?]).await?;
        retention.commit(change, meta).await?;
    }

    Ok(FinalizeCounts { days: days.union(playing_days).count() as u64, titles: titles.len() as u64 })
}

fn sum_video_daily(parts: &[VideoDailyPart], metadata: &Metadata, loaded_at: i64) -> Vec<VideoDailyRow> {
    let mut groups: BTreeMap<(i32, &str, &str, &str), Vec<&VideoDailyPart>> = BTreeMap::new();
    for p in parts {
        groups.entry((p.event_date, &p.title_id, &p.country, &p.device_type)).or_default().push(p);
    }
    groups
        .into_iter()
        .map(|((event_date, title_id, country, device_type), group)| {
            let total = |f: fn(&VideoDailyPart) -> i64| group.iter().map(|p| f(p)).sum::<i64>();
            let sum = |f: fn(&VideoDailyPart) -> f64| group.iter().map(|p| f(p)).sum::<f64>();
            let mean = |s: f64, n: i64| (n > 0).then(|| positive_zero(s / n as f64));
            let video = metadata.get(title_id);
            VideoDailyRow {
                event_date,
                title_id: title_id.to_string(),
                title: video.and_then(|v| v.title.clone()),
                genre: video.and_then(|v| v.genre.clone()),
                creator: video.and_then(|v| v.creator.clone()),
                country: country.to_string(),
                device_type: device_type.to_string(),
                viewers: total(|p| p.viewers),
                sessions: total(|p| p.sessions),
                total_watch_hours: positive_zero(sum(|p| p.total_watch_seconds) / 3600.0),
                unique_watch_hours: positive_zero(sum(|p| p.unique_watch_seconds) / 3600.0),
                avg_watch_percentage: mean(sum(|p| p.watch_percentage_sum), total(|p| p.watch_percentage_count)),
                avg_completion_percentage: mean(sum(|p| p.completion_percentage_sum), total(|p| p.completion_percentage_count)),
                completion_rate: positive_zero(total(|p| p.completed_rows) as f64 / total(|p| p.session_rows).max(1) as f64),
                avg_engagement_score: mean(sum(|p| p.engagement_score_sum), total(|p| p.engagement_score_count)),
                _loaded_at: loaded_at,
            }
        })
        .collect()
}

fn sum_qos(parts: &[QosPart], loaded_at: i64) -> Vec<QosRow> {
    let mut groups: BTreeMap<(i64, &str, &str, &str, &str), Vec<&QosPart>> = BTreeMap::new();
    for p in parts {
        groups.entry((p.event_hour, &p.isp, &p.device_type, &p.country, &p.quality)).or_default().push(p);
    }
    groups
        .into_iter()
        .map(|((event_hour, isp, device_type, country, quality), group)| {
            let buffering_seconds = positive_zero(group.iter().map(|p| p.buffering_seconds).sum());
            let watch_seconds = positive_zero(group.iter().map(|p| p.watch_seconds).sum());
            let bandwidth_count: i64 = group.iter().map(|p| p.bandwidth_count).sum();
            QosRow {
                event_hour,
                isp: isp.to_string(),
                device_type: device_type.to_string(),
                country: country.to_string(),
                quality: quality.to_string(),
                sessions: group.iter().map(|p| p.sessions).sum(),
                buffering_events: group.iter().map(|p| p.buffering_events).sum(),
                buffering_seconds,
                watch_seconds,
                rebuffer_ratio: (buffering_seconds + watch_seconds > 0.0)
                    .then(|| positive_zero(buffering_seconds / (buffering_seconds + watch_seconds))),
                sessions_with_errors: group.iter().map(|p| p.sessions_with_errors).sum(),
                avg_bandwidth_mbps: (bandwidth_count > 0)
                    .then(|| positive_zero(group.iter().map(|p| p.bandwidth_sum).sum::<f64>() / bandwidth_count as f64)),
                event_date: group[0].event_date,
                _loaded_at: loaded_at,
            }
        })
        .collect()
}

/// Every 5-minute interval of each day with playing sessions, zeros
/// included, and the day's peak.
fn sum_concurrency(parts: &[ConcurrencyPart], days: &BTreeSet<i32>, loaded_at: i64) -> Vec<ConcurrencyRow> {
    let mut counts: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for p in parts.iter().filter(|p| days.contains(&p.event_date)) {
        let day_start = p.event_date as i64 * MICROS_PER_DAY;
        let slot = ((p.interval_start - day_start) / INTERVAL_MICROS) as usize;
        counts.entry(p.event_date).or_insert_with(|| vec![0; INTERVALS_PER_DAY])[slot] += p.concurrent_sessions;
    }
    let mut rows = Vec::new();
    for (day, slots) in counts {
        let peak = slots.iter().copied().max().unwrap_or(0);
        let day_start = day as i64 * MICROS_PER_DAY;
        rows.extend(slots.into_iter().enumerate().map(|(i, c)| ConcurrencyRow {
            interval_start: day_start + i as i64 * INTERVAL_MICROS,
            concurrent_sessions: c,
            daily_peak_sessions: peak,
            is_daily_peak: peak > 0 && c == peak,
            event_date: day,
            _loaded_at: loaded_at,
        }));
    }
    rows
}

fn sum_retention(parts: &[RetentionPart], metadata: &Metadata, loaded_at: i64) -> Vec<RetentionRow> {
    let mut titles: BTreeMap<&str, (Vec<i64>, Vec<i64>, i64)> = BTreeMap::new();
    for p in parts {
        let (viewers, dropoff, total) = titles.entry(&p.title_id).or_insert_with(|| (vec![0; RETENTION_BUCKETS], vec![0; RETENTION_BUCKETS], 0));
        viewers.iter_mut().zip(&p.viewers).for_each(|(sum, v)| *sum += v);
        dropoff.iter_mut().zip(&p.dropoff_viewers).for_each(|(sum, v)| *sum += v);
        *total += p.total_viewers;
    }
    let mut rows = Vec::new();
    for (title_id, (viewers, dropoff, total_viewers)) in titles {
        let Some(duration) = metadata.duration(title_id) else { continue };
        let title = metadata.get(title_id).and_then(|v| v.title.clone());
        let at_zero = viewers[0];
        rows.extend((0..RETENTION_BUCKETS).map(|bucket| {
            let (bucket_start_seconds, bucket_end_seconds) = retention_bucket_bounds(duration, bucket);
            RetentionRow {
                title_id: title_id.to_string(),
                title: title.clone(),
                bucket: bucket as i32,
                bucket_start_seconds,
                bucket_end_seconds,
                viewers: viewers[bucket],
                retention_share: (at_zero > 0).then(|| viewers[bucket] as f64 / at_zero as f64),
                dropoff_viewers: dropoff[bucket],
                total_viewers,
                _loaded_at: loaded_at,
            }
        }));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partials_of_disjoint_buckets_add_up() {
        let part = |bucket: i32, viewers: i64, watch: f64| VideoDailyPart {
            event_date: 0,
            title_id: "t".into(),
            country: "DE".into(),
            device_type: "tv".into(),
            viewers,
            sessions: viewers,
            session_rows: viewers,
            completed_rows: 1,
            total_watch_seconds: watch,
            unique_watch_seconds: watch,
            watch_percentage_sum: 50.0 * viewers as f64,
            watch_percentage_count: viewers,
            completion_percentage_sum: 0.0,
            completion_percentage_count: 0,
            engagement_score_sum: 0.0,
            engagement_score_count: 0,
            customer_bucket: bucket,
        };
        let rows = sum_video_daily(&[part(1, 2, 3600.0), part(5, 1, 1800.0)], &Metadata::default(), 9);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].viewers, rows[0].total_watch_hours, rows[0].avg_watch_percentage), (3, 1.5, Some(50.0)));
        assert_eq!(rows[0].completion_rate, 2.0 / 3.0);
        assert_eq!(rows[0].avg_completion_percentage, None);
    }

    #[test]
    fn concurrency_fills_every_interval_of_a_day_and_marks_the_peak() {
        let part = |slot: i64, n: i64, bucket: i32| ConcurrencyPart {
            interval_start: slot * INTERVAL_MICROS,
            concurrent_sessions: n,
            event_date: 0,
            customer_bucket: bucket,
        };
        let rows = sum_concurrency(&[part(3, 1, 0), part(3, 2, 1), part(5, 1, 0)], &BTreeSet::from([0, 1]), 9);
        assert_eq!(rows.len(), INTERVALS_PER_DAY, "a day without playing sessions has no rows");
        assert_eq!((rows[3].concurrent_sessions, rows[3].is_daily_peak, rows[5].is_daily_peak, rows[0].daily_peak_sessions), (3, true, false, 3));
    }
}
