"""Shared fixtures for the Airflow tests: the DAG folder and the binaries."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "airflow" / "dags"
BIN = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "streamreel-target")) / "release"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    for worker in ("bronze-ingest", "silver-enrich", "gold-aggregate", "lake-maintain", "simulate-events"):
        assert (BIN / worker).exists(), f"{BIN / worker} is missing: run cargo build --release first"
    return BIN


@pytest.fixture(scope="session")
def dbt_venv() -> Path:
    """The dbt venv infra/bin/test installs (STREAMREEL_DBT_VENV)."""
    venv = Path(os.environ.get("STREAMREEL_DBT_VENV", Path.home() / ".cache" / "streamreel" / "venvs" / "dbt"))
    assert (venv / "bin" / "dbt").exists(), f"{venv}/bin/dbt is missing: run infra/bin/test, which installs it"
    return venv

