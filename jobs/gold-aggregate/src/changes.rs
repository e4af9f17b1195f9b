//! What the window's silver runs changed, read from the silver change log:
//! per customer bucket, the viewer-videos, titles and days gold recomputes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use streamreel_lake::arrow::array::{AsArray, RecordBatch};
use streamreel_lake::arrow::datatypes::Int32Type;
use streamreel_lake::table::{RowFilter, Table};
use streamreel_lake::time::day_of;
use streamreel_lake::window::parse_hour;
use streamreel_lake::{LakeError, Window};
use streamreel_tables::silver::ChangeRow;

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
    let mut rows: BTreeSet<ChangeRow> = BTreeSet::new();
    for batch in changes.scan(files).filter(filter).read().await? {
        rows.extend(streamreel_lake::rows::decode::<ChangeRow>(&batch)?);
    }
    let mut out = Changes::default();
    // Reruns append the same rows again: each change counts once.
    let distinct: BTreeSet<(String, String, String, i64, i64, i32)> =
        rows.into_iter().map(|r| (r.customer_id, r.title_id, r.session_key, r.session_start, r.session_end, r.customer_bucket)).collect();
    out.rows = distinct.len();
    for (customer, title, _, start, end, bucket) in distinct {
        let bucket = out.buckets.entry(bucket as u32).or_default();
        bucket.titles.insert(title.clone());
        bucket.viewer_titles.insert((customer, title));
        bucket.start_days.insert(day_of(start));
        bucket.playing_days.extend(day_of(start)..=day_of(end));
    }
    Ok(out)
}
