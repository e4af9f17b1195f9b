//! Writes a plan: new files for every table, then one commit per table, in
//! an order that makes a crash or a conflict at any point safe. The change
//! log goes first: it names every session the attempt is about to write,
//! so gold never misses an old version and a rerun (or a new plan after a
//! conflict) recomputes them all. Then the duplicates (their distinct
//! union), the segments, the sessions, and `silver/events` last.

use std::collections::BTreeSet;
use std::sync::Arc;

use ahash::AHashMap;
use streamreel_lake::arrow::array::{AsArray, BooleanArray, RecordBatch};
use streamreel_lake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use streamreel_lake::rows::{decode, encode};
use streamreel_lake::shard::key_hash;
use streamreel_lake::table::{Change, CommitMeta, PartitionKey, ReadSet, RowFilter, Table};
use streamreel_tables::silver::{DUPLICATES, DuplicateRow, partition};

use crate::error::SilverError;
use crate::plan::{Plan, Regions, Tables};

pub async fn apply(tables: &mut Tables, plan: Plan, meta: &CommitMeta) -> Result<(), SilverError> {
    let changes = tables.changes.append(&plan.changes).await?;
    tables.changes.commit(changes, meta).await?;

    let duplicates = duplicates_change(&tables.duplicates, plan.duplicates, plan.duplicates_read).await?;
    tables.duplicates.commit(duplicates, meta).await?;

    let regions = region_filter(plan.regions);
    let segments = tables.segments.replace_rows(plan.segment_scope, regions.clone(), &plan.segments, &[], plan.sessions_read.clone()).await?;
    tables.segments.commit(segments, meta).await?;
    let sessions = tables.sessions.replace_rows(plan.session_scope, regions, &plan.sessions, &[], plan.sessions_read).await?;
    tables.sessions.commit(sessions, meta).await?;

    let displaced = Arc::new(plan.displaced);
    let filter = RowFilter::new(&["event_key", "source_object", "line_number"], move |batch: &RecordBatch| {
        let key = batch.column_by_name("event_key").expect("event_key").as_primitive::<Int64Type>();
        let object = batch.column_by_name("source_object").expect("source_object").as_string::<i32>();
        let line = batch.column_by_name("line_number").expect("line_number").as_primitive::<Int64Type>();
        (0..batch.num_rows()).map(|i| Some(displaced.contains(key.value(i), object.value(i), line.value(i)))).collect()
    });
    let events = tables.events.replace_rows(plan.displaced_files, filter, &plan.new_events, &plan.new_event_rows, plan.events_read).await?;
    tables.events.commit(events, meta).await?;
    Ok(())
}

/// The partitions that get lost copies, rewritten as the distinct union of
/// what they hold and the new rows: a copy stored twice (by a run that
/// planned alongside another) is stored once.
async fn duplicates_change(table: &Table, rows: Vec<DuplicateRow>, reads: BTreeSet<PartitionKey>) -> Result<Change, SilverError> {
    let scope: BTreeSet<PartitionKey> = rows.iter().map(|r| partition(r.event_date, r.customer_bucket as u32)).collect();
    let mut all: BTreeSet<DuplicateRow> = BTreeSet::new();
    for batch in table.scan(table.files_where(|key| scope.contains(key))).read().await? {
        all.extend(decode::<DuplicateRow>(&batch)?);
    }
    let stored = all.len();
    all.extend(rows);
    let mut reads = reads;
    reads.extend(scope.iter().cloned());
    if all.len() == stored {
        return Ok(Change { reads: ReadSet::Partitions(reads), ..Default::default() });
    }
    let rows: Vec<DuplicateRow> = all.into_iter().collect();
    let mut change = table.replace_partitions(scope, &[encode(&DUPLICATES.schema, &rows)?]).await?;
    change.reads = ReadSet::Partitions(reads);
    Ok(change)
}

/// Selects the stored rows of each identity that start inside its region.
fn region_filter(regions: Regions) -> RowFilter {
    // Identities by the hash of (customer, session key), checked by their text.
    type Identities = Vec<(String, String, Vec<(i64, i64)>)>;
    /// An identity's region, if it has one.
    type Region<'a> = Option<&'a [(i64, i64)]>;
    let mut by_hash: AHashMap<i64, Identities> = AHashMap::new();
    for ((customer, key), region) in regions {
        by_hash.entry(key_hash(&[&customer, &key])).or_default().push((customer, key, region));
    }
    RowFilter::new(&["customer_id", "session_key", "session_start"], move |batch: &RecordBatch| {
        let customer = batch.column_by_name("customer_id").expect("customer_id").as_string::<i32>();
        let key = batch.column_by_name("session_key").expect("session_key").as_string::<i32>();
        let start = batch.column_by_name("session_start").expect("session_start").as_primitive::<TimestampMicrosecondType>();
        // Segments lie sorted by session, so a row's identity is mostly the
        // row before's: its region is looked up once per run of rows.
        let mut last: Option<(&str, &str, Region<'_>)> = None;
        let matches = (0..batch.num_rows()).map(|i| {
            let (c, k, t) = (customer.value(i), key.value(i), start.value(i));
            let region = match last {
                Some((lc, lk, region)) if lc == c && lk == k => region,
                _ => {
                    let identities = by_hash.get(&key_hash(&[c, k]));
                    let region = identities.and_then(|ids| ids.iter().find(|(ic, ik, _)| ic == c && ik == k)).map(|(_, _, r)| r.as_slice());
                    last = Some((c, k, region));
                    region
                }
            };
            Some(region.is_some_and(|region| region.iter().any(|&(a, b)| a <= t && t <= b)))
        });
        matches.collect::<BooleanArray>()
    })
}
