"""Faults injected into real data, the way upstream systems really break.

Each function takes a batch (a DataFrame) and returns a broken copy. Used by the ingest drill
(``ingest.inject_fault`` in params.yaml), by the tests and by the labs.

Most break a feature, which validation is there to catch. ``arrival_timezone`` breaks the label
instead: every feature stays right, so the batch passes every check, and a model trained on it
learns the wrong thing (the Level 2 ``bad-labels`` drill, reference/loop/drill.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

LABEL = "delayed"  # reference.features.TARGET, spelled out so that this module stands alone


def celsius(df: pd.DataFrame) -> pd.DataFrame:
    """An upstream service switches temperature to Celsius; dew point stays in Fahrenheit."""
    out = df.copy()
    out["temp"] = ((out["temp"] - 32.0) * 5.0 / 9.0).round(2)
    return out


def null_carrier(df: pd.DataFrame, share: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """A join upstream loses the carrier for part of the rows."""
    out = df.copy()
    rng = np.random.default_rng(seed)
    out["carrier"] = out["carrier"].astype(object)
    out.loc[rng.random(len(out)) < share, "carrier"] = None
    return out


def rename_column(df: pd.DataFrame, old: str = "temp", new: str = "temperature") -> pd.DataFrame:
    """A schema change upstream: a column is renamed without telling anyone."""
    return df.rename(columns={old: new})


def new_carrier(
    df: pd.DataFrame, code: str = "ZZ", share: float = 0.2, seed: int = 0
) -> pd.DataFrame:
    """A carrier code the model has never seen (a merger, a new airline, a recoding)."""
    out = df.copy()
    rng = np.random.default_rng(seed)
    out["carrier"] = out["carrier"].astype(object)
    out.loc[rng.random(len(out)) < share, "carrier"] = code
    return out


def wrong_timezone(df: pd.DataFrame, hours: int = 12) -> pd.DataFrame:
    """A sender (or a serving container) whose clock is set to another zone re-derives the
    departure hour: 12 hours off reads a 5 pm flight as 5 am. What the model server's
    ``--fault wrong-timezone`` does inside the server, done to the rows instead. Not in FAULTS:
    every hour stays a valid hour, so this is training/serving skew, not a batch for validate."""
    out = df.copy()
    out["hour"] = (out["hour"].astype(int) + hours) % 24
    return out


def arrival_timezone(df: pd.DataFrame, dest: str = "ORD", minutes: float = 60.0) -> pd.DataFrame:
    """An upstream job computes the arrival delay against the wrong time zone for one airport:
    Chicago's actual arrivals (Central time) are read as Eastern, an hour later than they were.
    Nearly every flight to ORD becomes late (the label ``delayed`` follows ``arr_delay``), while
    every feature is untouched: validation, which checks the features, passes the batch."""
    out = df.copy()
    if "arr_delay" not in out.columns:
        return out
    hit = (out["dest"] == dest) & out["arr_delay"].notna()
    out.loc[hit, "arr_delay"] = out.loc[hit, "arr_delay"] + minutes
    if LABEL in out.columns:  # the same rule as ingest.build: late is more than 15 minutes
        out.loc[hit, LABEL] = (out.loc[hit, "arr_delay"] > 15).astype("float64")
    return out


FAULTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "celsius": celsius,
    "null_carrier": null_carrier,
    "rename_column": rename_column,
    "new_carrier": new_carrier,
    "arrival_timezone": arrival_timezone,
}
# Faults in a column the upstream job computes (the label), not in what it passes through: the
# job recomputes every batch it lands, the months before the bug included, and validation cannot
# see them. Ingest applies these to every landed month, not only to ``ingest.fault_month``.
LABEL_FAULTS = frozenset({"arrival_timezone"})


def inject(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "none":
        return df
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; choose one of: none, {', '.join(FAULTS)}")
    return FAULTS[name](df)
