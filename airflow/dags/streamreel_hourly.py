"""StreamReel's hourly pipeline: bronze -> silver -> gold for one landing hour,
then `dbt build` of the reporting layer on the gold tables.

Every task runs a worker over the run's data interval
([data_interval_start, data_interval_end), never "now"), so a retry, a
clear-and-rerun or a backfill of any past hour is safe: each worker replaces
its own output for that window.

Two ways to run the workers, chosen by the STREAMREEL_RUNNER environment
variable when the DAG is parsed:
- "local" (default): a BashOperator runs the binaries on the worker host;
- "kubernetes": a KubernetesPodOperator runs them in the StreamReel image.

Settings (Airflow Variables, read at run time through templates, with
defaults from the environment):
- streamreel_config: the YAML config file (env STREAMREEL_CONFIG);
- streamreel_bin_dir: where the binaries are (env STREAMREEL_BIN_DIR);
- streamreel_image, streamreel_namespace: for the Kubernetes runner;
- streamreel_dbt_project_dir: the dbt project (env STREAMREEL_DBT_PROJECT_DIR);
- streamreel_duckdb_path: the DuckDB file dbt writes (env STREAMREEL_DUCKDB_PATH).
The dbt task reads the gold tables where the gold task wrote them (its run
report, through XCom) and runs the dbt found at STREAMREEL_DBT (default
`dbt` on PATH); STREAMREEL_DBT_TARGET picks the dbt target (duckdb,
databricks). On Kubernetes it runs `dbt` in the image, with
STREAMREEL_LAKE_URL from the credentials secret.
STREAMREEL_TASK_RETRIES (default 3) sets the retries of every task.
Credentials (AWS_*, STREAMREEL_IP_HASH_KEY) come from the worker's
environment or, on Kubernetes, from the secret named by
STREAMREEL_K8S_SECRET; never from this file.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable

DAG_ID = "streamreel_hourly"
WORKERS = ("bronze-ingest", "silver-enrich", "gold-aggregate")
RUNNER = os.environ.get("STREAMREEL_RUNNER", "local")

# Rendered by Airflow when the task runs, not when the DAG is parsed.
WINDOW = (
    "--from {{ data_interval_start.strftime('%Y-%m-%dT%H') }} "
    "--to {{ data_interval_end.strftime('%Y-%m-%dT%H') }} "
    "--run-id '{{ dag.dag_id }}/{{ run_id }}'"
)
CONFIG = "{{ var.value.get('streamreel_config', '%s') }}" % os.environ.get(
    "STREAMREEL_CONFIG", "/opt/streamreel/config.yaml"
)
BIN_DIR = "{{ var.value.get('streamreel_bin_dir', '%s') }}" % os.environ.get(
    "STREAMREEL_BIN_DIR", "/opt/streamreel/bin"
)
DBT_PROJECT_DIR = "{{ var.value.get('streamreel_dbt_project_dir', '%s') }}" % os.environ.get(
    "STREAMREEL_DBT_PROJECT_DIR", "/opt/streamreel/dbt"
)
DUCKDB_PATH = "{{ var.value.get('streamreel_duckdb_path', '%s') }}" % os.environ.get(
    "STREAMREEL_DUCKDB_PATH", "/opt/streamreel/reporting/streamreel.duckdb"
)
DBT = os.environ.get("STREAMREEL_DBT", "dbt")
# Seeds, models, data and unit tests; then the gold sources' freshness.
DBT_COMMANDS = "{dbt} build --profiles-dir . && {dbt} source freshness --profiles-dir ."

default_args = {
    "owner": "streamreel",
    "retries": int(os.environ.get("STREAMREEL_TASK_RETRIES", "3")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=30),
}


def local_task(worker: str):
    from airflow.providers.standard.operators.bash import BashOperator

    # The worker logs its one-line summary (or error) on stderr, which lands
    # in the task log; its JSON run report is the last stdout line: XCom.
    return BashOperator(
        task_id=worker.replace("-", "_"),
        bash_command=f"{BIN_DIR}/{worker} --config {CONFIG} {WINDOW}",
        do_xcom_push=True,
    )


def local_dbt_task():
    from airflow.providers.standard.operators.bash import BashOperator

    return BashOperator(
        task_id="dbt_build",
        bash_command=f'mkdir -p "$(dirname "$STREAMREEL_DUCKDB_PATH")" && cd {DBT_PROJECT_DIR} && ' + DBT_COMMANDS.format(dbt=DBT),
        env={
            "STREAMREEL_LAKE_URL": "{{ macros.json.loads(ti.xcom_pull(task_ids='gold_aggregate'))['lake_url'] }}",
            "STREAMREEL_DUCKDB_PATH": DUCKDB_PATH,
            "STREAMREEL_DBT_TARGET": os.environ.get("STREAMREEL_DBT_TARGET", "duckdb"),
            # dbt's own files stay out of the (possibly read-only) project.
            "DBT_TARGET_PATH": "/tmp/streamreel-dbt/target",
            "DBT_LOG_PATH": "/tmp/streamreel-dbt/logs",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        },
        append_env=True,
        do_xcom_push=False,
    )


def kubernetes_pod(task_id: str, name: str, cmds: list[str], arguments: list[str]):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    secret = os.environ.get("STREAMREEL_K8S_SECRET", "streamreel-credentials")
    return KubernetesPodOperator(
        task_id=task_id,
        name=name,
        namespace="{{ var.value.get('streamreel_namespace', 'streamreel') }}",
        image="{{ var.value.get('streamreel_image', 'ghcr.io/streamreel/streamreel:latest') }}",
        cmds=cmds,
        arguments=arguments,
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": os.environ.get("STREAMREEL_K8S_CPU", "2"), "memory": os.environ.get("STREAMREEL_K8S_MEMORY", "4Gi")},
            limits={"memory": os.environ.get("STREAMREEL_K8S_MEMORY_LIMIT", "8Gi")},
        ),
        get_logs=True,
        do_xcom_push=False,
        on_finish_action="delete_succeeded_pod",
    )


def kubernetes_task(worker: str):
    return kubernetes_pod(
        task_id=worker.replace("-", "_"),
        name=f"streamreel-{worker}",
        cmds=[worker],
        arguments=[
            "--config", "{{ var.value.get('streamreel_config', '/etc/streamreel/config.yaml') }}",
            "--from", "{{ data_interval_start.strftime('%Y-%m-%dT%H') }}",
            "--to", "{{ data_interval_end.strftime('%Y-%m-%dT%H') }}",
            "--run-id", "{{ dag.dag_id }}/{{ run_id }}",
        ],
    )


def kubernetes_dbt_task():
    return kubernetes_pod(
        task_id="dbt_build",
        name="streamreel-dbt",
        cmds=["bash", "-c"],
        arguments=["cd /opt/streamreel/dbt && " + DBT_COMMANDS.format(dbt="dbt")],
    )


with DAG(
    dag_id=DAG_ID,
    description="Landing JSON -> bronze -> silver -> gold -> dbt, one landing hour per run",
    # "@hourly" gives an empty data interval in Airflow 3: this gives [09:00, 10:00).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2025, 8, 11),
    catchup=False,  # backfills: `airflow backfill create --dag-id streamreel_hourly ...`
    max_active_runs=1,  # silver runs must not overlap (see README)
    default_args=default_args,
    tags=["streamreel"],
) as dag:
    kubernetes = RUNNER == "kubernetes"
    make = kubernetes_task if kubernetes else local_task
    bronze, silver, gold = (make(worker) for worker in WORKERS)
    reporting = kubernetes_dbt_task() if kubernetes else local_dbt_task()
    bronze >> silver >> gold >> reporting
