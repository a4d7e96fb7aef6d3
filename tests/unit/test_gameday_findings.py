"""The game day's findings and status page on hand-made evidence: each threshold, both sides."""

from __future__ import annotations

import dataclasses

import pytest

from reference.gameday import page
from reference.gameday.evidence import Evidence, findings
from reference.gameday.incidents import FINDINGS, INCIDENTS


def healthy(**changes) -> Evidence:
    base = Evidence(
        days=["2013-12-03", "2013-12-04"],
        requests=61,
        codes={"200": 61},
        rows=1931,
        spread=0.09,
        positive_rate=0.05,
        unknown={"dest": 0.001},
        units_share=0.0,
        labelled=965,
        expected_labelled=965,
        live_auc=0.69,
        drift_share=0.57,
        drifted=["temp", "dewp"],
        top_drift={"wind_speed": 1.16, "temp": 0.61},
        alerts=["DataDriftShareHigh", "PredictionDrift"],
    )
    return dataclasses.replace(base, **changes)


CANARY = {"version": "2", "percent": 50.0, "requests": 26, "failed": 0, "ready": True,
          "labelled": 380, "candidate_auc": 0.66, "champion_auc": 0.65, "p_worse": 0.7}  # fmt: skip
CASES = [
    ("a normal week (drift alerts and all)", {}, []),
    ("every request a 400", {"codes": {"400": 61}}, ["errors"]),
    ("3 of 61 refused: under 5%", {"codes": {"200": 58, "400": 3}}, []),
    ("a constant score", {"spread": 0.0}, ["collapsed"]),
    ("a constant score on too few rows", {"spread": 0.0, "rows": 50}, []),
    ("a fifth of carriers unknown", {"unknown": {"carrier": 0.21}}, ["unknown"]),
    ("dew point above temperature", {"units_share": 1.0}, ["units"]),
    ("no outcomes arrived", {"labelled": 0}, ["labels-stale"]),
    ("a bad batch waits", {"batch": {"batch": "2013-11", "passed": False, "counts": {}, "failing": ["x"]}}, ["batch-bad"]),
    ("a valid batch waits", {"batch": {"batch": "2013-11", "passed": True, "counts": {}, "failing": []}}, ["batch-waiting"]),
    ("a canary as good", {"canary": CANARY}, []),
    ("a canary worse on labels", {"canary": CANARY | {"candidate_auc": 0.43, "p_worse": 0.003}}, ["canary-worse"]),
    ("a worse canary on too few labels", {"canary": CANARY | {"p_worse": 0.003, "labelled": 150}}, []),
    ("a canary that times out", {"canary": CANARY | {"failed": 13, "ready": False}}, ["candidate-down"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "changes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_findings(case, changes, expected):
    e = healthy(**changes)
    findings(e)
    assert e.findings == expected
    assert set(e.details) == set(expected)  # every finding says the fact behind it


def test_every_incident_names_known_findings_and_the_page_reads():
    for i in INCIDENTS.values():
        assert set(i.findings) <= set(FINDINGS), i.name
    lines = page.status_lines(
        healthy(canary=CANARY), [{"day": "2013-12-02", "kind": "canary", "text": "v2 at 50%"}]
    )
    text = "\n".join(lines)
    assert "alerts firing: DataDriftShareHigh (warning), PredictionDrift (warning)" in text
    assert "canary: v2 at 50%" in text and "event 2013-12-02 canary: v2 at 50%" in text
    assert "labels: 965 of 965 landed flights have an outcome; live AUC 0.690" in text
