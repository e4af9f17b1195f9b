//! Shared steps of the end-to-end tests: simulate landing data, run the
//! chain (bronze, silver, gold) over windows and shards, and read every
//! table back as sorted rows to compare lakes. The golden scenarios live in
//! `golden/` (one folder per case: the landed `events.jsonl` and the
//! expected rows as CSV).

pub mod process;

use streamreel_lake::{Location, Shard, TableSpec, Window};
use streamreel_tables::{bronze, gold, silver};
use streamreel_testkit::{TestLake, sample_metadata, table_rows};

pub use simulate_events::{SimulationReport, SimulationSpec};

/// A fresh local lake with a simulated day landed in it.
pub async fn simulated(spec: &SimulationSpec) -> (TestLake, Window, SimulationReport) {
    let lake = TestLake::local();
    let report = land(&lake, spec).await;
    let window = Window::range(&report.landing_from, &report.landing_to).expect("the simulated landing window");
    (lake, window, report)
}

/// Lands a simulated day in the lake's landing area.
pub async fn land(lake: &TestLake, spec: &SimulationSpec) -> SimulationReport {
    let titles = simulate_events::read_titles(&std::fs::read(sample_metadata()).expect("metadata"), "sample").expect("titles");
    simulate_events::simulate(spec, &titles, &Location::parse(&lake.config.landing_url).expect("landing")).await.expect("simulation")
}

pub async fn bronze(lake: &TestLake, window: Window, shard: Shard) {
    bronze_ingest::run(&lake.shard_context("bronze-ingest", window, shard), Default::default()).await.expect("bronze-ingest");
}

pub async fn silver(lake: &TestLake, window: Window, shard: Shard) {
    silver_enrich::run(&lake.shard_context("silver-enrich", window, shard)).await.expect("silver-enrich");
}

/// A gold shard; `Shard::ALL` is one process, which finalizes itself.
pub async fn gold(lake: &TestLake, window: Window, shard: Shard) {
    let ctx = if shard.is_all() { lake.context("gold-aggregate", window) } else { lake.shard_context("gold-aggregate", window, shard) };
    gold_aggregate::run(&ctx, Default::default()).await.expect("gold-aggregate");
}

pub async fn finalize(lake: &TestLake, window: Window) {
    gold_aggregate::run(&lake.context("gold-aggregate", window), gold_aggregate::Options { finalize: true })
        .await
        .expect("gold-aggregate --finalize");
}

/// Every stage of a window, each as `shards` shards run one after another.
pub async fn chain(lake: &TestLake, window: Window, shards: u32) {
    let all = |count| (0..count).map(move |index| Shard { index, count });
    for shard in all(shards) {
        bronze(lake, window, shard).await;
    }
    for shard in all(shards) {
        silver(lake, window, shard).await;
    }
    for shard in all(shards) {
        gold(lake, window, shard).await;
    }
    if shards > 1 {
        finalize(lake, window).await;
    }
}

pub fn hours(window: Window) -> Vec<Window> {
    window.hours().map(|h| Window::new(h, h + chrono::Duration::hours(1)).expect("an hour")).collect()
}

/// A permutation of `items` drawn from `seed` (a small xorshift: no RNG
/// dependency, and the same seed gives the same order everywhere).
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// The tables compared between lakes, with the columns that legitimately
/// differ (when a row was written, by which run) left out.
pub fn compared_tables() -> Vec<(&'static TableSpec, &'static [&'static str])> {
    vec![
        (&*silver::EVENTS, &[]),
        (&*silver::DUPLICATES, &[]),
        (&*silver::SEGMENTS, &[]),
        (&*silver::SESSIONS, &[]),
        (&*gold::ENGAGEMENT, &["_loaded_at"]),
        (&*gold::VIEWER_DAILY, &["_loaded_at"]),
        (&*gold::VIDEO_DAILY, &["_loaded_at"]),
        (&*gold::RETENTION, &["_loaded_at"]),
        (&*gold::QOS_HOURLY, &["_loaded_at"]),
        (&*gold::CONCURRENCY, &["_loaded_at"]),
    ]
}

/// Bronze, less the run id (which names the run's window).
pub fn bronze_tables() -> Vec<(&'static TableSpec, &'static [&'static str])> {
    vec![(&*bronze::EVENTS, &["run_id"]), (&*bronze::REJECTS, &["run_id"])]
}

/// Every compared table of a lake as sorted rows, by table path.
pub async fn snapshot(lake: &TestLake, tables: &[(&'static TableSpec, &'static [&'static str])]) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    for (spec, skip) in tables {
        out.push((spec.path, table_rows(&lake.config, spec, skip).await));
    }
    out
}

/// Panics with the first difference between two snapshots.
pub fn assert_same(got: &[(&str, Vec<String>)], expected: &[(&str, Vec<String>)], how: &str) {
    if let Some(difference) = first_difference(got, expected) {
        panic!("{how}: {difference}");
    }
}

pub fn first_difference(got: &[(&str, Vec<String>)], expected: &[(&str, Vec<String>)]) -> Option<String> {
    for ((name, rows), (_, want)) in got.iter().zip(expected) {
        if let Some(i) = (0..rows.len().max(want.len())).find(|&i| rows.get(i) != want.get(i)) {
            return Some(format!(
                "{name} differs ({} rows, expected {}); first difference\n  got:      {}\n  expected: {}",
                rows.len(),
                want.len(),
                rows.get(i).map(String::as_str).unwrap_or("(none)"),
                want.get(i).map(String::as_str).unwrap_or("(none)")
            ));
        }
    }
    None
}
