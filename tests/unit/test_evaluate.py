"""Evaluation metrics, baselines and plots on a real slice."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from reference import evaluate
from reference.config import EvaluateParams
from reference.train import labelled
from reference.transform import FeatureTransform


def test_score_metrics_agree_with_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    p = np.clip(rng.random(2000) * 0.6 + y * 0.3, 0, 1)
    m = evaluate.score_metrics(y, p, EvaluateParams(threshold=0.5))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-5)
    assert m["log_loss"] == pytest.approx(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), abs=1e-5)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-5)
    label = p >= 0.5
    assert m["precision"] == pytest.approx((y[label] == 1).mean(), abs=1e-5)
    assert m["recall"] == pytest.approx(label[y == 1].mean(), abs=1e-5)


def test_calibration_error_tells_calibrated_from_not():
    rng = np.random.default_rng(2)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(int)  # outcomes drawn from the scores: calibrated
    assert evaluate.expected_calibration_error(y, p) < 0.01
    assert evaluate.expected_calibration_error(y, p**3) > 0.1  # the same ranking, miscalibrated


def test_baselines_and_slices_on_real_data(flights):
    params = EvaluateParams()
    train = labelled(flights[flights["month"].isin([1, 2])])
    holdout = labelled(flights[flights["month"] == 3])
    transform = FeatureTransform.fit(train)
    base = evaluate.baselines(train, holdout, transform, params)
    assert base["base_rate"]["auc"] == 0.5
    assert base["logistic_regression"]["auc"] > 0.6  # the bar a candidate must clear is real
    result = evaluate.evaluate_scores(holdout, np.full(len(holdout), 0.2), params)
    assert set(result["slices"]["origin"]) == {"EWR", "JFK", "LGA"}
    small = [k for k, m in result["slices"]["carrier"].items() if m["n"] < params.min_slice_size]
    assert small and not any(result["slices"]["carrier"][k]["judged"] for k in small)


def test_plots_are_written(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000)
    paths = evaluate.plot(y, {"model": rng.random(1000), "constant": np.full(1000, 0.3)}, tmp_path)
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
