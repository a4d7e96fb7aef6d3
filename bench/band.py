"""Measurement: the positive-rate band, daily vs over windows the alert sees, on a year of traffic.

    .venv/bin/python bench/band.py              # about a minute on a 2-core laptop

Trains a champion on January-June 2013 (early stopping on July, as the labs' checkpoint does),
learns the reference band from a 50,000-flight sample of January-June scored by it (as
watch.reference_window and lab 06 do) two ways: the daily band (``freq="1D"``) and the band over
windows of 300 live rows (reference.band, the monitor's default). Then it cuts July-December, in
time order, into the windows PredictedPositiveRateOutOfBand judges at its traffic guard (300
consecutive flights) and counts the windows outside each band: for the healthy champion (false
alarms) and for each fault injected from 2013-08-15 (the day the loop's Celsius scenario starts):
a constant score of 0.3 and of 0.7, the wrong time zone (reference.serve.predictor's drill: the
departure hour read 12 hours off) and temperatures in Celsius upstream (reference.faults).
Prints a markdown table; nothing is asserted (a measurement, not a test).
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402  (bench/ is on sys.path when run as a script)

from reference import band, faults, ingest  # noqa: E402
from reference.config import TrainParams  # noqa: E402
from reference.train import seed_everything, train_bundle  # noqa: E402
from reference.transform import FeatureTransform  # noqa: E402

FAULT_FROM = pd.Timestamp("2013-08-15")
ROWS = band.WINDOW_ROWS  # the alert's guard: 0.5 rows/s x 10 minutes
REFERENCE_ROWS = 50_000  # watch.reference_window's sample


def first_outside(outside: np.ndarray, run: int = 1) -> int | None:
    """1-based count of windows from the fault's start to the first run of ``run`` outside."""
    streak = 0
    for i, out in enumerate(outside, start=1):
        streak = streak + 1 if out else 0
        if streak == run:
            return i
    return None


def main() -> int:
    started = time.perf_counter()
    flights, weather = ingest.load_raw()
    year = ingest.build(flights, weather).sort_values("sched_dep").reset_index(drop=True)
    year["time"] = year["sched_dep"]
    train, valid = year[year["month"] <= 6], year[year["month"] == 7]
    seed_everything(TrainParams().seed)
    bundle, _ = train_bundle(
        train, valid, FeatureTransform.fit(train), TrainParams(), log=lambda *a: None
    )

    months = year[year["month"] <= 6]
    reference = months.sample(REFERENCE_ROWS, random_state=0).sort_values("sched_dep")
    reference = reference.assign(probability=bundle.predict_proba(reference))
    reference.attrs[band.SAMPLE_FRACTION] = len(reference) / len(months)
    bands = {
        "daily (before)": band.positive_rate_band(reference, freq="1D"),
        f"{ROWS}-row windows (after)": band.positive_rate_band(reference, window_rows=ROWS),
    }
    full = band.positive_rate_band(months.assign(probability=bundle.predict_proba(months)))

    serving = year[year["month"] >= 7].reset_index(drop=True)
    broken = serving["time"] >= FAULT_FROM
    healthy = bundle.predict_proba(serving)
    scenarios = {
        "healthy champion": healthy,
        "constant 0.3": np.where(broken, 0.3, healthy),
        "constant 0.7": np.where(broken, 0.7, healthy),
        # the server's --fault wrong-timezone, done to the rows: the same scores
        "wrong time zone": np.where(
            broken, bundle.predict_proba(faults.wrong_timezone(serving)), healthy
        ),
        "Celsius upstream": np.where(
            broken, bundle.predict_proba(faults.celsius(serving)), healthy
        ),
    }

    print(f"{date.today()}, {machine()}; {time.perf_counter() - started:.0f} s to train and score")
    print(f"reference: {len(reference):,} of {len(months):,} January-June flights, sampled")
    print(f"serving: {len(serving):,} July-December flights in windows of {ROWS} consecutive")
    print(
        f"faults from {FAULT_FROM.date()}: share of windows outside; windows from that day to the"
        " first one outside (to the first two in a row, about what the alert's `for: 15m` needs)."
        " The healthy champion's first ones are false alarms: a fault's count that equals them"
        " is no detection\n"
    )
    print("| band | low-high (width) | reference false alarms |", end="")
    print("".join(f" {name} |" for name in scenarios))
    print("|---|---|---|" + "---|" * len(scenarios))
    for name, b in bands.items():
        row = f"| {name} | {b.low:.1%}-{b.high:.1%} ({b.width:.1%}) | "
        row += f"{b.false_alarm_rate:.1%} of {b.windows} {'days' if b.freq else 'windows'} |"
        for scenario, scores in scenarios.items():
            rates = band.window_rates(serving.assign(probability=scores), ROWS)
            out = b.outside(rates)
            after = out[rates.index >= FAULT_FROM]
            first, twice = first_outside(after), first_outside(after, 2)
            share = f"{after.mean():.1%}"
            if scenario == "healthy champion":  # and over all of July-December
                share = f"{out.mean():.1%} of {len(out)}, {share} from {FAULT_FROM:%b %d}"
            row += f" {share}; {first or 'never'} ({twice or 'never'}) |"
        print(row)
    print(
        f"\nthe same band learned on every January-June flight (no sample): {full.low:.1%}-"
        f"{full.high:.1%}, {full.false_alarm_rate:.1%} of {full.windows} windows outside"
    )
    for scenario, scores in scenarios.items():
        rates = band.window_rates(serving.assign(probability=scores), ROWS)
        out = bands[f"{ROWS}-row windows (after)"].outside(rates) & (rates.index >= FAULT_FROM)
        print(
            f"{scenario}: {np.mean(scores[broken] >= 0.5):.1%} flagged from {FAULT_FROM.date()}; "
            f"windows outside the new band from then: {[str(t) for t in rates.index[out][:3]]}"
        )
    rates = band.window_rates(serving.assign(probability=healthy), ROWS)
    print(
        f"healthy July-December windows: {np.mean(rates == 0):.0%} flag no flight, "
        f"{np.mean(rates >= 0.99):.1%} flag 99% or more; binomial sd at {ROWS} rows and "
        f"p = {rates.mean():.3f}: {np.sqrt(rates.mean() * (1 - rates.mean()) / ROWS):.3f}, "
        f"observed sd {rates.std():.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
