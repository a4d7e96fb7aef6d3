"""band: the band of the predicted-positive rate that live traffic is held against.

The alert PredictedPositiveRateOutOfBand (monitoring/alerts.yml) compares the share of rows
scored >= 0.5 over its 10-minute window with a band learned from the reference: the training
months, scored by the model. This module learns that band the way the alert judges: over windows
of as many consecutive rows as the alert's window holds, in time order, within each reference
month, so the band's width is what such a window really shows (the sampling noise at that size,
the hour of day and the weather those rows share, and the spread between the months), and it says
how often the reference's own windows fall outside (the false alarms it implies).

::

    from reference.band import positive_rate_band, window_rates
    band = positive_rate_band(reference)      # windows of 300 rows, mean +/- 3 std
    band.low, band.high, band.false_alarm_rate
    low, mean, high = band                    # it unpacks as the (low, mean, high) it replaced
    rates = window_rates(live)                # the same windows over live traffic
    band.outside(rates).mean()                # the share of them that would fire

Nothing happens on import.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

# The fewest rows the alert ever judges: its traffic guard, 0.5 rows/s over the 10-minute rate
# window = 300 rows. More traffic puts more rows in the window and narrows what a healthy window
# shows, so a band learned at the guard holds for every window the alert evaluates (it errs wide,
# towards fewer false alarms, never narrow).
WINDOW_ROWS = 300
# Share of the live traffic a reference frame keeps (watch.reference_window sets it on the frame).
SAMPLE_FRACTION = "sample_fraction"


@dataclass(frozen=True)
class Band:
    """A band of the predicted-positive rate, how it was learned and what it costs in false alarms.

    Unpacks as ``low, mean, high``: the tuple the monitor's callers and gauges read.
    """

    low: float
    mean: float
    high: float
    k: float  # mean +/- k std of the reference windows' rates, clipped to [0, 1]
    window_rows: int | None  # live rows per window; None: calendar windows of ``freq``
    freq: str | None
    windows: int  # reference windows it was learned from
    # Share of those reference windows outside [low, high]: the false alarms the band implies on
    # the data it was learned from. Rates with a mass at 0% and a long storm tail are far from
    # normal, so this is not the 0.3% that k = 3 would promise a bell curve.
    false_alarm_rate: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.low, self.mean, self.high))

    @property
    def width(self) -> float:
        return self.high - self.low

    def outside(self, rates: pd.Series | np.ndarray) -> np.ndarray:
        """True for each rate outside [low, high], as the alert's two comparisons judge it."""
        r = np.asarray(rates, dtype=float)
        return (r < self.low) | (r > self.high)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def window_rates(
    predictions: pd.DataFrame,
    window_rows: int = WINDOW_ROWS,
    threshold: float = 0.5,
    time_col: str = "time",
    prediction_col: str = "probability",
    freq: str | None = None,
) -> pd.Series:
    """Predicted-positive rate per window, indexed by the window's first time.

    Windows of ``window_rows`` consecutive rows in time order, restarted at each calendar month
    (a month's incomplete last window is dropped: fewer rows, more noise than the alert's window);
    or, with ``freq``, calendar windows (``"1D"``: one per day, the band this module replaced).
    """
    missing = [c for c in (time_col, prediction_col) if c not in predictions.columns]
    if missing:
        raise KeyError(
            f"predictions lack column(s) {missing}: a band needs each row's time and score "
            f"(pass time_col= / prediction_col= if yours are named otherwise)"
        )
    if window_rows < 1:
        raise ValueError(f"window_rows must be at least 1, not {window_rows}")
    times = pd.to_datetime(predictions[time_col])
    flagged = (predictions[prediction_col] >= threshold).astype(float)
    if freq is not None:
        return flagged.groupby(times.dt.floor(freq)).mean().rename("rate")
    order = np.argsort(times.to_numpy(), kind="stable")
    times, flagged = times.iloc[order].reset_index(drop=True), flagged.iloc[order].to_numpy()
    month = times.dt.to_period("M").to_numpy()
    starts, rates = [], []
    for m in pd.unique(month):
        at = np.flatnonzero(month == m)
        n = len(at) // window_rows * window_rows
        if n:
            starts.extend(times.iloc[at[:n:window_rows]])
            rates.extend(flagged[at[:n]].reshape(-1, window_rows).mean(axis=1))
    return pd.Series(rates, index=pd.DatetimeIndex(starts), name="rate", dtype=float)


def positive_rate_band(
    reference_predictions: pd.DataFrame,
    threshold: float = 0.5,
    freq: str | None = None,
    k: float = 3.0,
    time_col: str = "time",
    prediction_col: str = "probability",
    window_rows: int = WINDOW_ROWS,
    sample_fraction: float | None = None,
) -> Band:
    """Mean +/- ``k`` std of the reference's predicted-positive rate over windows as the alert sees.

    ``window_rows`` is the number of *live* rows in the alert's window. A reference that is a
    sample of the traffic (``sample_fraction`` of it; default: the frame's
    ``attrs["sample_fraction"]``, which watch.reference_window sets, else 1) is cut into windows
    of ``window_rows * sample_fraction`` rows: they span the same stretch of time as the live
    window (the same hours and weather), which is what moves the rate most. They also carry a
    little more sampling noise, so the band errs wide. ``freq`` learns the calendar band instead
    (``"1D"``: daily rates, which a 10-minute window does not resemble; kept to compare).
    """
    if sample_fraction is None:
        sample_fraction = float(reference_predictions.attrs.get(SAMPLE_FRACTION, 1.0))
    if not 0 < sample_fraction <= 1:
        raise ValueError(f"sample_fraction must be in (0, 1], not {sample_fraction}")
    rows = max(1, round(window_rows * sample_fraction))
    rates = window_rates(reference_predictions, rows, threshold, time_col, prediction_col, freq)
    if len(rates) < 2:
        size = f"{freq} windows" if freq else f"windows of {rows} rows"
        raise ValueError(
            f"need at least two {size} of reference predictions for a band, got {len(rates)}: "
            "give it more reference rows (a month holds ~27,000 flights) or a smaller window_rows"
        )
    mean, std = float(rates.mean()), float(rates.std())
    low, high = max(0.0, mean - k * std), min(1.0, mean + k * std)
    outside = float(((rates < low) | (rates > high)).mean())
    return Band(
        low=low,
        mean=mean,
        high=high,
        k=k,
        window_rows=None if freq else window_rows,
        freq=freq,
        windows=len(rates),
        false_alarm_rate=outside,
    )
