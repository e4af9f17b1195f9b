//! The chain run over one window, hour by hour in order or shuffled, with
//! reruns, in small chunks of buckets, or as several shards (with the shard
//! count changing between hours) leaves exactly the same silver and gold
//! tables.

use streamreel_lake::Window;
use streamreel_scenarios::{SimulationSpec, assert_same, chain, compared_tables, hours, shuffle, simulated, snapshot};
use streamreel_testkit::TestLake;

fn spec() -> SimulationSpec {
    SimulationSpec { events: 12_000, late_ratio: 0.05, duplicate_ratio: 0.03, seed: 7, ..Default::default() }
}

async fn lake_with(configure: impl FnOnce(&mut TestLake)) -> (TestLake, Window) {
    let (mut lake, window, _) = simulated(&spec()).await;
    configure(&mut lake);
    (lake, window)
}

#[tokio::test]
async fn hourly_chains_in_any_order_equal_one_full_run_and_reruns_change_nothing() {
    let (full, window) = lake_with(|_| {}).await;
    chain(&full, window, 1).await;
    let expected = snapshot(&full, &compared_tables()).await;
    for (name, rows) in &expected {
        assert!(!rows.is_empty(), "{name} is empty");
    }

    let (in_order, _) = lake_with(|_| {}).await;
    for hour in hours(window) {
        chain(&in_order, hour, 1).await;
    }
    assert_same(&snapshot(&in_order, &compared_tables()).await, &expected, "hourly in order");

    let (shuffled, _) = lake_with(|_| {}).await;
    let mut order = hours(window);
    shuffle(&mut order, 11);
    for hour in order {
        chain(&shuffled, hour, 1).await;
    }
    assert_same(&snapshot(&shuffled, &compared_tables()).await, &expected, "shuffled hours");

    // Rerunning a busy hour and then everything changes nothing.
    chain(&full, Window::hour("2025-08-11T19").unwrap(), 1).await;
    assert_same(&snapshot(&full, &compared_tables()).await, &expected, "rerun of one hour");
    chain(&full, window, 1).await;
    assert_same(&snapshot(&full, &compared_tables()).await, &expected, "rerun of the window");

    // Silver in chunks of a few buckets.
    let (chunked, _) = lake_with(|lake| lake.config.silver.max_rows_per_chunk = 1_000).await;
    chain(&chunked, window, 1).await;
    assert_same(&snapshot(&chunked, &compared_tables()).await, &expected, "small chunks");
}

#[tokio::test]
async fn shards_give_the_tables_of_one_process_whatever_their_count() {
    let (one, window) = lake_with(|_| {}).await;
    chain(&one, window, 1).await;
    let expected = snapshot(&one, &compared_tables()).await;
    let bronze = snapshot(&one, &streamreel_scenarios::bronze_tables()).await;

    let (four, _) = lake_with(|_| {}).await;
    chain(&four, window, 4).await;
    assert_same(&snapshot(&four, &compared_tables()).await, &expected, "four shards");
    assert_same(&snapshot(&four, &streamreel_scenarios::bronze_tables()).await, &bronze, "four bronze shards");

    // The shard count changes from one hour to the next.
    let (changing, _) = lake_with(|_| {}).await;
    for (i, hour) in hours(window).into_iter().enumerate() {
        chain(&changing, hour, [1, 3, 4, 2][i % 4]).await;
    }
    assert_same(&snapshot(&changing, &compared_tables()).await, &expected, "shard count changing between hours");
}
