//! Concurrent runs never corrupt the lake. For each stage (bronze, silver,
//! gold) two runs overlap in time in every shape an operator meets: the same
//! window twice, staggered starts, disjoint halves, overlapping windows, and
//! two hourly loops interleaved (even and odd hours). Every run must end in
//! success or in a clear conflict error; after rerunning what failed and
//! running the later stages, every table equals one sequential run.
//!
//! `STREAMREEL_CONCURRENCY_TRIALS` sets the trials per case (3 by default
//! locally, 1 on S3).

use std::time::Duration;

use streamreel_lake::worker::RunContext;
use streamreel_lake::{Shard, Window};
use streamreel_scenarios::{
    SimulationSpec, assert_same, bronze, bronze_tables, chain, compared_tables, gold, hours, land, silver, simulated, snapshot,
};
use streamreel_testkit::TestLake;

fn spec() -> SimulationSpec {
    SimulationSpec { events: 4_000, seed: 5, hours: 12, late_ratio: 0.05, duplicate_ratio: 0.03, ..Default::default() }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Bronze,
    Silver,
    Gold,
}

#[derive(Debug, Clone, Copy)]
enum Case {
    SameWindow,
    Staggered,
    DisjointHalves,
    Overlapping,
    InterleavedHours,
}

const CASES: [Case; 5] = [Case::SameWindow, Case::Staggered, Case::DisjointHalves, Case::Overlapping, Case::InterleavedHours];

/// The windows each of the two runners goes through, in order.
fn plans(case: Case, window: Window) -> [Vec<Window>; 2] {
    let all = hours(window);
    let at = |i: usize| all[i.min(all.len() - 1)].start;
    let span = |a: usize, b: usize| Window::new(at(a), if b >= all.len() { window.end } else { at(b) }).unwrap();
    let (third, half) = (all.len() / 3, all.len() / 2);
    match case {
        Case::SameWindow | Case::Staggered => [vec![window], vec![window]],
        Case::DisjointHalves => [vec![span(0, half)], vec![span(half, all.len())]],
        Case::Overlapping => [vec![span(0, 2 * third)], vec![span(third, all.len())]],
        Case::InterleavedHours => [all.iter().step_by(2).copied().collect(), all.iter().skip(1).step_by(2).copied().collect()],
    }
}

/// Runs a stage; `Ok` holds how many plans it made (more than one: it met
/// a concurrent commit and planned again).
async fn run_stage(stage: Stage, ctx: RunContext) -> Result<u64, String> {
    match stage {
        Stage::Bronze => bronze_ingest::run(&ctx, Default::default()).await.map(|r| r.plans as u64).map_err(|e| e.to_string()),
        Stage::Silver => silver_enrich::run(&ctx).await.map(|r| r.plans.saturating_sub(r.chunks) + 1).map_err(|e| e.to_string()),
        Stage::Gold => gold_aggregate::run(&ctx, Default::default()).await.map(|r| r.plans.saturating_sub(1)).map_err(|e| e.to_string()),
    }
}

fn worker(stage: Stage) -> &'static str {
    match stage {
        Stage::Bronze => "bronze-ingest",
        Stage::Silver => "silver-enrich",
        Stage::Gold => "gold-aggregate",
    }
}

/// Runs one trial; returns the runs that planned again after a conflict,
/// and those that ended in a conflict error (and were rerun).
async fn trial(
    make_lake: &dyn Fn() -> TestLake,
    reference: &[(&str, Vec<String>)],
    window: Window,
    stage: Stage,
    case: Case,
    delay_ms: u64,
) -> (u64, usize) {
    let lake = make_lake();
    land(&lake, &spec()).await;
    // The stages before this one, sequentially.
    if stage != Stage::Bronze {
        bronze(&lake, window, Shard::ALL).await;
    }
    if stage == Stage::Gold {
        silver(&lake, window, Shard::ALL).await;
    }
    let [first, second] = plans(case, window);
    let runner = |windows: Vec<Window>, delay: u64| {
        let contexts: Vec<RunContext> = windows.iter().map(|w| lake.context(worker(stage), *w)).collect();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let (mut failed, mut replans) = (Vec::new(), 0);
            for ctx in contexts {
                match run_stage(stage, ctx.clone()).await {
                    Ok(plans) => replans += u64::from(plans > 1),
                    Err(e) => failed.push((ctx, e)),
                }
            }
            (failed, replans)
        })
    };
    let stagger = if matches!(case, Case::Staggered) { delay_ms + 40 } else { delay_ms };
    let (a, b) = (runner(first, 0), runner(second, stagger));
    let ((failed_a, replans_a), (failed_b, replans_b)) = (a.await.unwrap(), b.await.unwrap());
    let failed: Vec<(RunContext, String)> = failed_a.into_iter().chain(failed_b).collect();
    for (ctx, error) in &failed {
        let clear = (error.contains("a concurrent commit (version") || error.contains("gave up after"))
            && error.contains("table ")
            && error.contains("window [");
        assert!(clear, "{stage:?} {case:?}: {} failed without a clear conflict line: {error}", ctx.window);
    }
    // Rerun what failed, then the later stages.
    for (ctx, _) in &failed {
        run_stage(stage, ctx.clone()).await.unwrap_or_else(|e| panic!("{stage:?} {case:?}: the rerun failed: {e}"));
    }
    if stage == Stage::Bronze {
        silver(&lake, window, Shard::ALL).await;
    }
    if stage != Stage::Gold {
        gold(&lake, window, Shard::ALL).await;
    }
    let got = [snapshot(&lake, &compared_tables()).await, snapshot(&lake, &bronze_tables()).await].concat();
    assert_same(&got, reference, &format!("{stage:?} {case:?} (delay {delay_ms} ms, {} conflicts)", failed.len()));
    (replans_a + replans_b, failed.len())
}

async fn matrix(make_lake: &dyn Fn() -> TestLake, trials: u64) {
    let (sequential, window, _) = simulated(&spec()).await;
    chain(&sequential, window, 1).await;
    let reference = [snapshot(&sequential, &compared_tables()).await, snapshot(&sequential, &bronze_tables()).await].concat();
    let mut summary = Vec::new();
    for stage in [Stage::Bronze, Stage::Silver, Stage::Gold] {
        for case in CASES {
            let (mut replanned, mut failed) = (0, 0);
            for t in 0..trials {
                let (r, f) = trial(make_lake, &reference, window, stage, case, t * 17 % 60).await;
                replanned += r;
                failed += f;
            }
            summary.push(format!("{stage:?} {case:?}: {trials} trials; {replanned} runs planned again after a conflict, {failed} ended in a conflict error and were rerun"));
        }
    }
    eprintln!("{}", summary.join("\n"));
}

fn trials(default: u64) -> u64 {
    std::env::var("STREAMREEL_CONCURRENCY_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_runs_of_every_stage_equal_sequential_runs_local() {
    matrix(&TestLake::local, trials(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the S3 test server: run through infra/bin/test"]
async fn concurrent_runs_of_every_stage_equal_sequential_runs_s3() {
    matrix(&TestLake::s3, trials(1)).await;
}
