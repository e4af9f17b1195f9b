"""The DAG parses without import errors and has the shape the pipeline needs."""

import importlib
import os
import pendulum

import pytest
from airflow.dag_processing.dagbag import DagBag

from conftest import DAGS

DAG_ID = "streamreel_hourly"
TASKS = ["bronze_ingest", "silver_enrich", "gold_aggregate", "dbt_build"]


def load(runner: str):
    os.environ["STREAMREEL_RUNNER"] = runner
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        os.environ.pop("STREAMREEL_RUNNER")
    assert bag.import_errors == {}
    assert DAG_ID in bag.dags, f"dags found: {list(bag.dags)}"
    return bag.dags[DAG_ID]


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_chain_retries_and_hourly_intervals(runner):
    dag = load(runner)
    assert [t.task_id for t in dag.topological_sort()] == TASKS
    for upstream, downstream in zip(TASKS, TASKS[1:]):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    for task in dag.tasks:
        assert task.retries >= 2
        assert task.execution_timeout is not None
    assert dag.max_active_runs == 1
    # The DAG holds the SDK's definition; the scheduler's own timetable
    # computes the intervals from the same cron expression.
    from airflow.timetables.interval import CronDataIntervalTimetable

    assert dag.timetable.expression == "0 * * * *"
    scheduler_timetable = CronDataIntervalTimetable(dag.timetable.expression, dag.timetable.timezone)
    interval = scheduler_timetable.infer_manual_data_interval(run_after=pendulum.datetime(2025, 8, 11, 10, tz="UTC"))
    assert (interval.start.hour, interval.end.hour) == (9, 10)
    assert (interval.end - interval.start).total_seconds() == 3600


def test_local_tasks_run_the_binaries_over_the_data_interval():
    dag = load("local")
    command = dag.get_task("silver_enrich").bash_command
    assert "silver-enrich --config" in command
    assert "data_interval_start" in command and "data_interval_end" in command
    assert "now" not in command


def test_kubernetes_tasks_run_the_image_with_the_window():
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    dag = load("kubernetes")
    task = dag.get_task("gold_aggregate")
    assert isinstance(task, KubernetesPodOperator)
    assert task.cmds == ["gold-aggregate"]
    assert "{{ data_interval_start.strftime('%Y-%m-%dT%H') }}" in task.arguments
    assert "streamreel_image" in task.image
    assert task.env_from, "credentials come from a secret"


def test_local_dbt_task_builds_and_checks_freshness_on_the_gold_task_lake():
    dag = load("local")
    task = dag.get_task("dbt_build")
    assert "build --profiles-dir ." in task.bash_command
    assert "source freshness" in task.bash_command
    assert "xcom_pull(task_ids='gold_aggregate')" in task.env["STREAMREEL_LAKE_URL"]
    assert task.append_env, "AWS_* and PATH reach dbt"


def test_kubernetes_dbt_task_runs_dbt_in_the_image():
    dag = load("kubernetes")
    task = dag.get_task("dbt_build")
    assert task.cmds == ["bash", "-c"]
    assert "dbt build" in task.arguments[0] and "source freshness" in task.arguments[0]
    assert task.env_from, "STREAMREEL_LAKE_URL and credentials come from a secret"

