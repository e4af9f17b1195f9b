//! Integration tests of `bronze-ingest` on a local lake and on the real S3
//! test server (the `#[ignore]`d ones, run by `infra/bin/test`).

use std::collections::BTreeMap;
use std::io::Write;

use bronze_ingest::schema::{EVENTS, REJECTS};
use bronze_ingest::{IngestReport, hour_folder};
use object_store::ObjectStoreExt;
use streamreel_lake::arrow::array::{Array, AsArray, RecordBatch};
use streamreel_lake::arrow::datatypes::Int64Type;
use streamreel_lake::delta::Table;
use streamreel_lake::storage::Location;
use streamreel_lake::testing::{TestLake, sample_metadata};
use streamreel_lake::{Config, Window};

const HOUR: &str = "2025-08-11T14";

fn good(id: &str, ts: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","customer_id":"c1","title_id":"TITLE_0001","session_id":"s1","event_type":"heartbeat","event_timestamp":"{ts}","position_seconds":30,"device_type":"tv","extra":"kept"}}"#
    )
}

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

async fn put(config: &Config, hour: &str, name: &str, bytes: Vec<u8>) {
    let landing = Location::parse(&config.landing_url).unwrap();
    let (store, root) = landing.object_store().unwrap();
    let hour = Window::hour(hour).unwrap().start;
    let path = object_store::path::Path::from(format!("{root}/{}/{name}", hour_folder(hour)).trim_start_matches('/'));
    store.put(&path, bytes.into()).await.unwrap();
}

/// (source_object, line_number) of every row, sorted: the table's identity.
async fn lineage(config: &Config, spec: &streamreel_lake::delta::TableSpec) -> Vec<(String, Option<i64>, String)> {
    let lake = Location::parse(&config.lake_url).unwrap();
    let table = Table::open_or_create(&lake, spec).await.unwrap();
    let files = table.files().unwrap();
    let third = if spec.path == EVENTS.path { "event_id" } else { "reason" };
    let batches = table.read(&files, Some(&["source_object", "line_number", third])).await.unwrap();
    let mut rows = Vec::new();
    for batch in &batches {
        let (source, line, id) = (batch.column(0).as_string::<i32>(), batch.column(1).as_primitive::<Int64Type>(), batch.column(2).as_string::<i32>());
        for i in 0..batch.num_rows() {
            rows.push((source.value(i).to_string(), (!line.is_null(i)).then(|| line.value(i)), id.value(i).to_string()));
        }
    }
    rows.sort();
    rows
}

async fn ingest(config: &Config, window: Window) -> IngestReport {
    bronze_ingest::run(config, window, "test-run").await.expect("ingest succeeds")
}

#[tokio::test]
async fn every_bad_input_case_goes_to_rejects_and_the_rest_of_the_hour_is_ingested() {
    let lake = TestLake::local();
    let c = &lake.config;
    let ts = "2025-08-11T14:10:00Z";
    let bad_lines = [
        ("{broken", "invalid_json"),
        ("[1, 2, 3]", "not_an_object"),
        (r#"{"customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":1}"#, "missing_field"),
        (r#"{"event_id":7,"customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":1}"#, "wrong_type"),
        (r#"{"event_id":"x1","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"14h10","position_seconds":1}"#, "bad_timestamp"),
        (r#"{"event_id":"x2","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"1970-01-01T00:00:00Z","position_seconds":1}"#, "timestamp_out_of_range"),
        (r#"{"event_id":"x3","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-14T00:00:00Z","position_seconds":1}"#, "timestamp_out_of_range"),
        (r#"{"event_id":"x4","customer_id":"c1","title_id":"t","event_type":"SEEK","event_timestamp":"2025-08-11T14:00:00Z"}"#, "missing_position"),
        (r#"{"event_id":"x5","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":-4}"#, "negative_value"),
        (r#"{"event_id":"x6","customer_id":"c1","title_id":"t","event_type":"buffer","event_timestamp":"2025-08-11T14:00:00Z","buffering_events":-1}"#, "negative_value"),
    ];
    let long_line = format!(r#"{{"event_id":"long","pad":"{}"}}"#, "x".repeat(c.bronze.max_line_bytes));
    let mut text: String = bad_lines.iter().map(|(line, _)| format!("{line}\n")).collect();
    text.push_str(&format!("{long_line}\n{}\n\n{}\n", good("g1", ts), good("g2", ts)));
    put(c, HOUR, "mixed.json.gz", gzip(&text)).await;
    let truncated = gzip(&(0..500).map(|i| good(&format!("t{i}"), ts) + "\n").collect::<String>());
    put(c, HOUR, "truncated.json.gz", truncated[..truncated.len() / 2].to_vec()).await;
    put(c, HOUR, "not-gzip.json.gz", format!("{}\n", good("ng", ts)).into_bytes()).await;
    put(c, HOUR, "empty.json.gz", Vec::new()).await;
    put(c, HOUR, "plain.jsonl", format!("{}\n", good("p1", ts)).into_bytes()).await;
    put(c, HOUR, "_SUCCESS", Vec::new()).await;

    let report = ingest(c, Window::hour(HOUR).unwrap()).await;

    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, reason) in bad_lines {
        *expected.entry(reason).or_default() += 1;
    }
    expected.insert("line_too_long", 1);
    expected.insert("unreadable_object", 2);
    assert_eq!(report.rejects_by_reason, expected);
    assert_eq!(report.objects, 5, "_SUCCESS is not a landing object");
    let truncated_rows = report.rows_written - 3;
    assert!(truncated_rows > 0 && truncated_rows < 500, "lines before the damage are kept: {truncated_rows}");
    assert_eq!(report.blank_lines, 1);

    let events = lineage(c, &EVENTS).await;
    let rejects = lineage(c, &REJECTS).await;
    assert_eq!(events.len() as u64, report.rows_written);
    assert_eq!(rejects.len() as u64, report.rejected);
    assert!(events.iter().any(|(src, line, id)| src.ends_with("hour=14/mixed.json.gz") && *line == Some(12) && id == "g1"));
    assert!(events.iter().any(|(src, _, id)| src.ends_with("plain.jsonl") && id == "p1"));
    let unreadable: Vec<_> = rejects.iter().filter(|(_, _, reason)| reason == "unreadable_object").collect();
    assert!(unreadable.iter().any(|(src, line, _)| src.ends_with("not-gzip.json.gz") && line.is_none()));
    assert!(unreadable.iter().any(|(src, _, _)| src.ends_with("truncated.json.gz")));

    // A high reject share fails the run, after everything was written.
    assert!(bronze_ingest::check_reject_ratio(&report, 0.01).is_err());
    assert!(bronze_ingest::check_reject_ratio(&report, 0.99).is_ok());
}

#[tokio::test]
async fn raw_line_keeps_unknown_fields_and_types_are_kept() {
    let lake = TestLake::local();
    let c = &lake.config;
    put(c, HOUR, "a.json.gz", gzip(&format!("{}\n", good("g1", "2025-08-11T14:10:00.250+02:00")))).await;
    ingest(c, Window::hour(HOUR).unwrap()).await;
    let table = Table::open_or_create(&Location::parse(&c.lake_url).unwrap(), &EVENTS).await.unwrap();
    let batches: Vec<RecordBatch> = table.read(&table.files().unwrap(), None).await.unwrap();
    let batch = &batches[0];
    let raw = batch.column_by_name("raw_line").unwrap().as_string::<i32>().value(0).to_string();
    assert!(raw.contains("\"extra\":\"kept\""));
    let ts = batch.column_by_name("event_timestamp").unwrap().as_primitive::<streamreel_lake::arrow::datatypes::TimestampMicrosecondType>().value(0);
    assert_eq!(ts, chrono::DateTime::parse_from_rfc3339("2025-08-11T12:10:00.250Z").unwrap().timestamp_micros());
    let hour = batch.column_by_name("landing_hour").unwrap().as_primitive::<streamreel_lake::arrow::datatypes::Int32Type>().value(0);
    assert_eq!(hour, 14);
}

async fn simulated_day_roundtrip(lake: TestLake) {
    let c = &lake.config;
    let metadata = std::fs::read(sample_metadata()).unwrap();
    let titles = simulate_events::read_titles(&metadata, "sample").unwrap();
    let spec = simulate_events::SimulationSpec { events: 20_000, bad_line_ratio: 0.01, ..Default::default() };
    let sim = simulate_events::simulate(&spec, &titles, &Location::parse(&c.landing_url).unwrap()).await.unwrap();
    let window = Window::range(&sim.landing_from, &sim.landing_to).unwrap();

    let report = ingest(c, window).await;
    assert_eq!(report.lines, sim.lines, "every line written was read");
    assert_eq!(report.rows_written + report.rejected, sim.lines);
    assert_eq!(report.rejected, sim.bad_lines);
    assert_eq!(report.rows_written, sim.events + sim.duplicates);
    let before = (lineage(c, &EVENTS).await, lineage(c, &REJECTS).await);
    assert_eq!(before.0.len() as u64, report.rows_written);

    // Rerunning one hour, then the whole window, leaves the tables as they were.
    let busy_hour = Window::hour("2025-08-11T19").unwrap();
    let rerun = ingest(c, busy_hour).await;
    assert!(rerun.rows_written > 0);
    assert_eq!(before, (lineage(c, &EVENTS).await, lineage(c, &REJECTS).await));
    ingest(c, window).await;
    assert_eq!(before, (lineage(c, &EVENTS).await, lineage(c, &REJECTS).await));
}

async fn concurrent_hours(lake: TestLake) {
    let c = &lake.config;
    let ts = |h: &str| format!("2025-08-11T{h}:30:00Z");
    for (hour, h) in [("2025-08-11T14", "14"), ("2025-08-11T15", "15"), ("2025-08-11T16", "16")] {
        let body: String = (0..300).map(|i| good(&format!("{h}-{i}"), &ts(h)) + "\n").collect();
        put(c, hour, "a.json.gz", gzip(&body)).await;
        put(c, hour, "b.json.gz", gzip(&body.replace("\"event_id\":\"", "\"event_id\":\"b"))).await;
    }
    // Hour 14 exists first, so its rerun removes files while 15 and 16
    // commit their first versions at the same time.
    ingest(c, Window::hour("2025-08-11T14").unwrap()).await;
    let (a, b, d) = tokio::join!(
        bronze_ingest::run(c, Window::hour("2025-08-11T14").unwrap(), "rerun-14"),
        bronze_ingest::run(c, Window::hour("2025-08-11T15").unwrap(), "first-15"),
        bronze_ingest::run(c, Window::hour("2025-08-11T16").unwrap(), "first-16"),
    );
    for report in [a.unwrap(), b.unwrap(), d.unwrap()] {
        assert_eq!(report.rows_written, 600);
    }
    let rows = lineage(c, &EVENTS).await;
    assert_eq!(rows.len(), 1800, "no hour lost or doubled");
    for h in ["14", "15", "16"] {
        assert_eq!(rows.iter().filter(|(src, _, _)| src.contains(&format!("hour={h}/"))).count(), 600);
    }
}

#[tokio::test]
async fn simulated_day_local() {
    simulated_day_roundtrip(TestLake::local()).await;
}

#[tokio::test]
async fn concurrent_hours_local() {
    concurrent_hours(TestLake::local()).await;
}

#[tokio::test]
#[ignore = "needs the S3 test server: run through infra/bin/test"]
async fn simulated_day_s3() {
    simulated_day_roundtrip(TestLake::s3()).await;
}

#[tokio::test]
#[ignore = "needs the S3 test server: run through infra/bin/test"]
async fn concurrent_hours_s3() {
    concurrent_hours(TestLake::s3()).await;
}
