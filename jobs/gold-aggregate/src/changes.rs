//! What the window's silver runs changed, read from the silver change log:
//! per customer bucket, the viewer-videos, titles and days gold recomputes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ahash::AHashSet;
use streamreel_lake::arrow::array::{AsArray, RecordBatch};
use streamreel_lake::arrow::datatypes::{Int32Type, TimestampMicrosecondType};
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
    // Reruns append the same rows again: each change counts once. Rows stay
    // borrowed from the batches until a bucket keeps a distinct value.
    let mut distinct: AHashSet<(&str, &str, &str, i64, i64, i32)> = AHashSet::new();
    for batch in &batches {
        let text = |i: usize| batch.column(i).as_string::<i32>();
        let time = |i: usize| batch.column(i).as_primitive::<TimestampMicrosecondType>();
        let (customer, title, key, start, end) = (text(0), text(1), text(2), time(3), time(4));
        let bucket = batch.column(5).as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            distinct.insert((customer.value(i), title.value(i), key.value(i), start.value(i), end.value(i), bucket.value(i)));
        }
    }
    let mut out = Changes { rows: distinct.len(), ..Default::default() };
    let mut pairs: BTreeMap<u32, AHashSet<(&str, &str)>> = BTreeMap::new();
    for (customer, title, _, start, end, bucket) in distinct {
        pairs.entry(bucket as u32).or_default().insert((customer, title));
        let bucket = out.buckets.entry(bucket as u32).or_default();
        if !bucket.titles.contains(title) {
            bucket.titles.insert(title.to_string());
        }
        bucket.start_days.insert(day_of(start));
        bucket.playing_days.extend(day_of(start)..=day_of(end));
    }
    for (bucket, pairs) in pairs {
        let viewer_titles = &mut out.buckets.get_mut(&bucket).expect("a bucket with pairs").viewer_titles;
        viewer_titles.extend(pairs.into_iter().map(|(customer, title)| (customer.to_string(), title.to_string())));
    }
    Ok(out)
}
