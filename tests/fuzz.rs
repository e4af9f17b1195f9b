//! Randomized equivalence (DataFusion's fuzz tests are the model): many
//! seeds of small simulated days with every hostile delivery the simulator
//! knows, each run three ways: one run over the whole window; hour by hour
//! in a random order; and hour by hour with random hours rerun and a random
//! shard count per run. Every silver and gold table must come out the same.
//!
//! The base seed is random unless `STREAMREEL_FUZZ_SEED` is set; every seed
//! is printed, and a failure says how to rerun it alone. The test runs
//! seeds for `STREAMREEL_FUZZ_SECONDS` (60 by default), and at least three.

use std::time::{Duration, Instant};

use simulate_events::Faults;
use streamreel_lake::{Shard, Window};
use streamreel_scenarios::{
    SimulationSpec, bronze, chain, compared_tables, finalize, first_difference, gold, hours, land, shuffle, silver, simulated, snapshot,
};
use streamreel_testkit::{TestLake, fuzz_seed};

const MIN_SEEDS: u64 = 3;

fn spec(seed: u64) -> SimulationSpec {
    SimulationSpec {
        events: 300 + seed % 300,
        seed,
        hours: 8,
        late_ratio: 0.06,
        very_late_ratio: 0.01,
        duplicate_ratio: 0.05,
        bad_line_ratio: 0.01,
        shards: 2,
        faults: Faults::hostile(),
        ..Default::default()
    }
}

/// A tiny generator for the run orders (the simulator has its own).
struct Draw(u64);

impl Draw {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// One hour's chain as `count` shards (a single shard finalizes itself).
async fn hour_as_shards(lake: &TestLake, hour: Window, count: u32) {
    let shards = (0..count).map(|index| Shard { index, count });
    for shard in shards.clone() {
        bronze(lake, hour, shard).await;
    }
    for shard in shards.clone() {
        silver(lake, hour, shard).await;
    }
    for shard in shards {
        gold(lake, hour, shard).await;
    }
    if count > 1 {
        finalize(lake, hour).await;
    }
}

async fn one_seed(seed: u64) -> Result<String, String> {
    let spec = spec(seed);
    let (whole, window, report) = simulated(&spec).await;
    chain(&whole, window, 1).await;
    let expected = snapshot(&whole, &compared_tables()).await;

    let shuffled = TestLake::local();
    land(&shuffled, &spec).await;
    let mut order = hours(window);
    shuffle(&mut order, seed);
    for hour in &order {
        chain(&shuffled, *hour, 1).await;
    }
    if let Some(difference) = first_difference(&snapshot(&shuffled, &compared_tables()).await, &expected) {
        return Err(format!("hour by hour in a random order: {difference}"));
    }

    let rerun = TestLake::local();
    land(&rerun, &spec).await;
    let mut draw = Draw(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    shuffle(&mut order, seed ^ 0xABCD);
    let mut done: Vec<Window> = Vec::new();
    let mut reruns = 0;
    for hour in &order {
        hour_as_shards(&rerun, *hour, 1 + draw.next(3) as u32).await;
        done.push(*hour);
        if draw.next(3) == 0 {
            let again = done[draw.next(done.len() as u64) as usize];
            hour_as_shards(&rerun, again, 1 + draw.next(3) as u32).await;
            reruns += 1;
        }
    }
    if let Some(difference) = first_difference(&snapshot(&rerun, &compared_tables()).await, &expected) {
        return Err(format!("hour by hour with {reruns} reruns and random shard counts: {difference}"));
    }
    let f = &report.fault_counts;
    Ok(format!(
        "{} lines, {} events in {} landing hours; faults: {} conflicting copies, {} reused ids, {} shared-session sessions, {} bad optional fields, {} odd objects, {} damaged, {} hidden ({} in all); {} reruns",
        report.lines,
        report.events,
        order.len(),
        f.conflicting_copies,
        f.reused_ids,
        f.shared_session_sessions,
        f.bad_optional_fields,
        f.odd_objects,
        f.damaged_objects,
        f.hidden_objects,
        f.total(),
        reruns
    ))
}

#[tokio::test]
async fn any_order_of_hourly_runs_and_reruns_equals_one_run_over_hostile_deliveries() {
    let base = fuzz_seed();
    let budget = Duration::from_secs(std::env::var("STREAMREEL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60));
    let started = Instant::now();
    let mut seeds = 0;
    while seeds < MIN_SEEDS || started.elapsed() < budget {
        let seed = base + seeds;
        let took = Instant::now();
        match one_seed(seed).await {
            Ok(summary) => eprintln!("fuzz seed {seed}: equal three ways ({summary}), {:.1} s", took.elapsed().as_secs_f64()),
            Err(difference) => panic!(
                "fuzz seed {seed}: {difference}\nrerun it alone: STREAMREEL_FUZZ_SEED={seed} STREAMREEL_FUZZ_SECONDS=0 cargo test --release -p streamreel-scenarios --test fuzz -- --nocapture"
            ),
        }
        seeds += 1;
    }
    eprintln!("fuzz: {seeds} seeds from {base} in {:.0} s, all equal", started.elapsed().as_secs_f64());
}
