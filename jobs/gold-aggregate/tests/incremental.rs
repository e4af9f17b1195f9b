//! The whole chain run hour by hour, in order or shuffled, gives exactly the
//! gold tables of one run over everything; rerunning a window changes nothing
//! but `_loaded_at`.

use gold_aggregate::schema::{CONCURRENCY, ENGAGEMENT, QOS_HOURLY, RETENTION, VIDEO_DAILY, VIEWER_DAILY};
use streamreel_lake::storage::Location;
use streamreel_lake::testing::{TestLake, sample_metadata, table_rows};
use streamreel_lake::{Config, Window};

const KEY_ENV: &str = "STREAMREEL_TEST_IP_KEY";

async fn simulated_lake() -> (TestLake, Window) {
    // SAFETY: tests in this binary only ever set the same value.
    unsafe { std::env::set_var(KEY_ENV, "test-key") };
    let mut lake = TestLake::local();
    lake.config.silver.ip_hash_key_env = KEY_ENV.into();
    let titles = simulate_events::read_titles(&std::fs::read(sample_metadata()).unwrap(), "sample").unwrap();
    let spec = simulate_events::SimulationSpec { events: 12_000, late_ratio: 0.05, duplicate_ratio: 0.03, seed: 7, ..Default::default() };
    let sim = simulate_events::simulate(&spec, &titles, &Location::parse(&lake.config.landing_url).unwrap()).await.unwrap();
    let window = Window::range(&sim.landing_from, &sim.landing_to).unwrap();
    bronze_ingest::run(&lake.config, window, "bronze").await.unwrap();
    (lake, window)
}

async fn chain(config: &Config, window: Window) {
    silver_enrich::run(config, window, "silver").await.unwrap();
    gold_aggregate::run(config, window, "gold").await.unwrap();
}

async fn gold_tables(config: &Config) -> Vec<(String, Vec<String>)> {
    let mut tables = Vec::new();
    for spec in [&*ENGAGEMENT, &*VIDEO_DAILY, &*VIEWER_DAILY, &*RETENTION, &*QOS_HOURLY, &*CONCURRENCY] {
        tables.push((spec.path.to_string(), table_rows(&config.lake_url, spec, &["_loaded_at"]).await));
    }
    tables
}

fn hours(window: Window) -> Vec<Window> {
    window.hours().map(|h| Window::new(h, h + chrono::Duration::hours(1)).unwrap()).collect()
}

fn assert_same(got: &[(String, Vec<String>)], expected: &[(String, Vec<String>)], how: &str) {
    for ((name, rows), (_, want)) in got.iter().zip(expected) {
        assert_eq!(rows.len(), want.len(), "{name}: {how}: row count");
        if let Some(i) = (0..rows.len()).find(|&i| rows[i] != want[i]) {
            panic!("{name}: {how}: first difference\n  got:      {}\n  expected: {}", rows[i], want[i]);
        }
    }
}

#[tokio::test]
async fn hourly_chains_in_any_order_equal_one_full_run_for_all_six_tables() {
    let (full, window) = simulated_lake().await;
    chain(&full.config, window).await;
    let expected = gold_tables(&full.config).await;
    for (name, rows) in &expected {
        assert!(!rows.is_empty(), "{name} is empty");
    }

    let (in_order, _) = simulated_lake().await;
    for hour in hours(window) {
        chain(&in_order.config, hour).await;
    }
    assert_same(&gold_tables(&in_order.config).await, &expected, "hourly in order");

    let (shuffled, _) = simulated_lake().await;
    let mut order = hours(window);
    let n = order.len();
    for i in 0..n {
        order.swap(i, (i * 7919 + 13) % n);
    }
    for hour in order {
        chain(&shuffled.config, hour).await;
    }
    assert_same(&gold_tables(&shuffled.config).await, &expected, "shuffled hours");

    // Rerunning a busy hour and then everything changes nothing.
    chain(&full.config, Window::hour("2025-08-11T19").unwrap()).await;
    assert_same(&gold_tables(&full.config).await, &expected, "rerun of one hour");
    chain(&full.config, window).await;
    assert_same(&gold_tables(&full.config).await, &expected, "rerun of the window");
}
