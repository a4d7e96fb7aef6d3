"""The bad-labels drill's parts that need no server: the wrong label in the landed data and in the
live labels, and how the drill reads a model against the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from reference import faults, ingest
from reference.config import IngestParams
from reference.loop.drill import MAX_GAP, DrillResult, Response, Truth, render
from reference.loop.traffic import Traffic, scenario


def _flights():
    sched = pd.to_datetime(["2013-08-24 08:00", "2013-08-25 08:00", "2013-08-25 09:00"])
    return pd.DataFrame(
        {
            "row_id": [1, 2, 3],
            "sched_dep": sched,
            "dest": ["ORD", "ORD", "ATL"],
            "status": ["arrived"] * 3,
            "arr_delay": [-10.0, -10.0, -10.0],
            "delayed": [0.0, 0.0, 0.0],
        }
    )


def test_the_live_labels_carry_the_wrong_label_from_its_day_on():
    t = Traffic(_flights(), scenario("bad-labels"))
    y = t.labels(np.array([1, 2, 3]), dt.date(2013, 9, 1), 1)
    # before August 25: the truth; from it: ORD 10 minutes early reads 50 minutes late
    assert list(y) == [0.0, 1.0, 0.0]
    assert list(
        Traffic(_flights(), scenario("natural")).labels(np.array([2]), dt.date(2013, 9, 1), 1)
    ) == [0.0]


def test_a_label_fault_lands_in_every_month_and_a_feature_fault_in_one(tmp_path):
    result = ingest.run(
        IngestParams(inject_fault="arrival_timezone", fault_month=8, landed_through=3),
        tmp_path / "batches",
        tmp_path / "report.json",
    )
    assert result.report["injected_fault"] == {"fault": "arrival_timezone", "months": [1, 2, 3]}
    for month in (1, 2, 3):
        batch = ingest.read_months([month], tmp_path / "batches")
        ord_ = batch[(batch["dest"] == "ORD") & batch["delayed"].notna()]
        assert ord_["delayed"].mean() > 0.95, month  # nearly every ORD flight now "late"
    assert "arrival_timezone" in faults.LABEL_FAULTS and "celsius" not in faults.LABEL_FAULTS


def _truth(version, gap):
    return Truth(version, 0.68, 0.65, 0.2 + gap, 0.2)


def test_healthy_is_the_airport_gap_and_the_report_says_what_served():
    good, bad = _truth("1", 0.05), _truth("2", 0.8)
    assert good.healthy and not bad.healthy and _truth("3", MAX_GAP).healthy
    rejected = Response(
        "data", bad, _truth("3", 0.1), False, "candidate 0.60 vs champion 0.70", True
    )
    assert rejected.after is bad  # a candidate the gate stopped does not serve
    text = render(DrillResult(good, bad, ["2013-09-05 promote: ..."], [rejected]))
    assert "rollback data" in text and "gate rejected" in text
    assert "then serving       v2 BAD" in text


def test_the_drill_refuses_a_workspace_that_holds_another_story(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from reference.cli import app
    from reference.loop.state import LoopState

    monkeypatch.setenv("MLOPS_LAB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    LoopState(day="2013-09-01", scenario="natural").save(tmp_path / "ws/level2/loop/state.json")
    result = CliRunner().invoke(app, ["loop", "--scenario", "bad-labels"])
    assert result.exit_code == 1, result.output
    assert "holds a natural run: start the drill over with" in result.output
    assert "--fresh --scenario bad-labels" in result.output
