"""The replay's series through the real alert rules (promtool), without a server: synthetic scrapes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from reference.serve.telemetry import SCORE_BUCKETS
from reference.watch import promtool_alerts

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)
V = 'model_version="2"'


def _snapshots(draw, minutes: int = 20) -> list[dict[str, float]]:
    """Cumulative series as the server exposes them, scraped before and after each minute."""
    cum: dict[str, float] = {}
    snaps = [dict(cum)]
    for _ in range(minutes):
        scores = draw()
        for le in (*SCORE_BUCKETS, float("inf")):
            bound = "+Inf" if le == float("inf") else str(le)
            key = f'model_prediction_score_bucket{{le="{bound}",{V}}}'
            cum[key] = cum.get(key, 0.0) + float((scores <= le).sum())
        for key, inc in (
            (f"model_rows_total{{{V}}}", len(scores)),
            (f'model_predictions_total{{label="1",{V}}}', float((scores >= 0.5).sum())),
            (f'model_predictions_total{{label="0",{V}}}', float((scores < 0.5).sum())),
            (f'model_requests_total{{code="200",{V},protocol="v1"}}', len(scores) / 64),
            (f"model_prediction_score_count{{{V}}}", len(scores)),
            (f"model_prediction_score_sum{{{V}}}", float(scores.sum())),
        ):
            cum[key] = cum.get(key, 0.0) + inc
        snaps.append(dict(cum))
    return snaps


@needs_promtool
def test_a_constant_score_fires_the_collapse_alert_and_no_service_alert():
    fired = promtool_alerts(_snapshots(lambda: np.full(1400, 0.27)), {})
    assert "PredictionScoresCollapsed" in fired
    assert "ErrorRateHigh" not in fired and "LatencyHigh" not in fired


@needs_promtool
def test_healthy_scores_fire_none_of_the_prediction_alerts():
    rng = np.random.default_rng(0)
    gauges = {
        'model_reference_positive_rate{bound="low"}': 0.0,
        'model_reference_positive_rate{bound="high"}': 0.6,
        "model_drift_share": 0.1,
        "model_prediction_drift_score": 0.02,
    }
    fired = promtool_alerts(_snapshots(lambda: rng.beta(2, 8, 1400)), gauges)
    assert not {
        "PredictionScoresCollapsed",
        "PredictedPositiveRateOutOfBand",
        "DataDriftShareHigh",
    } & set(fired)


def test_without_promtool_the_rules_are_not_evaluated(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert promtool_alerts([{}], {}) is None
