"""The DAGs parse without import errors and have the shape the pipeline
needs, for both runners: the hourly one maps each stage over the shards,
finalizes after every gold shard and runs dbt last, on hourly data
intervals; the daily one runs lake-maintain; retries and timeouts
everywhere."""

import os

import pendulum
import pytest
from airflow.dag_processing.dagbag import BundleDagBag

from conftest import DAGS

DAG_ID = "streamreel_hourly"
TASKS = ["shards", "bronze_ingest", "silver_enrich", "gold_aggregate", "gold_finalize", "dbt_build"]
MAPPED = ["bronze_ingest", "silver_enrich", "gold_aggregate"]


def load(runner: str, dag_id: str = DAG_ID):
    os.environ["STREAMREEL_RUNNER"] = runner
    try:
        # As the DAG processor parses a bundle: its folder is on the import
        # path, so the DAG files import their shared module.
        bag = BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS)
    finally:
        os.environ.pop("STREAMREEL_RUNNER")
    assert bag.import_errors == {}
    assert sorted(bag.dags) == ["streamreel_hourly", "streamreel_maintenance"], "the shared module is not a DAG file"
    return bag.dags[dag_id]


def retries(task) -> int:
    return task.partial_kwargs["retries"] if getattr(task, "is_mapped", False) else task.retries


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_sharded_chain_retries_and_hourly_intervals(runner):
    dag = load(runner)
    assert [t.task_id for t in dag.topological_sort()] == TASKS
    for upstream, downstream in zip(TASKS, TASKS[1:]):
        # Mapped stages also read the shard list.
        assert dag.get_task(downstream).upstream_task_ids in ({upstream}, {upstream, "shards"}), downstream
    for task_id in MAPPED:
        task = dag.get_task(task_id)
        assert task.is_mapped, f"{task_id} is mapped over the shards"
        (argument,) = task.expand_input.value.keys()
        assert argument in ("env", "env_vars"), "the shard reaches the worker through STREAMREEL_SHARD"
    assert not dag.get_task("gold_finalize").is_mapped
    for task in dag.tasks:
        if task.task_id != "shards":
            assert retries(task) >= 2, task.task_id
    assert dag.max_active_runs == 1
    from airflow.timetables.interval import CronDataIntervalTimetable

    assert dag.timetable.expression == "0 * * * *"
    scheduler_timetable = CronDataIntervalTimetable(dag.timetable.expression, dag.timetable.timezone)
    interval = scheduler_timetable.infer_manual_data_interval(run_after=pendulum.datetime(2025, 8, 11, 10, tz="UTC"))
    assert (interval.start.hour, interval.end.hour) == (9, 10)


def test_the_shard_list_comes_from_the_variable(monkeypatch):
    dag = load("local")
    monkeypatch.setenv("AIRFLOW_VAR_STREAMREEL_SHARDS", "3")
    shards = dag.get_task("shards").python_callable()
    assert shards == [{"STREAMREEL_SHARD": "0/3"}, {"STREAMREEL_SHARD": "1/3"}, {"STREAMREEL_SHARD": "2/3"}]
    monkeypatch.setenv("AIRFLOW_VAR_STREAMREEL_SHARDS", "0")
    with pytest.raises(ValueError):
        dag.get_task("shards").python_callable()


def test_local_tasks_run_the_binaries_over_the_data_interval():
    dag = load("local")
    command = dag.get_task("silver_enrich").partial_kwargs["bash_command"]
    assert "silver-enrich --config" in command
    assert "data_interval_start" in command and "data_interval_end" in command
    assert "now" not in command
    assert dag.get_task("silver_enrich").partial_kwargs["append_env"], "PATH and credentials reach the worker"
    finalize = dag.get_task("gold_finalize").bash_command
    assert "gold-aggregate" in finalize and "--finalize" in finalize and "--shard" not in finalize


def test_kubernetes_tasks_run_one_pod_per_shard_with_requests_and_limits(monkeypatch):
    monkeypatch.setenv("STREAMREEL_K8S_MEMORY_LIMIT", "5Gi")
    dag = load("kubernetes")
    task = dag.get_task("gold_aggregate")
    assert task.partial_kwargs["cmds"] == ["gold-aggregate"]
    assert "{{ data_interval_start.strftime('%Y-%m-%dT%H') }}" in task.partial_kwargs["arguments"]
    assert "streamreel_image" in task.partial_kwargs["image"]
    resources = task.partial_kwargs["container_resources"]
    assert resources.requests["cpu"] and resources.requests["memory"]
    assert resources.limits["memory"] == "5Gi"
    assert task.partial_kwargs["env_from"], "credentials come from a secret"
    finalize = dag.get_task("gold_finalize")
    assert finalize.cmds == ["gold-aggregate"] and "--finalize" in finalize.arguments


def test_local_dbt_task_builds_and_checks_freshness_on_the_lake_finalize_wrote():
    dag = load("local")
    task = dag.get_task("dbt_build")
    assert "build --profiles-dir ." in task.bash_command
    assert "source freshness" in task.bash_command
    assert "xcom_pull(task_ids='gold_finalize')" in task.env["STREAMREEL_LAKE_URL"]
    assert task.append_env, "AWS_* and PATH reach dbt"


def test_kubernetes_dbt_task_runs_dbt_in_the_image():
    dag = load("kubernetes")
    task = dag.get_task("dbt_build")
    assert task.cmds == ["bash", "-c"]
    assert "dbt build" in task.arguments[0] and "source freshness" in task.arguments[0]
    assert task.env_from, "STREAMREEL_LAKE_URL and credentials come from a secret"


@pytest.mark.parametrize("runner", ["local", "kubernetes"])
def test_maintenance_runs_daily_with_retries_on_both_runners(runner):
    dag = load(runner, "streamreel_maintenance")
    (task,) = dag.tasks
    assert task.task_id == "lake_maintain"
    assert task.retries >= 2 and task.execution_timeout
    assert dag.timetable.expression == "30 3 * * *"
    assert dag.max_active_runs == 1
    if runner == "local":
        assert "lake-maintain --config" in task.bash_command and task.append_env
    else:
        assert task.cmds == ["lake-maintain"] and "--config" in task.arguments
        assert task.env_from, "credentials come from a secret"
        assert task.container_resources.limits["memory"]
