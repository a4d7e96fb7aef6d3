"""drift_reference: the loop's drift check judges a week against the champion's own last months,
each feature against a threshold that the reference's own weeks set.

On the real 2013 data: a January-May champion's reference (April-May) flags the temperature of a
late-August week; a January-June champion's (May-June) flags nothing in a September week, until
a new carrier code appears. The arithmetic (windows, thresholds, tags) is checked on its own.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from reference import drift_reference as dr
from reference import faults, monitor
from reference.features import FEATURES

PARAMS = monitor.MonitorParams()


def week(flights: pd.DataFrame, first: str) -> pd.DataFrame:
    start = pd.Timestamp(first)
    day = flights["sched_dep"].dt.normalize()
    return flights[(day >= start) & (day < start + pd.Timedelta(days=7))]


@pytest.fixture(scope="module")
def spring(flights):
    """The reference of a champion trained on January-May: April and May, calibrated."""
    months = dr.recent_months([1, 2, 3, 4, 5], 2)
    return dr.calibrate(flights[flights["month"].isin(months)], months, window_days=7)


@pytest.fixture(scope="module")
def early_summer(flights):
    """The reference of a champion trained on January-June: May and June."""
    months = dr.recent_months(range(1, 7), 2)
    return dr.calibrate(flights[flights["month"].isin(months)], months, window_days=7)


# ---- on the real data -------------------------------------------------------------------------
def test_a_spring_champion_sees_the_summer_heat(flights, spring):
    result = monitor.drift_report(
        spring.sample, week(flights, "2013-08-24"), thresholds=spring.thresholds
    )
    assert "temp" in result.drifted_features
    # against all five training months, every weather feature "drifts", as before
    five = flights[flights["month"].isin([1, 2, 3, 4, 5])].sample(20_000, random_state=0)
    plain = monitor.drift_report(five, week(flights, "2013-08-24"))
    assert plain.drift_share > 0.4 and result.drift_share < plain.drift_share


def test_a_promoted_champion_is_quiet_on_the_weeks_it_was_trained_for(flights, early_summer):
    for first in ("2013-09-09", "2013-09-16"):
        result = monitor.drift_report(
            early_summer.sample, week(flights, first), thresholds=early_summer.thresholds
        )
        assert result.drift_share == 0.0, (first, result.drifted_features)


def test_a_new_carrier_code_still_flags(flights, early_summer):
    shifted = faults.new_carrier(week(flights, "2013-09-09"))
    result = monitor.drift_report(early_summer.sample, shifted, thresholds=early_summer.thresholds)
    assert result.drifted_features == ["carrier"]


def test_the_winter_flags_against_a_summer_reference(flights, early_summer):
    result = monitor.drift_report(
        early_summer.sample, week(flights, "2013-12-01"), thresholds=early_summer.thresholds
    )
    assert {"temp", "dewp"} <= set(result.drifted_features)


def test_calibration_raises_the_weather_and_keeps_the_base_elsewhere(spring):
    assert spring.months == (4, 5) and spring.windows == 8 and spring.window_days == 7
    assert set(spring.thresholds) == {c for c in FEATURES if c not in PARAMS.exclude}
    raised = spring.raised()
    assert "temp" in raised and raised["temp"] > 1.0  # a week of weather is ~1 std off two months
    assert spring.thresholds["carrier"] == PARAMS.categorical_threshold  # carriers are steady
    assert "months 4-5" in spring.describe() and "temp" in spring.describe()


def test_drift_scores_are_the_reports_scores(flights, spring):
    current = week(flights, "2013-08-24")
    scores = monitor.drift_scores(spring.sample, current)
    report = monitor.drift_report(spring.sample, current, thresholds=spring.thresholds)
    assert scores == pytest.approx({c: f.score for c, f in report.features.items()})
    assert report.features["temp"].threshold == spring.thresholds["temp"]


def test_thresholds_for_an_unknown_feature_are_refused(flights, spring):
    with pytest.raises(ValueError, match="not monitored"):
        monitor.drift_report(spring.sample, week(flights, "2013-08-24"), thresholds={"tmep": 1.0})


# ---- the arithmetic ---------------------------------------------------------------------------
def test_windows_are_whole_and_consecutive():
    days = pd.date_range("2013-05-01", "2013-06-30 23:00", freq="6h")
    frame = pd.DataFrame({"sched_dep": days, "x": range(len(days))})
    parts = dr.windows(frame, 7)
    assert len(parts) == 8  # 61 days: eight whole weeks, the five days left are not a window
    firsts = [p["sched_dep"].min().date() for p in parts]
    assert firsts == [dt.date(2013, 5, 1) + dt.timedelta(7 * i) for i in range(8)]
    assert all(p["sched_dep"].dt.normalize().nunique() == 7 for p in parts)
    with pytest.raises(ValueError, match="at least one day"):
        dr.windows(frame, 0)


def test_thresholds_sit_above_the_worst_window_times_the_margin():
    scores = [{"temp": 0.8, "carrier": 0.01}, {"temp": 1.0, "carrier": 0.03}]
    out = dr.thresholds_from(scores, PARAMS, margin=1.25)
    assert out == {"temp": 1.26, "carrier": PARAMS.categorical_threshold}
    assert dr.thresholds_from([{"temp": 1.2}], PARAMS, margin=1.0)["temp"] > 1.2
    with pytest.raises(ValueError, match="flag the reference's own windows"):
        dr.thresholds_from(scores, PARAMS, margin=0.9)
    with pytest.raises(ValueError, match="shorter than one window"):
        dr.thresholds_from([], PARAMS)


def test_recent_months_are_the_last_ones_trained_on():
    assert dr.recent_months([3, 1, 2, 5, 4], 2) == (4, 5)
    assert dr.recent_months([1], 3) == (1,)
    with pytest.raises(ValueError, match="at least one month"):
        dr.recent_months([1, 2], 0)
    with pytest.raises(ValueError, match="no training months"):
        dr.recent_months([], 2)


def test_the_reference_travels_in_a_model_version_tag(spring):
    tags = spring.to_tags()
    assert list(tags) == [dr.TAG] and len(tags[dr.TAG]) < 5000  # MLflow's tag value limit
    back = dr.DriftReference.from_tags(tags)
    assert back == spring and back.sample is None
    assert back.same_recipe((4, 5), 7, dr.MARGIN)
    assert not back.same_recipe((5, 6), 7, dr.MARGIN)
    assert not back.same_recipe((4, 5), 7, 1.5)
    assert dr.DriftReference.from_tags({}) is None
    assert dr.DriftReference.from_tags({dr.TAG: "not json"}) is None
    assert dr.DriftReference.from_tags({dr.TAG: json.dumps({"months": [4, 5]})}) is None
