//! The silver run: the window's bronze rows become clean events; every
//! session they touch is recomputed from all of its events and replaces its
//! earlier segments and facts, so hourly runs in any order equal one run over
//! everything.

use std::collections::{BTreeSet, HashMap, HashSet};

use ahash::{AHashMap, AHashSet};
use std::sync::Arc;
use std::time::Instant;

use deltalake::kernel::{Add, LogicalFileView};
use serde::Serialize;
use streamreel_lake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use streamreel_lake::arrow::compute::{filter_record_batch, not};
use streamreel_lake::arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use streamreel_lake::cores::{map_on_cores, shares_on_cores};
use streamreel_lake::delta::{PartitionValue, RowFilterSpec, Table, TableWriter, days_to_date};
use streamreel_lake::storage::Location;
use streamreel_lake::window::format_hour;
use streamreel_lake::{Config, LakeError, Window};
use tracing::{Instrument, info, info_span};

use crate::enrich::{BRONZE_COLUMNS, IpMasker, MICROS_PER_DAY, Metadata, mask_addresses, to_silver};
use crate::error::SilverError;
use crate::rows::{EventColumns, RowRef};
use crate::schema::{CHANGES, CHANGES_SCHEMA, EVENT_DATE, EVENTS, SEGMENTS, SESSIONS};
use crate::sessions::{Recomputed, recompute};

/// The JSON run report, with the data-quality counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SilverReport {
    pub worker: &'static str,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
    pub bronze_rows: u64,
    /// Events added to `silver/events`.
    pub events_written: u64,
    /// Bronze rows already in silver (a rerun of the window).
    pub already_in_silver: u64,
    /// Later deliveries of an event already seen, dropped.
    pub duplicates_dropped: u64,
    /// Duplicates whose content differed from the event kept.
    pub duplicate_conflicts: u64,
    /// Events in silver displaced by an earlier delivery (by source object, line).
    pub events_replaced: u64,
    pub sessions_recomputed: u64,
    pub segment_rows: u64,
    pub session_rows: u64,
    pub seconds: f64,
}

impl SilverReport {
    pub fn summary(&self) -> String {
        format!(
            "silver-enrich {}..{}: {} bronze rows, {} events written ({} already in silver, {} duplicates dropped, {} conflicting), {} sessions recomputed into {} segments, {:.2} s",
            self.window_start,
            self.window_end,
            self.bronze_rows,
            self.events_written,
            self.already_in_silver,
            self.duplicates_dropped,
            self.duplicate_conflicts,
            self.sessions_recomputed,
            self.segment_rows,
            self.seconds
        )
    }
}

/// Runs silver over `window`, in consecutive chunks of landing hours when it
/// holds more than `silver.max_rows_per_chunk` bronze rows: since any split
/// of the hours gives the same tables, this only bounds memory.
pub async fn run(config: &Config, window: Window, run_id: &str) -> Result<SilverReport, SilverError> {
    let started = Instant::now();
    let lake = Location::parse(&config.lake_url)?;
    let chunks = chunks(&lake, window, config.silver.max_rows_per_chunk).await?;
    let mut total = SilverReport {
        worker: "silver-enrich",
        run_id: run_id.to_string(),
        window_start: format_hour(window.start),
        window_end: format_hour(window.end),
        ..Default::default()
    };
    for chunk in &chunks {
        if chunks.len() > 1 {
            info!(chunk = %chunk, of = %window, "processing a chunk of the window");
        }
        let part = run_chunk(config, &lake, *chunk, run_id).await?;
        total.bronze_rows += part.bronze_rows;
        total.events_written += part.events_written;
        total.already_in_silver += part.already_in_silver;
        total.duplicates_dropped += part.duplicates_dropped;
        total.duplicate_conflicts += part.duplicate_conflicts;
        total.events_replaced += part.events_replaced;
        total.sessions_recomputed += part.sessions_recomputed;
        total.segment_rows += part.segment_rows;
        total.session_rows += part.session_rows;
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

/// Consecutive sub-windows of whole landing hours, each holding at most
/// `max_rows` bronze rows (an hour holding more is a chunk of its own).
async fn chunks(lake: &Location, window: Window, max_rows: u64) -> Result<Vec<Window>, SilverError> {
    let bronze = Table::open_or_create(lake, &bronze_ingest::schema::EVENTS).await?;
    let mut rows_by_hour: HashMap<chrono::DateTime<chrono::Utc>, u64> = HashMap::new();
    for file in bronze.files_where(|values| bronze_ingest::ingest::partition_in(window, values))? {
        let hour = bronze_ingest::ingest::landing_hour(&file.partition_values_map());
        if let Some(hour) = hour {
            *rows_by_hour.entry(hour).or_default() += file.num_records().unwrap_or(usize::MAX / 2) as u64;
        }
    }
    let mut chunks = Vec::new();
    let (mut start, mut rows) = (window.start, 0u64);
    for hour in window.hours() {
        let here = rows_by_hour.get(&hour).copied().unwrap_or(0);
        if rows > 0 && rows + here > max_rows {
            chunks.push(Window::new(start, hour)?);
            (start, rows) = (hour, 0);
        }
        rows += here;
    }
    chunks.push(Window::new(start, window.end)?);
    Ok(chunks)
}

async fn run_chunk(config: &Config, lake: &Location, window: Window, run_id: &str) -> Result<SilverReport, SilverError> {
    let started = Instant::now();
    let lake = lake.clone();
    let span = info_span!("silver_enrich", window = %window, table = %lake.join(EVENTS.path));
    async move {
        let key_env = &config.silver.ip_hash_key_env;
        let ip_key = std::env::var(key_env).ok().filter(|k| !k.is_empty()).ok_or_else(|| SilverError::MissingIpKey(key_env.clone()))?;
        let metadata = Metadata::parse(&Location::read_file(&config.metadata_url).await?, &config.metadata_url)?;

        let bronze = Table::open_or_create(&lake, &bronze_ingest::schema::EVENTS).await?;
        let bronze_files = bronze.files_where(|values| bronze_ingest::ingest::partition_in(window, values))?;
        let mut bronze_batches = bronze.read(&bronze_files, Some(&BRONZE_COLUMNS)).await?;
        let masks = mask_addresses(&bronze_batches, &IpMasker::new(ip_key.as_bytes()));
        info!(seconds = started.elapsed().as_secs_f64(), "read bronze");
        bronze_batches.retain(|b| b.num_rows() > 0);
        let candidates: Vec<RecordBatch> = map_on_cores(&bronze_batches, |b| to_silver(b, &metadata, &masks));
        drop(bronze_batches);
        let mut report = SilverReport {
            worker: "silver-enrich",
            run_id: run_id.to_string(),
            window_start: format_hour(window.start),
            window_end: format_hour(window.end),
            bronze_rows: candidates.iter().map(|b| b.num_rows() as u64).sum(),
            ..Default::default()
        };
        info!(bronze_rows = report.bronze_rows, files = bronze_files.len(), "read the window's bronze rows");

        let mut events = Table::open_or_create(&lake, &EVENTS).await?;
        let mut segments = Table::open_or_create(&lake, &SEGMENTS).await?;
        let mut sessions = Table::open_or_create(&lake, &SESSIONS).await?;
        let mut changes = Table::open_or_create(&lake, &CHANGES).await?;

        let stage = Instant::now();
        let mut plan = plan(config, &metadata, &events, &candidates, &mut report).await?;
        info!(seconds = stage.elapsed().as_secs_f64(), sessions = plan.recomputed.session_count, "deduplicated and recomputed sessions");
        let stage = Instant::now();

        // silver/events: this window's new events, and files rewritten
        // without the events an earlier delivery displaced.
        let rewritten = rewrite_files(&events, &plan.displaced_files, |batch| {
            let ids = batch.column_by_name("event_id").expect("event_id").as_string::<i32>();
            BooleanArray::from_iter(ids.iter().map(|id| Some(!plan.displaced_ids.contains(id.unwrap_or_default()))))
        })
        .await?;
        let rewritten_paths = rewritten.paths;
        // Encoding parquet is CPU work: the events go on one core while the
        // segments and session facts go on the other.
        let mut event_writer = events.writer()?;
        let new_rows = std::mem::take(&mut plan.new_rows);
        let events_written = tokio::spawn(
            async move {
                for (batch, keep) in candidates.iter().zip(&new_rows) {
                    write_by_date(&mut event_writer, &filter_record_batch(batch, keep).map_err(arrow("new events"))?).await?;
                }
                for batch in &rewritten.kept {
                    write_by_date(&mut event_writer, batch).await?;
                }
                let adds = event_writer.flush().await?;
                info!(seconds = stage.elapsed().as_secs_f64(), "wrote events");
                Ok::<_, SilverError>(adds)
            }
            .in_current_span(),
        );

        // Segments and session facts: replace the recomputed sessions.
        let (segment_adds, segment_removed, _) = replace_sessions(&segments, &plan.recomputed, &plan.recomputed.segments).await?;
        info!(seconds = stage.elapsed().as_secs_f64(), table = %segments.location, files_rewritten = segment_removed.len(), "wrote segments");
        let stage = Instant::now();
        let (session_adds, session_removed, old_sessions) = replace_sessions(&sessions, &plan.recomputed, &plan.recomputed.sessions).await?;
        info!(seconds = stage.elapsed().as_secs_f64(), table = %sessions.location, files_rewritten = session_removed.len(), "wrote session facts");
        let event_adds = events_written.await.map_err(|e| SilverError::Task(format!("writing silver/events: {e}")))??;
        let change_rows = change_log(&plan.recomputed.sessions, &old_sessions, window)?;
        let mut change_writer = changes.writer()?;
        let (ws, we) = (format_hour(window.start), format_hour(window.end));
        if change_rows.num_rows() > 0 {
            change_writer.write(change_rows, &[PartitionValue::Text(ws.clone()), PartitionValue::Text(we.clone())]).await?;
        }
        let change_adds = change_writer.flush().await?;

        let metadata = streamreel_lake::delta::commit_metadata("silver-enrich", run_id, window);
        let op = format!("silver window {window}");
        // Events first, the change log last: a crash in between leaves
        // nothing a rerun of the window would not redo the same way.
        events.commit(event_adds, |f| rewritten_paths.contains(f.path().as_ref()), &op, metadata.clone()).await?;
        segments.commit(segment_adds, |f| segment_removed.contains(f.path().as_ref()), &op, metadata.clone()).await?;
        sessions.commit(session_adds, |f| session_removed.contains(f.path().as_ref()), &op, metadata.clone()).await?;
        changes
            .commit(
                change_adds,
                |f| {
                    let values = f.partition_values_map();
                    values.get("window_start") == Some(&Some(ws.clone())) && values.get("window_end") == Some(&Some(we.clone()))
                },
                &op,
                metadata,
            )
            .await?;

        report.sessions_recomputed = plan.recomputed.session_count as u64;
        report.segment_rows = plan.recomputed.segments.iter().map(|b| b.num_rows() as u64).sum();
        report.session_rows = plan.recomputed.sessions.iter().map(|b| b.num_rows() as u64).sum();
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
    .instrument(span)
    .await
}

fn arrow(context: &'static str) -> impl Fn(streamreel_lake::arrow::error::ArrowError) -> SilverError {
    move |e| SilverError::Lake(LakeError::arrow(context, e))
}

/// What the run will write, decided before anything is written.
struct Plan {
    /// Per candidate batch: the rows that become new silver events.
    new_rows: Vec<BooleanArray>,
    displaced_files: Vec<LogicalFileView>,
    displaced_ids: AHashSet<String>,
    recomputed: Recomputed,
}

/// Deduplicates the candidates against silver and recomputes the sessions
/// they touch. The events read are those of the candidates' session keys (or
/// ids) within a day of them, widened while a touched session reaches the
/// edge of what was read.
async fn plan(config: &Config, metadata: &Metadata, events: &Table, candidates: &[RecordBatch], report: &mut SilverReport) -> Result<Plan, SilverError> {
    let candidate_columns: Vec<EventColumns> = candidates.iter().map(EventColumns::new).collect();
    let mut keys: AHashSet<String> = AHashSet::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for c in &candidate_columns {
        for row in 0..c.event_id.len() {
            if !keys.contains(c.session_key.value(row)) {
                keys.insert(c.session_key.value(row).to_string());
            }
            first = first.min(c.timestamp.value(row));
            last = last.max(c.timestamp.value(row));
        }
    }
    if first > last {
        return Ok(Plan {
            new_rows: candidates.iter().map(|b| BooleanArray::from(vec![false; b.num_rows()])).collect(),
            displaced_files: Vec::new(),
            displaced_ids: AHashSet::new(),
            recomputed: Recomputed::default(),
        });
    }
    let table_days = partition_days(&events.files()?);
    // Ids are only needed to find earlier deliveries already in silver.
    let ids: AHashSet<String> = if table_days.is_some() {
        candidate_columns.iter().flat_map(|c| c.event_id.iter().flatten().map(str::to_string)).collect()
    } else {
        AHashSet::new()
    };
    let (keys, ids) = (Arc::new(keys), Arc::new(ids));
    let mut days = (first.div_euclid(MICROS_PER_DAY) - 1, last.div_euclid(MICROS_PER_DAY) + 1);
    loop {
        let files = events.files()?.into_iter().filter(|f| file_day(f).is_some_and(|d| days.0 <= d && d <= days.1)).collect::<Vec<_>>();
        let filter = {
            let (keys, ids) = (keys.clone(), ids.clone());
            RowFilterSpec {
                columns: vec!["event_id".into(), "session_key".into()],
                keep: Arc::new(move |batch: &RecordBatch| {
                    let id = batch.column_by_name("event_id").expect("event_id").as_string::<i32>();
                    let key = batch.column_by_name("session_key").expect("session_key").as_string::<i32>();
                    (0..batch.num_rows()).map(|i| Some(keys.contains(key.value(i)) || ids.contains(id.value(i)))).collect()
                }),
            }
        };
        let stage = Instant::now();
        let existing_per_file = if files.is_empty() { Vec::new() } else { events.read_per_file(&files, None, Some(filter)).await? };
        let mut batches: Vec<RecordBatch> = Vec::new();
        let mut batch_file: Vec<Option<usize>> = Vec::new();
        for (file, file_batches) in existing_per_file.into_iter().enumerate() {
            for batch in file_batches.into_iter().filter(|b| b.num_rows() > 0) {
                batches.push(batch);
                batch_file.push(Some(file));
            }
        }
        let existing_batches = batches.len();
        info!(seconds = stage.elapsed().as_secs_f64(), files = files.len(), rows = batches.iter().map(|b| b.num_rows()).sum::<usize>(), "read the touched sessions' events already in silver");
        batches.extend(candidates.iter().cloned());
        batch_file.extend(candidates.iter().map(|_| None));
        let columns: Vec<EventColumns> = batches.iter().map(EventColumns::new).collect();

        let dedup = deduplicate(&columns, existing_batches);
        let window_ids: AHashSet<&str> = candidate_columns.iter().flat_map(|c| c.event_id.iter().flatten()).collect();
        let mut rows_by_key: AHashMap<&str, Vec<RowRef>> = AHashMap::new();
        for &(b, r) in dedup.winners.values() {
            let key = columns[b as usize].session_key.value(r as usize);
            if keys.contains(key) {
                rows_by_key.entry(key).or_default().push((b, r));
            }
        }
        let read_range = (days.0 * MICROS_PER_DAY, (days.1 + 1) * MICROS_PER_DAY);
        let rows_by_key: Vec<(&str, Vec<RowRef>)> = rows_by_key.into_iter().collect();
        let recomputed = Recomputed::merge(shares_on_cores(&rows_by_key, |share| recompute(&columns, share, &window_ids, &config.metrics, metadata, read_range)));

        let (min_day, max_day) = table_days.unwrap_or((days.0, days.1));
        let widen_earlier = recomputed.needs_earlier && days.0 > min_day;
        let widen_later = recomputed.needs_later && days.1 < max_day;
        if widen_earlier || widen_later {
            days = (days.0 - widen_earlier as i64, days.1 + widen_later as i64);
            info!(from = %days_to_date(days.0 as i32), to = %days_to_date(days.1 as i32), "a session reaches the edge of the events read; reading a wider range");
            continue;
        }

        let mut new_rows = Vec::with_capacity(candidates.len());
        for (offset, batch) in candidates.iter().enumerate() {
            let b = (existing_batches + offset) as u32;
            new_rows.push((0..batch.num_rows()).map(|r| Some(dedup.winners.get(columns[b as usize].event_id.value(r)) == Some(&(b, r as u32)))).collect::<BooleanArray>());
        }
        let mut displaced_ids = AHashSet::new();
        let mut displaced: BTreeSet<usize> = BTreeSet::new();
        for (b, c) in columns.iter().enumerate().take(existing_batches) {
            for r in 0..c.event_id.len() {
                if dedup.winners.get(c.event_id.value(r)) != Some(&(b as u32, r as u32)) {
                    displaced_ids.insert(c.event_id.value(r).to_string());
                    displaced.extend(batch_file[b]);
                }
            }
        }
        report.events_written = new_rows.iter().map(|m| m.true_count() as u64).sum();
        report.already_in_silver = dedup.already_in_silver;
        report.duplicates_dropped = dedup.dropped;
        report.duplicate_conflicts = dedup.conflicts;
        report.events_replaced = displaced_ids.len() as u64;
        return Ok(Plan {
            new_rows,
            displaced_files: displaced.into_iter().map(|i| files[i].clone()).collect(),
            displaced_ids,
            recomputed,
        });
    }
}

struct Dedup<'a> {
    winners: AHashMap<&'a str, RowRef>,
    already_in_silver: u64,
    dropped: u64,
    conflicts: u64,
}

/// One row per `event_id`: the first by (source object, line number). The
/// first `existing` batches are events already in silver.
fn deduplicate<'a>(columns: &[EventColumns<'a>], existing: usize) -> Dedup<'a> {
    let total: usize = columns.iter().map(|c| c.event_id.len()).sum();
    let mut dedup = Dedup { winners: AHashMap::with_capacity(total), already_in_silver: 0, dropped: 0, conflicts: 0 };
    for (b, c) in columns.iter().enumerate() {
        for r in 0..c.event_id.len() {
            let id = c.event_id.value(r);
            match dedup.winners.entry(id) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert((b as u32, r as u32));
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    let (wb, wr) = *slot.get();
                    let held = &columns[wb as usize];
                    let (mine, theirs) = (c.rank(r), held.rank(wr as usize));
                    if mine == theirs {
                        // The same landed line again: this window ran before.
                        dedup.already_in_silver += (b >= existing && (wb as usize) < existing) as u64;
                        continue;
                    }
                    dedup.dropped += 1;
                    if c.content(r) != held.content(wr as usize) {
                        dedup.conflicts += 1;
                    }
                    if mine < theirs {
                        slot.insert((b as u32, r as u32));
                    }
                }
            }
        }
    }
    dedup
}

fn file_day(file: &LogicalFileView) -> Option<i64> {
    streamreel_lake::delta::partition_day(&file.partition_values_map(), EVENT_DATE).map(i64::from)
}

fn partition_days(files: &[LogicalFileView]) -> Option<(i64, i64)> {
    let days: Vec<i64> = files.iter().filter_map(file_day).collect();
    Some((*days.iter().min()?, *days.iter().max()?))
}

/// Writes session-keyed rows in files of one session-start hour each: a
/// later run that recomputes a few sessions rewrites only their hours' files.
async fn write_by_session_hour(writer: &mut TableWriter, batches: &[RecordBatch]) -> Result<Vec<Add>, SilverError> {
    const HOUR: i64 = 3_600_000_000;
    let mut hours: BTreeSet<i64> = BTreeSet::new();
    for batch in batches {
        let start = batch.column_by_name("session_start").expect("session_start").as_primitive::<TimestampMicrosecondType>();
        hours.extend(start.values().iter().map(|t| t.div_euclid(HOUR)));
    }
    let mut adds = Vec::new();
    for hour in hours {
        for batch in batches {
            let start = batch.column_by_name("session_start").expect("session_start").as_primitive::<TimestampMicrosecondType>();
            let mask: BooleanArray = start.values().iter().map(|t| Some(t.div_euclid(HOUR) == hour)).collect();
            write_by_date(writer, &filter_record_batch(batch, &mask).map_err(arrow("hour split"))?).await?;
        }
        adds.extend(writer.flush().await?);
    }
    Ok(adds)
}

/// Writes a batch into the `event_date` partitions of its rows.
async fn write_by_date(writer: &mut TableWriter, batch: &RecordBatch) -> Result<(), SilverError> {
    if batch.num_rows() == 0 {
        return Ok(());
    }
    let dates = batch.column_by_name(EVENT_DATE).expect("event_date").as_primitive::<Date32Type>();
    let distinct: BTreeSet<i32> = dates.values().iter().copied().collect();
    for day in distinct {
        let part = if distinct_one(dates.values(), day) {
            batch.clone()
        } else {
            let mask: BooleanArray = dates.values().iter().map(|d| Some(*d == day)).collect();
            filter_record_batch(batch, &mask).map_err(arrow("partition split"))?
        };
        writer.write(part, &[PartitionValue::Date(days_to_date(day))]).await?;
    }
    Ok(())
}

fn distinct_one(values: &[i32], day: i32) -> bool {
    values.iter().all(|d| *d == day)
}

struct Rewritten {
    paths: HashSet<String>,
    kept: Vec<RecordBatch>,
    removed: Vec<RecordBatch>,
}

/// Reads whole files and splits their rows by `keep`.
async fn rewrite_files(table: &Table, files: &[LogicalFileView], keep: impl Fn(&RecordBatch) -> BooleanArray) -> Result<Rewritten, SilverError> {
    let per_file = table.read_per_file(files, None, None).await?;
    let mut out = Rewritten { paths: files.iter().map(|f| f.path().to_string()).collect(), kept: Vec::new(), removed: Vec::new() };
    for batch in per_file.into_iter().flatten() {
        let mask = keep(&batch);
        out.kept.push(filter_record_batch(&batch, &mask).map_err(arrow("rewrite"))?);
        out.removed.push(filter_record_batch(&batch, &not(&mask).map_err(arrow("rewrite"))?).map_err(arrow("rewrite"))?);
    }
    Ok(out)
}

/// Replaces, in a table keyed by (session_key, session_start), the rows of
/// every recomputed session with `new_rows`. Returns the add actions, the
/// paths of the files rewritten, and the rows that were replaced.
async fn replace_sessions(
    table: &Table,
    recomputed: &Recomputed,
    new_rows: &[RecordBatch],
) -> Result<(Vec<Add>, HashSet<String>, Vec<RecordBatch>), SilverError> {
    let spans = Arc::new(recomputed.spans.clone());
    let mut writer = table.writer()?;
    let mut rewritten = Rewritten { paths: HashSet::new(), kept: Vec::new(), removed: Vec::new() };
    if let (Some(first), Some(last)) = (
        spans.values().flatten().map(|s| s.0).min(),
        spans.values().flatten().map(|s| s.1).max(),
    ) {
        let days = (first.div_euclid(MICROS_PER_DAY), last.div_euclid(MICROS_PER_DAY));
        let files: Vec<LogicalFileView> = table.files()?.into_iter().filter(|f| file_day(f).is_some_and(|d| days.0 <= d && d <= days.1)).collect();
        let replaced = {
            let spans = spans.clone();
            move |batch: &RecordBatch| -> BooleanArray {
                let key = batch.column_by_name("session_key").expect("session_key").as_string::<i32>();
                let start = batch.column_by_name("session_start").expect("session_start").as_primitive::<TimestampMicrosecondType>();
                (0..batch.num_rows())
                    .map(|i| Some(spans.get(key.value(i)).is_some_and(|s| s.iter().any(|(a, b)| *a <= start.value(i) && start.value(i) <= *b))))
                    .collect()
            }
        };
        let filter = RowFilterSpec { columns: vec!["session_key".into(), "session_start".into()], keep: Arc::new(replaced.clone()) };
        let hits = table.read_per_file(&files, Some(&["session_key"]), Some(filter)).await?;
        let touched: Vec<LogicalFileView> = files.iter().zip(&hits).filter(|(_, b)| b.iter().any(|b| b.num_rows() > 0)).map(|(f, _)| f.clone()).collect();
        rewritten = rewrite_files(table, &touched, |batch| not(&replaced(batch)).expect("boolean not")).await?;
    }
    let all: Vec<RecordBatch> = rewritten.kept.iter().chain(new_rows).cloned().collect();
    let adds = write_by_session_hour(&mut writer, &all).await?;
    Ok((adds, rewritten.paths, rewritten.removed))
}

/// The sessions this run touched, old and new versions, each once.
fn change_log(new_sessions: &[RecordBatch], old_sessions: &[RecordBatch], window: Window) -> Result<RecordBatch, SilverError> {
    let names = ["customer_id", "title_id", "session_key", "device_type", "country", "isp", "quality"];
    type Key = (Vec<Option<String>>, i64, i64, i32);
    let mut rows: BTreeSet<Key> = BTreeSet::new();
    for batch in new_sessions.iter().chain(old_sessions) {
        let texts: Vec<&StringArray> = names.iter().map(|n| batch.column_by_name(n).expect("session column").as_string::<i32>()).collect();
        let start = batch.column_by_name("session_start").expect("start").as_primitive::<TimestampMicrosecondType>();
        let end = batch.column_by_name("session_end").expect("end").as_primitive::<TimestampMicrosecondType>();
        let date = batch.column_by_name(EVENT_DATE).expect("date").as_primitive::<Date32Type>();
        for i in 0..batch.num_rows() {
            let values = texts.iter().map(|a| a.is_valid(i).then(|| a.value(i).to_string())).collect();
            rows.insert((values, start.value(i), end.value(i), date.value(i)));
        }
    }
    let column = |j: usize| -> ArrayRef { Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0[j].clone()))) };
    let timestamps = |f: fn(&Key) -> i64| -> ArrayRef {
        Arc::new(streamreel_lake::arrow::array::TimestampMicrosecondArray::from_iter_values(rows.iter().map(f)).with_timezone("UTC"))
    };
    let constant = |text: String| -> ArrayRef { Arc::new(StringArray::from(vec![text; rows.len()])) };
    let columns: Vec<ArrayRef> = vec![
        column(0),
        column(1),
        column(2),
        timestamps(|r| r.1),
        timestamps(|r| r.2),
        column(3),
        column(4),
        column(5),
        column(6),
        Arc::new(streamreel_lake::arrow::array::Date32Array::from_iter_values(rows.iter().map(|r| r.3))),
        constant(format_hour(window.start)),
        constant(format_hour(window.end)),
    ];
    RecordBatch::try_new(CHANGES_SCHEMA.clone(), columns).map_err(arrow("change log"))
}

