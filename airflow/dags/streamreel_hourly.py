"""StreamReel's hourly pipeline: bronze -> silver -> gold for one landing hour,
each stage mapped over N shards, then gold's finalize and `dbt build` of the
reporting layer on the gold tables.

Every task runs a worker over the run's data interval
([data_interval_start, data_interval_end), never "now"), so a retry, a
clear-and-rerun or a backfill of any past hour is safe: each worker replaces
its own output for that window, and a run that meets a concurrent one plans
again (README, "Reruns and concurrent runs").

Shards: the Airflow Variable `streamreel_shards` (default: the environment
variable STREAMREEL_SHARDS, else 1) is read when a run starts, by the
`shards` task; every stage is mapped over its list (dynamic task mapping),
shard `I/N` reaching the worker through STREAMREEL_SHARD. Gold starts once
every silver shard has finished; `gold_finalize` adds the title-level tables
up once every gold shard has.

Two ways to run the workers, chosen by the STREAMREEL_RUNNER environment
variable when the DAG is parsed:
- "local" (default): a BashOperator runs the binaries on the worker host;
- "kubernetes": a KubernetesPodOperator per shard runs them in the StreamReel
  image, with requests and limits from STREAMREEL_K8S_CPU,
  STREAMREEL_K8S_MEMORY and STREAMREEL_K8S_MEMORY_LIMIT.

Settings (Airflow Variables, read at run time through templates, with
defaults from the environment): streamreel_config (STREAMREEL_CONFIG),
streamreel_bin_dir (STREAMREEL_BIN_DIR), streamreel_image,
streamreel_namespace, streamreel_dbt_project_dir
(STREAMREEL_DBT_PROJECT_DIR), streamreel_duckdb_path
(STREAMREEL_DUCKDB_PATH). The dbt task reads the gold tables where
finalize wrote them (its run report, through XCom) and runs the dbt found at
STREAMREEL_DBT (default `dbt` on PATH); STREAMREEL_DBT_TARGET picks the dbt
target. With STREAMREEL_PUBLISH_REPORT=1 it also writes the HTML report
beside the DuckDB file. STREAMREEL_TASK_RETRIES (default 3) sets the
retries of every task. Credentials (AWS_*, STREAMREEL_IP_HASH_KEY) come from
the worker's environment or, on Kubernetes, from the secret named by
STREAMREEL_K8S_SECRET; never from this file.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, task
from streamreel_common import BIN_DIR, CONFIG, KUBERNETES_CONFIG, RUN_ID, default_args, kubernetes, kubernetes_pod_arguments, task_id

DAG_ID = "streamreel_hourly"
STAGES = ("bronze-ingest", "silver-enrich", "gold-aggregate")

# Rendered by Airflow when the task runs, not when the DAG is parsed.
FROM = "{{ data_interval_start.strftime('%Y-%m-%dT%H') }}"
TO = "{{ data_interval_end.strftime('%Y-%m-%dT%H') }}"
DBT_PROJECT_DIR = "{{ var.value.get('streamreel_dbt_project_dir', '%s') }}" % os.environ.get(
    "STREAMREEL_DBT_PROJECT_DIR", "/opt/streamreel/dbt"
)
DUCKDB_PATH = "{{ var.value.get('streamreel_duckdb_path', '%s') }}" % os.environ.get(
    "STREAMREEL_DUCKDB_PATH", "/opt/streamreel/reporting/streamreel.duckdb"
)
DBT = os.environ.get("STREAMREEL_DBT", "dbt")
# Seeds, models, data and unit tests; then the gold sources' freshness.
DBT_COMMANDS = "{dbt} build --profiles-dir . && {dbt} source freshness --profiles-dir ."
LAKE_FROM_FINALIZE = "{{ macros.json.loads(ti.xcom_pull(task_ids='gold_finalize'))['lake_url'] }}"


@task(task_id="shards")
def shard_list() -> list[dict[str, str]]:
    """One environment per shard, from the Variable streamreel_shards."""
    from airflow.sdk import Variable

    count = int(Variable.get("streamreel_shards", default=os.environ.get("STREAMREEL_SHARDS", "1")))
    if count < 1:
        raise ValueError(f"streamreel_shards must be at least 1, not {count}")
    return [{"STREAMREEL_SHARD": f"{index}/{count}"} for index in range(count)]


def local_command(worker: str, extra: str = "") -> str:
    # The worker logs its one-line summary (or error) on stderr, which lands
    # in the task log; its JSON run report is the last stdout line: XCom.
    return f"{BIN_DIR}/{worker} --config {CONFIG} --from {FROM} --to {TO} --run-id '{RUN_ID}' {extra}".strip()


def local_stage(worker: str, shards):
    from airflow.providers.standard.operators.bash import BashOperator

    return BashOperator.partial(task_id=task_id(worker), bash_command=local_command(worker), append_env=True, do_xcom_push=True).expand(env=shards)


def local_finalize():
    from airflow.providers.standard.operators.bash import BashOperator

    return BashOperator(task_id="gold_finalize", bash_command=local_command("gold-aggregate", "--finalize"), do_xcom_push=True)


def local_dbt_task():
    from airflow.providers.standard.operators.bash import BashOperator

    report = ""
    if os.environ.get("STREAMREEL_PUBLISH_REPORT") == "1":
        report = ' && "$STREAMREEL_REPORT" "$STREAMREEL_DUCKDB_PATH" "$(dirname "$STREAMREEL_DUCKDB_PATH")/report.html"'
    return BashOperator(
        task_id="dbt_build",
        bash_command=f'mkdir -p "$(dirname "$STREAMREEL_DUCKDB_PATH")" && cd {DBT_PROJECT_DIR} && ' + DBT_COMMANDS.format(dbt=DBT) + report,
        env={
            "STREAMREEL_LAKE_URL": LAKE_FROM_FINALIZE,
            "STREAMREEL_DUCKDB_PATH": DUCKDB_PATH,
            "STREAMREEL_DBT_TARGET": os.environ.get("STREAMREEL_DBT_TARGET", "duckdb"),
            "STREAMREEL_REPORT": os.environ.get("STREAMREEL_REPORT", "report"),
            # dbt's own files stay out of the (possibly read-only) project.
            "DBT_TARGET_PATH": "/tmp/streamreel-dbt/target",
            "DBT_LOG_PATH": "/tmp/streamreel-dbt/logs",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        },
        append_env=True,
        do_xcom_push=False,
    )


def worker_arguments(extra: list[str]) -> list[str]:
    return ["--config", KUBERNETES_CONFIG, "--from", FROM, "--to", TO, "--run-id", RUN_ID, *extra]


def kubernetes_stage(worker: str, shards):
    operator, arguments = kubernetes_pod_arguments(task_id=task_id(worker), name=f"streamreel-{worker}", cmds=[worker], arguments=worker_arguments([]))
    # One pod per shard: STREAMREEL_SHARD reaches the worker as --shard.
    return operator.partial(**arguments).expand(env_vars=shards)


def kubernetes_finalize():
    operator, arguments = kubernetes_pod_arguments(
        task_id="gold_finalize", name="streamreel-gold-finalize", cmds=["gold-aggregate"], arguments=worker_arguments(["--finalize"])
    )
    return operator(**arguments)


def kubernetes_dbt_task():
    operator, arguments = kubernetes_pod_arguments(
        task_id="dbt_build", name="streamreel-dbt", cmds=["bash", "-c"], arguments=["cd /opt/streamreel/dbt && " + DBT_COMMANDS.format(dbt="dbt")]
    )
    return operator(**arguments)


with DAG(
    dag_id=DAG_ID,
    description="Landing JSON -> bronze -> silver -> gold (sharded) -> dbt, one landing hour per run",
    # "@hourly" gives an empty data interval in Airflow 3: this gives [09:00, 10:00).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2025, 8, 11),
    catchup=False,  # backfills: `airflow backfill create --dag-id streamreel_hourly ...`
    # A throughput choice: overlapping runs stay correct (they plan again on
    # conflicts), but hourly runs one at a time spend no work on that.
    max_active_runs=1,
    default_args=default_args(execution_timeout=timedelta(minutes=30)),
    tags=["streamreel"],
) as dag:
    on_kubernetes = kubernetes()
    shards = shard_list()
    stage = kubernetes_stage if on_kubernetes else local_stage
    bronze, silver, gold = (stage(worker, shards) for worker in STAGES)
    finalize = kubernetes_finalize() if on_kubernetes else local_finalize()
    reporting = kubernetes_dbt_task() if on_kubernetes else local_dbt_task()
    shards >> bronze >> silver >> gold >> finalize >> reporting
