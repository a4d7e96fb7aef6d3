"""drift_reference: the drift check's reference is the champion's own, with thresholds it earned.

A week of traffic is never like months of it. Against a champion's whole training range, any
week of 2013 scores a drift share of 0.43-0.57: a week has its own weather, and months of
weather are wider than any one week. Such a check says "drift" every time, and after a
promotion it keeps saying it, because the new champion's months are just as wide. An alert that
never clears is ignored. So the Level 2 loop compares like with like:

- the reference is the champion's most recent ``months`` training months: what it learned last
  and what its serving weeks should look like;
- each feature's threshold is ``margin`` times the largest score any of the reference's own
  windows reaches against the reference, rounded up, and never under the base threshold of
  MonitorParams. A feature flags only when the live window moved clearly further than the
  reference's own windows ever did.

Measured on the 2013 data (windows of 7 days, 20,000-row reference, margin 1.25; the windows'
worst score over its threshold without the margin, and what flags; docs/level2.md has more):

========================  ===============  ==================  ================================
champion trained on       serving windows  against all months  calibrated, last 2 months
========================  ===============  ==================  ================================
January-May               August           0.50-0.62           temp at 1.30-1.53x: temp flags
January-June              September        0.54-0.62           at most 1.20x (humid): nothing
January-June              late November    0.54-0.62           2.4x (dewp, temp, humid, wind)
========================  ===============  ==================  ================================

The reference and its thresholds are computed once per champion and recorded on its model
version (``to_tags``), so a promotion resets the check and a restarted loop reads them back.

::

    from reference import drift_reference, monitor
    ref = drift_reference.calibrate(frame, months=(5, 6), window_days=7)
    result = monitor.drift_report(ref.sample, window, thresholds=ref.thresholds)

Nothing happens on import; Evidently is imported by monitor when a score is computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd

from reference import monitor
from reference.monitor import MonitorParams

SAMPLE_ROWS = 20_000  # the reference the check scores against: ~1 s per Evidently run here
# Without a margin, a calm week beats the worst of eight by chance on some feature most of the
# time (measured: January-June's reference against September, humid at 1.15x and 1.20x, visib
# 1.01-1.03x, wind_speed 1.14x); the seasons come in at 1.3x and up (temp in August 1.30-1.53x).
MARGIN = 1.25
TAG = "drift.reference"  # one model-version tag, JSON: months, thresholds and how they were set


@dataclass(frozen=True)
class DriftReference:
    """Months of a champion's training data, and the per-feature thresholds its own windows set."""

    months: tuple[int, ...]
    thresholds: dict[str, float]  # every monitored feature
    windows: int  # how many of the reference's own windows were scored
    window_days: int  # their length: the live check's window
    margin: float
    sample: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def same_recipe(self, months: Sequence[int], window_days: int, margin: float) -> bool:
        """Whether this reference was set the way the current params would set it."""
        return (self.months, self.window_days, self.margin) == (
            tuple(months),
            window_days,
            margin,
        )

    def raised(self, params: MonitorParams | None = None) -> dict[str, float]:
        """The thresholds the reference's own windows pushed above the base level."""
        params = params or MonitorParams()
        base = {c: monitor.base_threshold(c, params) for c in self.thresholds}
        return {c: t for c, t in self.thresholds.items() if t > base[c]}

    def describe(self, params: MonitorParams | None = None) -> str:
        """One line for the event log: which months, and what the calibration raised."""
        raised = self.raised(params)
        moved = ", ".join(f"{c} {t:g}" for c, t in raised.items()) or "none"
        return (
            f"drift reference: months {span(self.months)}; thresholds {self.margin:g}x the "
            f"worst of its own {self.windows} windows of {self.window_days} days (above the "
            f"base: {moved})"
        )

    def to_tags(self) -> dict[str, str]:
        """A model-version tag: the reference is recorded with the version it judges."""
        plain = {
            "months": list(self.months),
            "thresholds": dict(sorted(self.thresholds.items())),
            "windows": self.windows,
            "window_days": self.window_days,
            "margin": self.margin,
        }
        return {TAG: json.dumps(plain)}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> DriftReference | None:
        """The reference recorded on a version; None when it has none, or one that does not
        parse (it is calibrated again)."""
        try:
            d = json.loads(tags[TAG])
            return cls(
                months=tuple(int(m) for m in d["months"]),
                thresholds={str(k): float(v) for k, v in d["thresholds"].items()},
                windows=int(d["windows"]),
                window_days=int(d["window_days"]),
                margin=float(d["margin"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def span(months: Sequence[int]) -> str:
    return f"{months[0]}-{months[-1]}" if len(months) > 1 else str(months[0])


def recent_months(train_months: Sequence[int], count: int) -> tuple[int, ...]:
    """The last ``count`` of the months a champion trained on, oldest first."""
    if count < 1:
        raise ValueError(f"a drift reference needs at least one month (got {count})")
    months = sorted(set(int(m) for m in train_months))
    if not months:
        raise ValueError("the champion has no training months recorded (tag split.train)")
    return tuple(months[-count:])


def windows(frame: pd.DataFrame, days: int, time_col: str = "sched_dep") -> list[pd.DataFrame]:
    """Consecutive whole windows of ``days`` days from the frame's first day (a partial last
    window is left out: it would be judged on fewer flights than the live check sees)."""
    if days < 1:
        raise ValueError(f"a window is at least one day (got {days})")
    day = pd.to_datetime(frame[time_col]).dt.normalize()
    first = day.min()
    index = ((day - first).dt.days // days).to_numpy()
    whole = int((day.max() - first).days + 1) // days
    return [frame[index == i] for i in range(whole)]


def thresholds_from(
    scores: Sequence[Mapping[str, float]],
    params: MonitorParams | None = None,
    margin: float = MARGIN,
) -> dict[str, float]:
    """Per feature: ``margin`` times the largest of its scores, rounded up to the next hundredth
    above it (a window as far off as the worst of the reference's own never flags), never under
    the base threshold."""
    if not scores:
        raise ValueError(
            "no window to calibrate on: the reference months are shorter than one window"
        )
    if margin < 1:
        raise ValueError(f"margin {margin} < 1 would flag the reference's own windows")
    params = params or MonitorParams()
    out = {}
    for col in scores[0]:
        worst = margin * max(s[col] for s in scores)
        out[col] = max(monitor.base_threshold(col, params), (math.floor(worst * 100) + 1) / 100)
    return out


def calibrate(
    frame: pd.DataFrame,
    months: Sequence[int],
    window_days: int,
    params: MonitorParams | None = None,
    margin: float = MARGIN,
    sample_rows: int = SAMPLE_ROWS,
    time_col: str = "sched_dep",
) -> DriftReference:
    """Sample the reference from ``frame`` (the months' flights) and score each of its own
    windows against it: ~0.6 s a window, 8 windows for two months of weekly checks."""
    params = params or MonitorParams()
    sample = _sample(frame, sample_rows)
    own = windows(frame, window_days, time_col)
    scores = [monitor.drift_scores(sample, w, params) for w in own]
    thresholds = thresholds_from(scores, params, margin)
    return DriftReference(tuple(months), thresholds, len(own), window_days, margin, sample)


def with_sample(
    ref: DriftReference, frame: pd.DataFrame, sample_rows: int = SAMPLE_ROWS
) -> DriftReference:
    """A reference read back from tags, with the same sample calibrate drew (same seed)."""
    return replace(ref, sample=_sample(frame, sample_rows))


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The reference the check scores against: seeded, so tags read back meet the same rows."""
    return frame.sample(min(rows, len(frame)), random_state=0)
