"""The gate's rules, table-driven: each case changes one number and expects one verdict."""

from __future__ import annotations

import copy

import pytest
from rich.console import Console

from reference.config import GateParams
from reference.gate import decide, render


def metrics(auc=0.71, ece=0.03, slices=None):
    return {
        "auc": auc,
        "ece": ece,
        "slices": slices
        or {"origin": {"EWR": {"auc": auc, "judged": True}, "JFK": {"auc": auc, "judged": True}}},
    }


BASELINES = {"base_rate": {"auc": 0.5}, "logistic_regression": {"auc": 0.70}}
P = GateParams(
    min_auc_margin_over_baseline=0.005,
    max_auc_drop_vs_champion=0.005,
    max_slice_auc_drop=0.03,
    max_calibration_error=0.05,
    max_latency_ms=20,
    max_model_size_mb=5,
)


def verdicts(decision):
    return {r.name: r.verdict for r in decision.rules}


@pytest.mark.parametrize(
    ("case", "kwargs", "champion", "promote", "failing"),
    [
        ("first model passes the floors", {}, None, True, set()),
        (
            "first model too close to the baseline",
            {"candidate": metrics(auc=0.703)},
            None,
            False,
            {"auc_over_baseline"},
        ),
        ("miscalibrated", {"candidate": metrics(ece=0.08)}, None, False, {"calibration_error"}),
        ("too slow", {"latency_ms": 25.0}, None, False, {"latency_ms_p95"}),
        ("too big", {"size_mb": 6.0}, None, False, {"model_size_mb"}),
        ("better than the champion", {}, metrics(auc=0.705), True, set()),
        ("slightly worse, within tolerance", {}, metrics(auc=0.714), True, set()),
        ("worse than the champion", {}, metrics(auc=0.72), False, {"auc_vs_champion"}),
    ],
)
def test_rules(case, kwargs, champion, promote, failing):
    args = {"candidate": metrics(), "latency_ms": 2.0, "size_mb": 0.1} | kwargs
    d = decide(args["candidate"], BASELINES, champion, P, args["latency_ms"], args["size_mb"])
    assert d.promote is promote, case
    assert {r.name for r in d.failed} == failing, case


def test_a_slice_that_got_worse_blocks_promotion():
    candidate = metrics(auc=0.72)
    champion = metrics(auc=0.71)
    candidate = copy.deepcopy(candidate)
    candidate["slices"]["origin"]["JFK"]["auc"] = 0.66  # overall better, JFK much worse
    d = decide(candidate, BASELINES, champion, P, 2.0, 0.1)
    assert not d.promote
    worst = next(r for r in d.rules if r.name == "worst_slice_vs_champion")
    assert worst.verdict == "fail" and "origin=JFK" in worst.detail
    assert worst.value == pytest.approx(-0.05)


def test_unjudged_slices_are_ignored():
    candidate = metrics(auc=0.72)
    candidate["slices"]["origin"]["JFK"] |= {"auc": 0.4, "judged": False}  # too small to judge
    d = decide(candidate, BASELINES, metrics(auc=0.71), P, 2.0, 0.1)
    assert d.promote


def test_first_model_has_no_champion_rules():
    d = decide(metrics(), BASELINES, None, P, 2.0, 0.1)
    assert verdicts(d)["auc_vs_champion"] == "n/a"
    assert d.to_dict()["decision"] == "promote"


def test_the_table_shows_every_rule_and_the_decision():
    d = decide(metrics(auc=0.703), BASELINES, None, P, 2.0, 0.1)
    console = Console(width=160, record=True)
    console.print(render(d, "Gate"))
    text = console.export_text()
    for r in d.rules:
        assert r.name in text
    assert "REJECT" in text and "0.7030" in text and ">= 0.7050" in text
