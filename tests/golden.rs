//! Runs every scenario of `tests/golden/` through bronze and silver on a
//! fresh local lake and compares the rows with the checked-in expectations.

use std::path::{Path, PathBuf};

use streamreel_lake::arrow::array::{Array, AsArray, RecordBatch};
use streamreel_lake::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use streamreel_lake::{Table, TableSpec, Window};
use streamreel_testkit::TestLake;

const HOUR: &str = "2025-08-11T10";

fn golden_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test")).join("golden")
}

fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

async fn run_scenario(dir: &Path) -> TestLake {
    let mut lake = TestLake::local();
    lake.config.metadata_url = golden_dir().join("metadata.csv").to_string_lossy().into_owned();
    lake.put(HOUR, "events.jsonl", std::fs::read(dir.join("events.jsonl")).unwrap()).await;
    let window = Window::hour(HOUR).unwrap();
    bronze_ingest::run(&lake.context("bronze-ingest", window), Default::default()).await.unwrap();
    silver_enrich::run(&lake.context("silver-enrich", window)).await.unwrap();
    gold_aggregate::run(&lake.context("gold-aggregate", window), Default::default()).await.unwrap();
    lake
}

async fn read(lake: &TestLake, spec: &'static TableSpec) -> Vec<RecordBatch> {
    let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
    table.scan(table.files().to_vec()).read().await.unwrap()
}

fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn expected(dir: &Path, file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|_| panic!("{}/{file}", dir.display()));
    let mut rows: Vec<String> = text.lines().skip(1).filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    rows.sort();
    rows
}

fn segment_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        let text = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let num = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Float64Type>().clone();
        let (key, title, start) = (text("session_key"), text("title_id"), b.column_by_name("session_start").unwrap().as_primitive::<TimestampMicrosecondType>().clone());
        let (from, to, watched) = (num("start_position"), num("end_position"), num("watched_seconds"));
        for i in 0..b.num_rows() {
            rows.push(format!("{},{},{},{:.2},{:.2},{:.2}", key.value(i), title.value(i), time(start.value(i)), from.value(i), to.value(i), watched.value(i)));
        }
    }
    rows.sort();
    rows
}

fn session_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        let text = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let int = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let (key, title) = (text("session_key"), text("title_id"));
        let start = b.column_by_name("session_start").unwrap().as_primitive::<TimestampMicrosecondType>().clone();
        let counts = [int("pause_count"), int("seek_count"), int("forward_skips"), int("backward_skips")];
        let completed = b.column_by_name("completed").unwrap().as_boolean().clone();
        let flags = b.column_by_name("quality_flags").unwrap().as_list::<i32>().clone();
        for i in 0..b.num_rows() {
            let list = flags.value(i);
            let list = list.as_string::<i32>();
            let mut names: Vec<&str> = (0..list.len()).map(|j| list.value(j)).collect();
            names.sort();
            let counts: Vec<String> = counts.iter().map(|c| c.value(i).to_string()).collect();
            rows.push(format!("{},{},{},{},{},{}", key.value(i), title.value(i), time(start.value(i)), counts.join(","), completed.value(i), names.join(";")));
        }
    }
    rows.sort();
    rows
}

fn engagement_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    let number = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    for b in batches {
        let text = |n: &str| b.column_by_name(n).unwrap().as_string::<i32>().clone();
        let float = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Float64Type>().clone();
        let int = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let floats = ["total_watch_seconds", "unique_watch_seconds", "max_position_seconds", "watch_percentage", "unique_watch_percentage", "completion_percentage"].map(float);
        let counts = ["session_count", "completion_count", "pause_count"].map(int);
        let (score, tier) = (float("engagement_score"), text("engagement_tier"));
        let flags = b.column_by_name("quality_flags").unwrap().as_list::<i32>().clone();
        let (customer, title) = (text("customer_id"), text("title_id"));
        for i in 0..b.num_rows() {
            let mut fields = vec![customer.value(i).to_string(), title.value(i).to_string()];
            fields.extend(floats.iter().map(|a| number(a.is_valid(i).then(|| a.value(i)))));
            fields.extend(counts.iter().map(|a| a.value(i).to_string()));
            fields.push(number(score.is_valid(i).then(|| score.value(i))));
            fields.push(tier.value(i).to_string());
            let list = flags.value(i);
            let list = list.as_string::<i32>();
            fields.push((0..list.len()).map(|j| list.value(j)).collect::<Vec<_>>().join(";"));
            rows.push(fields.join(","));
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn every_golden_scenario_gives_its_expected_rows() {
    let mut failures = Vec::new();
    let all = scenarios();
    assert!(all.len() >= 15, "scenarios found: {}", all.len());
    for dir in &all {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let lake = run_scenario(dir).await;
        let mut checks = vec![
            ("segments.csv", segment_rows(&read(&lake, &streamreel_tables::silver::SEGMENTS).await)),
            ("sessions.csv", session_rows(&read(&lake, &streamreel_tables::silver::SESSIONS).await)),
        ];
        if dir.join("engagement.csv").exists() {
            checks.push(("engagement.csv", engagement_rows(&read(&lake, &streamreel_tables::gold::ENGAGEMENT).await)));
        }
        for (file, got) in checks {
            let want = expected(dir, file);
            if got != want {
                failures.push(format!("{name}/{file}\n  expected:\n    {}\n  got:\n    {}", want.join("\n    "), got.join("\n    ")));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
