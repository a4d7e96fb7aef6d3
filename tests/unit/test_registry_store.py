"""A new workspace's MLflow store made ahead of the register stage: a real sqlite store, made
whole or not at all, and never over one that exists."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from mlflow import MlflowClient

from reference.config import get_settings
from reference.registry import prepare_store


def test_a_new_store_is_made_with_the_experiment_and_no_draft_left(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = get_settings(tmp_path / "ws")
    assert prepare_store(settings)
    experiment = MlflowClient(settings.tracking_uri).get_experiment_by_name(settings.experiment)
    assert experiment is not None
    assert (
        experiment.artifact_location == settings.artifact_root
    )  # the workspace's, as register makes it
    assert [p.name for p in settings.mlflow_dir.iterdir()] == ["mlflow.db"]  # the draft is gone


def test_an_existing_store_is_left_as_it_is(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = get_settings(tmp_path / "ws")
    settings.mlflow_dir.mkdir(parents=True)
    db = settings.mlflow_dir / "mlflow.db"
    with sqlite3.connect(db) as con:  # another process is making its own: not touched
        con.execute("create table mine (x int)")
    assert not prepare_store(settings)
    with sqlite3.connect(db) as con:
        tables = [row[0] for row in con.execute("select name from sqlite_master")]
    assert tables == ["mine"]
    assert [p.name for p in settings.mlflow_dir.iterdir()] == ["mlflow.db"]


def test_a_remote_tracking_server_is_not_touched(tmp_path):
    settings = replace(get_settings(tmp_path / "ws"), tracking_uri="http://127.0.0.1:9")
    assert not prepare_store(settings)  # nothing listens on port 9: it would fail if it tried
    assert not settings.mlflow_dir.exists()
