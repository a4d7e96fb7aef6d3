"""Level 2 end to end, with real servers: the router, the champion's and the candidate's KServe
processes, MLflow, DVC and torch. A client keeps calling the router in the background the whole
time; not one of its requests may fail, through promotions, rollbacks and a controller restart.

Each story replays real 2013 days from August 20 (the demo starts on August 1): the champion
(trained on January-May) meets the late summer, drift triggers a retrain once August's labels
land on September 1, and the rollout decides. Every story starts from the same champion and gets
the same retrain; the scenario is the one difference."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import httpx
import pytest

from reference import registry
from reference.loop.controller import Controller, loop_settings
from reference.loop.rollback import data_commit, rollback_data, rollback_model
from reference.loop.timeline import plot, table

pytestmark = pytest.mark.integration

ROWS = [
    {
        "carrier": "UA", "origin": "EWR", "dest": "ORD", "hour": 8, "weekday": 2,
        "distance": 719.0, "month": 8, "temp": 80.1, "dewp": 62.0, "humid": 54.0,
        "wind_dir": 200.0, "wind_speed": 9.2, "precip": 0.0, "pressure": 1015.0, "visib": 10.0,
    }
]  # fmt: skip


class Client(threading.Thread):
    """Calls the router (whichever the loop's state names) until stopped; counts what failed."""

    def __init__(self, settings):
        super().__init__(daemon=True)
        self.state = settings.workspace / "loop" / "state.json"
        self.model = settings.model_name
        self.halt = threading.Event()
        self.ok, self.failed = 0, []

    def run(self):
        with httpx.Client(timeout=30) as http:
            while not self.halt.is_set():
                try:
                    router = json.loads(self.state.read_text())["router"]
                except (FileNotFoundError, ValueError, KeyError, TypeError):
                    router = None
                if not router or not router.get("pid"):
                    time.sleep(0.2)
                    continue
                try:
                    resp = http.post(
                        f"{router['url']}/v1/models/{self.model}:predict",
                        json={"instances": ROWS},
                    )
                    if resp.status_code == 200:
                        self.ok += 1
                    else:
                        self.failed.append(f"{resp.status_code}: {resp.text[:200]}")
                except httpx.HTTPError as e:
                    self.failed.append(repr(e))
                time.sleep(0.05)

    def stop(self):
        self.halt.set()
        self.join(10)


START = "2013-08-20"


def _fresh(tmp_path_factory, name):
    from reference.config import get_settings

    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLOPS_LAB_MODEL_NAME", raising=False)
    settings = loop_settings(get_settings(tmp_path_factory.mktemp(name)))
    mp.undo()
    return settings


def _story(settings, scenario):
    """Run a scenario to its decision with a client calling the router the whole time."""
    client = Client(settings)
    client.start()
    controller = Controller(settings, scenario)
    try:
        state = controller.run(first_day=START, keep_serving=True)
    finally:
        client.stop()
        controller.shutdown()
    return state, controller, client


def _kinds(settings):
    return [(e["kind"], e["version"]) for e in Controller(settings).events.read()]


@pytest.fixture(scope="module")
def settings(fresh_settings):
    return loop_settings(fresh_settings)


@pytest.fixture(scope="module")
def promoted(settings):
    """Story 1, with the controller killed mid-canary and started again."""
    client = Client(settings)
    client.start()
    first = Controller(settings, "natural")
    try:
        state = first.run(first_day=START, keep_serving=True, stop_at_phase="canary")
        assert state.phase == "canary", _kinds(settings)
        # the controller "dies" here: its router and servers keep serving; a new one resumes
        del first
        second = Controller(settings, "natural")
        second.run(first_day=START, keep_serving=True)
    finally:
        client.stop()
        Controller(settings).shutdown()
    return client, second


def test_drift_triggers_a_retrain_and_a_better_challenger_is_promoted(settings, promoted):
    client, controller = promoted
    kinds = [k for k, _ in _kinds(settings)]
    for step in ("bootstrap", "check", "retrain", "gate-pass", "shadow", "canary", "promote"):
        assert step in kinds, kinds
    assert (
        kinds.index("retrain")
        < kinds.index("shadow")
        < kinds.index("canary")
        < kinds.index("promote")
    )
    events = controller.events.read()
    retrain = next(e for e in events if e["kind"] == "retrain")
    assert any("drift share" in r for r in retrain["reasons"])
    promote = next(e for e in events if e["kind"] == "promote")
    assert "not worse on live labels" in promote["reasons"][0]
    assert promote["metrics"]["labelled"] >= 1000
    # the candidate also scored the champion's 75% (mirrored): every flight of the canary's days
    # is evidence, so the verdict came as soon as the labels spanned canary_min_days (4) days:
    # day 5 (the candidate's 25% alone took 7 days to 1,000 labels)
    canary = next(e for e in events if e["kind"] == "canary")
    days = (dt.date.fromisoformat(promote["day"]) - dt.date.fromisoformat(canary["day"])).days
    assert days == 5 and promote["metrics"]["labelled_days"] == 4, (canary, promote)
    assert promote["metrics"]["labelled"] > 3000
    champion = registry.version_by_alias(settings, registry.CHAMPION)
    assert str(champion.version) == promote["version"]
    assert (
        champion.tags["loop.decision"] == "promoted" and champion.tags["previous_champion"] == "1"
    )
    assert client.ok > 50 and client.failed == [], client.failed[:5]


@pytest.mark.fault
def test_a_restarted_controller_resumes_mid_canary_and_promotes_once(settings, promoted):
    kinds = _kinds(settings)
    resumed = [k for k in kinds if k[0] == "resume"]
    assert resumed, kinds
    assert [k for k in kinds if k[0] == "retrain"] == [("retrain", None)]  # not retrained again
    assert len([k for k in kinds if k[0] == "promote"]) == 1


def test_drift_follows_the_champion_and_quiets_after_a_promotion(settings, promoted):
    """The drift reference is the champion's own last months, recorded on its version: v1's
    April-May flags the August heat; after the promotion, v2's May-June is calibrated and the
    first check against it (September 2-8, the same season) flags nothing."""
    Controller(settings, "natural").run(days=1, until_decision=False)
    events = Controller(settings).events.read()
    refs = [e for e in events if e["kind"] == "drift-reference"]
    assert [(e["version"], e["metrics"]["months"]) for e in refs] == [("1", [4, 5]), ("2", [5, 6])]
    checks = [e for e in events if e["kind"] == "check"]
    before, after = checks[0], checks[-1]
    assert before["version"] == "1" and "(temp" in before["reasons"][0]
    assert "against v1's months 4-5" in before["reasons"][0]
    assert after["version"] == "2" and after["day"] == refs[-1]["day"]  # calibrated, then judged
    assert after["metrics"]["drift_share"] < after["metrics"]["drift_threshold"]
    assert not any("drift share" in r for r in after["reasons"]), after["reasons"]
    c = registry.client(settings)
    for version, months in (("1", [4, 5]), ("2", [5, 6])):
        tag = json.loads(c.get_model_version(settings.model_name, version).tags["drift.reference"])
        assert tag["months"] == months and tag["thresholds"]["temp"] > 1.0


def test_a_worse_challenger_is_rolled_back_in_canary(tmp_path_factory):
    settings = _fresh(tmp_path_factory, "bad")
    state, controller, client = _story(settings, "bad-challenger")
    events = controller.events.read()
    rollback = [e for e in events if e["kind"] == "rollback"]
    assert len(rollback) == 1 and state.phase == "idle", [e["kind"] for e in events]
    event = rollback[0]
    # it passed the gate and the shadow: only the live labels of the canary caught it
    kinds = [e["kind"] for e in events if e["version"] == event["version"]]
    assert "gate-pass" in kinds and "canary" in kinds, kinds
    assert "worse on live labels" in event["reasons"][0], event["reasons"]
    assert event["metrics"]["candidate_auc"] < event["metrics"]["champion_auc"]
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == "1"
    mv = registry.client(settings).get_model_version(settings.model_name, event["version"])
    assert mv.tags["loop.decision"] == "rolled_back"
    assert client.ok > 20 and client.failed == [], client.failed[:5]


def test_the_canary_keeps_its_error_rates_over_seeded_replays(
    settings, promoted, flights, tmp_path
):
    """The canary's decision, replayed 20 times on the real August-December flights (each seed its
    own start day and request ids), mirrored and waiting for four days of labels: the bootstrap
    champion served twice is promoted every time; the September retrain behind the time-zone skew
    (story 2's candidate) is rolled back every time, each within 5 days."""
    from reference import faults
    from reference.loop.canary_replay import scored_flights, seeded, summary
    from reference.model import load_bundle

    champion, retrain = (
        load_bundle(registry.download_bundle(settings, v, tmp_path / f"v{v}")) for v in ("1", "2")
    )
    rollout = Controller(settings).params.rollout
    serving = flights[flights["month"] >= 8]
    same = summary(seeded(scored_flights(serving, champion, champion), rollout, range(20), True))
    skewed = scored_flights(serving, champion, retrain, skew=faults.wrong_timezone)
    worse = summary(seeded(skewed, rollout, range(20), True))
    assert same["promoted"] >= 19, same
    assert worse["rolled_back"] == 20, worse
    assert same["max_days"] == worse["max_days"] == 5, (same, worse)  # four days of labels


def test_the_timeline_is_drawn(settings, promoted):
    folder = settings.workspace / "loop"
    png = plot(folder)
    assert png.stat().st_size > 20_000
    assert table(Controller(settings).events.read()).row_count >= 5


def test_rollback_model_then_data_reproduces_the_earlier_champion(settings, promoted):
    current = str(registry.version_by_alias(settings, registry.CHAMPION).version)
    was, now = rollback_model(settings)
    assert (was, now) == (current, "1")
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == "1"
    result = rollback_data(settings)  # default: the data the (restored) champion was trained on
    assert result.commit == data_commit(settings, "1") and result.source_version == "1"
    assert result.retrained_version not in (None, "1")
    assert result.reproduced, result
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == "1"
    with pytest.raises(RuntimeError, match="already the champion"):
        rollback_model(settings, to="1")


@pytest.mark.fault
def test_a_candidate_that_crashes_mid_canary_is_rolled_back(tmp_path_factory):
    settings = _fresh(tmp_path_factory, "crash")
    _, controller, client = _story(settings, "crash")
    events = controller.events.read()
    incident = next(e for e in events if e["kind"] == "incident")
    rollback = next(e for e in events if e["kind"] == "rollback")
    assert rollback["version"] == incident["version"]
    assert "has exited" in rollback["reasons"][0], rollback["reasons"]
    assert str(registry.version_by_alias(settings, registry.CHAMPION).version) == "1"
    assert client.ok > 20 and client.failed == [], client.failed[:5]
