//! The gold run: reads which sessions the window's silver runs rewrote (the
//! silver change log), recomputes exactly the gold keys they touch from
//! `silver/watch_sessions`, and replaces those keys' rows.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Instant;

use deltalake::kernel::LogicalFileView;
use serde::Serialize;
use silver_enrich::enrich::Metadata;
use silver_enrich::schema::{CHANGES, SESSIONS};
use streamreel_lake::arrow::array::{
    ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Float64Builder, Int32Array, Int64Array,
    ListBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use streamreel_lake::arrow::compute::{concat_batches, filter_record_batch};
use streamreel_lake::arrow::datatypes::{Float64Type, SchemaRef, TimestampMicrosecondType};
use streamreel_lake::delta::{PartitionValue, RowFilterSpec, Table, TableSpec, day_of, days_to_date};
use streamreel_lake::storage::Location;
use streamreel_lake::window::format_hour;
use streamreel_lake::{Config, LakeError, Window};
use tracing::{Instrument, info, info_span};

use crate::error::GoldError;
use crate::facts::{SESSION_COLUMNS, SessionFacts, from_batch};
use crate::metrics::{self, Engagement, concurrency, engagement, qos_hourly, retention, video_daily, viewer_daily};
use crate::schema::{CONCURRENCY, ENGAGEMENT, EVENT_DATE, QOS_HOURLY, RETENTION, VIDEO_DAILY, VIEWER_DAILY};

#[derive(Debug, Clone, Default, Serialize)]
pub struct GoldReport {
    pub worker: &'static str,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
    /// Where the gold tables are: what the DAG's dbt task reads.
    pub lake_url: String,
    pub sessions_changed: u64,
    pub viewer_videos_recomputed: u64,
    pub titles_recomputed: u64,
    pub days_recomputed: u64,
    pub engagement_rows: u64,
    pub seconds: f64,
}

impl GoldReport {
    pub fn summary(&self) -> String {
        format!(
            "gold-aggregate {}..{}: {} changed sessions, {} viewer-videos, {} titles and {} days recomputed ({} engagement rows in all), {:.2} s",
            self.window_start,
            self.window_end,
            self.sessions_changed,
            self.viewer_videos_recomputed,
            self.titles_recomputed,
            self.days_recomputed,
            self.engagement_rows,
            self.seconds
        )
    }
}

/// What the window's silver runs touched.
#[derive(Default)]
struct Touched {
    viewer_videos: BTreeSet<(String, String)>,
    titles: BTreeSet<String>,
    /// Days of session start: video_daily and qos_hourly.
    start_days: BTreeSet<i32>,
    /// Days a touched session played in: concurrency.
    playing_days: BTreeSet<i32>,
    sessions: usize,
}

pub async fn run(config: &Config, window: Window, run_id: &str) -> Result<GoldReport, GoldError> {
    let started = Instant::now();
    let lake = Location::parse(&config.lake_url)?;
    let span = info_span!("gold_aggregate", window = %window, table = %lake.join(ENGAGEMENT.path));
    async move {
        let metadata = Metadata::parse(&Location::read_file(&config.metadata_url).await?, &config.metadata_url)?;
        let loaded_at = chrono::Utc::now().timestamp_micros();
        let changes = Table::open_or_create(&lake, &CHANGES).await?;
        let sessions = Table::open_or_create(&lake, &SESSIONS).await?;
        let touched = read_changes(&changes, window).await?;
        info!(sessions = touched.sessions, viewer_videos = touched.viewer_videos.len(), days = touched.start_days.len(), "read the silver change log");

        // user_video_engagement: recompute the touched viewer-videos from all
        // of their sessions; every other row is carried over unchanged.
        let mut engagement_table = Table::open_or_create(&lake, &ENGAGEMENT).await?;
        let existing = engagement_table.read(&engagement_table.files()?, None).await?;
        let existing = concat_batches(&ENGAGEMENT.schema, &existing).map_err(arrow("engagement"))?;
        let existing = Arc::new(existing);
        let days = viewer_video_days(&existing, &touched);
        let keys = Arc::new(touched.viewer_videos.clone());
        let facts = read_sessions(&sessions, &days, Some(keys.clone())).await?;
        let mut by_key: BTreeMap<(&str, &str), Vec<&SessionFacts>> = BTreeMap::new();
        for f in &facts {
            by_key.entry((f.customer_id.as_str(), f.title_id.as_str())).or_default().push(f);
        }
        let recomputed: Vec<Engagement> = by_key.values().map(|own| engagement(own, &config.metrics)).collect();
        let keep = BooleanArray::from_iter((0..existing.num_rows()).map(|i| Some(!keys.contains(&key_at(&existing, i)))));
        let kept = filter_record_batch(&existing, &keep).map_err(arrow("engagement"))?;
        let fresh = engagement_batch(&recomputed, &metadata, loaded_at)?;
        let all_engagement = concat_batches(&ENGAGEMENT.schema, [&kept, &fresh]).map_err(arrow("engagement"))?;
        replace_all(&mut engagement_table, &all_engagement, run_id, window).await?;

        // video_retention: the touched titles, from every viewer's union.
        let mut retention_table = Table::open_or_create(&lake, &RETENTION).await?;
        let old_retention = retention_table.read(&retention_table.files()?, None).await?;
        let old_retention = concat_batches(&RETENTION.schema, &old_retention).map_err(arrow("retention"))?;
        let old_titles = old_retention.column_by_name("title_id").expect("title_id").as_string::<i32>();
        let keep = BooleanArray::from_iter(old_titles.iter().map(|t| Some(!touched.titles.contains(t.unwrap_or_default()))));
        let kept = filter_record_batch(&old_retention, &keep).map_err(arrow("retention"))?;
        let fresh = retention_batch(&all_engagement, &touched.titles, &metadata, loaded_at)?;
        let all_retention = concat_batches(&RETENTION.schema, [&kept, &fresh]).map_err(arrow("retention"))?;
        replace_all(&mut retention_table, &all_retention, run_id, window).await?;

        // Day-partitioned tables: recompute whole touched days.
        let day_facts = read_sessions(&sessions, &touched.start_days, None).await?;
        let daily = video_daily(&day_facts, &config.metrics);
        let daily_batch = video_daily_batch(&daily, &metadata, loaded_at)?;
        replace_days(&lake, &VIDEO_DAILY, &touched.start_days, daily_batch, run_id, window).await?;
        let viewers = viewer_daily_batch(&viewer_daily(&day_facts), loaded_at)?;
        replace_days(&lake, &VIEWER_DAILY, &touched.start_days, viewers, run_id, window).await?;
        let qos = qos_batch(&qos_hourly(&day_facts), loaded_at)?;
        replace_days(&lake, &QOS_HOURLY, &touched.start_days, qos, run_id, window).await?;

        let reach_back: BTreeSet<i32> = touched.playing_days.iter().flat_map(|d| [d - 1, *d]).collect();
        let playing_facts = read_sessions(&sessions, &reach_back, None).await?;
        let concurrency_batch = concurrency_batch(&touched.playing_days, &playing_facts, loaded_at)?;
        replace_days(&lake, &CONCURRENCY, &touched.playing_days, concurrency_batch, run_id, window).await?;

        Ok(GoldReport {
            worker: "gold-aggregate",
            run_id: run_id.to_string(),
            window_start: format_hour(window.start),
            window_end: format_hour(window.end),
            lake_url: lake.to_string(),
            sessions_changed: touched.sessions as u64,
            viewer_videos_recomputed: recomputed.len() as u64,
            titles_recomputed: touched.titles.len() as u64,
            days_recomputed: touched.start_days.union(&touched.playing_days).count() as u64,
            engagement_rows: all_engagement.num_rows() as u64,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
    .instrument(span)
    .await
}

fn arrow(context: &'static str) -> impl Fn(streamreel_lake::arrow::error::ArrowError) -> GoldError {
    move |e| GoldError::Lake(LakeError::arrow(context, e))
}


/// The change-log rows of every silver run whose window overlaps this one.
async fn read_changes(changes: &Table, window: Window) -> Result<Touched, GoldError> {
    let files = changes.files_where(|values| {
        let parse = |key: &str| values.get(key).cloned().flatten().and_then(|v| streamreel_lake::window::parse_hour(&v).ok());
        match (parse("window_start"), parse("window_end")) {
            (Some(start), Some(end)) => start < window.end && window.start < end,
            _ => false,
        }
    })?;
    let mut touched = Touched::default();
    for batch in changes.read(&files, None).await? {
        let customer = batch.column_by_name("customer_id").expect("customer_id").as_string::<i32>();
        let title = batch.column_by_name("title_id").expect("title_id").as_string::<i32>();
        let start = batch.column_by_name("session_start").expect("start").as_primitive::<TimestampMicrosecondType>();
        let end = batch.column_by_name("session_end").expect("end").as_primitive::<TimestampMicrosecondType>();
        for i in 0..batch.num_rows() {
            touched.viewer_videos.insert((customer.value(i).to_string(), title.value(i).to_string()));
            touched.titles.insert(title.value(i).to_string());
            touched.start_days.insert(day_of(start.value(i)));
            touched.playing_days.extend(day_of(start.value(i))..=day_of(end.value(i)));
        }
        touched.sessions += batch.num_rows();
    }
    Ok(touched)
}

fn key_at(batch: &RecordBatch, row: usize) -> (String, String) {
    let text = |n: &str| batch.column_by_name(n).expect("key column").as_string::<i32>().value(row).to_string();
    (text("customer_id"), text("title_id"))
}

/// Days holding a touched viewer-video's sessions: those of the changes, and
/// those its existing row spans (sessions are partitioned by start day; the
/// first playback may come the day after the session started).
fn viewer_video_days(existing: &RecordBatch, touched: &Touched) -> BTreeSet<i32> {
    let mut days = touched.start_days.clone();
    let first = existing.column_by_name("first_watched_at").expect("first").as_primitive::<TimestampMicrosecondType>();
    let last = existing.column_by_name("last_watched_at").expect("last").as_primitive::<TimestampMicrosecondType>();
    for i in 0..existing.num_rows() {
        if touched.viewer_videos.contains(&key_at(existing, i)) {
            days.extend(day_of(first.value(i)) - 1..=day_of(last.value(i)));
        }
    }
    days
}

/// `silver/watch_sessions` rows of the given start days, optionally only
/// those of some viewer-videos.
async fn read_sessions(
    sessions: &Table,
    days: &BTreeSet<i32>,
    keys: Option<Arc<BTreeSet<(String, String)>>>,
) -> Result<Vec<SessionFacts>, GoldError> {
    let files: Vec<LogicalFileView> = sessions.files_where(|values| {
        streamreel_lake::delta::partition_day(values, EVENT_DATE).is_some_and(|d| days.contains(&d))
    })?;
    let filter = keys.map(|keys| RowFilterSpec {
        columns: vec!["customer_id".into(), "title_id".into()],
        keep: Arc::new(move |batch: &RecordBatch| {
            let customer = batch.column_by_name("customer_id").expect("customer_id").as_string::<i32>();
            let title = batch.column_by_name("title_id").expect("title_id").as_string::<i32>();
            // Lookups by borrowed pair without allocating per row.
            (0..batch.num_rows())
                .map(|i| Some(contains(&keys, customer.value(i), title.value(i))))
                .collect()
        }),
    });
    let batches = sessions.read_per_file(&files, Some(SESSION_COLUMNS), filter).await?;
    let mut facts: Vec<SessionFacts> = batches.iter().flatten().flat_map(from_batch).collect();
    // Every gold sum then adds in one order, whatever the files' layout: an
    // hourly chain and one full run give the same floating-point results.
    facts.sort_by(|a, b| (a.session_start, &a.session_key, &a.title_id).cmp(&(b.session_start, &b.session_key, &b.title_id)));
    Ok(facts)
}

fn contains(keys: &BTreeSet<(String, String)>, customer: &str, title: &str) -> bool {
    keys.range((customer.to_string(), title.to_string())..).next().is_some_and(|(c, t)| c == customer && t == title)
}


/// Rewrites an unpartitioned table with `batch` in one commit.
async fn replace_all(table: &mut Table, batch: &RecordBatch, run_id: &str, window: Window) -> Result<(), GoldError> {
    let mut writer = table.writer()?;
    writer.write(batch.clone(), &[]).await?;
    let adds = writer.flush().await?;
    table.commit(adds, |_| true, &format!("gold window {window}"), streamreel_lake::delta::commit_metadata("gold-aggregate", run_id, window)).await?;
    Ok(())
}

/// Replaces the `event_date` partitions of `days` with the rows of `batch`.
async fn replace_days(lake: &Location, spec: &TableSpec, days: &BTreeSet<i32>, batch: RecordBatch, run_id: &str, window: Window) -> Result<(), GoldError> {
    let mut table = Table::open_or_create(lake, spec).await?;
    let mut writer = table.writer()?;
    let dates = batch.column_by_name(EVENT_DATE).expect("event_date").as_primitive::<streamreel_lake::arrow::datatypes::Date32Type>().clone();
    for &day in days {
        let mask = BooleanArray::from_iter(dates.values().iter().map(|d| Some(*d == day)));
        let part = filter_record_batch(&batch, &mask).map_err(arrow("partition"))?;
        if part.num_rows() > 0 {
            writer.write(part, &[PartitionValue::Date(days_to_date(day))]).await?;
        }
    }
    let adds = writer.flush().await?;
    let names: HashSet<String> = days.iter().map(|d| days_to_date(*d).format("%Y-%m-%d").to_string()).collect();
    table
        .commit(
            adds,
            |f| f.partition_values_map().get(EVENT_DATE).cloned().flatten().is_some_and(|d| names.contains(&d)),
            &format!("gold window {window}"),
            streamreel_lake::delta::commit_metadata("gold-aggregate", run_id, window),
        )
        .await?;
    Ok(())
}

fn timestamps(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

fn texts<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn floats(values: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(values))
}

fn ints(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values))
}

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>, context: &'static str) -> Result<RecordBatch, GoldError> {
    RecordBatch::try_new(schema.clone(), columns).map_err(arrow(context))
}

fn engagement_batch(rows: &[Engagement], metadata: &Metadata, loaded_at: i64) -> Result<RecordBatch, GoldError> {
    let meta = |e: &Engagement| metadata.videos.get(&e.title_id);
    let mut flags = ListBuilder::new(StringBuilder::new());
    let mut intervals = ListBuilder::new(Float64Builder::new());
    for e in rows {
        for flag in &e.quality_flags {
            flags.values().append_value(flag);
        }
        flags.append(true);
        for (a, b) in &e.unique_watch_intervals {
            intervals.values().append_slice(&[*a, *b]);
        }
        intervals.append(true);
    }
    batch(
        &ENGAGEMENT.schema,
        vec![
            texts(rows.iter().map(|e| Some(e.customer_id.as_str()))),
            texts(rows.iter().map(|e| Some(e.title_id.as_str()))),
            texts(rows.iter().map(|e| meta(e).and_then(|m| m.title.as_deref()))),
            texts(rows.iter().map(|e| meta(e).and_then(|m| m.genre.as_deref()))),
            texts(rows.iter().map(|e| meta(e).and_then(|m| m.creator.as_deref()))),
            texts(rows.iter().map(|e| Some(e.country.as_str()))),
            texts(rows.iter().map(|e| Some(e.device_type.as_str()))),
            floats(rows.iter().map(|e| e.duration_seconds)),
            floats(rows.iter().map(|e| Some(e.total_watch_seconds))),
            floats(rows.iter().map(|e| Some(e.unique_watch_seconds))),
            floats(rows.iter().map(|e| Some(e.max_position_seconds))),
            floats(rows.iter().map(|e| e.watch_percentage)),
            floats(rows.iter().map(|e| e.unique_watch_percentage)),
            floats(rows.iter().map(|e| e.completion_percentage)),
            ints(rows.iter().map(|e| e.session_count)),
            ints(rows.iter().map(|e| e.completion_count)),
            ints(rows.iter().map(|e| e.pause_count)),
            floats(rows.iter().map(|e| Some(e.avg_pauses_per_session))),
            ints(rows.iter().map(|e| e.forward_skips)),
            ints(rows.iter().map(|e| e.backward_skips)),
            ints(rows.iter().map(|e| e.seek_count)),
            timestamps(rows.iter().map(|e| e.first_watched_at)),
            timestamps(rows.iter().map(|e| e.last_watched_at)),
            floats(rows.iter().map(|e| e.engagement_score)),
            texts(rows.iter().map(|e| Some(e.engagement_tier))),
            Arc::new(flags.finish()),
            Arc::new(intervals.finish()),
            timestamps(rows.iter().map(|_| loaded_at)),
        ],
        "engagement",
    )
}

fn retention_batch(engagement: &RecordBatch, titles: &BTreeSet<String>, metadata: &Metadata, loaded_at: i64) -> Result<RecordBatch, GoldError> {
    let title = engagement.column_by_name("title_id").expect("title_id").as_string::<i32>();
    let max_position = engagement.column_by_name("max_position_seconds").expect("max").as_primitive::<Float64Type>();
    let unions = engagement.column_by_name("unique_watch_intervals").expect("intervals").as_list::<i32>();
    // Per title: each viewer's watched union and furthest position.
    type Viewer = (Vec<(f64, f64)>, f64);
    let mut viewers: BTreeMap<&str, Vec<Viewer>> = BTreeMap::new();
    for i in 0..engagement.num_rows() {
        if titles.contains(title.value(i)) {
            let values = unions.value(i);
            let pairs = values.as_primitive::<Float64Type>().values().chunks_exact(2).map(|p| (p[0], p[1])).collect();
            viewers.entry(title.value(i)).or_default().push((pairs, max_position.value(i)));
        }
    }
    let mut rows = Vec::new();
    for (title_id, list) in &viewers {
        if let Some(duration) = metadata.duration(title_id) {
            let borrowed: Vec<(&[(f64, f64)], f64)> = list.iter().map(|(u, m)| (u.as_slice(), *m)).collect();
            rows.extend(retention(title_id, duration, &borrowed));
        }
    }
    let name = |t: &str| metadata.videos.get(t).and_then(|m| m.title.as_deref());
    batch(
        &RETENTION.schema,
        vec![
            texts(rows.iter().map(|r| Some(r.title_id.as_str()))),
            texts(rows.iter().map(|r| name(&r.title_id))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.bucket))),
            floats(rows.iter().map(|r| Some(r.bucket_start_seconds))),
            floats(rows.iter().map(|r| Some(r.bucket_end_seconds))),
            ints(rows.iter().map(|r| r.viewers)),
            floats(rows.iter().map(|r| r.retention_share)),
            ints(rows.iter().map(|r| r.dropoff_viewers)),
            ints(rows.iter().map(|r| r.total_viewers)),
            timestamps(rows.iter().map(|_| loaded_at)),
        ],
        "retention",
    )
}

fn video_daily_batch(rows: &[metrics::VideoDay], metadata: &Metadata, loaded_at: i64) -> Result<RecordBatch, GoldError> {
    let meta = |t: &str| metadata.videos.get(t);
    batch(
        &VIDEO_DAILY.schema,
        vec![
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.event_date))),
            texts(rows.iter().map(|r| Some(r.title_id.as_str()))),
            texts(rows.iter().map(|r| meta(&r.title_id).and_then(|m| m.title.as_deref()))),
            texts(rows.iter().map(|r| meta(&r.title_id).and_then(|m| m.genre.as_deref()))),
            texts(rows.iter().map(|r| meta(&r.title_id).and_then(|m| m.creator.as_deref()))),
            texts(rows.iter().map(|r| Some(r.country.as_str()))),
            texts(rows.iter().map(|r| Some(r.device_type.as_str()))),
            ints(rows.iter().map(|r| r.viewers)),
            ints(rows.iter().map(|r| r.sessions)),
            floats(rows.iter().map(|r| Some(r.total_watch_hours))),
            floats(rows.iter().map(|r| Some(r.unique_watch_hours))),
            floats(rows.iter().map(|r| r.avg_watch_percentage)),
            floats(rows.iter().map(|r| r.avg_completion_percentage)),
            floats(rows.iter().map(|r| Some(r.completion_rate))),
            floats(rows.iter().map(|r| r.avg_engagement_score)),
            timestamps(rows.iter().map(|_| loaded_at)),
        ],
        "video_daily",
    )
}

fn viewer_daily_batch(rows: &[metrics::ViewerDay], loaded_at: i64) -> Result<RecordBatch, GoldError> {
    batch(
        &VIEWER_DAILY.schema,
        vec![
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.event_date))),
            texts(rows.iter().map(|r| Some(r.customer_id.as_str()))),
            ints(rows.iter().map(|r| r.sessions)),
            ints(rows.iter().map(|r| r.titles_watched)),
            floats(rows.iter().map(|r| Some(r.watch_seconds))),
            ints(rows.iter().map(|r| r.completed_sessions)),
            timestamps(rows.iter().map(|_| loaded_at)),
        ],
        "viewer_daily",
    )
}

fn qos_batch(rows: &[metrics::QosHour], loaded_at: i64) -> Result<RecordBatch, GoldError> {
    batch(
        &QOS_HOURLY.schema,
        vec![
            timestamps(rows.iter().map(|r| r.event_hour)),
            texts(rows.iter().map(|r| Some(r.isp.as_str()))),
            texts(rows.iter().map(|r| Some(r.device_type.as_str()))),
            texts(rows.iter().map(|r| Some(r.country.as_str()))),
            texts(rows.iter().map(|r| Some(r.quality.as_str()))),
            ints(rows.iter().map(|r| r.sessions)),
            ints(rows.iter().map(|r| r.buffering_events)),
            floats(rows.iter().map(|r| Some(r.buffering_seconds))),
            floats(rows.iter().map(|r| Some(r.watch_seconds))),
            floats(rows.iter().map(|r| r.rebuffer_ratio)),
            ints(rows.iter().map(|r| r.sessions_with_errors)),
            floats(rows.iter().map(|r| r.avg_bandwidth_mbps)),
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| day_of(r.event_hour)))),
            timestamps(rows.iter().map(|_| loaded_at)),
        ],
        "qos_hourly",
    )
}

fn concurrency_batch(days: &BTreeSet<i32>, facts: &[SessionFacts], loaded_at: i64) -> Result<RecordBatch, GoldError> {
    let mut rows: Vec<(i64, i64, i64, i32)> = Vec::new();
    for &day in days {
        let intervals = concurrency(day, facts);
        let peak = intervals.iter().map(|(_, c)| *c).max().unwrap_or(0);
        rows.extend(intervals.into_iter().map(|(start, count)| (start, count, peak, day)));
    }
    batch(
        &CONCURRENCY.schema,
        vec![
            timestamps(rows.iter().map(|r| r.0)),
            ints(rows.iter().map(|r| r.1)),
            ints(rows.iter().map(|r| r.2)),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.2 > 0 && r.1 == r.2)))),
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.3))),
            timestamps(rows.iter().map(|_| loaded_at)),
        ],
        "concurrency_5min",
    )
}
