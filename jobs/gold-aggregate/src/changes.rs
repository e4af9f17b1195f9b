//! What the window's silver runs changed, read from the silver change log:
//! per customer bucket, the viewer-videos, titles and days gold recomputes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ahash::AHashSet;
use streamreel_lake::arrow::array::{AsArray, RecordBatch, StringArray};
use streamreel_lake::arrow::datatypes::{Int32Type, TimestampMicrosecondType};
use streamreel_lake::cores::map_on_cores;
use streamreel_lake::table::{RowFilter, Table};
use streamreel_lake::time::day_of;
use streamreel_lake::window::parse_hour;
use streamreel_lake::{LakeError, Window};

/// The change-log columns gold needs, in the order `read` takes them.
const CHANGE_COLUMNS: [&str; 6] = ["customer_id", "title_id", "session_key", "session_start", "session_end", "customer_bucket"];

/// What changed in one customer bucket.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BucketChanges {
    pub viewer_titles: BTreeSet<(String, String)>,
    pub titles: BTreeSet<String>,
    /// Days sessions started on: viewer_daily, video_daily, qos_hourly.
    pub start_days: BTreeSet<i32>,
    /// Days sessions played in: concurrency.
    pub playing_days: BTreeSet<i32>,
}

impl BucketChanges {
    /// The changed (customer, title) pairs, for lookups by borrowed keys.
    pub fn pairs(&self) -> AHashSet<(&str, &str)> {
        self.viewer_titles.iter().map(|(customer, title)| (customer.as_str(), title.as_str())).collect()
    }
}

#[derive(Debug, Default)]
pub struct Changes {
    pub rows: usize,
    pub buckets: BTreeMap<u32, BucketChanges>,
}

impl Changes {
    pub fn titles(&self) -> BTreeSet<String> {
        self.buckets.values().flat_map(|b| b.titles.iter().cloned()).collect()
    }

    pub fn start_days(&self) -> BTreeSet<i32> {
        self.buckets.values().flat_map(|b| b.start_days.iter().copied()).collect()
    }

    pub fn playing_days(&self) -> BTreeSet<i32> {
        self.buckets.values().flat_map(|b| b.playing_days.iter().copied()).collect()
    }
}

/// The change-log rows of every silver run whose window overlaps `window`,
/// of the buckets `owned` keeps.
pub async fn read(changes: &Table, window: Window, owned: impl Fn(u32) -> bool + Send + Sync + 'static) -> Result<Changes, LakeError> {
    let files =
        changes.files_where(|key| match (key[0].as_deref().and_then(|v| parse_hour(v).ok()), key[1].as_deref().and_then(|v| parse_hour(v).ok())) {
            (Some(start), Some(end)) => start < window.end && window.start < end,
            _ => false,
        });
    let owned = Arc::new(owned);
    let filter = RowFilter::new(&["customer_bucket"], move |batch: &RecordBatch| {
        batch.column(0).as_primitive::<Int32Type>().values().iter().map(|b| Some(owned(*b as u32))).collect()
    });
    let batches = changes.scan(files).columns(&CHANGE_COLUMNS).filter(filter).read().await?;
    let columns: Vec<ChangeColumns> = batches.iter().map(ChangeColumns::of).collect();
    // Each bucket's rows are deduplicated and gathered on their own, one
    // bucket per core at a time: the bucket is part of a change's identity.
    let mut rows_of: BTreeMap<u32, Vec<(u32, u32)>> = BTreeMap::new();
    for (b, batch) in batches.iter().enumerate() {
        for (i, bucket) in batch.column(5).as_primitive::<Int32Type>().values().iter().enumerate() {
            rows_of.entry(*bucket as u32).or_default().push((b as u32, i as u32));
        }
    }
    let rows_of: Vec<(u32, Vec<(u32, u32)>)> = rows_of.into_iter().collect();
    let gathered = map_on_cores(&rows_of, |(_, rows)| bucket_changes(&columns, rows));
    let mut out = Changes::default();
    for ((bucket, _), (rows, changed)) in rows_of.iter().zip(gathered) {
        out.rows += rows;
        out.buckets.insert(*bucket, changed);
    }
    Ok(out)
}

/// The change log's columns in one batch, typed.
struct ChangeColumns<'a> {
    customer: &'a StringArray,
    title: &'a StringArray,
    session_key: &'a StringArray,
    start: &'a [i64],
    end: &'a [i64],
}

impl<'a> ChangeColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Self {
        let text = |i: usize| batch.column(i).as_string::<i32>();
        let time = |i: usize| batch.column(i).as_primitive::<TimestampMicrosecondType>().values().as_ref();
        ChangeColumns { customer: text(0), title: text(1), session_key: text(2), start: time(3), end: time(4) }
    }
}

/// One bucket's distinct changes (reruns append the same rows again: each
/// counts once) and what they change. Rows stay borrowed from the batches
/// until a distinct value is kept.
fn bucket_changes(columns: &[ChangeColumns], rows: &[(u32, u32)]) -> (usize, BucketChanges) {
    let mut distinct: AHashSet<(&str, &str, &str, i64, i64)> = AHashSet::with_capacity(rows.len());
    for &(b, i) in rows {
        let (c, i) = (&columns[b as usize], i as usize);
        distinct.insert((c.customer.value(i), c.title.value(i), c.session_key.value(i), c.start[i], c.end[i]));
    }
    let (mut pairs, mut titles) = (AHashSet::new(), AHashSet::new());
    let mut changed = BucketChanges::default();
    for &(customer, title, _, start, end) in &distinct {
        pairs.insert((customer, title));
        titles.insert(title);
        changed.start_days.insert(day_of(start));
        changed.playing_days.extend(day_of(start)..=day_of(end));
    }
    changed.viewer_titles = pairs.into_iter().map(|(customer, title)| (customer.to_string(), title.to_string())).collect();
    changed.titles = titles.into_iter().map(str::to_string).collect();
    (distinct.len(), changed)
}
