//! Reruns, crashes and operator mistakes, with the real worker binaries:
//! a kill before or after any commit of any stage, followed by a rerun,
//! leaves the tables of one clean run (gold and the change log included),
//! readable throughout and with no debris; mistakes in the config, the
//! metadata or the landing area fail with one line and change nothing; a
//! full disk fails with one line and no panic; a successful run logs no
//! ERROR, even when it met a concurrent commit.

use std::process::{Command, Output};

use streamreel_lake::table::commit::KILL_AT_ENV;
use streamreel_lake::{Table, Window};
use streamreel_scenarios::process::{command, run, stderr, succeeded, write_config};
use streamreel_scenarios::{SimulationSpec, bronze_tables, compared_tables, land, snapshot};
use streamreel_tables::silver::CHANGES;
use streamreel_testkit::{TestLake, table_rows};

fn spec() -> SimulationSpec {
    SimulationSpec {
        events: 1_500,
        seed: 9,
        hours: 3,
        late_ratio: 0.1,
        duplicate_ratio: 0.05,
        bad_line_ratio: 0.01,
        faults: simulate_events::Faults::hostile(),
        ..Default::default()
    }
}

/// The one error line a failed run prints, checked for being one line with
/// no panic.
fn failed_with_one_line(worker: &str, output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{worker} should fail:\n{}", stderr(output));
    let text = stderr(output);
    assert!(!text.contains("panicked") && !text.contains("RUST_BACKTRACE"), "{worker} panicked:\n{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{worker} should fail with one error line:\n{text}");
    errors[0].to_string()
}

/// Every compared table, bronze, and the change log's distinct rows.
async fn everything(lake: &TestLake) -> Vec<(&'static str, Vec<String>)> {
    let mut tables = [snapshot(lake, &compared_tables()).await, snapshot(lake, &bronze_tables()).await].concat();
    let mut changes = table_rows(&lake.config, &CHANGES, &[]).await;
    changes.dedup();
    tables.push((CHANGES.path, changes));
    tables
}

const WORKERS: [&str; 3] = ["bronze-ingest", "silver-enrich", "gold-aggregate"];

/// The commits each worker makes, in order: where it can be killed.
fn commits(worker: &str) -> Vec<&'static str> {
    use streamreel_tables::{bronze, gold, silver};
    match worker {
        "bronze-ingest" => vec![bronze::REJECTS.path, bronze::EVENTS.path],
        "silver-enrich" => vec![silver::CHANGES.path, silver::DUPLICATES.path, silver::SEGMENTS.path, silver::SESSIONS.path, silver::EVENTS.path],
        _ => vec![
            gold::ENGAGEMENT.path,
            gold::RETENTION_PARTS.path,
            gold::VIEWER_DAILY.path,
            gold::VIDEO_DAILY_PARTS.path,
            gold::QOS_HOURLY_PARTS.path,
            gold::CONCURRENCY_PARTS.path,
            gold::VIDEO_DAILY.path,
            gold::QOS_HOURLY.path,
            gold::CONCURRENCY.path,
            gold::RETENTION.path,
        ],
    }
}

/// Every table of the lake that exists opens, through our reader and
/// through the Delta kernel (what dbt and other readers use).
async fn all_readable(lake: &TestLake, when: &str) {
    for spec in streamreel_tables::all_tables() {
        let dir = lake.lake().join(spec.path).local_path().unwrap();
        if !dir.exists() {
            continue;
        }
        Table::open(&lake.lake(), spec, lake.config.buckets).await.unwrap_or_else(|e| panic!("{when}: {} unreadable: {e}", spec.path));
        deltalake::open_table(lake.lake().join(spec.path).url().clone())
            .await
            .unwrap_or_else(|e| panic!("{when}: {} unreadable by the kernel: {e}", spec.path));
    }
}

/// No staged or temporary commit files left in any table's log.
fn no_debris(lake: &TestLake, when: &str) {
    for spec in streamreel_tables::all_tables() {
        let log = lake.lake().join(spec.path).local_path().unwrap().join("_delta_log");
        for entry in std::fs::read_dir(&log).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".json#") && !name.ends_with(".tmp"), "{when}: debris {name} in {}", log.display());
        }
    }
}

#[tokio::test]
async fn kills_at_every_commit_then_a_rerun_equal_one_clean_run() {
    let clean = TestLake::local();
    let report = land(&clean, &spec()).await;
    let window = Window::range(&report.landing_from, &report.landing_to).unwrap();
    let config = write_config(&clean);
    for worker in WORKERS {
        succeeded(worker, &run(worker, &config, window, &[], &[]));
    }
    let expected = everything(&clean).await;
    assert!(expected.iter().all(|(_, rows)| !rows.is_empty()));

    let mut kills = 0;
    for (stage, worker) in WORKERS.iter().enumerate() {
        for table in commits(worker) {
            for when in ["before", "after"] {
                let lake = TestLake::local();
                land(&lake, &spec()).await;
                let config = write_config(&lake);
                for earlier in &WORKERS[..stage] {
                    succeeded(earlier, &run(earlier, &config, window, &[], &[]));
                }
                let point = format!("{when}:{table}");
                let killed = run(worker, &config, window, &[], &[(KILL_AT_ENV, &point)]);
                assert!(!killed.status.success(), "{worker} was not killed at {point}:\n{}", stderr(&killed));
                kills += 1;
                all_readable(&lake, &format!("after a kill of {worker} {point}")).await;
                // Debris is old enough to be collected by the time a rerun opens the tables.
                std::thread::sleep(std::time::Duration::from_millis(1100));
                for rest in &WORKERS[stage..] {
                    succeeded(rest, &run(rest, &config, window, &[], &[]));
                }
                no_debris(&lake, &format!("after the rerun of {worker} {point}"));
                streamreel_scenarios::assert_same(&everything(&lake).await, &expected, &format!("killed {worker} {point}, then reran"));
            }
        }
    }
    eprintln!("{kills} kills at commit boundaries, each followed by a rerun equal to the clean run");

    // A silver rerun of an hour (an Airflow clear) after gold ran, then gold
    // for that hour: nothing goes stale.
    let hour = Window::hour(&report.landing_from).unwrap();
    let hour = Window::new(hour.start + chrono::Duration::hours(1), hour.end + chrono::Duration::hours(1)).unwrap();
    succeeded("silver-enrich", &run("silver-enrich", &config, hour, &[], &[]));
    succeeded("gold-aggregate", &run("gold-aggregate", &config, hour, &[], &[]));
    streamreel_scenarios::assert_same(&everything(&clean).await, &expected, "a silver rerun of one hour, then gold");
}

#[tokio::test]
async fn operator_mistakes_fail_with_one_line_and_change_nothing() {
    let lake = TestLake::local();
    let report = land(&lake, &spec()).await;
    let window = Window::range(&report.landing_from, &report.landing_to).unwrap();
    let config = write_config(&lake);
    for worker in WORKERS {
        succeeded(worker, &run(worker, &config, window, &[], &[]));
    }
    let before = everything(&lake).await;

    // A mistyped or empty lake URL is refused before anything is written.
    for lake_url in ["s3:/bucket/lake", "\"\""] {
        let bad = lake.dir.path().join("bad.yaml");
        std::fs::write(&bad, format!("landing_url: {}\nlake_url: {lake_url}\nmetadata_url: {}\n", lake.config.landing_url, lake.config.metadata_url))
            .unwrap();
        for worker in WORKERS {
            let line = failed_with_one_line(worker, &run(worker, &bad, window, &[], &[]));
            assert!(line.contains("lake_url") && line.contains("invalid storage URL"), "{line}");
        }
        let strays: Vec<_> = std::fs::read_dir(lake.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "landing" && n != "lake" && n != "config.yaml" && n != "bad.yaml")
            .collect();
        assert!(strays.is_empty(), "{lake_url}: something was written: {strays:?}");
    }

    // A title listed twice in the metadata names both lines.
    let metadata = lake.dir.path().join("metadata.csv");
    let mut csv = std::fs::read_to_string(&lake.config.metadata_url).unwrap();
    // The first title again, now 1 s long.
    let mut fields: Vec<String> = csv.lines().nth(1).unwrap().split(',').map(str::to_string).collect();
    fields[4] = "1".into();
    csv.push_str(&format!("{}\n", fields.join(",")));
    std::fs::write(&metadata, csv).unwrap();
    let with_duplicate = lake.dir.path().join("duplicate-title.yaml");
    std::fs::write(
        &with_duplicate,
        format!("landing_url: {}\nlake_url: {}\nmetadata_url: {}\n", lake.config.landing_url, lake.config.lake_url, metadata.display()),
    )
    .unwrap();
    for worker in ["silver-enrich", "gold-aggregate"] {
        let line = failed_with_one_line(worker, &run(worker, &with_duplicate, window, &[], &[]));
        assert!(line.contains("appears twice") && line.contains("line 2") && line.contains("line "), "{line}");
    }

    // A landing hour that vanished never erases bronze.
    std::fs::rename(std::path::Path::new(&lake.config.landing_url).join("year=2025/month=08/day=11/hour=01"), lake.dir.path().join("moved")).unwrap();
    let line = failed_with_one_line("bronze-ingest", &run("bronze-ingest", &config, window, &[], &[]));
    assert!(line.contains("gone") && line.contains("--allow-missing-objects"), "{line}");
    let mut wrong_landing = lake.config.clone();
    wrong_landing.landing_url = lake.dir.path().join("no-such-landing").to_string_lossy().into_owned();
    let wrong = lake.dir.path().join("wrong-landing.yaml");
    std::fs::write(
        &wrong,
        format!("landing_url: {}\nlake_url: {}\nmetadata_url: {}\n", wrong_landing.landing_url, lake.config.lake_url, lake.config.metadata_url),
    )
    .unwrap();
    let line = failed_with_one_line("bronze-ingest", &run("bronze-ingest", &wrong, window, &[], &[]));
    assert!(line.contains("does not exist"), "{line}");

    streamreel_scenarios::assert_same(&everything(&lake).await, &before, "after the mistakes");
}

#[tokio::test]
async fn a_full_disk_fails_with_one_line_and_no_panic() {
    let lake = TestLake::local();
    let report = land(&lake, &SimulationSpec { events: 20_000, ..spec() }).await;
    let window = Window::range(&report.landing_from, &report.landing_to).unwrap();
    let small = lake.dir.path().join("small-disk");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=600k", "tmpfs"]).arg(&small).status().is_ok_and(|s| s.success());
    let lake_dir = if mounted {
        small.join("lake")
    } else {
        // Not allowed to mount here: a lake whose tables cannot be created
        // fails its writes the same way.
        std::fs::write(small.join("lake"), "a file where the lake should be").unwrap();
        small.join("lake").join("inside")
    };
    let config = lake.dir.path().join("full.yaml");
    std::fs::write(
        &config,
        format!("landing_url: {}\nlake_url: {}\nmetadata_url: {}\n", lake.config.landing_url, lake_dir.display(), lake.config.metadata_url),
    )
    .unwrap();
    let output = run("bronze-ingest", &config, window, &[], &[]);
    if mounted {
        let _ = Command::new("umount").arg(&small).status();
    }
    let line = failed_with_one_line("bronze-ingest", &output);
    assert!(line.contains("table ") && (line.contains("bronze/") || line.contains("lake")), "{line}");
    if mounted {
        assert!(line.contains("cannot write") && line.contains("No space left on device"), "{line}");
    }
}

#[tokio::test]
async fn a_run_that_met_a_concurrent_commit_logs_no_error_and_json_logs_carry_the_numbers() {
    let lake = TestLake::local();
    let report = land(&lake, &spec()).await;
    let window = Window::range(&report.landing_from, &report.landing_to).unwrap();
    let config = write_config(&lake);
    succeeded("bronze-ingest", &run("bronze-ingest", &config, window, &[], &[]));
    // Two silver runs of the same window at once: one plans again.
    let spawn = || {
        let mut command = command("silver-enrich", &config, window, &["--log-format", "json"], &[]);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outputs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    for output in &outputs {
        succeeded("silver-enrich", output);
        let mut summary = None;
        for line in stderr(output).lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            if event.get("worker").is_some() {
                summary = Some(event);
            }
        }
        let summary = summary.expect("the summary event");
        assert!(summary["bronze_rows"].as_u64().is_some_and(|n| n > 0), "{summary}");
        assert!(summary["events_written"].is_u64() && summary["plans"].is_u64(), "{summary}");
    }
    let replanned = outputs.iter().filter(|o| stderr(o).contains("planning again")).count();
    let plans: Vec<u64> = outputs
        .iter()
        .map(|o| {
            serde_json::from_str::<serde_json::Value>(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap()["plans"].as_u64().unwrap()
        })
        .collect();
    eprintln!("two concurrent silver runs: plans {plans:?}, {replanned} logged a new plan");
}
