"""StreamReel's daily lake maintenance: `lake-maintain` compacts every
table's small files, deletes files no version within the retention can
read, removes expired log entries and expires the silver change log past its
retention (the `maintenance` section of the config).

It is safe next to the hourly runs (a compaction that meets a worker's commit
yields), so it has its own DAG and schedule. It works on the lake as it is
when it runs, not on a data interval: its retentions count back from the
moment it runs, so a retry or a rerun only finds less to do.

Runners and settings are those of the hourly DAG (streamreel_hourly.py):
STREAMREEL_RUNNER, the Variables streamreel_config and streamreel_bin_dir,
and on Kubernetes the image, namespace, secret and resources.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable
from streamreel_common import BIN_DIR, CONFIG, KUBERNETES_CONFIG, RUN_ID, default_args, kubernetes, kubernetes_pod_arguments

DAG_ID = "streamreel_maintenance"


def local_task():
    from airflow.providers.standard.operators.bash import BashOperator

    # The JSON run report (before/after bytes and files per table) is the
    # last stdout line: XCom.
    return BashOperator(task_id="lake_maintain", bash_command=f"{BIN_DIR}/lake-maintain --config {CONFIG} --run-id '{RUN_ID}'", append_env=True, do_xcom_push=True)


def kubernetes_task():
    operator, arguments = kubernetes_pod_arguments(
        task_id="lake_maintain", name="streamreel-lake-maintain", cmds=["lake-maintain"], arguments=["--config", KUBERNETES_CONFIG, "--run-id", RUN_ID]
    )
    return operator(**arguments)


with DAG(
    dag_id=DAG_ID,
    description="Compaction, vacuum, log cleanup and change-log expiry of every StreamReel table, daily",
    # 03:30 UTC, away from the top of the hour when the hourly chain starts.
    schedule=CronDataIntervalTimetable("30 3 * * *", timezone="UTC"),
    start_date=datetime(2025, 8, 11),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(execution_timeout=timedelta(hours=3)),
    tags=["streamreel"],
) as dag:
    kubernetes_task() if kubernetes() else local_task()
