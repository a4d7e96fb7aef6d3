"""The whole Level 1 pipeline in a temporary workspace: real DVC, real MLflow, real torch, real data.

One workspace for the module, used in order: first run (champion through the floors), an
unchanged re-run (nothing retrains), a broken batch (stops at validate, registers nothing), then a
second run on more data (a challenger the gate judges against the champion).

The first run is the session's champion checkpoint: one real `run_pipeline` in a fresh workspace
(January-June), built once per test session for the labs and the other tests, and copied here
with the record of what that run returned (reference/labkit/checkpoint.py). Running the same
pipeline a second time from scratch would prove nothing more, and costs a minute or more.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from reference import ingest, registry
from reference.config import load_params
from reference.features import FEATURES
from reference.labkit.checkpoint import RUN_RECORD
from reference.model import load_bundle
from reference.pipeline import PipelineResult, run_pipeline
from reference.transform import FeatureTransform

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(champion_settings):
    return champion_settings


@pytest.fixture(scope="module")
def first(settings):
    """What the first pipeline run of this workspace returned."""
    record = json.loads((settings.workspace / RUN_RECORD).read_text())
    assert record.pop("overrides") == ["split.train_end=6"]
    record["recovered"] = tuple(record["recovered"])
    return PipelineResult(**record)


def _versions(settings):
    return MlflowClient(tracking_uri=settings.tracking_uri).search_model_versions(
        f"name='{settings.model_name}'"
    )


def test_first_run_registers_a_champion_that_passed_the_gate(settings, first):
    assert first.ok, first
    assert first.gate["decision"] == "promote"
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    assert champion is not None and str(champion.version) == first.gate["candidate_version"]
    assert champion.tags["gate.decision"] == "promote"
    # the recorded metrics pass the floors the gate applies
    run = MlflowClient(tracking_uri=settings.tracking_uri).get_run(champion.run_id)
    m = run.data.metrics
    gate = load_params(settings.project / "params.yaml").gate
    best_baseline = max(m["baseline.logistic_regression.auc"], m["baseline.base_rate.auc"])
    assert m["holdout.auc"] >= best_baseline + gate.min_auc_margin_over_baseline
    assert m["holdout.ece"] <= gate.max_calibration_error
    assert m["latency_ms_p95"] <= gate.max_latency_ms
    # the decision is an artifact of the run, with every rule
    decision = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/gate/decision.json")
    assert {r["name"] for r in decision["rules"]} >= {
        "auc_over_baseline",
        "calibration_error",
        "latency_ms_p95",
    }
    # data and models are versioned: a git commit in the project, objects in the DVC remote,
    # and the registry says which commit and which data hash made the model
    assert first.commit and any((settings.dvc_remote / "files").rglob("*"))
    assert run.data.tags["data.commit"] == first.commit
    lock = (settings.project / "dvc.lock").read_text()
    assert run.data.tags["data.batches_md5"] in lock


def test_rerun_with_nothing_changed_retrains_nothing(settings, first):
    train_metrics = settings.project / "metrics/train.json"
    stamp = train_metrics.stat().st_mtime_ns
    before = len(_versions(settings))
    again = run_pipeline(settings)
    assert again.ok and again.gate is None
    assert train_metrics.stat().st_mtime_ns == stamp
    assert len(_versions(settings)) == before
    assert again.commit == first.commit


@pytest.mark.fault
@pytest.mark.parametrize(("fault", "column"), [("celsius", "temp"), ("null_carrier", "carrier")])
def test_broken_batch_stops_at_validate_and_registers_nothing(settings, first, fault, column):
    champion = str(registry.version_by_alias(settings, registry.CHAMPION).version)
    before = len(_versions(settings))
    broken = run_pipeline(settings, [f"ingest.inject_fault={fault}", "ingest.fault_month=7"])
    assert not broken.ok and broken.failed_stage == "validate"
    report = json.loads((settings.project / "reports/validation.json").read_text())
    fails = [c for c in report["checks"] if c["severity"] == "fail"]
    assert fails and all(c["batch"] == "2013-07" for c in fails)
    assert any(column in c["column"] for c in fails)
    assert len(_versions(settings)) == before
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == champion
    # back to clean data: the downstream stages are already up to date for it
    restored = run_pipeline(settings, ["ingest.inject_fault=none"])
    assert restored.ok and len(_versions(settings)) == before


def test_served_transform_is_the_training_transform(settings, first, tmp_path):
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    bundle_dir = registry.download_bundle(settings, champion.version, tmp_path)
    trained = FeatureTransform.load(settings.project / "models/transform.json")
    assert FeatureTransform.load(bundle_dir / "transform.json") == trained
    rows = ingest.read_months([11], settings.project / "data/batches").sample(200, random_state=0)
    served = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion").predict(
        rows[list(FEATURES)]
    )
    local = load_bundle(settings.project / "models/candidate").predict_proba(rows)
    np.testing.assert_allclose(served["probability"].to_numpy(), local, rtol=0, atol=1e-6)
    assert set(served["label"].unique()) <= {0, 1}
    assert isinstance(served, pd.DataFrame)


def test_second_run_is_a_challenger_judged_on_the_same_holdout(settings, first):
    champion_before = str(registry.version_by_alias(settings, registry.CHAMPION).version)
    second = run_pipeline(settings, ["split.train_end=8"])
    assert second.ok and second.gate is not None
    gate = second.gate
    assert gate["champion_version"] == champion_before
    assert gate["candidate_version"] != champion_before
    assert (
        str(registry.version_by_alias(settings, registry.CHALLENGER).version)
        == gate["candidate_version"]
    )
    names = {r["name"]: r for r in gate["rules"]}
    assert names["auc_vs_champion"]["verdict"] in {"pass", "fail"}  # judged, not n/a
    assert (
        gate["champion_metrics"]["n"]
        == json.loads((settings.project / "metrics/evaluate.json").read_text())["candidate"]["n"]
    )
    expected = gate["candidate_version"] if gate["promote"] else champion_before
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == expected
    mv = MlflowClient(tracking_uri=settings.tracking_uri).get_model_version(
        settings.model_name, gate["candidate_version"]
    )
    assert mv.tags["gate.decision"] == gate["decision"]
