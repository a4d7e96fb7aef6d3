"""What a run logs as params: every value of params.yaml, so a sweep over any param is findable."""

from __future__ import annotations

from reference.config import Params
from reference.registry import _flat, flat_params


def test_every_param_is_logged_including_lists_strings_and_booleans():
    logged = flat_params("", Params().to_dict())
    assert logged["train.hidden"] == "[64, 32]"  # the one a width sweep changes
    assert logged["validate.reference_months"] == "[1, 2, 3]"
    assert logged["ingest.inject_fault"] == "none"
    assert logged["gate.auto_promote"] == "true"
    assert logged["validate.drift_fail"] == "null"
    assert logged["train.lr"] == "0.001"

    # every leaf of the params tree has a name, none is dropped
    def leaves(tree):
        return sum(leaves(v) if isinstance(v, dict) else 1 for v in tree.values())

    assert len(logged) == leaves(Params().to_dict())


def test_metrics_stay_numbers_only():
    assert _flat("m.", {"auc": 0.7, "name": "x", "flag": True, "nested": {"n": 3}}) == {
        "m.auc": 0.7,
        "m.nested.n": 3,
    }
