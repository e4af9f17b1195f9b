//! Integration tests of `bronze-ingest` on a local lake and on the real S3
//! test server (the `#[ignore]`d ones, run by `infra/bin/test`).

use std::collections::BTreeMap;

use bronze_ingest::{BronzeError, IngestReport, Options};
use streamreel_lake::arrow::array::{Array, AsArray};
use streamreel_lake::arrow::datatypes::Int64Type;
use streamreel_lake::{Shard, Table, TableSpec, Window};
use streamreel_tables::bronze::{EVENTS, REJECTS};
use streamreel_testkit::{TestLake, gzip, sample_metadata};

const HOUR: &str = "2025-08-11T14";

fn good(id: &str, ts: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","customer_id":"c1","title_id":"TITLE_0001","session_id":"s1","event_type":"heartbeat","event_timestamp":"{ts}","position_seconds":30,"device_type":"tv","extra":"kept"}}"#
    )
}

/// (source_object, line_number, event_id or reason) of every row, sorted.
async fn lineage(lake: &TestLake, spec: &'static TableSpec) -> Vec<(String, Option<i64>, String)> {
    let table = Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap();
    let third = if spec.path == EVENTS.path { "event_id" } else { "reason" };
    let batches = table.scan(table.files().to_vec()).columns(&["source_object", "line_number", third]).read().await.unwrap();
    let mut rows = Vec::new();
    for batch in &batches {
        let (source, line, id) =
            (batch.column(0).as_string::<i32>(), batch.column(1).as_primitive::<Int64Type>(), batch.column(2).as_string::<i32>());
        for i in 0..batch.num_rows() {
            rows.push((source.value(i).to_string(), (!line.is_null(i)).then(|| line.value(i)), id.value(i).to_string()));
        }
    }
    rows.sort();
    rows
}

async fn ingest(lake: &TestLake, window: Window) -> IngestReport {
    bronze_ingest::run(&lake.context("bronze-ingest", window), Options::default()).await.expect("ingest succeeds")
}

#[tokio::test]
async fn every_bad_input_case_goes_to_rejects_and_the_rest_of_the_hour_is_ingested() {
    let lake = TestLake::local();
    let ts = "2025-08-11T14:10:00Z";
    let bad_lines = [
        ("{broken", "invalid_json"),
        ("[1, 2, 3]", "not_an_object"),
        (
            r#"{"customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":1}"#,
            "missing_field",
        ),
        (
            r#"{"event_id":7,"customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":1}"#,
            "wrong_type",
        ),
        (
            r#"{"event_id":"x1","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-8-11T14:00:00","position_seconds":1}"#,
            "bad_timestamp",
        ),
        (
            r#"{"event_id":"x2","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"1970-01-01T00:00:00Z","position_seconds":1}"#,
            "timestamp_out_of_range",
        ),
        (
            r#"{"event_id":"x3","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-14T00:00:00Z","position_seconds":1}"#,
            "timestamp_out_of_range",
        ),
        (r#"{"event_id":"x4","customer_id":"c1","title_id":"t","event_type":"SEEK","event_timestamp":"2025-08-11T14:00:00Z"}"#, "missing_position"),
        (
            r#"{"event_id":"x5","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":-4}"#,
            "negative_value",
        ),
    ];
    let long_line = format!(r#"{{"event_id":"long","pad":"{}"}}"#, "x".repeat(lake.config.bronze.max_line_bytes));
    let mut text: String = bad_lines.iter().map(|(line, _)| format!("{line}\n")).collect();
    text.push_str(&format!("{long_line}\n{}\n\n{}\n", good("g1", ts), good("g2", ts)));
    let mut bytes = gzip(&text);
    bytes.extend(gzip(&format!("{}\n", good("member2", ts))));
    lake.put(HOUR, "mixed.json.gz", bytes).await;
    let mut invalid_utf8 = format!("{}\n", good("u1", ts)).into_bytes();
    invalid_utf8.extend_from_slice(b"{\"event_id\":\"\xff\xfe\"}\n");
    lake.put(HOUR, "part-0003", invalid_utf8).await;
    lake.put(HOUR, "events.txt", format!("\u{feff}{}\r\n", good("bom", ts))).await;
    let truncated = gzip(&(0..500).map(|i| good(&format!("t{i}"), ts) + "\n").collect::<String>());
    lake.put(HOUR, "truncated.json.gz", truncated[..truncated.len() / 2].to_vec()).await;
    lake.put(HOUR, "empty.json.gz", Vec::new()).await;
    let bad_optional = r#"{"event_id":"opt","customer_id":"c1","title_id":"t","event_type":"pause","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":3,"bandwidth_mbps":"N/A","completion_percentage":"n/a","watch_duration_seconds":-5}"#;
    lake.put(HOUR, "optional.jsonl", format!("{bad_optional}\n")).await;
    for hidden in ["_SUCCESS", ".staging.json", "upload.json.gz.tmp", "_temporary/0/part-1"] {
        lake.put(HOUR, hidden, format!("{}\n", good("hidden", ts))).await;
    }

    let report = ingest(&lake, Window::hour(HOUR).unwrap()).await;

    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, reason) in bad_lines {
        *expected.entry(reason).or_default() += 1;
    }
    expected.insert("line_too_long", 1);
    expected.insert("invalid_utf8", 1);
    expected.insert("unreadable_object", 1);
    assert_eq!(report.rejects_by_reason, expected);
    assert_eq!(report.objects, 6, "every object is read by its content, whatever its name");
    assert_eq!(report.skipped_objects.len(), 4, "{:?}", report.skipped_objects);
    assert!(report.skipped_objects.iter().any(|s| s.ends_with("hour=14/_SUCCESS")));
    let truncated_rows = report.rows_written - 6;
    assert!(truncated_rows > 0 && truncated_rows < 500, "lines before the damage are kept: {truncated_rows}");
    assert_eq!(report.blank_lines, 1);
    assert_eq!(report.invalid_optional_fields, BTreeMap::from([("bandwidth_mbps", 1), ("completion_percentage", 1), ("watch_duration_seconds", 1)]));

    let events = lineage(&lake, &EVENTS).await;
    let rejects = lineage(&lake, &REJECTS).await;
    assert_eq!(events.len() as u64, report.rows_written);
    assert_eq!(rejects.len() as u64, report.rejected);
    assert!(events.iter().any(|(src, line, id)| src.ends_with("hour=14/mixed.json.gz") && *line == Some(11) && id == "g1"));
    assert!(events.iter().any(|(src, line, id)| src.ends_with("mixed.json.gz") && *line == Some(14) && id == "member2"), "second gzip member");
    assert!(events.iter().any(|(src, line, id)| src.ends_with("events.txt") && *line == Some(1) && id == "bom"));
    assert!(events.iter().any(|(src, _, id)| src.ends_with("part-0003") && id == "u1"));
    assert!(events.iter().any(|(_, _, id)| id == "opt"), "a bad optional field never costs the event");
    assert!(!events.iter().any(|(_, _, id)| id == "hidden"));
    assert!(rejects.iter().any(|(src, line, reason)| src.ends_with("truncated.json.gz") && line.is_none() && reason == "unreadable_object"));
    assert!(rejects.iter().any(|(src, line, reason)| src.ends_with("part-0003") && *line == Some(2) && reason == "invalid_utf8"));

    // A high reject share fails the run's exit code, after everything was written.
    use streamreel_lake::report::RunReport;
    let mut strict = report.clone();
    strict.max_reject_ratio = 0.01;
    assert!(strict.verdict().is_err());
    assert!(report.verdict().is_ok());
}

#[tokio::test]
async fn raw_line_keeps_unknown_fields_and_files_are_private() {
    let lake = TestLake::local();
    lake.put(HOUR, "a.json.gz", gzip(&format!("{}\n", good("g1", "2025-08-11T14:10:00.250+02:00")))).await;
    ingest(&lake, Window::hour(HOUR).unwrap()).await;
    let table = Table::open(&lake.lake(), &EVENTS, lake.config.buckets).await.unwrap();
    let batches = table.scan(table.files().to_vec()).read().await.unwrap();
    let batch = &batches[0];
    let raw = batch.column_by_name("raw_line").unwrap().as_string::<i32>().value(0).to_string();
    assert!(raw.contains("\"extra\":\"kept\""));
    let ts = batch.column_by_name("event_timestamp").unwrap().as_primitive::<streamreel_lake::arrow::datatypes::TimestampMicrosecondType>().value(0);
    assert_eq!(ts, chrono::DateTime::parse_from_rfc3339("2025-08-11T12:10:00.250Z").unwrap().timestamp_micros());
    let hour = batch.column_by_name("landing_hour").unwrap().as_primitive::<streamreel_lake::arrow::datatypes::Int32Type>().value(0);
    assert_eq!(hour, 14);
    use std::os::unix::fs::PermissionsExt;
    let dir = lake.lake().join(EVENTS.path).local_path().unwrap();
    let file = dir.join(&table.files()[0].path);
    assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o640, "bronze holds clear IP addresses");
}

#[tokio::test]
async fn vanished_landing_objects_never_erase_bronze() {
    let lake = TestLake::local();
    let ts = "2025-08-11T14:10:00Z";
    for (hour, name) in [(HOUR, "a.json.gz"), (HOUR, "b.json.gz"), ("2025-08-11T15", "c.json.gz")] {
        lake.put(hour, name, gzip(&format!("{}\n", good(name, ts)))).await;
    }
    let window = Window::range(HOUR, "2025-08-11T16").unwrap();
    ingest(&lake, window).await;
    let before = (lineage(&lake, &EVENTS).await, lineage(&lake, &REJECTS).await);
    assert_eq!(before.0.len(), 3);

    // An hour folder that moved away, then one object of an hour.
    let landing = lake.dir.path().join("landing/year=2025/month=08/day=11");
    std::fs::rename(landing.join("hour=15"), lake.dir.path().join("moved")).unwrap();
    let err = bronze_ingest::run(&lake.context("bronze-ingest", window), Options::default()).await.unwrap_err();
    assert!(matches!(err, BronzeError::VanishedObjects { count: 1, .. }), "{err}");
    assert!(err.to_string().contains("hour=15/c.json.gz"), "{err}");
    std::fs::remove_file(landing.join("hour=14/b.json.gz")).unwrap();
    let err = bronze_ingest::run(&lake.context("bronze-ingest", window), Options::default()).await.unwrap_err();
    assert!(matches!(err, BronzeError::VanishedObjects { count: 2, .. }), "{err}");
    assert_eq!(before, (lineage(&lake, &EVENTS).await, lineage(&lake, &REJECTS).await), "nothing changed");

    // A landing root that is not there at all is a storage failure.
    let mut wrong = TestLake::local();
    wrong.config.landing_url = lake.dir.path().join("no-such-landing").to_string_lossy().into_owned();
    wrong.config.lake_url = lake.config.lake_url.clone();
    let err = bronze_ingest::run(&wrong.context("bronze-ingest", window), Options::default()).await.unwrap_err();
    assert!(matches!(err, BronzeError::LandingRoot(_)), "{err}");
    assert_eq!(before.0, lineage(&lake, &EVENTS).await);

    // The explicit flag drops the vanished objects' rows.
    let options = Options { allow_missing_objects: true };
    bronze_ingest::run(&lake.context("bronze-ingest", window), options).await.unwrap();
    let after = lineage(&lake, &EVENTS).await;
    assert_eq!(after.len(), 1);
    assert!(after[0].0.ends_with("hour=14/a.json.gz"));
}

async fn simulated_day_roundtrip(lake: TestLake) {
    let titles = simulate_events::read_titles(&std::fs::read(sample_metadata()).unwrap(), "sample").unwrap();
    let spec = simulate_events::SimulationSpec { events: 20_000, bad_line_ratio: 0.01, ..Default::default() };
    let sim = simulate_events::simulate(&spec, &titles, &streamreel_lake::Location::parse(&lake.config.landing_url).unwrap()).await.unwrap();
    let window = Window::range(&sim.landing_from, &sim.landing_to).unwrap();

    let report = ingest(&lake, window).await;
    assert_eq!(report.lines, sim.lines, "every line written was read");
    assert_eq!(report.rows_written + report.rejected, sim.lines);
    assert_eq!(report.rejected, sim.bad_lines);
    assert_eq!(report.rows_written, sim.events + sim.duplicates);
    let before = (lineage(&lake, &EVENTS).await, lineage(&lake, &REJECTS).await);
    assert_eq!(before.0.len() as u64, report.rows_written);

    // Rerunning one hour, then the whole window, leaves the tables as they were.
    let busy_hour = Window::hour("2025-08-11T19").unwrap();
    let rerun = ingest(&lake, busy_hour).await;
    assert!(rerun.rows_written > 0);
    assert_eq!(before, (lineage(&lake, &EVENTS).await, lineage(&lake, &REJECTS).await));
    ingest(&lake, window).await;
    assert_eq!(before, (lineage(&lake, &EVENTS).await, lineage(&lake, &REJECTS).await));

    // Four shards of the window replace it with the same rows.
    let contexts: Vec<_> = (0..4).map(|i| lake.shard_context("bronze-ingest", window, Shard { index: i, count: 4 })).collect();
    let reports = futures::future::join_all(contexts.iter().map(|ctx| bronze_ingest::run(ctx, Options::default()))).await;
    let objects: u64 = reports.into_iter().map(|r| r.unwrap().objects).sum();
    assert_eq!(objects, report.objects, "the shards split the objects");
    assert_eq!(before, (lineage(&lake, &EVENTS).await, lineage(&lake, &REJECTS).await));
}

async fn concurrent_hours(lake: TestLake) {
    let ts = |h: &str| format!("2025-08-11T{h}:30:00Z");
    for (hour, h) in [("2025-08-11T14", "14"), ("2025-08-11T15", "15"), ("2025-08-11T16", "16")] {
        let body: String = (0..300).map(|i| good(&format!("{h}-{i}"), &ts(h)) + "\n").collect();
        lake.put(hour, "a.json.gz", gzip(&body)).await;
        lake.put(hour, "b.json.gz", gzip(&body.replace("\"event_id\":\"", "\"event_id\":\"b"))).await;
    }
    // Hour 14 exists first, so its rerun removes files while 15 and 16
    // commit their first versions at the same time.
    ingest(&lake, Window::hour("2025-08-11T14").unwrap()).await;
    let contexts: Vec<_> =
        ["2025-08-11T14", "2025-08-11T15", "2025-08-11T16"].iter().map(|h| lake.context("bronze-ingest", Window::hour(h).unwrap())).collect();
    let reports = futures::future::join_all(contexts.iter().map(|ctx| bronze_ingest::run(ctx, Options::default()))).await;
    for report in reports {
        assert_eq!(report.unwrap().rows_written, 600);
    }
    let rows = lineage(&lake, &EVENTS).await;
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
