"""The bad-labels drill on the real system: a wrong label passes validation, the gate and the
canary, and is promoted; then the three rollbacks side by side, each in its own copy of the
workspace, every model judged on October's real outcomes (reference/loop/drill.py).

One drill for the module: the loop's story (the bootstrap champion copied from the test
session's cache, one retrain) and one retrain per response: four pipeline runs in all."""

from __future__ import annotations

import json

import pytest

from reference import registry
from reference.loop.controller import Controller, loop_settings
from reference.loop.drill import render, run_drill

pytestmark = pytest.mark.integration

START = "2013-08-20"  # as tests/integration/test_loop.py: the same cached bootstrap champion


@pytest.fixture(scope="module")
def drill(fresh_settings):
    settings = loop_settings(fresh_settings)
    return settings, run_drill(settings, first_day=START, log=lambda *_: None)


def _response(drill, name):
    return next(r for r in drill[1].responses if r.name == name)


def test_the_wrong_label_passes_validation_the_gate_and_the_canary(drill):
    settings, result = drill
    kinds = [(e["kind"], e["version"]) for e in Controller(settings).events.read()]
    bad = result.bad.version
    assert ("gate-pass", bad) in kinds and ("promote", bad) in kinds, kinds
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == bad
    validation = json.loads((settings.project / "reports/validation.json").read_text())
    assert validation["passed"], validation
    # on the labels the broken feed publishes it looks better; on the real outcomes it is worse,
    # and it expects nearly every ORD flight to be late
    assert result.bad.feed_auc > result.good.feed_auc
    assert result.bad.auc < result.good.auc
    assert result.good.healthy and not result.bad.healthy
    assert result.bad.airport_predicted > 0.8 > 0.3 > result.bad.airport_actual


def test_rolling_back_the_model_alone_does_not_stick(drill):
    r = _response(drill, "model")
    assert r.champion.version == drill[1].good.version and r.champion.healthy
    # the data still carries the defect: the next retrain learns it again and passes the gate
    assert r.gate_passed and not r.candidate.healthy
    assert not r.after.healthy


def test_rolling_back_the_data_alone_leaves_the_bad_champion_until_a_retrain(drill):
    r = _response(drill, "data")
    assert r.champion.version == drill[1].bad.version and not r.champion.healthy
    assert r.gate_passed and r.candidate.healthy and r.after.healthy


def test_rolling_back_both_is_healthy_and_stays_healthy(drill):
    r = _response(drill, "both")
    assert r.champion.version == drill[1].good.version and r.champion.healthy
    assert r.candidate.healthy and r.after.healthy
    text = render(drill[1])
    assert "rollback both" in text and "BAD" in text, text
