"""monitor: drift of a real summer month is flagged, random halves of one month are not, and the
live performance and the gauges say what the rows say.

The scores are a stand-in, not a model: a fixed logistic function of the hour and the weather.
The monitor does not care where scores come from, and training one here would cost more than
every test in this file (Evidently takes ~2 s a report; its import ~4 s, once).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from reference import band, faults, metrics, monitor
from reference.features import CATEGORICAL, FEATURES

PARAMS = monitor.MonitorParams()


def scored(df: pd.DataFrame) -> pd.DataFrame:
    """Add a deterministic stand-in score and the request time (departure, as when requested)."""
    z = (
        -1.6
        + 0.08 * (df["hour"] - 12)
        + 2.0 * df["precip"].fillna(0)
        + 0.15 * (10 - df["visib"].fillna(10))
        + 0.02 * (df["temp"].fillna(50) - 50)
    )
    return df.assign(probability=1 / (1 + np.exp(-z)), time=df["sched_dep"])


@pytest.fixture(scope="module")
def winter_scored(winter):
    return scored(winter)


@pytest.fixture(scope="module")
def july_scored(july):
    return scored(july)


@pytest.fixture(scope="module")
def halves(winter_scored):
    """Two random halves of January (seeded): the same traffic twice, no drift by construction."""
    jan = winter_scored[winter_scored["month"] == 1]
    order = np.random.default_rng(0).permutation(len(jan))
    half = len(jan) // 2
    return jan.iloc[order[:half]], jan.iloc[order[half:]]


@pytest.fixture(scope="module")
def summer(winter_scored, july_scored):
    return monitor.drift_report(winter_scored, july_scored)


@pytest.fixture(scope="module")
def same(halves):
    return monitor.drift_report(*halves)


def test_importing_the_module_does_not_import_evidently():
    code = "import sys, reference.monitor; print('evidently' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- drift ------------------------------------------------------------------------------------


def test_july_against_the_winter_reference_is_dataset_drift(summer):
    assert summer.dataset_drift
    assert summer.drift_share >= PARAMS.drift_share_alert
    # The season: temperature and dew point move by several reference std (5.2 and 3.7).
    for feature in ("temp", "dewp"):
        assert summer.features[feature].drifted
        assert summer.features[feature].score > 3
    # What the season does not move stays quiet: the airports' share of traffic (JS 0.006).
    assert not summer.features["origin"].drifted
    assert "month" not in summer.features  # the calendar, not drift
    assert summer.prediction is not None and summer.prediction.drifted  # the score follows temp


def test_random_halves_of_one_month_are_not_drift(same):
    # The false-positive check: the same month twice must not page anyone.
    assert same.drifted_features == []
    assert same.drift_share == 0.0
    assert not same.dataset_drift
    assert same.prediction is not None and not same.prediction.drifted


def test_methods_and_thresholds_are_explicit_and_the_verdicts_agree(summer):
    for name, d in summer.features.items():
        kind = "categorical" if name in CATEGORICAL else "numerical"
        method = PARAMS.categorical_method if kind == "categorical" else PARAMS.numeric_method
        assert (d.kind, d.method, d.threshold) == (kind, method, 0.1)
        assert d.drifted == (d.score >= d.threshold)  # distances: drift at or above the level
    # Evidently's own share (DriftedColumnsCount) counts what the per-feature verdicts say.
    assert summer.drift_share == pytest.approx(len(summer.drifted_features) / len(summer.features))
    assert sorted(summer.features) == sorted(c for c in FEATURES if c != "month")


def test_p_value_tests_flag_the_halves_where_distances_do_not(halves):
    table = monitor.compare_methods(*halves)
    assert not table["distance_drifted"].any()
    # What this data shows (seed 0): chi-square flags dest and hour, KS flags nothing. dest has
    # categories in one half only: expected count 0, p = 0 however close the halves are.
    assert table["test_drifted"].any()
    assert table.loc["dest", "unseen_categories"] > 0 and table.loc["dest", "p_value"] == 0
    assert table.loc["temp", "p_value"] > 0.05


def test_on_real_drift_p_values_flag_everything_and_rank_nothing(winter_scored, july_scored):
    table = monitor.compare_methods(winter_scored, july_scored)
    assert table["test_drifted"].all()  # even origin (JS 0.006)
    assert table["distance_drifted"].sum() < len(table)
    assert table.loc["temp", "distance"] > table.loc["humid", "distance"] > 0.1


# ---- data quality -----------------------------------------------------------------------------


def test_data_quality_of_a_real_month(summer):
    q = summer.data_quality
    assert set(q) == set(FEATURES)
    assert 0 < q["dest"].unseen_share < 0.01  # a few summer-only destinations
    assert q["carrier"].unseen_share == 0.0
    assert 0.1 < q["pressure"].missing_share < 0.15  # the gappiest feed, as in the reference
    assert 0.1 < q["pressure"].reference_missing_share < 0.15
    assert all(v.out_of_range_share in (None, 0.0) for v in q.values())
    assert q["carrier"].out_of_range_share is None and q["temp"].unseen_share is None


def test_data_quality_sees_a_broken_feed(winter_scored, july_scored):
    broken = faults.new_carrier(july_scored, share=0.2)
    broken.loc[broken.index[:300], "wind_speed"] = 1048.0  # a sensor glitch, mph
    broken.loc[broken.index[::2], "pressure"] = np.nan
    q = monitor.drift_report(winter_scored.iloc[::4], broken).data_quality
    assert q["carrier"].unseen_share == pytest.approx(0.2, abs=0.01)
    assert q["wind_speed"].out_of_range_share == pytest.approx(300 / len(broken), rel=0.01)
    assert q["pressure"].missing_share > 0.5


def test_a_renamed_column_gets_a_message_not_a_traceback(winter_scored, july_scored):
    with pytest.raises(KeyError, match="temp"):
        monitor.drift_report(winter_scored, faults.rename_column(july_scored))


# ---- outputs ----------------------------------------------------------------------------------


def test_html_report_is_written(summer, tmp_path):
    path = summer.to_html(tmp_path / "reports" / "drift.html")
    assert "<html" in path.read_text(encoding="utf-8")[:2000]


def test_to_dict_round_trips_through_strict_json(summer):
    d = summer.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["dataset_drift"] is True and "temp" in d["drifted_features"]
    assert d["features"]["temp"]["method"] == "wasserstein"
    band_dict = d["positive_rate_band"]
    assert {"low", "mean", "high", "window_rows", "false_alarm_rate"} <= set(band_dict)
    assert band_dict["window_rows"] == PARAMS.band_rows == 300


def test_positive_rate_band_is_mean_plus_minus_k_std_of_daily_rates():
    days = pd.to_datetime(["2013-01-01"] * 4 + ["2013-01-02"] * 4 + ["2013-01-03"] * 4)
    p = [0.9, 0.1, 0.1, 0.1] + [0.9, 0.9, 0.1, 0.1] + [0.9, 0.9, 0.9, 0.1]
    low, mean, high = monitor.positive_rate_band(
        pd.DataFrame({"time": days, "probability": p}), freq="1D", k=1
    )
    assert (low, mean, high) == pytest.approx((0.25, 0.5, 0.75))
    with pytest.raises(ValueError, match="two"):
        monitor.positive_rate_band(
            pd.DataFrame({"time": days[:4], "probability": p[:4]}), freq="1D"
        )


def test_window_rates_cut_consecutive_rows_in_time_order_within_each_month():
    times = pd.to_datetime(
        ["2013-01-30 10:00", "2013-01-30 08:00", "2013-01-30 09:00", "2013-01-31 07:00"]
        + ["2013-01-31 08:00", "2013-02-01 06:00", "2013-02-01 07:00", "2013-02-02 06:00"]
    )
    p = [0.9, 0.1, 0.1, 0.9] + [0.9, 0.9, 0.1, 0.1]
    rates = band.window_rates(pd.DataFrame({"time": times, "probability": p}), window_rows=2)
    # January, in time order: 08 0.1, 09 0.1 | 10 0.9, 07(31st) 0.9 | 08(31st) left over: dropped
    assert rates.tolist() == [0.0, 1.0, 0.5]  # February: 06 0.9, 07 0.1 | 06(2nd) dropped
    assert rates.index[0] == pd.Timestamp("2013-01-30 08:00")
    assert rates.index[2] == pd.Timestamp("2013-02-01 06:00")  # February starts a window
    with pytest.raises(ValueError, match="window_rows"):
        band.window_rates(pd.DataFrame({"time": times, "probability": p}), window_rows=0)
    with pytest.raises(KeyError, match="time"):
        band.window_rates(pd.DataFrame({"probability": p}))


@pytest.fixture(scope="module")
def flagging(winter_scored):
    """The stand-in score, shifted to flag ~9% of winter flights as the champion does (it flags
    ~8-12%): hour and weather move it, and a window's rows share both, as with the model."""
    z = np.log(winter_scored["probability"] / (1 - winter_scored["probability"])) + 0.8
    return winter_scored.assign(probability=1 / (1 + np.exp(-z)))


def test_the_band_keeps_its_false_alarm_promise_on_the_windows_the_alert_sees(flagging):
    new = monitor.positive_rate_band(flagging)  # windows of 300 rows
    windows = band.window_rates(flagging, window_rows=300)
    assert (new.window_rows, new.windows, new.k) == (300, len(windows), 3.0)
    assert new.outside(windows).mean() == new.false_alarm_rate
    assert 0 < new.false_alarm_rate < 0.1  # a mass at 0% and a storm tail: not a bell curve
    # The daily band's promise is about days. The alert judges 300-row windows, and on those
    # more fall outside the daily band than it says: its band is narrower than what it judges.
    daily = monitor.positive_rate_band(flagging, freq="1D")
    assert daily.window_rows is None and daily.freq == "1D"
    assert daily.outside(windows).mean() > 1.5 * daily.false_alarm_rate
    assert daily.high < new.high
    # A constant >= 0.5 flags every row: every window is outside. A constant under 0.5 flags
    # none, and calm hours flag none either (the low bound is 0): the spread rule's failure.
    assert new.high < 1 and new.outside([1.0]).all()
    assert new.low == 0 and not new.outside([0.0]).any()
    assert tuple(new) == (new.low, new.mean, new.high)


def test_a_sampled_reference_is_cut_into_windows_of_the_same_stretch_of_time(flagging):
    full = monitor.positive_rate_band(flagging)
    sample = flagging.sample(frac=0.3, random_state=0).sort_values("time")
    plain = monitor.positive_rate_band(sample)  # 300 sampled rows: about 1,000 live ones
    sample.attrs[band.SAMPLE_FRACTION] = len(sample) / len(flagging)
    scaled = monitor.positive_rate_band(sample)  # 90 sampled rows: the hours of 300 live ones
    assert scaled.window_rows == 300 and abs(scaled.windows - full.windows) <= 3
    assert abs(scaled.high - full.high) < 0.05
    assert plain.high < scaled.high - 0.1  # longer windows average the hours away
    with pytest.raises(ValueError, match="sample_fraction"):
        monitor.positive_rate_band(sample, sample_fraction=1.5)


# ---- live performance -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def payload(july_scored):
    """The payload log of July, in requests of 10 rows, as reference.serve.payload_log reads it."""
    i = np.arange(len(july_scored))
    return pd.DataFrame(
        {
            "request_id": [f"r{k}" for k in i // 10],
            "row": i % 10,
            "time": july_scored["time"].to_numpy(),
            "model_version": "1",
            "probability": july_scored["probability"].to_numpy(),
            "label": (july_scored["probability"].to_numpy() >= 0.5).astype(int),
            "delayed": july_scored["delayed"].to_numpy(),  # not read: outcomes come separately
        }
    )


@pytest.fixture(scope="module")
def outcomes(payload):
    """Labels that have arrived: none yet for July 31, 300 rows of July 30; shuffled."""
    day = payload["time"].dt.day
    known = payload[(day < 30) | ((day == 30) & (payload.groupby(day).cumcount() < 300))]
    return known[["request_id", "row", "delayed"]].sample(frac=1.0, random_state=0)


@pytest.fixture(scope="module")
def live(payload, outcomes):
    return monitor.live_performance(payload.drop(columns="delayed"), outcomes, window="1D")


def test_live_auc_per_day_is_the_auc_of_that_days_labelled_rows(live, payload):
    assert len(live) == 31 and live["rows"].sum() == len(payload)
    day = payload[payload["time"].dt.day == 15].dropna(subset=["delayed"])
    row = live[live["window_start"] == pd.Timestamp("2013-07-15")].iloc[0]
    assert row["labelled"] == len(day) >= PARAMS.min_labelled_rows
    assert row["auc"] == metrics.roc_auc(day["delayed"], day["probability"])
    assert row["log_loss"] == pytest.approx(metrics.log_loss(day["delayed"], day["probability"]))
    assert row["observed_positive_rate"] == pytest.approx(day["delayed"].mean())
    all_day = payload[payload["time"].dt.day == 15]
    assert row["predicted_positive_rate"] == pytest.approx(all_day["label"].mean())


def test_windows_without_enough_labels_get_no_auc(live):
    by_day = live.set_index(live["window_start"].dt.day)
    assert 0 < by_day.loc[30, "labelled"] <= 300 < PARAMS.min_labelled_rows  # 5 were cancelled
    assert np.isnan(by_day.loc[30, "auc"]) and np.isfinite(by_day.loc[30, "log_loss"])
    assert by_day.loc[31, "labelled"] == 0 and np.isnan(by_day.loc[31, "log_loss"])
    assert not by_day.loc[30, "below_auc_floor"]  # no AUC, no verdict


def test_live_performance_splits_by_model_version(payload, outcomes):
    canary = payload.drop(columns="delayed").assign(
        model_version=np.where(payload.index % 10 == 0, "2", "1")
    )
    live = monitor.live_performance(canary, outcomes, window="7D", by="model_version")
    assert set(live["model_version"]) == {"1", "2"}
    assert live["rows"].sum() == len(payload)


def test_duplicate_outcomes_are_refused(payload, outcomes):
    twice = pd.concat([outcomes, outcomes.head(3)])
    with pytest.raises(ValueError, match="duplicate"):
        monitor.live_performance(payload, twice)


# ---- gauges -----------------------------------------------------------------------------------


def test_export_gauges_sets_the_contracted_names(summer, same, live):
    registry = CollectorRegistry()
    monitor.export_gauges(summer, live, registry)
    get = registry.get_sample_value
    assert get("model_drift_share") == summer.drift_share
    assert get("model_dataset_drift") == 1
    assert get("model_feature_drifted", {"feature": "temp"}) == 1
    assert get("model_feature_drifted", {"feature": "origin"}) == 0
    assert get("model_feature_drift_score", {"feature": "temp"}) == summer.features["temp"].score
    assert get("model_prediction_drift_score") == summer.prediction.score
    judged = live.dropna(subset=["auc"]).iloc[-1]  # July 29: the 30th has too few labels
    assert judged["window_start"] == pd.Timestamp("2013-07-29")
    assert get("model_live_auc") == judged["auc"]
    assert get("model_live_labelled_rows") == judged["labelled"]
    for bound, value in zip(("low", "mean", "high"), summer.positive_rate_band, strict=True):
        assert get("model_reference_positive_rate", {"bound": bound}) == value

    # The next window updates the same gauges; unknown values read NaN, never a false 0.
    monitor.export_gauges(dataclasses.replace(same, positive_rate_band=None), None, registry)
    assert get("model_dataset_drift") == 0 and get("model_drift_share") == 0
    assert np.isnan(get("model_live_auc"))
    assert np.isnan(get("model_reference_positive_rate", {"bound": "low"}))
