"""Faults injected into real data, the way upstream systems really break.

Each function takes a batch (a DataFrame) and returns a broken copy. Used by the ingest drill
(``ingest.inject_fault`` in params.yaml), by the tests and by the labs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


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


FAULTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "celsius": celsius,
    "null_carrier": null_carrier,
    "rename_column": rename_column,
    "new_carrier": new_carrier,
}


def inject(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if name == "none":
        return df
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; choose one of: none, {', '.join(FAULTS)}")
    return FAULTS[name](df)
