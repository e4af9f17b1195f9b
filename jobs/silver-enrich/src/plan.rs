//! The silver plan of one chunk of buckets: from this window's candidate
//! events and what silver holds now, to what every silver table gets and
//! loses, with the partitions it read. Reads go through scans; the
//! decisions are the pure functions of `dedup` and `sessions`, widened
//! until nothing they depend on lies outside what was read.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use streamreel_lake::arrow::array::{AsArray, BooleanArray, RecordBatch};
use streamreel_lake::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use streamreel_lake::cores::{map_on_cores, shares_on_cores};
use streamreel_lake::rows::encode;
use streamreel_lake::shard::key_hash;
use streamreel_lake::table::key_filter::int_key;
use streamreel_lake::table::{DataFile, PartitionKey, Prune, RowFilter, Table};
use streamreel_lake::time::{MICROS_PER_DAY, MICROS_PER_HOUR, day_of};
use streamreel_lake::{LakeError, Location};
use streamreel_tables::Metadata;
use streamreel_tables::silver::{
    CHANGES, CUSTOMER_BUCKET, ChangeRow, DUPLICATES, DuplicateRow, EVENTS, SEGMENTS, SESSIONS, SegmentBatchBuilder, SessionRow, day_and_bucket,
    partition,
};
use tracing::info;

use crate::columns::{EVENT_COLUMNS, EventColumns, RowRef};
use crate::dedup::{Copy, Origin, Resolution, resolve};
use crate::error::SilverError;
use crate::segments::event_order;
use crate::sessions::{KeyWork, Recomputed, Split, recompute_key, split};

/// Events of a touched session are first read this far before its changed
/// events (sessions often started earlier) and this far after.
const LOOK_BACK: i64 = 3 * MICROS_PER_HOUR;
const LOOK_AHEAD: i64 = MICROS_PER_HOUR;
/// Stored sessions are looked up from this many days before a region.
const SESSION_DAYS_BACK: i32 = 2;

/// The silver tables at the snapshot a plan is made from.
pub struct Tables {
    pub events: Table,
    pub duplicates: Table,
    pub segments: Table,
    pub sessions: Table,
    pub changes: Table,
}

impl Tables {
    pub async fn open(lake: &Location, buckets: u32) -> Result<Tables, LakeError> {
        Ok(Tables {
            events: Table::open(lake, &EVENTS, buckets).await?,
            duplicates: Table::open(lake, &DUPLICATES, buckets).await?,
            segments: Table::open(lake, &SEGMENTS, buckets).await?,
            sessions: Table::open(lake, &SESSIONS, buckets).await?,
            changes: Table::open(lake, &CHANGES, buckets).await?,
        })
    }
}

/// The sessions one identity (customer, session key) has replaced: stored
/// rows of the identity starting inside the region go.
pub type Regions = HashMap<(String, String), Vec<(i64, i64)>>;

/// Event keys or session hashes looked up row by row: a fast hash, as the
/// values are hashes already.
type KeySet = ahash::AHashSet<i64>;

/// Everything a chunk will write, decided before anything is written.
#[derive(Default)]
pub struct Plan {
    /// Candidate batches with rows that become events, and which of their
    /// rows do (`None`: all), as the writer takes them: the few copies
    /// dropped are skipped there instead of copying the rest here.
    pub new_events: Vec<RecordBatch>,
    pub new_event_rows: Vec<Option<Vec<u32>>>,
    /// Stored events displaced by an earlier copy.
    pub displaced: Displaced,
    /// The files that hold the displaced events.
    pub displaced_files: Vec<DataFile>,
    pub duplicates: Vec<DuplicateRow>,
    pub regions: Regions,
    /// Segment, session and change-log rows, encoded while planning (the
    /// segments and sessions on the cores that computed them): the write,
    /// the longer half of a chunk beside the next chunk's plan, only sorts
    /// and stores them.
    pub segments: Vec<RecordBatch>,
    pub sessions: Vec<RecordBatch>,
    pub changes: Vec<RecordBatch>,
    /// Stored session and segment files that may hold rows of the regions.
    pub session_scope: Vec<DataFile>,
    pub segment_scope: Vec<DataFile>,
    /// Partitions each table's part of the plan depends on.
    pub events_read: BTreeSet<PartitionKey>,
    pub duplicates_read: BTreeSet<PartitionKey>,
    pub sessions_read: BTreeSet<PartitionKey>,
    pub counters: Counters,
}

/// Stored events displaced by an earlier copy, by (event_key,
/// source_object, line_number). Few events are: most rows are told apart
/// by their event key alone, without copying their source object.
#[derive(Debug, Default)]
pub struct Displaced {
    keys: KeySet,
    rows: HashSet<(i64, String, i64)>,
}

impl Displaced {
    pub fn insert(&mut self, event_key: i64, source_object: &str, line_number: i64) {
        self.keys.insert(event_key);
        self.rows.insert((event_key, source_object.to_string(), line_number));
    }

    pub fn contains(&self, event_key: i64, source_object: &str, line_number: i64) -> bool {
        self.keys.contains(&event_key) && self.rows.contains(&(event_key, source_object.to_string(), line_number))
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    pub bronze_rows: u64,
    /// Events added to `silver/events`.
    pub events_written: u64,
    /// Bronze rows stored before (a rerun of the window).
    pub already_in_silver: u64,
    /// Copies of an event already kept, stored in `silver/duplicates`.
    pub duplicates_dropped: u64,
    /// Duplicates whose content differs from the copy kept.
    pub duplicate_conflicts: u64,
    /// Stored events displaced by an earlier copy.
    pub events_replaced: u64,
    pub sessions_recomputed: u64,
    pub segment_rows: u64,
    pub session_rows: u64,
}

impl std::ops::AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, other: &Counters) {
        self.bronze_rows += other.bronze_rows;
        self.events_written += other.events_written;
        self.already_in_silver += other.already_in_silver;
        self.duplicates_dropped += other.duplicates_dropped;
        self.duplicate_conflicts += other.duplicate_conflicts;
        self.events_replaced += other.events_replaced;
        self.sessions_recomputed += other.sessions_recomputed;
        self.segment_rows += other.segment_rows;
        self.session_rows += other.session_rows;
    }
}

pub struct PlanInput<'a> {
    pub tables: &'a Tables,
    pub metadata: &'a Metadata,
    pub settings: &'a streamreel_lake::config::MetricSettings,
    pub buckets: &'a BTreeSet<u32>,
    pub total_buckets: u32,
    pub window: (String, String),
}

pub async fn plan(input: &PlanInput<'_>, candidates: &[RecordBatch]) -> Result<Plan, SilverError> {
    let mut plan =
        Plan { counters: Counters { bronze_rows: candidates.iter().map(|b| b.num_rows() as u64).sum(), ..Default::default() }, ..Default::default() };
    let columns: Vec<EventColumns<'_>> = candidates.iter().map(EventColumns::new).collect();
    let times = columns.iter().flat_map(|c| c.timestamp.values().iter().copied());
    // With no candidates the read range is empty and nothing is looked up.
    let (first, last) = (times.clone().min().unwrap_or(0), times.max().unwrap_or(-1));
    let horizon = (input.settings.dedup_horizon_days * MICROS_PER_DAY as f64).round() as i64;

    // Deduplication, reading the stored copies of the candidates' ids.
    let keys: Arc<KeySet> = Arc::new(columns.iter().flat_map(|c| c.event_key.values().iter().copied()).collect());
    let keys_by_bucket = KeysByBucket::of(candidates)?;
    let mut read = (first - horizon, last + horizon);
    let (stored, stored_files, lost, resolution) = loop {
        if candidates.iter().all(|b| b.num_rows() == 0) {
            break (Vec::new(), Vec::new(), Vec::new(), Resolution::default());
        }
        let (stored, stored_files) =
            lookup_events(input, &mut plan.events_read, read, RowFilter::new(&["event_key"], key_filter(keys.clone(), "event_key")), None, |file| {
                keys_by_bucket.may_be_in(file)
            })
            .await?;
        let lost = lookup_duplicates(input, &mut plan.duplicates_read, read, keys.clone(), &keys_by_bucket).await?;
        let stored_columns: Vec<EventColumns<'_>> = stored.iter().map(EventColumns::new).collect();
        let resolution = resolve_copies(&columns, &stored_columns, &lost, horizon, read);
        match resolution.needs {
            Some(wider) => read = wider,
            None => break (stored, stored_files, lost, resolution),
        }
    };
    let stored_columns: Vec<EventColumns<'_>> = stored.iter().map(EventColumns::new).collect();
    let offset = columns.len() as u32;
    let at = |(b, r): RowRef| -> (&EventColumns<'_>, usize) {
        if b < offset { (&columns[b as usize], r as usize) } else { (&stored_columns[(b - offset) as usize], r as usize) }
    };

    // What enters and leaves silver/events and silver/duplicates.
    let mut kept_rows: Vec<Vec<u32>> = vec![Vec::new(); candidates.len()];
    for &(b, r) in &resolution.new_kept {
        kept_rows[b as usize].push(r);
    }
    for (batch, mut rows) in candidates.iter().zip(kept_rows) {
        // In the batch's order, whatever the resolution's.
        if rows.is_empty() {
            continue;
        }
        plan.new_events.push(batch.clone());
        if rows.len() == batch.num_rows() {
            plan.new_event_rows.push(None);
        } else {
            rows.sort_unstable();
            plan.new_event_rows.push(Some(rows));
        }
    }
    let duplicate = |c: &EventColumns<'_>, r: usize, bucket: i32| DuplicateRow {
        customer_id: c.customer_id.value(r).to_string(),
        event_id: c.event_id.value(r).to_string(),
        event_key: c.event_key.value(r),
        event_timestamp: c.timestamp.value(r),
        source_object: c.source_object.value(r).to_string(),
        line_number: c.line_number.value(r),
        event_date: day_of(c.timestamp.value(r)),
        customer_bucket: bucket,
    };
    let bucket_of = |customer: &str| streamreel_tables::customer_bucket(customer, input.total_buckets) as i32;
    for &row in resolution.new_lost.iter().chain(&resolution.displaced) {
        let (c, r) = at(row);
        plan.duplicates.push(duplicate(c, r, bucket_of(c.customer_id.value(r))));
    }
    let mut displaced_files: BTreeMap<String, DataFile> = BTreeMap::new();
    for &row in &resolution.displaced {
        let (c, r) = at(row);
        plan.displaced.insert(c.event_key.value(r), c.source_object.value(r), c.line_number.value(r));
        let file = &stored_files[(row.0 - offset) as usize];
        displaced_files.insert(file.path.clone(), file.clone());
    }
    plan.displaced_files = displaced_files.into_values().collect();
    drop(lost);
    plan.counters.events_written = resolution.new_kept.len() as u64;
    plan.counters.already_in_silver = resolution.already_present;
    plan.counters.duplicates_dropped = resolution.new_lost.len() as u64;
    plan.counters.duplicate_conflicts = resolution.conflicts;
    plan.counters.events_replaced = resolution.displaced.len() as u64;

    // The sessions that gain or lose an event, and those an earlier attempt
    // of this window wrote (it may have planned from what a concurrent run
    // changed, or died before its last commit).
    let mut seeds: BTreeMap<(String, String), Vec<(i64, i64)>> = earlier_attempts(input).await?;
    let mut touched: ahash::AHashMap<(&str, &str), Vec<(i64, i64)>> = ahash::AHashMap::new();
    for &row in resolution.new_kept.iter().chain(&resolution.displaced) {
        let (c, r) = at(row);
        let t = c.timestamp.value(r);
        touched.entry(c.session(r)).or_default().push((t, t));
    }
    for ((customer, key), times) in touched {
        seeds.entry((customer.to_string(), key.to_string())).or_default().extend(times);
    }
    if seeds.is_empty() {
        return Ok(plan);
    }
    let new_rows: Vec<RowRef> = resolution.new_kept.clone();
    recompute(input, &mut plan, &columns, &new_rows, seeds).await?;
    Ok(plan)
}

/// The sessions this window's earlier runs logged in the change log, as
/// regions to recompute.
async fn earlier_attempts(input: &PlanInput<'_>) -> Result<BTreeMap<(String, String), Vec<(i64, i64)>>, SilverError> {
    let partition: PartitionKey = vec![Some(input.window.0.clone()), Some(input.window.1.clone())];
    let files = input.tables.changes.files_where(|key| *key == partition);
    // Every chunk of a run logs into the window's partition: only the rows
    // of this chunk's buckets are decoded, and only files that may hold them
    // are opened.
    let buckets: Vec<(i64, i64)> = input.buckets.iter().map(|&b| (b as i64, b as i64)).collect();
    let owned = input.buckets.clone();
    let filter = RowFilter::new(&[CUSTOMER_BUCKET], move |batch: &RecordBatch| {
        batch.column(0).as_primitive::<Int32Type>().values().iter().map(|b| Some(owned.contains(&(*b as u32)))).collect()
    });
    let mut seeds: BTreeMap<(String, String), Vec<(i64, i64)>> = BTreeMap::new();
    for batch in input.tables.changes.scan(files).prune(Prune::new(CUSTOMER_BUCKET, buckets)).filter(filter).read().await? {
        for row in streamreel_lake::rows::decode::<ChangeRow>(&batch)? {
            seeds.entry((row.customer_id, row.session_key)).or_default().push((row.session_start, row.session_end));
        }
    }
    Ok(seeds)
}

/// Copies of the candidates' ids: the candidates themselves, the kept
/// copies read from `silver/events` and the lost ones from `silver/duplicates`.
fn resolve_copies<'a>(
    candidates: &[EventColumns<'a>],
    stored: &[EventColumns<'a>],
    lost: &'a [DuplicateRow],
    horizon: i64,
    read: (i64, i64),
) -> Resolution {
    let offset = candidates.len() as u32;
    let mut copies: Vec<Copy<'a>> = Vec::new();
    for (b, c) in candidates.iter().enumerate() {
        for r in 0..c.len() {
            copies.push(Copy {
                event_key: c.event_key.value(r),
                customer_id: c.customer_id.value(r),
                event_id: c.event_id.value(r),
                time: c.timestamp.value(r),
                rank: c.rank(r),
                origin: Origin::Candidate((b as u32, r as u32)),
            });
        }
    }
    for (b, c) in stored.iter().enumerate() {
        for r in 0..c.len() {
            copies.push(Copy {
                event_key: c.event_key.value(r),
                customer_id: c.customer_id.value(r),
                event_id: c.event_id.value(r),
                time: c.timestamp.value(r),
                rank: c.rank(r),
                origin: Origin::Kept((offset + b as u32, r as u32)),
            });
        }
    }
    for d in lost {
        copies.push(Copy {
            event_key: d.event_key,
            customer_id: &d.customer_id,
            event_id: &d.event_id,
            time: d.event_timestamp,
            rank: (&d.source_object, d.line_number),
            origin: Origin::Lost,
        });
    }
    resolve(&copies, horizon, read, |origin| match origin {
        Origin::Candidate((b, r)) => Some(candidates[b as usize].content(r as usize)),
        Origin::Kept((b, r)) => Some(stored[(b - offset) as usize].content(r as usize)),
        Origin::Lost => None,
    })
}

fn key_filter(keys: Arc<KeySet>, column: &'static str) -> impl Fn(&RecordBatch) -> BooleanArray + Send + Sync + 'static {
    move |batch: &RecordBatch| {
        let values = batch.column_by_name(column).expect("key column").as_primitive::<Int64Type>();
        values.values().iter().map(|v| Some(keys.contains(v))).collect()
    }
}

/// The candidates' event keys by customer bucket: a stored file of a
/// bucket is opened only when its key filter may hold one of them.
struct KeysByBucket(ahash::AHashMap<u32, Vec<u64>>);

impl KeysByBucket {
    fn of(candidates: &[RecordBatch]) -> Result<KeysByBucket, SilverError> {
        let mut by_bucket: ahash::AHashMap<u32, Vec<u64>> = ahash::AHashMap::new();
        for batch in candidates {
            let (Some(buckets), Some(keys)) = (batch.column_by_name(CUSTOMER_BUCKET), batch.column_by_name("event_key")) else {
                return Err(LakeError::data("candidate events", "no customer_bucket or event_key column").into());
            };
            for (bucket, key) in buckets.as_primitive::<Int32Type>().values().iter().zip(keys.as_primitive::<Int64Type>().values()) {
                by_bucket.entry(*bucket as u32).or_default().push(int_key(*key));
            }
        }
        Ok(KeysByBucket(by_bucket))
    }

    /// Files of the (day, bucket) partitions hold no other bucket's keys.
    fn may_be_in(&self, file: &DataFile) -> bool {
        match day_and_bucket(&file.partition) {
            Some((_, bucket)) => self.0.get(&bucket).is_some_and(|keys| file.may_hold_any(keys)),
            None => true,
        }
    }
}

/// The (day, bucket) partitions of the chunk's buckets between two times.
fn partitions_between(buckets: &BTreeSet<u32>, from: i64, to: i64) -> BTreeSet<PartitionKey> {
    (day_of(from)..=day_of(to)).flat_map(|day| buckets.iter().map(move |b| partition(day, *b))).collect()
}

/// Stored events matching `filter` in the time intervals, with the file of
/// each batch; records the partitions read.
async fn lookup_events(
    input: &PlanInput<'_>,
    read_set: &mut BTreeSet<PartitionKey>,
    read: (i64, i64),
    filter: RowFilter,
    intervals: Option<Vec<(i64, i64)>>,
    may_hold: impl Fn(&DataFile) -> bool,
) -> Result<(Vec<RecordBatch>, Vec<DataFile>), SilverError> {
    let scope = partitions_between(input.buckets, read.0, read.1);
    read_set.extend(scope.iter().cloned());
    let mut files = input.tables.events.files_where(|key| scope.contains(key));
    files.retain(may_hold);
    let per_file = input
        .tables
        .events
        .scan(files)
        .columns(EVENT_COLUMNS)
        .prune(Prune::new("event_timestamp", intervals.unwrap_or(vec![read])))
        .filter(filter)
        .read_per_file()
        .await?;
    let mut batches = Vec::new();
    let mut files = Vec::new();
    for (file, file_batches) in per_file {
        for batch in file_batches {
            batches.push(batch);
            files.push(file.clone());
        }
    }
    Ok((batches, files))
}

async fn lookup_duplicates(
    input: &PlanInput<'_>,
    read_set: &mut BTreeSet<PartitionKey>,
    read: (i64, i64),
    keys: Arc<KeySet>,
    keys_by_bucket: &KeysByBucket,
) -> Result<Vec<DuplicateRow>, SilverError> {
    let scope = partitions_between(input.buckets, read.0, read.1);
    read_set.extend(scope.iter().cloned());
    let mut files = input.tables.duplicates.files_where(|key| scope.contains(key));
    files.retain(|file| keys_by_bucket.may_be_in(file));
    let batches = input
        .tables
        .duplicates
        .scan(files)
        .prune(Prune::new("event_timestamp", vec![read]))
        .filter(RowFilter::new(&["event_key"], key_filter(keys, "event_key")))
        .read()
        .await?;
    let mut rows = Vec::new();
    for batch in &batches {
        rows.extend(streamreel_lake::rows::decode::<DuplicateRow>(batch)?);
    }
    Ok(rows)
}

/// Recomputes every session that gains or loses an event, widening each
/// identity's read range until its sessions are whole. Each round reads the
/// events of the identities still open and settles those whose sessions lie
/// within what was read; only the others are read again, further out.
async fn recompute(
    input: &PlanInput<'_>,
    plan: &mut Plan,
    candidates: &[EventColumns<'_>],
    new_rows: &[RowRef],
    seeds: BTreeMap<(String, String), Vec<(i64, i64)>>,
) -> Result<(), SilverError> {
    let mut ranges: Ranges<'_> = seeds
        .iter()
        .map(|(identity, times)| {
            let lo = times.iter().map(|t| t.0).min().expect("a seed");
            let hi = times.iter().map(|t| t.1).max().expect("a seed");
            (identity, (lo - LOOK_BACK, hi + LOOK_AHEAD))
        })
        .collect();
    let mut open: Vec<Seed<'_>> = seeds.iter().collect();
    let mut changes: Vec<ChangeRow> = Vec::new();
    while !open.is_empty() {
        let widened = settle(input, plan, &mut changes, candidates, new_rows, &open, &ranges).await?;
        if !widened.is_empty() {
            info!(identities = widened.len(), "sessions reach beyond the events read; reading further");
        }
        open.retain(|(identity, _)| widened.contains_key(identity));
        ranges.extend(widened);
    }
    plan.counters.segment_rows = plan.segments.iter().map(|b| b.num_rows() as u64).sum();
    changes.sort();
    changes.dedup();
    plan.changes.push(encode(&CHANGES.schema, &changes)?);
    // Replaced rows start inside a region: files of the partitions the
    // rounds read whose session starts all lie outside every region are
    // neither read nor rewritten.
    let starts = Prune::new("session_start", crate::sessions::merge(&plan.regions.values().flatten().copied().collect::<Vec<_>>()));
    let in_scope = |table: &Table| -> Vec<DataFile> {
        table.files_where(|key| plan.sessions_read.contains(key)).into_iter().filter(|f| starts.keeps_file(f)).collect()
    };
    plan.session_scope = in_scope(&input.tables.sessions);
    plan.segment_scope = in_scope(&input.tables.segments);
    Ok(())
}

/// A session identity (customer, session key) and the times where its
/// events came or went.
type Seed<'a> = (&'a (String, String), &'a Vec<(i64, i64)>);

/// The time range of each identity whose events are (to be) read.
type Ranges<'a> = BTreeMap<&'a (String, String), (i64, i64)>;

/// One round of `recompute`: reads the events and stored sessions of the
/// `open` identities within their ranges, recomputes those whose sessions
/// lie within what was read into the plan (and their rows of the change
/// log into `changes`), and returns the others with the range to read next.
async fn settle<'s>(
    input: &PlanInput<'_>,
    plan: &mut Plan,
    changes: &mut Vec<ChangeRow>,
    candidates: &[EventColumns<'_>],
    new_rows: &[RowRef],
    open: &[Seed<'s>],
    ranges: &Ranges<'s>,
) -> Result<Ranges<'s>, SilverError> {
    let intervals = crate::sessions::merge(&open.iter().map(|(identity, _)| ranges[identity]).collect::<Vec<_>>());
    let (lo, hi) = (intervals[0].0, intervals[intervals.len() - 1].1);
    let hashes: Arc<KeySet> = Arc::new(open.iter().map(|((c, k), _)| key_hash(&[c, k])).collect());
    let filter = RowFilter::new(&["session_hash"], key_filter(hashes.clone(), "session_hash"));
    let (stored, _) = lookup_events(input, &mut plan.events_read, (lo, hi), filter, Some(intervals), |_| true).await?;
    let stored_columns: Vec<EventColumns<'_>> = stored.iter().map(EventColumns::new).collect();
    let round_scope =
        (day_of(lo) - SESSION_DAYS_BACK..=day_of(hi)).flat_map(|d| input.buckets.iter().map(move |b| partition(d, *b))).collect::<BTreeSet<_>>();
    let old = old_sessions(&input.tables.sessions, &round_scope, hashes).await?;
    plan.sessions_read.extend(round_scope);

    // Every event of each identity: stored (minus the displaced) and new.
    let all: Vec<EventColumns<'_>> = candidates.iter().cloned().chain(stored_columns.iter().cloned()).collect();
    let offset = candidates.len() as u32;
    let mut events: ahash::AHashMap<(&str, &str), Vec<RowRef>> = ahash::AHashMap::new();
    for &(b, r) in new_rows {
        let c = &candidates[b as usize];
        events.entry(c.session(r as usize)).or_default().push((b, r));
    }
    let displaced = &plan.displaced;
    for (b, c) in stored_columns.iter().enumerate() {
        for r in 0..c.len() {
            if !displaced.contains(c.event_key.value(r), c.source_object.value(r), c.line_number.value(r)) {
                events.entry(c.session(r)).or_default().push((offset + b as u32, r as u32));
            }
        }
    }
    let works: Vec<KeyWork<'_>> = open
        .iter()
        .map(|&(identity, times)| {
            let (customer, key) = identity;
            let read = ranges[identity];
            let mut rows: Vec<_> = events
                .get(&(customer.as_str(), key.as_str()))
                .map(|rows| {
                    rows.iter()
                        .map(|&(b, r)| (all[b as usize].session_event(r as usize), (b, r)))
                        .filter(|(e, _)| read.0 <= e.timestamp_micros && e.timestamp_micros <= read.1)
                        .collect()
                })
                .unwrap_or_default();
            rows.sort_by(|a: &(crate::segments::SessionEvent<'_>, RowRef), b| event_order(&a.0, &b.0));
            KeyWork {
                customer_id: customer,
                session_key: key,
                events: rows,
                read,
                seeds: times.clone(),
                old: old.get(identity).map(|rows| rows.iter().map(|s| (s.session_start, s.session_end)).collect()).unwrap_or_default(),
            }
        })
        .collect();
    // Whether a session reaches beyond the events read is known before the
    // segments are computed: none are computed only to be dropped.
    let mut widened = Ranges::new();
    let mut settled: Vec<(&KeyWork<'_>, Split<'_>)> = Vec::with_capacity(works.len());
    for ((identity, _), (work, split)) in open.iter().zip(works.iter().zip(map_on_cores(&works, |work| split(work, input.settings)))) {
        match split.widen {
            Some(range) => {
                widened.insert(*identity, range);
            }
            None => settled.push((work, split)),
        }
    }
    // Each core encodes its share's segments as it goes, and its sessions:
    // they are most of a chunk's rows and need nothing from the other shares.
    type Share = (Vec<Recomputed>, Result<RecordBatch, LakeError>, Result<RecordBatch, LakeError>);
    let shares: Vec<Share> = shares_on_cores(&settled, |share| {
        let mut segments = SegmentBatchBuilder::default();
        let results: Vec<Recomputed> = share
            .iter()
            .map(|(work, split)| {
                recompute_key(
                    &all,
                    work,
                    split,
                    input.settings,
                    input.metadata,
                    streamreel_tables::customer_bucket(work.customer_id, input.total_buckets),
                    &mut segments,
                )
            })
            .collect();
        let sessions = encode(&SESSIONS.schema, &results.iter().flat_map(|r| &r.sessions).collect::<Vec<&SessionRow>>());
        (results, segments.finish(), sessions)
    });
    let mut results: Vec<Recomputed> = Vec::with_capacity(settled.len());
    for (share, segments, sessions) in shares {
        results.extend(share);
        plan.segments.push(segments?);
        plan.sessions.push(sessions?);
    }

    // The stored rows these regions replace, and the change log.
    let (window_start, window_end) = input.window.clone();
    for ((work, _), result) in settled.iter().zip(results) {
        let identity = (work.customer_id.to_string(), work.session_key.to_string());
        let bucket = streamreel_tables::customer_bucket(work.customer_id, input.total_buckets) as i32;
        for old in
            old.get(&identity).into_iter().flatten().filter(|s| result.region.iter().any(|&(a, b)| a <= s.session_start && s.session_start <= b))
        {
            changes.push(ChangeRow { customer_bucket: bucket, window_start: window_start.clone(), window_end: window_end.clone(), ..old.clone() });
        }
        for new in &result.sessions {
            changes.push(ChangeRow {
                customer_id: new.customer_id.clone(),
                title_id: new.title_id.clone(),
                session_key: new.session_key.clone(),
                session_start: new.session_start,
                session_end: new.session_end,
                customer_bucket: bucket,
                window_start: window_start.clone(),
                window_end: window_end.clone(),
            });
        }
        plan.counters.sessions_recomputed += result.session_count as u64;
        plan.counters.session_rows += result.sessions.len() as u64;
        plan.regions.insert(identity, result.region);
    }
    Ok(widened)
}

/// Stored session rows of the identities hashed in `hashes`, by identity,
/// as change-log rows (the session columns they share).
async fn old_sessions(
    sessions: &Table,
    scope: &BTreeSet<PartitionKey>,
    hashes: Arc<KeySet>,
) -> Result<ahash::AHashMap<(String, String), Vec<ChangeRow>>, SilverError> {
    let files = sessions.files_where(|key| scope.contains(key));
    let filter = RowFilter::new(&["customer_id", "session_key"], move |batch: &RecordBatch| {
        let customer = batch.column_by_name("customer_id").expect("customer_id").as_string::<i32>();
        let key = batch.column_by_name("session_key").expect("session_key").as_string::<i32>();
        (0..batch.num_rows()).map(|i| Some(hashes.contains(&key_hash(&[customer.value(i), key.value(i)])))).collect()
    });
    let batches =
        sessions.scan(files).columns(&["customer_id", "title_id", "session_key", "session_start", "session_end"]).filter(filter).read().await?;
    let mut old: ahash::AHashMap<(String, String), Vec<ChangeRow>> = ahash::AHashMap::new();
    for batch in &batches {
        let text = |n: &str| batch.column_by_name(n).expect("session column").as_string::<i32>().clone();
        let time = |n: &str| batch.column_by_name(n).expect("session column").as_primitive::<TimestampMicrosecondType>().clone();
        let (customer, title, key, start, end) =
            (text("customer_id"), text("title_id"), text("session_key"), time("session_start"), time("session_end"));
        for i in 0..batch.num_rows() {
            old.entry((customer.value(i).to_string(), key.value(i).to_string())).or_default().push(ChangeRow {
                customer_id: customer.value(i).to_string(),
                title_id: title.value(i).to_string(),
                session_key: key.value(i).to_string(),
                session_start: start.value(i),
                session_end: end.value(i),
                customer_bucket: 0,
                window_start: String::new(),
                window_end: String::new(),
            });
        }
    }
    Ok(old)
}
