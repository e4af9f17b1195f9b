//! The silver run: the window's bronze rows of the shard's buckets become
//! clean events, in chunks of buckets small enough to bound memory. The
//! bronze rows are read once and parked in one local spill part per chunk;
//! each chunk is then enriched and planned (while the one before it is
//! written), written and committed on its own, and planned again if a
//! concurrent run changed what it read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use streamreel_lake::LakeError;
use streamreel_lake::arrow::array::{Array, AsArray, ListArray, RecordBatch, UInt32Array};
use streamreel_lake::arrow::compute::take_record_batch;
use streamreel_lake::cores::map_on_cores;
use streamreel_lake::replan::replanning;
use streamreel_lake::report::RunReport;
use streamreel_lake::spill::Spill;
use streamreel_lake::table::{DataFile, RowFilter, Table};
use streamreel_lake::window::format_hour;
use streamreel_lake::worker::RunContext;
use streamreel_lake::{Location, shard::bucket_of};
use streamreel_tables::Metadata;
use streamreel_tables::bronze::{EVENTS as BRONZE, LandingPartition};
use tokio::task::JoinHandle;
use tracing::{Instrument, Span, info, info_span};

use crate::enrich::{BRONZE_COLUMNS, Enrichment, IpMasker, mask_addresses, to_silver};
use crate::error::SilverError;
use crate::plan::{Counters, Plan, PlanInput, Tables, plan};
use crate::write::apply;

/// The JSON run report, with the data-quality counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SilverReport {
    pub worker: &'static str,
    pub run_id: String,
    pub window_start: String,
    pub window_end: String,
    pub shard: String,
    pub chunks: u64,
    /// Plans made in all (more than the chunks when concurrent runs conflicted).
    pub plans: u64,
    #[serde(flatten)]
    pub counters: Counters,
    /// Events kept with an optional field emptied, per field.
    pub invalid_optional_fields: BTreeMap<String, u64>,
    /// Events of titles missing from the metadata.
    pub missing_metadata_events: u64,
    pub seconds: f64,
}

impl SilverReport {
    /// Adds a chunk's counts to the run's.
    fn absorb(&mut self, part: SilverReport) {
        self.chunks += 1;
        self.plans += part.plans;
        self.counters += &part.counters;
        for (field, n) in part.invalid_optional_fields {
            *self.invalid_optional_fields.entry(field).or_default() += n;
        }
        self.missing_metadata_events += part.missing_metadata_events;
    }
}

impl RunReport for SilverReport {
    fn log_summary(&self) {
        let c = &self.counters;
        info!(
            worker = self.worker,
            window_start = %self.window_start,
            window_end = %self.window_end,
            shard = %self.shard,
            bronze_rows = c.bronze_rows,
            events_written = c.events_written,
            already_in_silver = c.already_in_silver,
            duplicates_dropped = c.duplicates_dropped,
            duplicate_conflicts = c.duplicate_conflicts,
            events_replaced = c.events_replaced,
            sessions_recomputed = c.sessions_recomputed,
            segment_rows = c.segment_rows,
            invalid_optional_fields = self.invalid_optional_fields.values().sum::<u64>(),
            missing_metadata_events = self.missing_metadata_events,
            plans = self.plans,
            seconds = self.seconds,
            "silver-enrich {}..{}: {} bronze rows, {} events written ({} already in silver, {} duplicates dropped, {} conflicting), {} sessions recomputed into {} segments, {:.2} s",
            self.window_start,
            self.window_end,
            c.bronze_rows,
            c.events_written,
            c.already_in_silver,
            c.duplicates_dropped,
            c.duplicate_conflicts,
            c.sessions_recomputed,
            c.segment_rows,
            self.seconds
        );
    }
}

pub async fn run(ctx: &RunContext) -> Result<SilverReport, SilverError> {
    let started = Instant::now();
    let key_env = &ctx.config.silver.ip_hash_key_env;
    let key = std::env::var(key_env).ok().filter(|k| !k.is_empty()).ok_or_else(|| SilverError::MissingIpKey(key_env.clone()))?;
    let masker = IpMasker::new(key.as_bytes());
    let metadata = Metadata::load(&ctx.config.metadata_url).await?;
    let lake = ctx.config.lake()?;
    let bronze = Arc::new(Table::open(&lake, &BRONZE, ctx.config.buckets).await?);
    let window_files = bronze.files_where(|key| LandingPartition::from_key(key).is_some_and(|p| ctx.window.contains(p.hour)));
    let mut report = SilverReport {
        worker: ctx.worker,
        run_id: ctx.run_id.clone(),
        window_start: format_hour(ctx.window.start),
        window_end: format_hour(ctx.window.end),
        shard: ctx.shard.to_string(),
        ..Default::default()
    };
    let chunks = chunks(ctx, &window_files);
    let spill = park_by_chunk(ctx, &bronze, &window_files, &chunks).await?;
    let shared = Arc::new(Chunking { ctx: ctx.clone(), lake, spill, metadata, masker });
    // Each chunk is planned while the one before it is written: a plan reads
    // only its own buckets' partitions, which no other chunk writes, and a
    // plan and a write together keep both cores busy where either alone
    // leaves one idle for long stretches. One chunk is written at a time.
    let mut writing: Option<JoinHandle<Result<SilverReport, SilverError>>> = None;
    for (part, buckets) in chunks.into_iter().enumerate() {
        let planned = plan_chunk(&shared, part, &buckets, 1).await;
        // The chunk being written lands (or fails) before any error ends the run.
        if let Some(written) = writing.take() {
            report.absorb(finished(written).await?);
        }
        writing = Some(tokio::spawn(write_chunk(shared.clone(), part, buckets, planned?)));
    }
    if let Some(written) = writing {
        report.absorb(finished(written).await?);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The shard's buckets in groups whose bronze rows stay under
/// `silver.max_rows_per_chunk` (rows spread evenly over buckets), as few
/// groups as that allows and of even sizes: a chunk is planned while the one
/// before it is written, so a small last chunk would leave a core idle.
fn chunks(ctx: &RunContext, window_files: &[DataFile]) -> Vec<BTreeSet<u32>> {
    let rows: u64 = window_files.iter().map(|f| f.rows().unwrap_or(0)).sum();
    let per_bucket = rows.div_ceil(ctx.config.buckets as u64).max(1);
    let largest = (ctx.config.silver.max_rows_per_chunk / per_bucket).max(1) as usize;
    even_groups(&ctx.shard.buckets(ctx.config.buckets), largest)
}

/// `items` in order, in as few consecutive groups of at most `largest` as
/// possible, whose sizes differ by one at most.
fn even_groups(items: &[u32], largest: usize) -> Vec<BTreeSet<u32>> {
    let groups = items.len().div_ceil(largest.max(1));
    let mut rest = items;
    (0..groups)
        .map(|g| {
            let (group, after) = rest.split_at(rest.len().div_ceil(groups - g));
            rest = after;
            group.iter().copied().collect()
        })
        .collect()
}

/// Files read at once while enriching, at most: enough to keep the cores
/// and the reads busy.
const FILES_PER_READ: usize = 16;

/// Reads the window's bronze rows of the shard's buckets once and parks each
/// row in the spill part of its chunk, in bronze order. Rows are parked as
/// read and enriched when their chunk is planned: a bronze row is 40 % smaller
/// than the silver event it becomes (no keyed hash, metadata or keys yet),
/// and copying the spill into and out of the page cache was a tenth of a
/// day's run. The next group of files is read while one is parked.
async fn park_by_chunk(ctx: &RunContext, bronze: &Arc<Table>, window_files: &[DataFile], chunks: &[BTreeSet<u32>]) -> Result<Spill, SilverError> {
    let started = Instant::now();
    let total = ctx.config.buckets;
    let mut chunk_of = vec![None; total as usize];
    for (part, chunk) in chunks.iter().enumerate() {
        for &bucket in chunk {
            chunk_of[bucket as usize] = Some(part);
        }
    }
    let mut spill = Spill::new(chunks.len())?;
    let shard = ctx.shard;
    let read = |files: &[DataFile]| {
        let (bronze, files) = (bronze.clone(), files.to_vec());
        tokio::spawn(
            async move {
                let mut scan = bronze.scan(files).columns(&BRONZE_COLUMNS);
                if !shard.is_all() {
                    scan = scan.filter(RowFilter::new(&["customer_id"], move |batch: &RecordBatch| {
                        batch.column(0).as_string::<i32>().iter().map(|c| Some(shard.owns(bucket_of(c.unwrap_or_default(), total)))).collect()
                    }));
                }
                scan.read().await
            }
            .in_current_span(),
        )
    };
    let mut groups = reads(window_files, ctx.config.silver.max_rows_per_chunk / 2).into_iter();
    let mut next = groups.next().map(read);
    while let Some(reading) = next.take() {
        let bronze_batches = reading.await.map_err(|e| LakeError::Task(e.to_string()))??;
        next = groups.next().map(read);
        // Each core splits its batches by chunk.
        for parts in map_on_cores(&bronze_batches, |b| {
            let customers = b.column_by_name("customer_id").expect("bronze column customer_id").as_string::<i32>();
            let buckets: Vec<u32> = customers.iter().map(|c| bucket_of(c.unwrap_or_default(), total)).collect();
            by_chunk(b.clone(), &buckets, &chunk_of)
        }) {
            spill.append(parts?)?;
        }
    }
    spill.seal()?;
    info!(
        rows = (0..spill.parts()).map(|p| spill.rows(p)).sum::<u64>(),
        chunks = spill.parts(),
        seconds = started.elapsed().as_secs_f64(),
        "read and parked the window's bronze rows"
    );
    Ok(spill)
}

/// The rows of a batch by the chunk of their bucket (`buckets`, one per row;
/// `chunk_of`, indexed by bucket); rows of buckets in no chunk are left out.
/// One copy orders the rows by chunk; each chunk's rows are a slice of it.
fn by_chunk(batch: RecordBatch, buckets: &[u32], chunk_of: &[Option<usize>]) -> Result<Vec<(usize, RecordBatch)>, LakeError> {
    let mut rows: Vec<(usize, u32)> =
        buckets.iter().enumerate().filter_map(|(row, bucket)| chunk_of[*bucket as usize].map(|part| (part, row as u32))).collect();
    if rows.first().is_some_and(|(first, _)| rows.len() == batch.num_rows() && rows.iter().all(|(part, _)| part == first)) {
        return Ok(vec![(rows[0].0, batch)]);
    }
    // Stable: each chunk keeps the batch's row order.
    rows.sort_by_key(|(part, _)| *part);
    let indices: UInt32Array = rows.iter().map(|(_, row)| *row).collect();
    let ordered = take_record_batch(&batch, &indices).map_err(|e| LakeError::data("parking rows by chunk", e))?;
    let mut parts = Vec::new();
    let mut start = 0;
    for run in rows.chunk_by(|a, b| a.0 == b.0) {
        parts.push((run[0].0, ordered.slice(start, run.len())));
        start += run.len();
    }
    Ok(parts)
}

/// The window's files in consecutive groups of at most `FILES_PER_READ`
/// files and (unless one file alone holds more) `rows` rows.
fn reads(files: &[DataFile], rows: u64) -> Vec<&[DataFile]> {
    let mut groups = Vec::new();
    let (mut start, mut held) = (0, 0);
    for (i, file) in files.iter().enumerate() {
        let more = file.rows().unwrap_or(0);
        if i > start && (i - start == FILES_PER_READ || held + more > rows) {
            groups.push(&files[start..i]);
            (start, held) = (i, 0);
        }
        held += more;
    }
    if start < files.len() {
        groups.push(&files[start..]);
    }
    groups
}

/// What the plans and writes of a run's chunks share.
struct Chunking {
    ctx: RunContext,
    lake: Location,
    spill: Spill,
    metadata: Metadata,
    masker: IpMasker,
}

/// A chunk's plan, not written yet, with the snapshot it was made from.
struct Planned {
    tables: Tables,
    plan: Plan,
    invalid_optional_fields: BTreeMap<String, u64>,
    missing_metadata_events: u64,
    attempt: u32,
    span: Span,
    started: Instant,
}

async fn plan_chunk(shared: &Chunking, part: usize, buckets: &BTreeSet<u32>, attempt: u32) -> Result<Planned, SilverError> {
    let started = Instant::now();
    let ctx = &shared.ctx;
    let first = buckets.first().copied().unwrap_or(0);
    let span = info_span!("silver_enrich", window = %ctx.window, shard = %ctx.shard, buckets = %format!("{first}..{} ({})", buckets.last().copied().unwrap_or(0), buckets.len()), attempt);
    async move {
        let tables = Tables::open(&shared.lake, ctx.config.buckets).await?;
        let parked = shared.spill.read(part)?;
        let masks = mask_addresses(&parked, &shared.masker);
        let enrichment = Enrichment { metadata: &shared.metadata, masks: &masks, key_id: &shared.masker.key_id, buckets: ctx.config.buckets };
        let candidates = map_on_cores(&parked, |b| to_silver(b, &enrichment));
        drop(parked);
        let (invalid_optional_fields, missing_metadata_events) = quality_counts(&candidates);
        let input = PlanInput {
            tables: &tables,
            metadata: &shared.metadata,
            settings: &ctx.config.metrics,
            buckets,
            total_buckets: ctx.config.buckets,
            window: (format_hour(ctx.window.start), format_hour(ctx.window.end)),
        };
        let plan = plan(&input, &candidates).await?;
        info!(seconds = started.elapsed().as_secs_f64(), sessions = plan.counters.sessions_recomputed, "planned");
        Ok(Planned { tables, plan, invalid_optional_fields, missing_metadata_events, attempt, span: Span::current(), started })
    }
    .instrument(span)
    .await
}

/// Writes a chunk's first plan; when a concurrent run changed what it read,
/// plans the chunk again on fresh snapshots and writes that.
async fn write_chunk(shared: Arc<Chunking>, part: usize, buckets: BTreeSet<u32>, planned: Planned) -> Result<SilverReport, SilverError> {
    let mut first = Some(planned);
    replanning("silver-enrich", |attempt| {
        let (shared, buckets, first) = (&shared, &buckets, first.take());
        async move {
            let planned = match first {
                Some(planned) => planned,
                None => plan_chunk(shared, part, buckets, attempt).await?,
            };
            let Planned { mut tables, plan, invalid_optional_fields, missing_metadata_events, attempt, span, started } = planned;
            let counters = plan.counters.clone();
            async move {
                apply(&mut tables, plan, &shared.ctx.commit_meta()).await?;
                info!(seconds = started.elapsed().as_secs_f64(), "committed");
                Ok(SilverReport { plans: attempt as u64, counters, invalid_optional_fields, missing_metadata_events, ..Default::default() })
            }
            .instrument(span)
            .await
        }
    })
    .await
}

/// The outcome of a chunk's write task; its panic goes on in the run.
async fn finished(written: JoinHandle<Result<SilverReport, SilverError>>) -> Result<SilverReport, SilverError> {
    written.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Per optional field, the events that came with a value it cannot hold;
/// and the events of titles missing from the metadata.
fn quality_counts(candidates: &[RecordBatch]) -> (BTreeMap<String, u64>, u64) {
    let mut invalid: HashMap<&str, u64> = HashMap::new();
    let mut missing = 0;
    for batch in candidates {
        let fields = batch.column_by_name("invalid_fields").expect("invalid_fields").as_list::<i32>();
        for_each_item(fields, |_, field| *invalid.entry(field).or_default() += 1);
        let flags = batch.column_by_name("quality_flags").expect("quality_flags").as_list::<i32>();
        let mut last_missing = None;
        for_each_item(flags, |row, flag| {
            if flag == crate::enrich::MISSING_METADATA && last_missing != Some(row) {
                last_missing = Some(row);
                missing += 1;
            }
        });
    }
    (invalid.into_iter().map(|(field, n)| (field.to_string(), n)).collect(), missing)
}

/// Calls `each` with the row and text of every item of a list of texts, in
/// order. Reads the flat values by offset: a list array per row (what
/// iterating the lists gives) costs more than the counting.
fn for_each_item<'a>(lists: &'a ListArray, mut each: impl FnMut(usize, &'a str)) {
    let items = lists.values().as_string::<i32>();
    for (row, range) in lists.value_offsets().windows(2).enumerate() {
        if lists.is_valid(row) {
            for item in range[0] as usize..range[1] as usize {
                if items.is_valid(item) {
                    each(row, items.value(item));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use streamreel_lake::arrow::array::{ArrayRef, Int64Array, ListBuilder, StringBuilder};
    use streamreel_lake::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;

    /// A batch of `rows` rows numbered from 0.
    fn batch(rows: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("row", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new((0..rows).collect::<Int64Array>())]).unwrap()
    }

    fn rows(batch: &RecordBatch) -> Vec<i64> {
        batch.column(0).as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn rows_go_to_the_chunk_of_their_bucket_in_order() {
        // Buckets 0 and 3 in chunk 1, bucket 2 in chunk 0, bucket 1 in none.
        let chunk_of = [Some(1), None, Some(0), Some(1)];
        let parts = by_chunk(batch(6), &[0, 1, 2, 3, 0, 2], &chunk_of).unwrap();
        let found: Vec<(usize, Vec<i64>)> = parts.iter().map(|(part, b)| (*part, rows(b))).collect();
        assert_eq!(found, vec![(0, vec![2, 5]), (1, vec![0, 3, 4])]);
    }

    #[test]
    fn chunks_are_as_few_as_the_largest_allows_and_even() {
        let sizes = |n: u32, largest| even_groups(&(0..n).collect::<Vec<_>>(), largest).iter().map(|g| g.len()).collect::<Vec<_>>();
        assert_eq!(sizes(64, 44), vec![32, 32]);
        assert_eq!(sizes(64, 28), vec![22, 21, 21]);
        assert_eq!(sizes(5, 1), vec![1; 5]);
        assert_eq!(sizes(3, 10), vec![3]);
        assert!(sizes(0, 4).is_empty());
        let groups = even_groups(&[7, 8, 9, 10, 11], 2);
        assert_eq!(groups.into_iter().flatten().collect::<Vec<_>>(), vec![7, 8, 9, 10, 11]);
    }

    fn texts(rows: &[Option<&[Option<&str>]>]) -> ListArray {
        let mut lists = ListBuilder::new(StringBuilder::new());
        for row in rows {
            match row {
                Some(items) => {
                    for item in *items {
                        lists.values().append_option(*item);
                    }
                    lists.append(true);
                }
                None => lists.append(false),
            }
        }
        lists.finish()
    }

    #[test]
    fn quality_counts_count_events_per_field_and_missing_titles_once_each() {
        let missing = Some(crate::enrich::MISSING_METADATA);
        let invalid = texts(&[Some(&[Some("quality"), Some("isp")]), None, Some(&[]), Some(&[Some("quality"), None]), Some(&[Some("isp")])]);
        let flags = texts(&[Some(&[missing]), Some(&[]), None, Some(&[Some("other"), missing, missing]), Some(&[missing])]);
        let batch =
            RecordBatch::try_from_iter(vec![("invalid_fields", Arc::new(invalid) as ArrayRef), ("quality_flags", Arc::new(flags) as ArrayRef)])
                .unwrap();
        let (fields, missing) = quality_counts(std::slice::from_ref(&batch));
        assert_eq!(fields, BTreeMap::from([("isp".to_string(), 2), ("quality".to_string(), 2)]));
        assert_eq!(missing, 3);
        // A slice counts only its own rows (its offsets point into the whole values).
        let (fields, missing) = quality_counts(&[batch.slice(3, 2)]);
        assert_eq!(fields, BTreeMap::from([("isp".to_string(), 1), ("quality".to_string(), 1)]));
        assert_eq!(missing, 2);
    }

    #[test]
    fn a_batch_of_one_chunk_is_kept_whole() {
        let whole = batch(3);
        let parts = by_chunk(whole.clone(), &[0, 3, 0], &[Some(1), None, Some(0), Some(1)]).unwrap();
        assert_eq!(parts, vec![(1, whole)]);
        assert!(by_chunk(batch(2), &[1, 1], &[Some(1), None, Some(0), Some(1)]).unwrap().is_empty());
    }
}
