"""StreamReel's hourly pipeline: bronze -> silver -> gold for one landing hour.

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
- streamreel_image, streamreel_namespace: for the Kubernetes runner.
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


def kubernetes_task(worker: str):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    secret = os.environ.get("STREAMREEL_K8S_SECRET", "streamreel-credentials")
    return KubernetesPodOperator(
        task_id=worker.replace("-", "_"),
        name=f"streamreel-{worker}",
        namespace="{{ var.value.get('streamreel_namespace', 'streamreel') }}",
        image="{{ var.value.get('streamreel_image', 'ghcr.io/streamreel/streamreel:latest') }}",
        cmds=[worker],
        arguments=[
            "--config", "{{ var.value.get('streamreel_config', '/etc/streamreel/config.yaml') }}",
            "--from", "{{ data_interval_start.strftime('%Y-%m-%dT%H') }}",
            "--to", "{{ data_interval_end.strftime('%Y-%m-%dT%H') }}",
            "--run-id", "{{ dag.dag_id }}/{{ run_id }}",
        ],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": os.environ.get("STREAMREEL_K8S_CPU", "2"), "memory": os.environ.get("STREAMREEL_K8S_MEMORY", "4Gi")},
            limits={"memory": os.environ.get("STREAMREEL_K8S_MEMORY_LIMIT", "8Gi")},
        ),
        get_logs=True,
        do_xcom_push=False,
        on_finish_action="delete_succeeded_pod",
    )


with DAG(
    dag_id=DAG_ID,
    description="Landing JSON -> bronze -> silver -> gold, one landing hour per run",
    # "@hourly" gives an empty data interval in Airflow 3: this gives [09:00, 10:00).
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2025, 8, 11),
    catchup=False,  # backfills: `airflow backfill create --dag-id streamreel_hourly ...`
    max_active_runs=1,  # silver runs must not overlap (see README)
    default_args=default_args,
    tags=["streamreel"],
) as dag:
    make = kubernetes_task if RUNNER == "kubernetes" else local_task
    bronze, silver, gold = (make(worker) for worker in WORKERS)
    bronze >> silver >> gold
