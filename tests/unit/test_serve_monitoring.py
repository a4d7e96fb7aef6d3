"""The prediction monitoring's fast paths give exactly what the plain ones gave: the score
histogram counted per bucket with numpy, and the input counts of a few rows in plain Python."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("kserve")


def test_the_score_histogram_counted_with_numpy_equals_one_observe_per_row():
    from prometheus_client import CollectorRegistry

    from reference.serve.telemetry import Telemetry

    rng = np.random.default_rng(3)
    proba = np.concatenate([rng.random(500), [0.0, 0.05, 0.1, 1.0, 0.35]])  # bounds included
    label = (proba >= 0.5).astype(np.int64)
    fast, slow = Telemetry.create(CollectorRegistry()), Telemetry.create(CollectorRegistry())
    fast.observe("1", proba, label, {}, {}, {})
    for p in proba:
        slow.score.labels("1").observe(float(p))

    def samples(t):
        return {
            (s.name, tuple(sorted(s.labels.items()))): round(s.value, 9)
            for m in t.score.collect()
            for s in m.samples
            if not s.name.endswith("_created")
        }

    assert samples(fast) == samples(slow)


def test_the_input_counts_of_a_few_rows_equal_those_of_many():
    from reference.features import CATEGORICAL, FEATURES, NUMERIC, RANGES
    from reference.serve.predictor import _input_counts

    col, (low, high) = next(iter(RANGES.items()))
    few = {f: [1.0, None, float("nan")] for f in FEATURES}
    few[col] = [low - 1, None, high + 1]  # two out of range, one missing
    many = {f: v * 6 for f, v in few.items()}  # 18 rows: the numpy path
    missing, _, out_of_range = _input_counts(few, {})
    missing6, _, out_of_range6 = _input_counts(many, {})
    assert out_of_range[col] == 2 and out_of_range6[col] == 12
    assert {c: 6 * n for c, n in out_of_range.items()} == out_of_range6
    assert {c: 6 * n for c, n in missing.items()} == missing6
    assert set(missing) == {*CATEGORICAL, *NUMERIC}
