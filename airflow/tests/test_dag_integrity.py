"""The DAG parses without import errors and has the shape the pipeline needs:
each stage mapped over the shards, finalize after every gold shard, dbt last,
retries and timeouts everywhere, hourly data intervals, for both runners."""

import os

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag

from conftest import DAGS

DAG_ID = "streamreel_hourly"
TASKS = ["shards", "bronze_ingest", "silver_enrich", "gold_aggregate", "gold_finalize", "dbt_build"]
MAPPED = ["bronze_ingest", "silver_enrich", "gold_aggregate"]


def load(runner: str):
    os.environ["STREAMREEL_RUNNER"] = runner
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        os.environ.pop("STREAMREEL_RUNNER")
    assert bag.import_errors == {}
    assert DAG_ID in bag.dags, f"dags found: {list(bag.dags)}"
    return bag.dags[DAG_ID]


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
