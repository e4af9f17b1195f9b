//! Shards as an operator runs them: each stage as four concurrent processes
//! (`--shard I/4`), then `gold-aggregate --finalize`, gives the tables of one
//! process per stage, on a local lake and on the S3 test server.

use std::process::Stdio;

use streamreel_lake::Window;
use streamreel_scenarios::process::{command, run, stderr, succeeded, write_config};
use streamreel_scenarios::{SimulationSpec, assert_same, bronze_tables, compared_tables, land, snapshot};
use streamreel_testkit::TestLake;

const WORKERS: [&str; 3] = ["bronze-ingest", "silver-enrich", "gold-aggregate"];

fn spec() -> SimulationSpec {
    SimulationSpec {
        events: 6_000,
        seed: 33,
        hours: 4,
        late_ratio: 0.1,
        duplicate_ratio: 0.05,
        bad_line_ratio: 0.01,
        faults: simulate_events::Faults::hostile(),
        ..Default::default()
    }
}

async fn everything(lake: &TestLake) -> Vec<(&'static str, Vec<String>)> {
    [snapshot(lake, &compared_tables()).await, snapshot(lake, &bronze_tables()).await].concat()
}

async fn one_process_against_four_concurrent_shards(make_lake: fn() -> TestLake) {
    let single = make_lake();
    let report = land(&single, &spec()).await;
    let window = Window::range(&report.landing_from, &report.landing_to).unwrap();
    let config = write_config(&single);
    for worker in WORKERS {
        succeeded(worker, &run(worker, &config, window, &[], &[]));
    }
    let expected = everything(&single).await;
    assert!(expected.iter().all(|(_, rows)| !rows.is_empty()), "every table has rows");

    let sharded = make_lake();
    land(&sharded, &spec()).await;
    let config = write_config(&sharded);
    for worker in WORKERS {
        let children: Vec<_> = (0..4)
            .map(|i| {
                let mut shard = command(worker, &config, window, &["--shard", &format!("{i}/4")], &[]);
                shard.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("the worker starts")
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let output = child.wait_with_output().unwrap();
            succeeded(&format!("{worker} --shard {i}/4"), &output);
            assert!(stderr(&output).contains(&format!("shard={i}/4")), "the summary names the shard");
        }
    }
    succeeded("gold-aggregate --finalize", &run("gold-aggregate", &config, window, &["--finalize"], &[]));
    assert_same(&everything(&sharded).await, &expected, "four concurrent shards per stage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_shards_per_stage_equal_one_process_local() {
    one_process_against_four_concurrent_shards(TestLake::local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the S3 test server: run through infra/bin/test"]
async fn four_concurrent_shards_per_stage_equal_one_process_s3() {
    one_process_against_four_concurrent_shards(TestLake::s3).await;
}
