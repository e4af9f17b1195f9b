//! The bronze run: list the window's landing objects, parse them in
//! parallel, stream batches into both tables, and replace the window's
//! partitions in one commit per table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Timelike, Utc};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Serialize;
use deltalake::kernel::Add;
use streamreel_lake::delta::{PartitionValue, Table, TableWriter};
use streamreel_lake::storage::Location;
use streamreel_lake::window::format_hour;
use streamreel_lake::{Config, Window};
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use crate::error::BronzeError;
use crate::object::{Batch, ObjectJob, ObjectStats, object_reject, parse_object};
use crate::parse::Limits;
use crate::schema::{EVENTS, LANDING_DATE, LANDING_HOUR, REJECTS};

/// The JSON run report.
#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub worker: &'static str,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
    pub objects: u64,
    pub compressed_bytes: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub rows_written: u64,
    pub rejected: u64,
    pub rejects_by_reason: BTreeMap<&'static str, u64>,
    pub reject_ratio: f64,
    pub events_version: Option<i64>,
    pub rejects_version: Option<i64>,
    pub seconds: f64,
}

impl IngestReport {
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self.rejects_by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
        format!(
            "bronze-ingest {}..{}: {} objects, {} lines, {} rows written, {} rejected{}, {:.2} s",
            self.window_start,
            self.window_end,
            self.objects,
            self.lines,
            self.rows_written,
            self.rejected,
            if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) },
            self.seconds
        )
    }
}

struct LandingObject {
    hour: DateTime<Utc>,
    path: Path,
    name: String,
    gzip: bool,
}

enum Message {
    Batch { hour: DateTime<Utc>, batch: Batch },
    Done(ObjectStats, u64),
}

/// Ingests every landing hour of `window`. Rerunning the same window replaces
/// exactly its partitions, so a retry or backfill never duplicates rows.
pub async fn run(config: &Config, window: Window, run_id: &str) -> Result<IngestReport, BronzeError> {
    let started = Instant::now();
    let landing = Location::parse(&config.landing_url)?;
    let lake = Location::parse(&config.lake_url)?;
    let span = info_span!("bronze_ingest", window = %window, table = %lake.join(EVENTS.path));
    async move {
        let (store, root) = landing.object_store()?;
        let objects = list_window(&landing, store.as_ref(), &root, window).await?;
        info!(objects = objects.len(), landing = %landing, "listed landing objects");

        let mut events = Table::open_or_create(&lake, &EVENTS).await?;
        let mut rejects = Table::open_or_create(&lake, &REJECTS).await?;
        let parallelism = match config.bronze.parallelism {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let run_id: Arc<str> = Arc::from(run_id);

        let done = ingest_objects(objects, &events, &rejects, &store, &landing, config, &run_id, parallelism).await?;
        let Ingested { stats: totals, compressed_bytes, objects: objects_done, event_adds, reject_adds } = done;

        let in_window = |file: &deltalake::kernel::LogicalFileView| partition_in(window, &file.partition_values_map());
        let metadata = streamreel_lake::delta::commit_metadata("bronze-ingest", &run_id, window);
        // Rejects first: if the run dies between the two commits, the rerun
        // replaces both, and no event is ever visible without its rejects.
        let rejects_version = rejects.commit(reject_adds, in_window, &format!("bronze window {window}"), metadata.clone()).await?;
        let events_version = events.commit(event_adds, in_window, &format!("bronze window {window}"), metadata).await?;

        let rejected = totals.rejected();
        let records = totals.rows + rejected;
        Ok(IngestReport {
            worker: "bronze-ingest",
            run_id: run_id.to_string(),
            window_start: format_hour(window.start),
            window_end: format_hour(window.end),
            objects: objects_done,
            compressed_bytes,
            lines: totals.lines,
            blank_lines: totals.blank_lines,
            rows_written: totals.rows,
            rejected,
            reject_ratio: if records == 0 { 0.0 } else { rejected as f64 / records as f64 },
            rejects_by_reason: totals.rejects,
            events_version,
            rejects_version,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
    .instrument(span)
    .await
}

/// Parsed and written, not yet committed.
struct Ingested {
    stats: ObjectStats,
    compressed_bytes: u64,
    objects: u64,
    event_adds: Vec<Add>,
    reject_adds: Vec<Add>,
}

/// Parses and writes a set of objects with one writer pair per core.
#[allow(clippy::too_many_arguments)]
async fn ingest_objects(
    objects: Vec<LandingObject>,
    events: &Table,
    rejects: &Table,
    store: &Arc<dyn object_store::ObjectStore>,
    landing: &Location,
    config: &Config,
    run_id: &Arc<str>,
    parallelism: usize,
) -> Result<Ingested, BronzeError> {
        // One writer pair per core, each fed by its own channel, so parquet
        // encoding runs in parallel like the parsing does.
        let mut senders = Vec::with_capacity(parallelism);
        let mut consumers = Vec::with_capacity(parallelism);
        for _ in 0..parallelism {
            let (sender, receiver) = mpsc::channel::<Message>(4);
            senders.push(sender);
            consumers.push(tokio::spawn(consume(receiver, events.writer()?, rejects.writer()?).in_current_span()));
        }

        let producer = {
            let store = store.clone();
            let run_id = run_id.clone();
            let allowance = Duration::seconds(config.bronze.future_allowance_seconds);
            let max_line_bytes = config.bronze.max_line_bytes;
            let landing = landing.clone();
            async move {
                futures::stream::iter(objects.into_iter().enumerate().map(Ok::<_, BronzeError>))
                    .try_for_each_concurrent(parallelism, |(index, object)| {
                        let store = store.clone();
                        let sender = senders[index % senders.len()].clone();
                        let landing = landing.clone();
                        let job = ObjectJob {
                            name: object.name.clone(),
                            gzip: object.gzip,
                            limits: Limits {
                                latest_micros: (object.hour + Duration::hours(1) + allowance).timestamp_micros(),
                            },
                            max_line_bytes,
                            run_id: run_id.clone(),
                        };
                        async move {
                            let hour = object.hour;
                            let fetched = match store.get(&object.path).await {
                                Ok(result) => result.bytes().await,
                                Err(e) => Err(e),
                            };
                            let bytes = match fetched {
                                Ok(bytes) => bytes,
                                Err(object_store::Error::NotFound { .. }) => {
                                    warn!(object = %object.name, "object vanished between list and read");
                                    let batch = object_reject(&job.name, &job.run_id, "the object vanished between listing and reading".into());
                                    let mut stats = ObjectStats::default();
                                    stats.rejects.insert("unreadable_object", 1);
                                    let _ = sender.send(Message::Batch { hour, batch: Batch::Rejects(batch) }).await;
                                    let _ = sender.send(Message::Done(stats, 0)).await;
                                    return Ok(());
                                }
                                Err(source) => return Err(BronzeError::Storage(landing.storage_error(source))),
                            };
                            let size = bytes.len() as u64;
                            tokio::task::spawn_blocking(move || {
                                let stats = parse_object(&job, bytes, |batch| sender.blocking_send(Message::Batch { hour, batch }).is_ok());
                                let _ = sender.blocking_send(Message::Done(stats, size));
                            })
                            .await
                            .map_err(|e| BronzeError::Task(e.to_string()))
                        }
                    })
                    .await
            }
        };
        // The producer owns the senders: when it ends, the consumers drain and stop.
        let produced = producer.await;

        let mut done = Ingested { stats: ObjectStats::default(), compressed_bytes: 0, objects: 0, event_adds: Vec::new(), reject_adds: Vec::new() };
        for consumer in consumers {
            let consumed = consumer.await.map_err(|e| BronzeError::Task(e.to_string()))??;
            done.stats.add(&consumed.stats);
            done.compressed_bytes += consumed.compressed_bytes;
            done.objects += consumed.objects;
            done.event_adds.extend(consumed.event_adds);
            done.reject_adds.extend(consumed.reject_adds);
        }
        produced?;
        Ok(done)
}

/// What one consumer wrote, still to be committed.
struct Consumed {
    events: TableWriter,
    rejects: TableWriter,
    stats: ObjectStats,
    compressed_bytes: u64,
    objects: u64,
    event_adds: Vec<Add>,
    reject_adds: Vec<Add>,
}

async fn consume(mut receiver: mpsc::Receiver<Message>, events: TableWriter, rejects: TableWriter) -> Result<Consumed, BronzeError> {
    let mut done = Consumed { events, rejects, stats: ObjectStats::default(), compressed_bytes: 0, objects: 0, event_adds: Vec::new(), reject_adds: Vec::new() };
    let mut current_hour = None;
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Batch { hour, batch } => {
                // Objects come in landing-hour order; closing the files of an
                // hour once the next begins keeps one partition open at a time,
                // so memory stays bounded however long the window.
                if current_hour.is_some_and(|h| h != hour) {
                    done.event_adds.extend(done.events.flush().await?);
                    done.reject_adds.extend(done.rejects.flush().await?);
                }
                current_hour = Some(hour);
                match batch {
                    Batch::Events(batch) => write(&mut done.events, batch, hour).await?,
                    Batch::Rejects(batch) => write(&mut done.rejects, batch, hour).await?,
                }
            }
            Message::Done(object_stats, size) => {
                done.stats.add(&object_stats);
                done.compressed_bytes += size;
                done.objects += 1;
            }
        }
    }
    done.event_adds.extend(done.events.flush().await?);
    done.reject_adds.extend(done.rejects.flush().await?);
    Ok(done)
}

async fn write(writer: &mut TableWriter, batch: streamreel_lake::arrow::array::RecordBatch, hour: DateTime<Utc>) -> Result<(), BronzeError> {
    let partition = [PartitionValue::Date(hour.date_naive()), PartitionValue::Int(hour.hour() as i32)];
    Ok(writer.write(batch, &partition).await?)
}

/// The landing hour of a bronze file, from its partition values.
pub fn landing_hour(values: &HashMap<String, Option<String>>) -> Option<DateTime<Utc>> {
    let day = streamreel_lake::delta::partition_day(values, LANDING_DATE)?;
    let hour: i64 = values.get(LANDING_HOUR)?.as_deref()?.parse().ok()?;
    DateTime::from_timestamp_micros(day as i64 * streamreel_lake::delta::MICROS_PER_DAY + hour * 3_600_000_000)
}

/// Whether a bronze file's landing partition lies in the window.
pub fn partition_in(window: Window, values: &HashMap<String, Option<String>>) -> bool {
    landing_hour(values).is_some_and(|hour| window.contains(hour))
}


/// The folder of one landing hour, relative to the landing root.
pub fn hour_folder(hour: DateTime<Utc>) -> String {
    hour.format("year=%Y/month=%m/day=%d/hour=%H").to_string()
}

async fn list_window(
    landing: &Location,
    store: &dyn object_store::ObjectStore,
    root: &Path,
    window: Window,
) -> Result<Vec<LandingObject>, BronzeError> {
    let mut objects = Vec::new();
    for hour in window.hours() {
        let folder = hour_folder(hour);
        let prefix = Path::from(format!("{root}/{folder}").trim_start_matches('/'));
        let listed: Vec<object_store::ObjectMeta> = match store.list(Some(&prefix)).try_collect().await {
            Ok(listed) => listed,
            // A local landing hour that was never written is simply empty.
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(source) => return Err(BronzeError::Storage(landing.storage_error(source))),
        };
        for meta in listed {
            let full = meta.location.to_string();
            let relative = full.strip_prefix(root.as_ref()).unwrap_or(&full).trim_start_matches('/').to_string();
            let file_name = relative.rsplit('/').next().unwrap_or_default();
            let lower = file_name.to_ascii_lowercase();
            let gzip = lower.ends_with(".gz");
            let plain = lower.ends_with(".json") || lower.ends_with(".jsonl") || lower.ends_with(".ndjson");
            if file_name.starts_with('.') || file_name.starts_with('_') || !(gzip || plain) {
                continue;
            }
            objects.push(LandingObject { hour, path: meta.location, name: relative, gzip });
        }
    }
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(objects)
}
