//! `lake-maintain` on lakes the hourly chain built: compaction keeps every
//! row, vacuum and log cleanup shrink storage to about the live bytes, time
//! travel within the retention still reads, workers committing during
//! maintenance lose nothing, and an orphan of a killed commit is collected
//! after the retention and not before.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use deltalake::arrow::array::Array;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use streamreel_lake::table::key_filter;
use streamreel_lake::table::maintain::TOMBSTONE_RETENTION;
use streamreel_lake::{Config, Shard, Table, Window};
use streamreel_scenarios::{SimulationSpec, assert_same, bronze_tables, chain, compared_tables, hours, land, silver, simulated, snapshot};
use streamreel_testkit::TestLake;

fn spec() -> SimulationSpec {
    SimulationSpec { events: 6_000, seed: 21, late_ratio: 0.05, duplicate_ratio: 0.03, ..Default::default() }
}

fn maintenance(config: &Config, retention_hours: f64) -> Config {
    let mut config = config.clone();
    config.maintenance.retention_hours = retention_hours;
    config.maintenance.log_retention_hours = retention_hours;
    config.maintenance.change_log_retention_days = 30.0;
    config
}

async fn everything(lake: &TestLake) -> Vec<(&'static str, Vec<String>)> {
    [snapshot(lake, &compared_tables()).await, snapshot(lake, &bronze_tables()).await].concat()
}

async fn hourly_lake() -> (TestLake, Window) {
    let (lake, window, _) = simulated(&spec()).await;
    for hour in hours(window) {
        chain(&lake, hour, 1).await;
    }
    (lake, window)
}

#[tokio::test]
async fn compaction_vacuum_and_log_cleanup_keep_every_row_and_shrink_storage_to_the_live_bytes() {
    let (lake, window) = hourly_lake().await;
    let before = everything(&lake).await;
    let config = maintenance(&lake.config, 0.0);
    let dry = lake_maintain::run(&config, &lake_maintain::Options { dry_run: true, ..Default::default() }).await.unwrap();
    assert!(dry.tables.iter().any(|t| t.files_compacted > 0 && t.files_vacuumed > 0 && t.log_entries_removed > 0), "the dry run finds work");
    assert!(dry.tables.iter().all(|t| t.after == t.before), "a dry run changes nothing on storage");
    let mut tombstones_before = 0;
    for spec in streamreel_tables::all_tables() {
        tombstones_before += checkpoint_tombstones(&Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap()).await;
    }
    assert!(tombstones_before > 0, "the hourly rewrites left tombstones in some checkpoint");
    let report = lake_maintain::run(&config, &Default::default()).await.unwrap();
    for (dry, done) in dry.tables.iter().zip(&report.tables) {
        // Vacuum also takes the files the compaction replaced, which a dry run cannot.
        assert_eq!(dry.files_compacted, done.files_compacted, "{}: the dry run said what compaction did", dry.table);
        assert!(dry.files_vacuumed <= done.files_vacuumed, "{}", dry.table);
    }
    assert_same(&everything(&lake).await, &before, "after maintenance");
    let target = config.maintenance.target_file_mb * 1024 * 1024;
    for table in &report.tables {
        let (b, a) = (&table.before, &table.after);
        eprintln!(
            "{}: files {} -> {} ({} live), stored bytes {} -> {} ({} live), log entries -{}",
            table.table, b.stored_files, a.stored_files, a.live_files, b.stored_bytes, a.stored_bytes, a.live_bytes, table.log_entries_removed
        );
        assert!(a.stored_bytes as f64 <= 1.2 * a.live_bytes as f64, "{}: {} bytes stored for {} live", table.table, a.stored_bytes, a.live_bytes);
    }
    assert!(report.tables.iter().any(|t| t.files_compacted > 0 && t.files_vacuumed > 0 && t.log_entries_removed > 0));
    for spec in streamreel_tables::all_tables() {
        let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
        let mut small: BTreeMap<&Vec<Option<String>>, usize> = BTreeMap::new();
        for file in table.files().iter().filter(|f| (f.size as u64) < target) {
            *small.entry(&file.partition).or_default() += 1;
        }
        assert!(small.values().all(|n| *n <= 2), "{}: a partition holds more than 2 small files: {small:?}", spec.path);
    }
    // Tombstones expire with the vacuum's retention, so the checkpoint log
    // cleanup wrote keeps none of them; a second run commits nothing more.
    for spec in streamreel_tables::all_tables() {
        let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
        assert_eq!(table.property(TOMBSTONE_RETENTION), Some("interval 0 seconds"), "{}", spec.path);
        assert_eq!(checkpoint_tombstones(&table).await, 0, "{}: the checkpoint still carries tombstones", spec.path);
    }
    assert!(report.tables.iter().all(|t| t.tombstone_retention_set));
    let again = lake_maintain::run(&config, &Default::default()).await.unwrap();
    assert!(again.tables.iter().all(|t| !t.tombstone_retention_set), "the retention is set once");
    // Compacted files, read back through the checkpoint log cleanup wrote,
    // still carry key filters that hold every row's key.
    assert_key_filters_hold_their_rows(&lake).await;
    // The lake goes on working: a rerun of the window changes nothing.
    chain(&lake, window, 1).await;
    assert_same(&everything(&lake).await, &before, "a rerun after maintenance");
}

/// The remove actions (tombstones) of the table's newest checkpoint.
async fn checkpoint_tombstones(table: &Table) -> usize {
    let store = table.store();
    let listed: Vec<ObjectMeta> = store.list(Some(&Path::from("_delta_log"))).try_collect().await.unwrap();
    let Some(newest) = listed.into_iter().map(|m| m.location).filter(|p| p.as_ref().ends_with(".checkpoint.parquet")).max() else { return 0 };
    let bytes = store.get(&newest).await.unwrap().bytes().await.unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
    reader
        .map(|batch| {
            let removes = batch.unwrap().column_by_name("remove").cloned().expect("a checkpoint has a remove column");
            removes.len() - removes.null_count()
        })
        .sum()
}

async fn assert_key_filters_hold_their_rows(lake: &TestLake) {
    for spec in streamreel_tables::all_tables().into_iter().filter(|s| !s.key_columns.is_empty()) {
        let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
        assert!(!table.files().is_empty(), "{}", spec.path);
        let mut keys = 0;
        for file in table.files() {
            assert!(file.keys.is_some(), "{}: {} has no key filter", spec.path, file.path);
            for batch in table.scan(vec![file.clone()]).read().await.unwrap() {
                for key in key_filter::keys_of(spec.key_columns, &batch).unwrap() {
                    assert!(file.may_hold_any(&[key]), "{}: {} lost key {key}", spec.path, file.path);
                    keys += 1;
                }
            }
        }
        assert!(keys > 0, "{}", spec.path);
    }
}

#[tokio::test]
async fn time_travel_to_a_version_within_the_retention_still_reads() {
    let (lake, _) = hourly_lake().await;
    let spec = &*streamreel_tables::silver::EVENTS;
    let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
    let (version, files) = (table.version(), table.files().len());
    let rows = streamreel_testkit::table_rows(&lake.config, spec, &[]).await;
    let report = lake_maintain::run(&maintenance(&lake.config, 168.0), &Default::default()).await.unwrap();
    assert!(report.tables.iter().any(|t| t.table == spec.path && t.files_compacted > 0), "silver/events was compacted");
    let now = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
    assert!(now.files().len() < files, "compaction left {} files of {files}", now.files().len());
    let then = Table::open_version(&lake.lake(), spec, version).await.unwrap();
    assert_eq!(then.files().len(), files);
    let old_rows: usize = then.scan(then.files().to_vec()).read().await.unwrap().iter().map(|b| b.num_rows()).sum();
    assert_eq!(old_rows, rows.len(), "version {version} reads whole after maintenance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_committing_during_maintenance_lose_nothing() {
    let (reference, window, _) = simulated(&spec()).await;
    chain(&reference, window, 1).await;
    let expected = everything(&reference).await;
    let all = hours(window);
    let (first, second) = all.split_at(all.len() / 2);
    let trials = std::env::var("STREAMREEL_MAINTENANCE_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(4);
    let mut skipped = 0;
    for trial in 0..trials {
        let lake = TestLake::local();
        land(&lake, &spec()).await;
        for hour in first {
            chain(&lake, *hour, 1).await;
        }
        // Maintenance (safe retention) while the second half runs hourly.
        let config = maintenance(&lake.config, 168.0);
        let maintain = tokio::spawn(async move { lake_maintain::run(&config, &Default::default()).await });
        tokio::time::sleep(Duration::from_millis(trial * 30)).await;
        for hour in second {
            chain(&lake, *hour, 1).await;
        }
        let report = maintain.await.unwrap().unwrap();
        skipped += report.tables.iter().map(|t| t.bins_skipped).sum::<u64>();
        assert_same(&everything(&lake).await, &expected, &format!("trial {trial}: maintenance during the hourly chain"));
    }
    eprintln!("{trials} trials of maintenance during hourly runs; {skipped} bins skipped after concurrent commits");
}

#[tokio::test]
async fn an_orphan_of_a_killed_commit_is_collected_after_the_retention_and_not_before() {
    let lake = TestLake::local();
    let report = land(&lake, &SimulationSpec { events: 1_000, hours: 2, ..spec() }).await;
    let window = Window::range(&report.landing_from, &report.landing_to).unwrap();
    streamreel_scenarios::bronze(&lake, window, Shard::ALL).await;
    silver(&lake, window, Shard::ALL).await;
    // What a worker killed before its commit leaves: a data file no version references.
    let events_dir = lake.lake().join(streamreel_tables::silver::EVENTS.path).local_path().unwrap();
    let table = Table::open(&lake.lake(), &streamreel_tables::silver::EVENTS, lake.config.buckets).await.unwrap();
    let live = &table.files()[0];
    let orphan = events_dir.join(&live.path).with_file_name("part-00000000-orphan.snappy.parquet");
    std::fs::copy(events_dir.join(&live.path), &orphan).unwrap();

    lake_maintain::run(&maintenance(&lake.config, 1.0), &Default::default()).await.unwrap();
    assert!(orphan.exists(), "an orphan younger than the retention is kept (its commit may still come)");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    std::fs::File::options().write(true).open(&orphan).unwrap().set_modified(two_hours_ago).unwrap();
    lake_maintain::run(&maintenance(&lake.config, 1.0), &Default::default()).await.unwrap();
    assert!(!orphan.exists(), "an orphan older than the retention is collected");
    assert!(
        events_dir.join(&live.path).exists()
            || Table::open(&lake.lake(), &streamreel_tables::silver::EVENTS, lake.config.buckets)
                .await
                .unwrap()
                .files()
                .iter()
                .all(|f| events_dir.join(&f.path).exists())
    );
}
