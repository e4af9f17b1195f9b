//! The bronze run: list the shard's landing objects of the window, parse
//! them on every core, stream batches into one file per partition, and
//! replace the window's partitions of the shard in one commit per table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Duration;
use deltalake::kernel::Add;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;
use streamreel_lake::arrow::array::AsArray;
use streamreel_lake::replan::replanning;
use streamreel_lake::report::RunReport;
use streamreel_lake::table::{Change, DataFile, PartitionKey, ReadSet, Table, TableWriter};
use streamreel_lake::window::format_hour;
use streamreel_lake::worker::RunContext;
use streamreel_lake::{LakeError, Location};
use streamreel_tables::bronze::{EVENTS, EventBatchBuilder, LandingPartition, REJECTS};
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use crate::error::BronzeError;
use crate::landing::{LandingObject, list_window};
use crate::object::{Batch, ObjectJob, ObjectStats, object_reject, parse_object};
use crate::parse::Limits;

/// What the run is allowed to do beyond the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Replace partitions even when objects ingested before are gone.
    pub allow_missing_objects: bool,
}

/// The JSON run report.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub worker: &'static str,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
    pub shard: String,
    pub objects: u64,
    /// Hidden and in-flight objects (`_…`, `.…`, `….tmp`), not read.
    pub skipped_objects: Vec<String>,
    pub compressed_bytes: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub rows_written: u64,
    pub rejected: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    /// Events kept with an optional field emptied, per field.
    pub invalid_optional_fields: BTreeMap<&'static str, u64>,
    pub reject_ratio: f64,
    pub max_reject_ratio: f64,
    pub events_version: Option<u64>,
    pub rejects_version: Option<u64>,
    pub plans: u32,
    pub seconds: f64,
}

impl RunReport for IngestReport {
    fn log_summary(&self) {
        let reasons: Vec<String> = self.rejects_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
        info!(
            worker = self.worker,
            window_start = %self.window_start,
            window_end = %self.window_end,
            shard = %self.shard,
            objects = self.objects,
            skipped_objects = self.skipped_objects.len(),
            lines = self.lines,
            rows_written = self.rows_written,
            rejected = self.rejected,
            reject_ratio = self.reject_ratio,
            invalid_optional_fields = self.invalid_optional_fields.values().sum::<u64>(),
            seconds = self.seconds,
            "bronze-ingest {}..{}: {} objects, {} lines, {} rows written, {} rejected{}, {:.2} s",
            self.window_start,
            self.window_end,
            self.objects,
            self.lines,
            self.rows_written,
            self.rejected,
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
            self.seconds
        );
    }

    fn verdict(&self) -> Result<(), String> {
        if self.reject_ratio > self.max_reject_ratio {
            return Err(format!(
                "{} of {} records rejected ({:.2} %), above the allowed {:.2} % (bronze.max_reject_ratio); every line was written to bronze/events or bronze/rejects",
                self.rejected,
                self.rows_written + self.rejected,
                self.reject_ratio * 100.0,
                self.max_reject_ratio * 100.0
            ));
        }
        Ok(())
    }
}

/// Ingests the shard's landing objects of the window. Rerunning the same
/// window replaces exactly its partitions, so a retry or backfill never
/// duplicates rows; a concurrent run of the same partitions makes it plan
/// again.
pub async fn run(ctx: &RunContext, options: Options) -> Result<IngestReport, BronzeError> {
    let started = Instant::now();
    let mut report = replanning("bronze-ingest", |plan| attempt(ctx, options, plan)).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

async fn attempt(ctx: &RunContext, options: Options, plan: u32) -> Result<IngestReport, BronzeError> {
    let landing = ctx.config.landing()?;
    let lake = ctx.config.lake()?;
    let span = info_span!("bronze_ingest", window = %ctx.window, shard = %ctx.shard, table = %lake.join(EVENTS.path));
    async move {
        let listing = list_window(&landing, ctx.window, ctx.config.buckets, ctx.shard).await?;
        info!(objects = listing.objects.len(), skipped = listing.skipped.len(), landing = %landing, "listed landing objects");
        let mut events = Table::open(&lake, &EVENTS, ctx.config.buckets).await?;
        let mut rejects = Table::open(&lake, &REJECTS, ctx.config.buckets).await?;

        // The partitions this run replaces: every hour of the window, every bucket of the shard.
        let partitions: BTreeSet<PartitionKey> = ctx
            .window
            .hours()
            .flat_map(|hour| ctx.shard.buckets(ctx.config.buckets).into_iter().map(move |b| LandingPartition { hour, object_bucket: b }.key()))
            .collect();
        let replaced_events = events.files_where(|key| partitions.contains(key));
        let replaced_rejects = rejects.files_where(|key| partitions.contains(key));
        if !options.allow_missing_objects {
            check_nothing_vanished(ctx, &events, &rejects, &replaced_events, &replaced_rejects, &listing.objects).await?;
        }

        let ingested = ingest_objects(listing.objects, &events, &rejects, &landing, ctx).await?;
        let reads = ReadSet::Partitions(partitions);
        let meta = ctx.commit_meta();
        // Rejects first: if the run dies between the two commits, the rerun
        // replaces both, and no event is ever visible without its rejects.
        let rejects_version =
            rejects.commit(Change { adds: ingested.reject_adds, removes: replaced_rejects, reads: reads.clone(), compaction: false }, &meta).await?;
        let events_version = events.commit(Change { adds: ingested.event_adds, removes: replaced_events, reads, compaction: false }, &meta).await?;

        let stats = ingested.stats;
        let rejected = stats.rejected();
        let records = stats.rows + rejected;
        Ok(IngestReport {
            worker: ctx.worker,
            run_id: ctx.run_id.clone(),
            window_start: format_hour(ctx.window.start),
            window_end: format_hour(ctx.window.end),
            shard: ctx.shard.to_string(),
            objects: ingested.objects,
            skipped_objects: listing.skipped,
            compressed_bytes: ingested.compressed_bytes,
            lines: stats.lines,
            blank_lines: stats.blank_lines,
            rows_written: stats.rows,
            rejected,
            reject_ratio: if records == 0 { 0.0 } else { rejected as f64 / records as f64 },
            max_reject_ratio: ctx.config.bronze.max_reject_ratio,
            rejects_by_reason: stats.rejects,
            invalid_optional_fields: stats.invalid_fields,
            events_version,
            rejects_version,
            plans: plan,
            seconds: 0.0,
        })
    }
    .instrument(span)
    .await
}

/// Refuses to replace partitions whose objects are no longer in the landing
/// area: a moved or expired hour folder, or a mistyped landing URL, must not
/// erase bronze.
async fn check_nothing_vanished(
    ctx: &RunContext,
    events: &Table,
    rejects: &Table,
    event_files: &[DataFile],
    reject_files: &[DataFile],
    listed: &[LandingObject],
) -> Result<(), BronzeError> {
    if event_files.is_empty() && reject_files.is_empty() {
        return Ok(());
    }
    let listed: HashSet<&str> = listed.iter().map(|o| o.name.as_str()).collect();
    let mut vanished: BTreeSet<String> = BTreeSet::new();
    for (table, files) in [(events, event_files), (rejects, reject_files)] {
        for batch in table.scan(files.to_vec()).columns(&["source_object"]).read().await? {
            for name in batch.column(0).as_string::<i32>().iter().flatten() {
                if !listed.contains(name) && !vanished.contains(name) {
                    vanished.insert(name.to_string());
                }
            }
        }
    }
    if vanished.is_empty() {
        return Ok(());
    }
    let examples: Vec<&str> = vanished.iter().take(3).map(String::as_str).collect();
    Err(BronzeError::VanishedObjects { window: ctx.window.to_string(), count: vanished.len(), examples: examples.join(", ") })
}

/// Parsed and written, not yet committed.
struct Ingested {
    stats: ObjectStats,
    compressed_bytes: u64,
    objects: u64,
    event_adds: Vec<Add>,
    reject_adds: Vec<Add>,
}

enum Message {
    Batch(LandingPartition, Batch),
    ObjectDone(ObjectStats, u64),
    /// Every object of the partition is parsed: its files can be closed.
    PartitionDone(LandingPartition),
}

/// Parses and writes the objects: one writer task per core, each owning
/// whole partitions, so a partition becomes one file and the files encode in
/// parallel, like the parsing.
async fn ingest_objects(
    objects: Vec<LandingObject>,
    events: &Table,
    rejects: &Table,
    landing: &Location,
    ctx: &RunContext,
) -> Result<Ingested, BronzeError> {
    let parallelism = match ctx.config.bronze.parallelism {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    };
    let mut consumer_of: HashMap<LandingPartition, usize> = HashMap::new();
    let mut remaining: HashMap<LandingPartition, usize> = HashMap::new();
    for object in &objects {
        let next = consumer_of.len() % parallelism;
        consumer_of.entry(object.partition).or_insert(next);
        *remaining.entry(object.partition).or_default() += 1;
    }
    let remaining = Arc::new(Mutex::new(remaining));
    let mut senders = Vec::with_capacity(parallelism);
    let mut consumers = Vec::with_capacity(parallelism);
    for _ in 0..parallelism {
        let (sender, receiver) = mpsc::channel::<Message>(4);
        senders.push(sender);
        consumers.push(tokio::spawn(consume(receiver, events.writer(), rejects.writer()).in_current_span()));
    }

    let (store, _) = landing.object_store()?;
    let run_id: Arc<str> = Arc::from(ctx.run_id.as_str());
    let allowance = Duration::seconds(ctx.config.bronze.future_allowance_seconds);
    let max_line_bytes = ctx.config.bronze.max_line_bytes;
    // One builder per object being parsed, passed on to the next object: it
    // keeps room for a batch, which a new builder would grow to again.
    let builders: Arc<Mutex<Vec<EventBatchBuilder>>> = Arc::default();
    let produced = futures::stream::iter(objects.into_iter().map(Ok::<_, BronzeError>))
        .try_for_each_concurrent(parallelism, |object| {
            let (store, remaining, builders) = (store.clone(), remaining.clone(), builders.clone());
            let sender = senders[consumer_of[&object.partition]].clone();
            let job = ObjectJob {
                name: object.name.clone(),
                partition: object.partition,
                limits: Limits { latest_micros: (object.partition.hour + Duration::hours(1) + allowance).timestamp_micros() },
                max_line_bytes,
                run_id: run_id.clone(),
            };
            async move {
                let partition = object.partition;
                let fetched = match store.get(&object.path).await {
                    Ok(result) => result.bytes().await,
                    Err(e) => Err(e),
                };
                let (stats, size) = match fetched {
                    Ok(bytes) => {
                        let size = bytes.len() as u64;
                        let sender = sender.clone();
                        let stats = tokio::task::spawn_blocking(move || {
                            let mut events = builders.lock().expect("builder pool lock").pop().unwrap_or_default();
                            let stats =
                                parse_object(&job, bytes, &mut events, |batch| sender.blocking_send(Message::Batch(partition, batch)).is_ok())?;
                            builders.lock().expect("builder pool lock").push(events);
                            Ok::<_, LakeError>(stats)
                        })
                        .await
                        .map_err(|e| LakeError::Task(e.to_string()))??;
                        (stats, size)
                    }
                    Err(object_store::Error::NotFound { .. }) => {
                        warn!(object = %object.name, "object vanished between list and read");
                        let batch = object_reject(&job, "the object vanished between listing and reading")?;
                        let _ = sender.send(Message::Batch(partition, Batch::Rejects(batch))).await;
                        let mut stats = ObjectStats::default();
                        stats.rejects.insert("unreadable_object", 1);
                        (stats, 0)
                    }
                    Err(e) => return Err(LakeError::storage(landing, e).into()),
                };
                let _ = sender.send(Message::ObjectDone(stats, size)).await;
                let last = {
                    let mut remaining = remaining.lock().expect("counter lock");
                    let left = remaining.get_mut(&partition).expect("a counted partition");
                    *left -= 1;
                    *left == 0
                };
                if last {
                    let _ = sender.send(Message::PartitionDone(partition)).await;
                }
                Ok(())
            }
        })
        .await;
    // The senders go with the producer: the consumers drain and stop.
    drop(senders);

    let mut done = Ingested { stats: ObjectStats::default(), compressed_bytes: 0, objects: 0, event_adds: Vec::new(), reject_adds: Vec::new() };
    for consumer in consumers {
        let consumed = consumer.await.map_err(|e| LakeError::Task(e.to_string()))??;
        done.stats.add(&consumed.stats);
        done.compressed_bytes += consumed.compressed_bytes;
        done.objects += consumed.objects;
        done.event_adds.extend(consumed.event_adds);
        done.reject_adds.extend(consumed.reject_adds);
    }
    produced?;
    Ok(done)
}

/// What one writer task wrote, still to be committed.
#[derive(Default)]
struct Consumed {
    stats: ObjectStats,
    compressed_bytes: u64,
    objects: u64,
    event_adds: Vec<Add>,
    reject_adds: Vec<Add>,
}

async fn consume(mut receiver: mpsc::Receiver<Message>, events: TableWriter, rejects: TableWriter) -> Result<Consumed, BronzeError> {
    let mut done = Consumed::default();
    // Partitions whose objects are still being parsed, each with its own files.
    let mut open: BTreeMap<LandingPartition, (TableWriter, TableWriter)> = BTreeMap::new();
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Batch(partition, batch) => {
                let (event_writer, reject_writer) = open.entry(partition).or_insert_with(|| (events.sibling(), rejects.sibling()));
                match batch {
                    Batch::Events(batch) => event_writer.write(&partition.key(), &batch).await?,
                    Batch::Rejects(batch) => reject_writer.write(&partition.key(), &batch).await?,
                }
            }
            Message::ObjectDone(stats, size) => {
                done.stats.add(&stats);
                done.compressed_bytes += size;
                done.objects += 1;
            }
            Message::PartitionDone(partition) => {
                if let Some((event_writer, reject_writer)) = open.remove(&partition) {
                    done.event_adds.extend(event_writer.finish().await?);
                    done.reject_adds.extend(reject_writer.finish().await?);
                }
            }
        }
    }
    for (_, (event_writer, reject_writer)) in open {
        done.event_adds.extend(event_writer.finish().await?);
        done.reject_adds.extend(reject_writer.finish().await?);
    }
    Ok(done)
}
