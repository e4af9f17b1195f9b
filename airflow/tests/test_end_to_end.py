"""The real Airflow runs the DAG for two consecutive hours with three shards
per stage (dynamic task mapping: the mapped tasks really run, one per
shard); the gold tables equal a direct run of the workers by one process
over the same hours, and the dbt task builds the reporting marts from them.
A failing task fails the run with the worker's error line, and a rerun after
the fix gives the same tables as a clean run. The daily maintenance DAG then
compacts and vacuums that lake, and every table keeps its rows."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from deltalake import DeltaTable

from conftest import DAGS

GOLD = ["user_video_engagement", "video_daily", "video_retention", "qos_hourly", "concurrency_5min", "viewer_daily"]
HOURS = ["2025-08-11T15", "2025-08-11T16"]


def rows(lake: Path, table: str):
    data = DeltaTable(str(lake / "gold" / table)).to_pyarrow_table().drop(["_loaded_at"]).to_pylist()
    freeze = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
    return sorted(tuple(freeze(v) for v in row.values()) for row in data)


def write_config(path: Path, landing: Path, lake: Path, metadata: Path, extra: str = "") -> Path:
    path.write_text(f"landing_url: {landing}\nlake_url: {lake}\nmetadata_url: {metadata}\n{extra}")
    return path


def parquet_files(lake: Path) -> int:
    return sum(1 for path in lake.rglob("*.parquet") if "_delta_log" not in path.parts)


@pytest.fixture(scope="module")
def world(tmp_path_factory, repo, bin_dir, dbt_venv):
    base = tmp_path_factory.mktemp("airflow")
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    env["STREAMREEL_IP_HASH_KEY"] = "airflow-test-key"
    report = subprocess.run(
        [bin_dir / "simulate-events", "--landing", base / "landing", "--events", "20000", "--metadata", repo / "metadata/video_metadata.csv"],
        env=env, check=True, capture_output=True, text=True,
    )
    assert json.loads(report.stdout.splitlines()[-1])["lines"] > 0
    home = base / "home"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "STREAMREEL_BIN_DIR": str(bin_dir),
        "STREAMREEL_DBT": str(dbt_venv / "bin" / "dbt"),
        "STREAMREEL_DBT_PROJECT_DIR": str(repo / "dbt"),
        # A failing task fails the run at once instead of waiting out the
        # DAG's retry backoff (the integrity test checks the retries).
        "STREAMREEL_TASK_RETRIES": "0",
        # Every stage as three shards (the Variable streamreel_shards).
        "AIRFLOW_VAR_STREAMREEL_SHARDS": "3",
    })
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    return base, env, repo / "metadata/video_metadata.csv"


def task_logs(env) -> str:
    logs = Path(env["AIRFLOW_HOME"]) / "logs"
    return "\n".join(p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file())


def dags_test(env, config: Path, hour_end: str, dag_id: str = "streamreel_hourly"):
    """Runs the DAG for the interval that ends at `hour_end` (logical date);
    dbt writes the DuckDB file beside the config."""
    return subprocess.run(
        ["airflow", "dags", "test", dag_id, f"{hour_end}:00:00+00:00"],
        env={**env, "STREAMREEL_CONFIG": str(config), "STREAMREEL_DUCKDB_PATH": str(config.with_suffix(".duckdb"))},
        capture_output=True, text=True,
    )


def duckdb_query(dbt_venv: Path, database: Path, sql: str):
    """One row of `sql` over the DuckDB file dbt built (duckdb lives in the dbt venv)."""
    script = "import duckdb, json, sys; print(json.dumps(duckdb.connect(sys.argv[1], read_only=True).execute(sys.argv[2]).fetchone(), default=str))"
    out = subprocess.run([dbt_venv / "bin" / "python", "-c", script, database, sql], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def direct(bin_dir, env, config: Path, hour: str):
    for worker in ("bronze-ingest", "silver-enrich", "gold-aggregate"):
        subprocess.run([bin_dir / worker, "--config", config, "--hour", hour], env=env, check=True, capture_output=True)


def test_two_hours_under_airflow_equal_a_direct_run_and_feed_the_marts(world, bin_dir, dbt_venv):
    base, env, metadata = world
    airflow_config = write_config(base / "airflow.yaml", base / "landing", base / "lake-airflow", metadata)
    direct_config = write_config(base / "direct.yaml", base / "landing", base / "lake-direct", metadata)
    logs = ""
    for hour_end in ("2025-08-11T16", "2025-08-11T17"):
        result = dags_test(env, airflow_config, hour_end)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        logs += result.stdout + result.stderr + task_logs(env)
    for worker in ("bronze-ingest", "silver-enrich", "gold-aggregate"):
        assert f"{worker} 2025-08-11T15..2025-08-11T16" in logs, f"the {worker} summary line is in the task log"
        for shard in ("0/3", "1/3", "2/3"):
            ran = [line for line in logs.splitlines() if f"{worker} 2025-08-11T15..2025-08-11T16" in line and f"shard={shard}" in line]
            assert ran, f"the mapped task {worker} {shard} ran"
    assert "finalized=true" in logs, "gold_finalize ran"
    for hour in HOURS:
        direct(bin_dir, env, direct_config, hour)
    for table in GOLD:
        expected = rows(base / "lake-direct", table)
        assert expected, f"{table} is empty"
        assert rows(base / "lake-airflow", table) == expected, table

    # The dbt task read the gold tables the gold task wrote, after each hour.
    database = airflow_config.with_suffix(".duckdb")
    viewer_videos = len(rows(base / "lake-airflow", "user_video_engagement"))
    assert duckdb_query(dbt_venv, database, "select sum(viewers) from marts.mart_top_titles") == [viewer_videos]
    days = {row[0] for row in rows(base / "lake-airflow", "viewer_daily")}
    assert duckdb_query(dbt_venv, database, "select count(*) from marts.mart_daily_kpis") == [len(days)]


def test_a_failing_task_fails_the_run_and_a_rerun_after_the_fix_matches_a_clean_run(world, bin_dir):
    base, env, metadata = world
    blocker = base / "not-a-directory"
    blocker.write_text("the lake cannot live under a file")
    broken = write_config(base / "broken.yaml", base / "landing", blocker / "lake", metadata)
    result = dags_test(env, broken, "2025-08-11T16")
    assert result.returncode != 0
    assert "bronze-ingest failed:" in task_logs(env) + result.stdout + result.stderr

    fixed = write_config(base / "fixed.yaml", base / "landing", base / "lake-fixed", metadata)
    assert dags_test(env, fixed, "2025-08-11T16").returncode == 0
    clean = write_config(base / "clean.yaml", base / "landing", base / "lake-clean", metadata)
    direct(bin_dir, env, clean, HOURS[0])
    for table in GOLD:
        assert rows(base / "lake-fixed", table) == rows(base / "lake-clean", table), table


def test_the_maintenance_dag_compacts_and_vacuums_the_lake_keeping_every_row(world):
    base, env, metadata = world
    # No retention: every file the newest version does not read goes.
    config = write_config(
        base / "maintained.yaml", base / "landing", base / "lake-maintained", metadata,
        "maintenance:\n  retention_hours: 0\n  log_retention_hours: 0\n",
    )
    for hour_end in ("2025-08-11T16", "2025-08-11T17"):
        assert dags_test(env, config, hour_end).returncode == 0
    before = {table: rows(base / "lake-maintained", table) for table in GOLD}
    files_before = parquet_files(base / "lake-maintained")
    result = dags_test(env, config, "2025-08-12T03", "streamreel_maintenance")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "lake-maintain:" in task_logs(env) + result.stdout + result.stderr, "the summary line is in the task log"
    assert parquet_files(base / "lake-maintained") < files_before
    for table in GOLD:
        assert rows(base / "lake-maintained", table) == before[table], table
