//! A gold shard's work: for every customer bucket the window changed, the
//! per-viewer rows (`user_video_engagement`, `viewer_daily`) and the
//! bucket's partial sums of the title-level tables, recomputed from
//! `silver/watch_sessions` for exactly the keys and days that changed, then
//! one partition-replacing commit per table.

use std::collections::BTreeSet;

use ahash::{AHashMap, AHashSet};
use futures::future::try_join_all;
use streamreel_lake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use streamreel_lake::arrow::compute::filter_record_batch;
use streamreel_lake::arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use streamreel_lake::config::MetricSettings;
use streamreel_lake::cores::map_on_cores;
use streamreel_lake::rows::{decode, encode};
use streamreel_lake::table::key_filter::text_key;
use streamreel_lake::table::{CommitMeta, PartitionKey, Table};
use streamreel_lake::time::day_of;
use streamreel_lake::{LakeError, Location};
use streamreel_tables::Metadata;
use streamreel_tables::gold::{
    CONCURRENCY_PARTS, ConcurrencyPart, ENGAGEMENT, EngagementRow, QOS_HOURLY_PARTS, QosPart, RETENTION_PARTS, RetentionPart, VIDEO_DAILY_PARTS,
    VIEWER_DAILY, VideoDailyPart, ViewerDailyRow,
};
use streamreel_tables::silver::{SESSIONS, SessionRow, partition};

use crate::changes::{BucketChanges, Changes};
use crate::metrics::{Viewing, concurrency_parts, engagement, grouped, qos_parts, retention_part, video_daily_parts, viewer_daily};

/// What a shard run wrote.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ShardCounts {
    pub buckets: u64,
    pub viewer_videos: u64,
    pub days: u64,
}

/// The gold tables a shard writes, at the snapshot its plan is made from.
struct Tables {
    engagement: Table,
    viewer_daily: Table,
    video_daily_parts: Table,
    qos_parts: Table,
    concurrency_parts: Table,
    retention_parts: Table,
    sessions: Table,
}

/// Every row a shard will write, by table, and the partitions each replaces.
#[derive(Default)]
struct Outputs {
    /// The kept rows as read, and the recomputed ones.
    engagement: Vec<RecordBatch>,
    viewer_daily: Vec<ViewerDailyRow>,
    video_daily_parts: Vec<VideoDailyPart>,
    qos_parts: Vec<QosPart>,
    concurrency_parts: Vec<ConcurrencyPart>,
    retention_parts: Vec<RetentionPart>,
    bucket_partitions: BTreeSet<PartitionKey>,
    day_partitions: BTreeSet<PartitionKey>,
    playing_partitions: BTreeSet<PartitionKey>,
    counts: ShardCounts,
}

impl Outputs {
    /// Appends one bucket's outputs after those already held.
    fn add(&mut self, bucket: Outputs) {
        self.engagement.extend(bucket.engagement);
        self.viewer_daily.extend(bucket.viewer_daily);
        self.video_daily_parts.extend(bucket.video_daily_parts);
        self.qos_parts.extend(bucket.qos_parts);
        self.concurrency_parts.extend(bucket.concurrency_parts);
        self.retention_parts.extend(bucket.retention_parts);
        self.bucket_partitions.extend(bucket.bucket_partitions);
        self.day_partitions.extend(bucket.day_partitions);
        self.playing_partitions.extend(bucket.playing_partitions);
        self.counts.buckets += bucket.counts.buckets;
        self.counts.viewer_videos += bucket.counts.viewer_videos;
        self.counts.days += bucket.counts.days;
    }
}

pub struct ShardInput<'a> {
    pub lake: &'a Location,
    pub buckets: u32,
    pub settings: &'a MetricSettings,
    pub metadata: &'a Metadata,
    pub loaded_at: i64,
    pub meta: CommitMeta,
}

/// Recomputes and replaces every partition the changes touch.
pub async fn run(input: &ShardInput<'_>, changes: &Changes) -> Result<ShardCounts, LakeError> {
    // Output tables first: any gold run that committed since read silver
    // before these snapshots, and a later one conflicts with this run.
    let mut tables = Tables {
        engagement: Table::open(input.lake, &ENGAGEMENT, input.buckets).await?,
        viewer_daily: Table::open(input.lake, &VIEWER_DAILY, input.buckets).await?,
        video_daily_parts: Table::open(input.lake, &VIDEO_DAILY_PARTS, input.buckets).await?,
        qos_parts: Table::open(input.lake, &QOS_HOURLY_PARTS, input.buckets).await?,
        concurrency_parts: Table::open(input.lake, &CONCURRENCY_PARTS, input.buckets).await?,
        retention_parts: Table::open(input.lake, &RETENTION_PARTS, input.buckets).await?,
        sessions: Table::open(input.lake, &SESSIONS, input.buckets).await?,
    };
    let mut out = Outputs::default();
    // A few buckets at a time: their reads overlap, then each core computes
    // one bucket; the outputs join in bucket order, so the files written do
    // not depend on the number of cores.
    let changed: Vec<(u32, &BucketChanges)> = changes.buckets.iter().map(|(&bucket, changed)| (bucket, changed)).collect();
    for group in changed.chunks(BUCKETS_AT_ONCE) {
        let reads = try_join_all(group.iter().map(|&(bucket, changed)| read_bucket(&tables, bucket, changed))).await?;
        for computed in map_on_cores(&reads, |read| compute_bucket(input, read)) {
            out.add(computed?);
        }
    }
    let meta = &input.meta;
    let change = tables.engagement.replace_partitions(out.bucket_partitions.clone(), &out.engagement).await?;
    tables.engagement.commit(change, meta).await?;
    let change =
        tables.retention_parts.replace_partitions(out.bucket_partitions.clone(), &[encode(&RETENTION_PARTS.schema, &out.retention_parts)?]).await?;
    tables.retention_parts.commit(change, meta).await?;
    let change = tables.viewer_daily.replace_partitions(out.day_partitions.clone(), &[encode(&VIEWER_DAILY.schema, &out.viewer_daily)?]).await?;
    tables.viewer_daily.commit(change, meta).await?;
    let change = tables
        .video_daily_parts
        .replace_partitions(out.day_partitions.clone(), &[encode(&VIDEO_DAILY_PARTS.schema, &out.video_daily_parts)?])
        .await?;
    tables.video_daily_parts.commit(change, meta).await?;
    let change = tables.qos_parts.replace_partitions(out.day_partitions.clone(), &[encode(&QOS_HOURLY_PARTS.schema, &out.qos_parts)?]).await?;
    tables.qos_parts.commit(change, meta).await?;
    let change = tables
        .concurrency_parts
        .replace_partitions(out.playing_partitions.clone(), &[encode(&CONCURRENCY_PARTS.schema, &out.concurrency_parts)?])
        .await?;
    tables.concurrency_parts.commit(change, meta).await?;
    Ok(out.counts)
}

/// Buckets read together and then computed one per core: enough to keep
/// both busy, few enough that their sessions stay a small part of memory.
const BUCKETS_AT_ONCE: usize = 8;

/// What one bucket's recomputation reads: its stored engagement and
/// retention partials, and the sessions the changed keys and days need.
struct BucketRead<'a> {
    bucket: u32,
    changed: &'a BucketChanges,
    /// The changed (customer, title) pairs.
    pairs: AHashSet<(&'a str, &'a str)>,
    stored: Vec<RecordBatch>,
    stored_parts: Vec<RecordBatch>,
    sessions: Vec<RecordBatch>,
}

/// One bucket's reads: every row of the bucket's engagement and retention
/// partitions, and the sessions of its changed days and viewer-videos.
async fn read_bucket<'a>(tables: &Tables, bucket: u32, changed: &'a BucketChanges) -> Result<BucketRead<'a>, LakeError> {
    let bucket_key = vec![Some(bucket.to_string())];
    let stored: Vec<RecordBatch> = tables.engagement.scan(tables.engagement.files_where(|key| key == &bucket_key)).read().await?;
    // Every session of the days the changes touch (the daily tables), and
    // of a changed viewer-video the sessions of every day its stored row
    // spans (a session may start the day before its first playback): of
    // those days, only the files whose key filter may hold a changed pair.
    let mut whole_days: BTreeSet<i32> = changed.start_days.clone();
    whole_days.extend(changed.playing_days.iter().flat_map(|d| [d - 1, *d]));
    let pairs = changed.pairs();
    let mut span_days: BTreeSet<i32> = BTreeSet::new();
    for batch in filter_pairs(&stored, |customer, title| pairs.contains(&(customer, title)))? {
        let time = |name: &str| {
            batch.column_by_name(name).map(|c| c.as_primitive::<TimestampMicrosecondType>()).ok_or_else(|| LakeError::data(name, "no such column"))
        };
        for (first, last) in time("first_watched_at")?.values().iter().zip(time("last_watched_at")?.values()) {
            span_days.extend(day_of(*first) - 1..=day_of(*last));
        }
    }
    let whole_keys: BTreeSet<PartitionKey> = whole_days.iter().map(|d| partition(*d, bucket)).collect();
    let span_keys: BTreeSet<PartitionKey> = span_days.difference(&whole_days).map(|d| partition(*d, bucket)).collect();
    let pair_keys: Vec<u64> = changed.viewer_titles.iter().map(|(customer, title)| text_key(&[customer, title])).collect();
    let mut files = tables.sessions.files_where(|key| whole_keys.contains(key));
    files.extend(tables.sessions.files_where(|key| span_keys.contains(key)).into_iter().filter(|file| file.may_hold_any(&pair_keys)));
    let sessions = tables.sessions.scan(files).read().await?;
    let stored_parts = tables.retention_parts.scan(tables.retention_parts.files_where(|key| key == &bucket_key)).read().await?;
    Ok(BucketRead { bucket, changed, pairs, stored, stored_parts, sessions })
}

/// One bucket's rows, from what `read_bucket` read: its whole engagement and
/// retention partitions, and the rows of its changed days. Pure: no I/O.
fn compute_bucket(input: &ShardInput<'_>, read: &BucketRead<'_>) -> Result<Outputs, LakeError> {
    let BucketRead { bucket, changed, ref pairs, .. } = *read;
    let mut out = Outputs::default();
    let bucket_key = vec![Some(bucket.to_string())];
    // The bucket's stored rows stay Arrow batches: only the rows of changed
    // viewer-videos (and, for retention, of changed titles) are decoded, so
    // an hour's cost does not grow with every viewer-video ever seen.
    let kept: Vec<RecordBatch> = filter_pairs(&read.stored, |customer, title| !pairs.contains(&(customer, title)))?;
    let mut sessions: Vec<SessionRow> = Vec::with_capacity(read.sessions.iter().map(|b| b.num_rows()).sum());
    for batch in &read.sessions {
        sessions.extend(SessionRow::from_batch(batch)?);
    }
    // Every sum then adds in one order, whatever the files' layout.
    sessions.sort_by(|a, b| {
        (a.session_start, &a.customer_id, &a.session_key, &a.title_id).cmp(&(b.session_start, &b.customer_id, &b.session_key, &b.title_id))
    });

    let changed_sessions = sessions.iter().filter(|s| pairs.contains(&(s.customer_id.as_str(), s.title_id.as_str())));
    let by_key = grouped(changed_sessions, |s| (s.customer_id.as_str(), s.title_id.as_str()));
    let fresh: Vec<EngagementRow> = by_key.iter().map(|(_, own)| engagement(own, input.settings, input.metadata, input.loaded_at)).collect();
    out.counts.viewer_videos += fresh.len() as u64;

    // Retention of the changed titles, from every viewer of the bucket.
    let stored_parts: Vec<RetentionPart> = decode_all(&read.stored_parts)?;
    out.retention_parts.extend(stored_parts.into_iter().filter(|p| !changed.titles.contains(&p.title_id)));
    let titles: AHashSet<&str> = changed.titles.iter().map(String::as_str).collect();
    let mut viewers_of: AHashMap<&str, Vec<Viewing<'_>>> = AHashMap::new();
    // The stored viewer-videos of the changed titles are read in place: a
    // zapping bucket holds tens of thousands, and decoding whole rows for
    // two of their columns was a sixth of a busy hour's gold.
    for batch in &kept {
        for (title, viewing) in viewings(batch)? {
            if titles.contains(title) {
                viewers_of.entry(title).or_default().push(viewing);
            }
        }
    }
    for row in fresh.iter().filter(|r| titles.contains(r.title_id.as_str())) {
        viewers_of.entry(row.title_id.as_str()).or_default().push(Viewing::of(row));
    }
    for title in &changed.titles {
        if let (Some(duration), Some(viewers)) = (input.metadata.duration(title), viewers_of.get(title.as_str())) {
            out.retention_parts.extend(retention_part(title, duration, viewers, bucket as i32));
        }
    }
    out.engagement.extend(kept);
    out.engagement.push(EngagementRow::batch(&fresh)?);
    out.bucket_partitions.insert(bucket_key);

    // A session's event_date is the day it starts, so the sessions, sorted
    // by start, hold each day's sessions as one slice.
    let days = |first: i32, last: i32| -> &[SessionRow] {
        &sessions[sessions.partition_point(|s| s.event_date < first)..sessions.partition_point(|s| s.event_date <= last)]
    };
    for &day in &changed.start_days {
        let of_day = days(day, day);
        out.viewer_daily.extend(viewer_daily(of_day, input.loaded_at));
        out.video_daily_parts.extend(video_daily_parts(of_day, input.settings));
        out.qos_parts.extend(qos_parts(of_day));
        out.day_partitions.insert(partition(day, bucket));
    }
    for &day in &changed.playing_days {
        out.concurrency_parts.extend(concurrency_parts(day, days(day - 1, day), bucket as i32));
        out.playing_partitions.insert(partition(day, bucket));
    }
    out.counts.buckets += 1;
    out.counts.days += changed.start_days.union(&changed.playing_days).count() as u64;
    Ok(out)
}

/// Every row of the table's partitions that `keep` selects.
pub async fn read_rows<T: serde::de::DeserializeOwned>(table: &Table, keep: impl Fn(&PartitionKey) -> bool) -> Result<Vec<T>, LakeError> {
    decode_all(&table.scan(table.files_where(keep)).read().await?)
}

/// The rows of `batches` whose (`customer_id`, `title_id`) `keep` selects,
/// still as Arrow.
fn filter_pairs(batches: &[RecordBatch], keep: impl Fn(&str, &str) -> bool) -> Result<Vec<RecordBatch>, LakeError> {
    let mut kept = Vec::with_capacity(batches.len());
    for batch in batches {
        let column = |name: &str| batch.column_by_name(name).map(|c| c.as_string::<i32>()).ok_or_else(|| LakeError::data(name, "no such column"));
        let (customers, titles) = (column("customer_id")?, column("title_id")?);
        let mask: BooleanArray = customers.iter().zip(titles.iter()).map(|(c, t)| Some(keep(c.unwrap_or(""), t.unwrap_or("")))).collect();
        let batch = filter_record_batch(batch, &mask).map_err(|e| LakeError::data("filtering rows", e))?;
        if batch.num_rows() > 0 {
            kept.push(batch);
        }
    }
    Ok(kept)
}

/// Each stored engagement row's title and what retention reads of it,
/// borrowed from the batch's columns: of the table's types and without
/// nulls, as decoding the rows required.
fn viewings(batch: &RecordBatch) -> Result<impl Iterator<Item = (&str, Viewing<'_>)>, LakeError> {
    let wrong = |name: &str| LakeError::data(format!("{} {name}", ENGAGEMENT.path), "missing, holding nulls or not of the table's type");
    let column = |name: &str| batch.column_by_name(name).filter(|c| c.null_count() == 0).ok_or_else(|| wrong(name));
    let titles = column("title_id")?.as_string_opt::<i32>().ok_or_else(|| wrong("title_id"))?;
    let intervals = column("unique_watch_intervals")?.as_list_opt::<i32>().ok_or_else(|| wrong("unique_watch_intervals"))?;
    let points = intervals.values().as_primitive_opt::<Float64Type>().filter(|p| p.null_count() == 0);
    let points = points.ok_or_else(|| wrong("unique_watch_intervals"))?.values();
    let furthest = column("max_position_seconds")?.as_primitive_opt::<Float64Type>().ok_or_else(|| wrong("max_position_seconds"))?;
    Ok((0..batch.num_rows()).map(move |i| {
        let range = intervals.value_offsets()[i] as usize..intervals.value_offsets()[i + 1] as usize;
        (titles.value(i), Viewing { intervals: &points[range], max_position: furthest.value(i) })
    }))
}

/// Every row of `batches`, decoded.
fn decode_all<T: serde::de::DeserializeOwned>(batches: &[RecordBatch]) -> Result<Vec<T>, LakeError> {
    let mut rows = Vec::new();
    for batch in batches {
        rows.extend(decode::<T>(batch)?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use streamreel_lake::arrow::array::{ArrayRef, Float64Array, Float64Builder, ListBuilder, StringArray};

    use super::*;

    #[test]
    fn stored_viewings_are_read_in_place_row_by_row() {
        let rows: [(&str, &[f64], f64); 4] =
            [("t1", &[0.0, 5.0], 5.0), ("t2", &[], 0.0), ("t3", &[1.0, 2.0, 4.0, 9.5], 9.5), ("t4", &[3.0, 4.0], 7.0)];
        let mut intervals = ListBuilder::new(Float64Builder::new());
        for (_, points, _) in rows {
            intervals.values().append_slice(points);
            intervals.append(true);
        }
        let batch = RecordBatch::try_from_iter(vec![
            ("title_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef),
            ("unique_watch_intervals", Arc::new(intervals.finish()) as ArrayRef),
            ("max_position_seconds", Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef),
        ])
        .unwrap();
        let expected: Vec<(&str, Viewing<'_>)> =
            rows.iter().map(|&(title, intervals, max_position)| (title, Viewing { intervals, max_position })).collect();
        assert_eq!(viewings(&batch).unwrap().collect::<Vec<_>>(), expected);
        // A slice's offsets point into the whole list's values.
        let slice = batch.slice(1, 3);
        assert_eq!(viewings(&slice).unwrap().collect::<Vec<_>>(), expected[1..]);
        // A column of another type, or holding nulls, is an error that names it.
        let with = |name: &str, column: ArrayRef| {
            let mut columns: Vec<(&str, ArrayRef)> =
                ["title_id", "unique_watch_intervals", "max_position_seconds"].into_iter().zip(batch.columns().iter().cloned()).collect();
            columns.iter_mut().find(|(n, _)| *n == name).expect("a column").1 = column;
            RecordBatch::try_from_iter(columns).unwrap()
        };
        let error = |batch: RecordBatch| viewings(&batch).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error(with("title_id", Arc::new(Float64Array::from(vec![1.0; 4])))).contains("title_id"));
        let positions = Float64Array::from(vec![Some(1.0), None, Some(2.0), Some(3.0)]);
        assert!(error(with("max_position_seconds", Arc::new(positions))).contains("max_position_seconds"));
    }
}
