//! Runs every scenario of `tests/golden/` through the three workers on fresh
//! local lakes, three ways (the whole landing window at once, then hour by
//! hour forwards and backwards), and compares the rows with the checked-in
//! expectations, which were worked out by hand from docs/metrics.md.
//!
//! A scenario lands `events.jsonl` in hour 10 of 2025-08-11, or every file
//! of `landing/<hour>/` (e.g. `landing/2025-08-11T10/part-0003`) in that
//! hour. Expectations: `segments.csv`, `sessions.csv`, and optionally
//! `engagement.csv`, `events.csv` (silver events) and `rejects.csv`. A
//! `customer_id` first column in the segments or sessions header adds the
//! viewer to those rows.

use std::path::{Path, PathBuf};

use streamreel_lake::arrow::array::{Array, AsArray, RecordBatch};
use streamreel_lake::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use streamreel_lake::{Table, TableSpec, Window};
use streamreel_tables::{bronze, gold, silver};
use streamreel_testkit::TestLake;

fn golden_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo test")).join("golden")
}

fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir()).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    dirs
}

/// (hour, object name, bytes) of every object a scenario lands.
fn landed(dir: &Path) -> Vec<(String, String, Vec<u8>)> {
    if dir.join("events.jsonl").exists() {
        return vec![("2025-08-11T10".into(), "events.jsonl".into(), std::fs::read(dir.join("events.jsonl")).unwrap())];
    }
    let mut objects = Vec::new();
    for hour in std::fs::read_dir(dir.join("landing")).expect("events.jsonl or landing/") {
        let hour = hour.unwrap().path();
        for object in std::fs::read_dir(&hour).unwrap() {
            let object = object.unwrap().path();
            let name = object.file_name().unwrap().to_string_lossy().into_owned();
            objects.push((hour.file_name().unwrap().to_string_lossy().into_owned(), name, std::fs::read(&object).unwrap()));
        }
    }
    objects.sort();
    objects
}

#[derive(Debug, Clone, Copy)]
enum Order {
    Whole,
    Forwards,
    Backwards,
}

async fn run_scenario(dir: &Path, order: Order) -> TestLake {
    let mut lake = TestLake::local();
    lake.config.metadata_url = golden_dir().join("metadata.csv").to_string_lossy().into_owned();
    let objects = landed(dir);
    for (hour, name, bytes) in &objects {
        lake.put(hour, name, bytes.clone()).await;
    }
    let mut hours: Vec<Window> = objects.iter().map(|(hour, _, _)| Window::hour(hour).unwrap()).collect();
    hours.dedup();
    let whole = Window::new(hours[0].start, hours[hours.len() - 1].end).unwrap();
    let windows = match order {
        Order::Whole => vec![whole],
        Order::Forwards => whole.hours().map(|h| Window::new(h, h + chrono::Duration::hours(1)).unwrap()).collect(),
        Order::Backwards => whole.hours().rev().map(|h| Window::new(h, h + chrono::Duration::hours(1)).unwrap()).collect(),
    };
    for window in windows {
        bronze_ingest::run(&lake.context("bronze-ingest", window), Default::default()).await.unwrap();
        silver_enrich::run(&lake.context("silver-enrich", window)).await.unwrap();
        gold_aggregate::run(&lake.context("gold-aggregate", window), Default::default()).await.unwrap();
    }
    lake
}

async fn read(lake: &TestLake, spec: &'static TableSpec) -> Vec<RecordBatch> {
    let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
    table.scan(table.files().to_vec()).read().await.unwrap()
}

fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The header and the sorted rows of an expectation file.
fn expected(dir: &Path, file: &str) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|_| panic!("{}/{file}", dir.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_string();
    let mut rows: Vec<String> = lines.filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    rows.sort();
    (header, rows)
}

fn text<'a>(b: &'a RecordBatch, name: &str) -> &'a streamreel_lake::arrow::array::StringArray {
    b.column_by_name(name).unwrap().as_string::<i32>()
}

fn list_text(b: &RecordBatch, name: &str, i: usize) -> String {
    let list = b.column_by_name(name).unwrap().as_list::<i32>().value(i);
    let mut names: Vec<String> = list.as_string::<i32>().iter().flatten().map(str::to_string).collect();
    names.sort();
    names.join(";")
}

fn segment_rows(batches: &[RecordBatch], with_customer: bool) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        let num = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Float64Type>().clone();
        let start = b.column_by_name("session_start").unwrap().as_primitive::<TimestampMicrosecondType>();
        let (from, to, watched) = (num("start_position"), num("end_position"), num("watched_seconds"));
        for i in 0..b.num_rows() {
            let customer = if with_customer { format!("{},", text(b, "customer_id").value(i)) } else { String::new() };
            rows.push(format!(
                "{customer}{},{},{},{:.2},{:.2},{:.2}",
                text(b, "session_key").value(i),
                text(b, "title_id").value(i),
                time(start.value(i)),
                from.value(i),
                to.value(i),
                watched.value(i)
            ));
        }
    }
    rows.sort();
    rows
}

fn session_rows(batches: &[RecordBatch], with_customer: bool) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        let int = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let start = b.column_by_name("session_start").unwrap().as_primitive::<TimestampMicrosecondType>();
        let counts = [int("pause_count"), int("seek_count"), int("forward_skips"), int("backward_skips")];
        let completed = b.column_by_name("completed").unwrap().as_boolean();
        for i in 0..b.num_rows() {
            let customer = if with_customer { format!("{},", text(b, "customer_id").value(i)) } else { String::new() };
            let counts: Vec<String> = counts.iter().map(|c| c.value(i).to_string()).collect();
            rows.push(format!(
                "{customer}{},{},{},{},{},{}",
                text(b, "session_key").value(i),
                text(b, "title_id").value(i),
                time(start.value(i)),
                counts.join(","),
                completed.value(i),
                list_text(b, "quality_flags", i)
            ));
        }
    }
    rows.sort();
    rows
}

fn engagement_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    let number = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    for b in batches {
        let float = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Float64Type>().clone();
        let int = |n: &str| b.column_by_name(n).unwrap().as_primitive::<Int64Type>().clone();
        let floats = [
            "total_watch_seconds",
            "unique_watch_seconds",
            "max_position_seconds",
            "watch_percentage",
            "unique_watch_percentage",
            "completion_percentage",
        ]
        .map(float);
        let counts = ["session_count", "completion_count", "pause_count"].map(int);
        let score = float("engagement_score");
        for i in 0..b.num_rows() {
            let mut fields = vec![text(b, "customer_id").value(i).to_string(), text(b, "title_id").value(i).to_string()];
            fields.extend(floats.iter().map(|a| number(a.is_valid(i).then(|| a.value(i)))));
            fields.extend(counts.iter().map(|a| a.value(i).to_string()));
            fields.push(number(score.is_valid(i).then(|| score.value(i))));
            fields.push(text(b, "engagement_tier").value(i).to_string());
            fields.push(list_text(b, "quality_flags", i));
            rows.push(fields.join(","));
        }
    }
    rows.sort();
    rows
}

/// Silver events: viewer, id, session key, time, where the kept copy came
/// from (object name and line) and flags.
fn event_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        let ts = b.column_by_name("event_timestamp").unwrap().as_primitive::<TimestampMicrosecondType>();
        let line = b.column_by_name("line_number").unwrap().as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let object = text(b, "source_object").value(i).rsplit('/').next().unwrap_or_default().to_string();
            rows.push(format!(
                "{},{},{},{},{object}:{},{}",
                text(b, "customer_id").value(i),
                text(b, "event_id").value(i),
                text(b, "session_key").value(i),
                time(ts.value(i)),
                line.value(i),
                list_text(b, "quality_flags", i)
            ));
        }
    }
    rows.sort();
    rows
}

fn reject_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for b in batches {
        let line = b.column_by_name("line_number").unwrap().as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let object = text(b, "source_object").value(i).rsplit('/').next().unwrap_or_default().to_string();
            let line = if line.is_valid(i) { line.value(i).to_string() } else { String::new() };
            rows.push(format!("{object},{line},{}", text(b, "reason").value(i)));
        }
    }
    rows.sort();
    rows
}

#[tokio::test]
async fn every_golden_scenario_gives_its_expected_rows_in_any_order() {
    let mut failures = Vec::new();
    let all = scenarios();
    assert!(all.len() >= 25, "scenarios found: {}", all.len());
    for dir in &all {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for order in [Order::Whole, Order::Forwards, Order::Backwards] {
            let lake = run_scenario(dir, order).await;
            let mut checks = Vec::new();
            for (file, spec, rows) in [
                ("segments.csv", &*silver::SEGMENTS, segment_rows as fn(&[RecordBatch], bool) -> Vec<String>),
                ("sessions.csv", &*silver::SESSIONS, session_rows),
            ] {
                let (header, want) = expected(dir, file);
                checks.push((file, want, rows(&read(&lake, spec).await, header.starts_with("customer_id,"))));
            }
            for (file, spec, rows) in [
                ("engagement.csv", &*gold::ENGAGEMENT, engagement_rows as fn(&[RecordBatch]) -> Vec<String>),
                ("events.csv", &*silver::EVENTS, event_rows),
                ("rejects.csv", &*bronze::REJECTS, reject_rows),
            ] {
                if dir.join(file).exists() {
                    checks.push((file, expected(dir, file).1, rows(&read(&lake, spec).await)));
                }
            }
            for (file, want, got) in checks {
                if got != want {
                    failures.push(format!("{name}/{file} ({order:?})\n  expected:\n    {}\n  got:\n    {}", want.join("\n    "), got.join("\n    ")));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
