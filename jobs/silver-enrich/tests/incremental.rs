//! Hourly silver runs, in order or shuffled, give exactly the tables of one
//! run over everything; rerunning a window changes nothing.

use silver_enrich::schema::{EVENTS, SEGMENTS, SESSIONS};
use streamreel_lake::storage::Location;
use streamreel_lake::testing::{TestLake, sample_metadata, table_rows};
use streamreel_lake::{Config, Window};

const KEY_ENV: &str = "STREAMREEL_TEST_IP_KEY";

async fn simulated_lake(events: u64) -> (TestLake, Window) {
    // SAFETY: tests in this binary only ever set the same value.
    unsafe { std::env::set_var(KEY_ENV, "test-key") };
    let mut lake = TestLake::local();
    lake.config.silver.ip_hash_key_env = KEY_ENV.into();
    let titles = simulate_events::read_titles(&std::fs::read(sample_metadata()).unwrap(), "sample").unwrap();
    let spec = simulate_events::SimulationSpec { events, late_ratio: 0.05, duplicate_ratio: 0.03, ..Default::default() };
    let sim = simulate_events::simulate(&spec, &titles, &Location::parse(&lake.config.landing_url).unwrap()).await.unwrap();
    let window = Window::range(&sim.landing_from, &sim.landing_to).unwrap();
    bronze_ingest::run(&lake.config, window, "bronze").await.unwrap();
    (lake, window)
}

async fn silver_tables(config: &Config) -> Vec<Vec<String>> {
    let mut tables = Vec::new();
    for spec in [&*EVENTS, &*SEGMENTS, &*SESSIONS] {
        tables.push(table_rows(&config.lake_url, spec, &[]).await);
    }
    tables
}

/// A fixed permutation of the hours (no RNG needed to be reproducible).
fn shuffled(window: Window) -> Vec<Window> {
    let mut hours: Vec<Window> = window.hours().map(|h| Window::new(h, h + chrono::Duration::hours(1)).unwrap()).collect();
    let n = hours.len();
    for i in 0..n {
        hours.swap(i, (i * 7919 + 13) % n);
    }
    hours
}

#[tokio::test]
async fn hourly_runs_in_any_order_equal_one_full_run_and_reruns_change_nothing() {
    let (full, window) = simulated_lake(15_000).await;
    let report = silver_enrich::run(&full.config, window, "full").await.unwrap();
    assert!(report.duplicates_dropped > 0, "the simulation delivers duplicates");
    let expected = silver_tables(&full.config).await;
    assert!(expected.iter().all(|rows| !rows.is_empty()));

    let (in_order, _) = simulated_lake(15_000).await;
    for hour in window.hours() {
        silver_enrich::run(&in_order.config, Window::new(hour, hour + chrono::Duration::hours(1)).unwrap(), "hourly").await.unwrap();
    }
    let got = silver_tables(&in_order.config).await;
    for (i, name) in ["events", "segments", "sessions"].iter().enumerate() {
        assert_eq!(got[i].len(), expected[i].len(), "{name}: hourly in order");
        assert!(got[i] == expected[i], "{name}: hourly in order differs");
    }

    let (shuffled_lake, _) = simulated_lake(15_000).await;
    for hour in shuffled(window) {
        silver_enrich::run(&shuffled_lake.config, hour, "shuffled").await.unwrap();
    }
    let got = silver_tables(&shuffled_lake.config).await;
    for (i, name) in ["events", "segments", "sessions"].iter().enumerate() {
        assert_eq!(got[i].len(), expected[i].len(), "{name}: shuffled");
        assert!(got[i] == expected[i], "{name}: shuffled hours differ");
    }

    // One run over the window in bounded chunks of landing hours.
    let (mut chunked, _) = simulated_lake(15_000).await;
    chunked.config.silver.max_rows_per_chunk = 2_000;
    let report = silver_enrich::run(&chunked.config, window, "chunked").await.unwrap();
    assert_eq!(report.bronze_rows, silver_enrich::run(&full.config, window, "rerun").await.unwrap().bronze_rows);
    let got = silver_tables(&chunked.config).await;
    for (i, name) in ["events", "segments", "sessions"].iter().enumerate() {
        assert!(got[i] == expected[i], "{name}: chunked run differs");
    }

    // Reruns: one busy hour, then the whole window.
    let rerun = silver_enrich::run(&full.config, Window::hour("2025-08-11T19").unwrap(), "rerun").await.unwrap();
    assert_eq!(rerun.events_written, 0);
    assert!(rerun.already_in_silver > 0);
    assert_eq!(silver_tables(&full.config).await, expected);
    silver_enrich::run(&full.config, window, "rerun").await.unwrap();
    assert_eq!(silver_tables(&full.config).await, expected);
}

#[tokio::test]
async fn a_missing_ip_key_is_a_clear_error() {
    let mut lake = TestLake::local();
    lake.config.silver.ip_hash_key_env = "STREAMREEL_TEST_KEY_NOT_SET".into();
    let err = silver_enrich::run(&lake.config, Window::hour("2025-08-11T14").unwrap(), "x").await.unwrap_err();
    assert!(err.to_string().contains("STREAMREEL_TEST_KEY_NOT_SET"), "{err}");
}
