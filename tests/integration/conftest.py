"""Integration fixtures: a fresh workspace whose settings ignore the caller's MLflow environment."""

from __future__ import annotations

import pytest

from reference.config import get_settings


@pytest.fixture(scope="module")
def fresh_settings(tmp_path_factory):
    """Settings of a new workspace per test module, with MLFLOW_TRACKING_URI and the model name
    taken from the defaults, not from whatever the shell running the tests has exported."""
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLOPS_LAB_MODEL_NAME", raising=False)
    yield get_settings(tmp_path_factory.mktemp("ws"))
    mp.undo()
