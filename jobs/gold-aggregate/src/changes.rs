//! What the window's silver runs changed, read from the silver change log:
//! per customer bucket, the viewer-videos, titles and days gold recomputes.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ahash::{AHashMap, AHashSet};
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
    /// Distinct (customer, title) pairs, in no particular order.
    pub viewer_titles: Vec<(String, String)>,
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

/// What the title-level tables need of the changes, over every bucket read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Touched {
    /// Distinct change-log rows.
    pub rows: usize,
    pub titles: BTreeSet<String>,
    pub start_days: BTreeSet<i32>,
    pub playing_days: BTreeSet<i32>,
}

impl Changes {
    pub fn touched(&self) -> Touched {
        Touched {
            rows: self.rows,
            titles: self.buckets.values().flat_map(|b| b.titles.iter().cloned()).collect(),
            start_days: self.buckets.values().flat_map(|b| b.start_days.iter().copied()).collect(),
            playing_days: self.buckets.values().flat_map(|b| b.playing_days.iter().copied()).collect(),
        }
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

/// A changed viewer-video: (customer, title).
type Pair<'a> = (&'a str, &'a str);
/// One of its sessions as logged: (session key, start, end).
type Session<'a> = (&'a str, i64, i64);

/// One bucket's distinct changes (reruns append the same rows again: each
/// counts once) and what they change. Rows stay borrowed from the batches
/// until a distinct value is kept. Most viewer-videos change in one session,
/// so only the sessions after a pair's first go through a second set.
fn bucket_changes(columns: &[ChangeColumns], rows: &[(u32, u32)]) -> (usize, BucketChanges) {
    let mut first: AHashMap<Pair, Session> = AHashMap::with_capacity(rows.len());
    let mut more: AHashSet<(Pair, Session)> = AHashSet::new();
    for &(b, i) in rows {
        let (c, i) = (&columns[b as usize], i as usize);
        let (pair, session) = ((c.customer.value(i), c.title.value(i)), (c.session_key.value(i), c.start[i], c.end[i]));
        match first.entry(pair) {
            Entry::Vacant(entry) => {
                entry.insert(session);
            }
            Entry::Occupied(entry) if *entry.get() != session => {
                more.insert((pair, session));
            }
            Entry::Occupied(_) => {}
        }
    }
    let mut titles = AHashSet::new();
    let mut changed = BucketChanges::default();
    for (&(_, title), &(_, start, end)) in first.iter().chain(more.iter().map(|(pair, session)| (pair, session))) {
        titles.insert(title);
        changed.start_days.insert(day_of(start));
        changed.playing_days.extend(day_of(start)..=day_of(end));
    }
    changed.titles = titles.into_iter().map(str::to_string).collect();
    let distinct = first.len() + more.len();
    changed.viewer_titles = first.into_keys().map(|(customer, title)| (customer.to_string(), title.to_string())).collect();
    (distinct, changed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use streamreel_lake::arrow::array::{ArrayRef, TimestampMicrosecondArray};
    use streamreel_lake::time::MICROS_PER_DAY;

    use super::*;

    /// (customer, title, session key, start day, end day).
    type Row = (&'static str, &'static str, &'static str, i64, i64);

    /// The change-log columns of `rows`.
    fn log(rows: &[Row]) -> RecordBatch {
        let text = |f: fn(&Row) -> &'static str| Arc::new(StringArray::from_iter_values(rows.iter().map(f))) as ArrayRef;
        let time =
            |f: fn(&Row) -> i64| Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| f(r) * MICROS_PER_DAY + 1))) as ArrayRef;
        RecordBatch::try_from_iter(vec![
            ("customer_id", text(|r| r.0)),
            ("title_id", text(|r| r.1)),
            ("session_key", text(|r| r.2)),
            ("session_start", time(|r| r.3)),
            ("session_end", time(|r| r.4)),
        ])
        .unwrap()
    }

    #[test]
    fn a_bucket_counts_each_change_once_and_gathers_what_it_touches() {
        // A rerun logs the same rows again; the viewer-video of the first
        // rows changed in a second session too, and once more in another batch.
        let batches = [
            log(&[("c1", "t1", "s1", 0, 0), ("c1", "t1", "s1", 0, 0), ("c1", "t1", "s2", 2, 2), ("c2", "t2", "s3", 0, 1)]),
            log(&[("c1", "t1", "s2", 2, 2), ("c2", "t2", "s3", 0, 1), ("c1", "t1", "s4", 3, 3)]),
        ];
        let columns: Vec<ChangeColumns> = batches.iter().map(ChangeColumns::of).collect();
        let rows: Vec<(u32, u32)> = [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1), (1, 2)].to_vec();
        let (distinct, mut changed) = bucket_changes(&columns, &rows);
        assert_eq!(distinct, 4);
        changed.viewer_titles.sort();
        assert_eq!(changed.viewer_titles, [("c1".to_string(), "t1".to_string()), ("c2".to_string(), "t2".to_string())]);
        assert_eq!(changed.titles, BTreeSet::from(["t1".to_string(), "t2".to_string()]));
        assert_eq!(changed.start_days, BTreeSet::from([0, 2, 3]));
        assert_eq!(changed.playing_days, BTreeSet::from([0, 1, 2, 3]));
    }

    #[test]
    fn what_is_touched_is_the_union_over_buckets() {
        let bucket = |title: &str, day: i32| BucketChanges {
            viewer_titles: vec![("c".into(), title.into())],
            titles: BTreeSet::from([title.to_string()]),
            start_days: BTreeSet::from([day]),
            playing_days: BTreeSet::from([day, day + 1]),
        };
        let changes = Changes { rows: 5, buckets: BTreeMap::from([(3, bucket("t1", 10)), (7, bucket("t2", 12))]) };
        let touched = changes.touched();
        assert_eq!(touched.rows, 5);
        assert_eq!(touched.titles, BTreeSet::from(["t1".to_string(), "t2".to_string()]));
        assert_eq!(touched.start_days, BTreeSet::from([10, 12]));
        assert_eq!(touched.playing_days, BTreeSet::from([10, 11, 12, 13]));
    }
}
