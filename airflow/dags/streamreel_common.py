"""What StreamReel's DAGs share: where the binaries and the config are, the
retry policy, and the Kubernetes pod every worker runs in. Not a DAG file
(.airflowignore): the DAG files import it, and Airflow puts this folder on
the import path."""

from __future__ import annotations

import os
from datetime import timedelta


def kubernetes() -> bool:
    """How the workers run, chosen when a DAG file is parsed: "local"
    (BashOperator on the worker host, the default) or "kubernetes" (a
    KubernetesPodOperator per task), from STREAMREEL_RUNNER."""
    return os.environ.get("STREAMREEL_RUNNER", "local") == "kubernetes"

# Rendered by Airflow when a task runs, not when the DAG is parsed.
RUN_ID = "{{ dag.dag_id }}/{{ run_id }}"
CONFIG = "{{ var.value.get('streamreel_config', '%s') }}" % os.environ.get("STREAMREEL_CONFIG", "/opt/streamreel/config.yaml")
BIN_DIR = "{{ var.value.get('streamreel_bin_dir', '%s') }}" % os.environ.get("STREAMREEL_BIN_DIR", "/opt/streamreel/bin")
KUBERNETES_CONFIG = "{{ var.value.get('streamreel_config', '/etc/streamreel/config.yaml') }}"


def default_args(execution_timeout: timedelta) -> dict:
    return {
        "owner": "streamreel",
        "retries": int(os.environ.get("STREAMREEL_TASK_RETRIES", "3")),
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
        "execution_timeout": execution_timeout,
    }


def task_id(worker: str) -> str:
    return worker.replace("-", "_")


def kubernetes_pod_arguments(**overrides):
    """The KubernetesPodOperator and its arguments: the StreamReel image,
    credentials from a secret, requests and limits from settings."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    secret = os.environ.get("STREAMREEL_K8S_SECRET", "streamreel-credentials")
    arguments = dict(
        namespace="{{ var.value.get('streamreel_namespace', 'streamreel') }}",
        image="{{ var.value.get('streamreel_image', 'ghcr.io/streamreel/streamreel:latest') }}",
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret))],
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": os.environ.get("STREAMREEL_K8S_CPU", "2"), "memory": os.environ.get("STREAMREEL_K8S_MEMORY", "3Gi")},
            limits={"memory": os.environ.get("STREAMREEL_K8S_MEMORY_LIMIT", "4Gi")},
        ),
        get_logs=True,
        do_xcom_push=False,
        on_finish_action="delete_succeeded_pod",
    )
    arguments.update(overrides)
    return KubernetesPodOperator, arguments
