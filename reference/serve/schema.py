"""The request contract of the predictor: what a well-formed request is, and what each mistake says.

Pure functions, no server: every predictable mistake raises ``BadRequest`` with an HTTP status and
a message that names the field, the row and what was expected, so a client can fix its request
without reading server logs. An unseen category or an odd weather reading is *not* a mistake: the
row is scored (unknown bucket, imputation) and counted by the monitoring instead. The V2 body's
structure (shapes against data, binary sizes) is checked before this, in ``reference.serve.tensors``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reference.features import FEATURES

STRINGS = ("carrier", "origin", "dest")
CALENDAR = {"hour": (0, 23), "weekday": (0, 6), "month": (1, 12)}  # a wrong hour is a bug, not data
REQUIRED = (*STRINGS, *CALENDAR, "distance")
NULLABLE = tuple(f for f in FEATURES if f not in REQUIRED)  # weather: sensors go missing


class BadRequest(Exception):
    """A request the client must fix: ``status`` is the HTTP code (400, 413), ``message`` says what."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Limits:
    """How much one request may carry: rows (413 above) and body bytes."""

    max_batch: int = 1024  # rows in one request
    max_body_bytes: int = 1 << 20  # 1 MiB: about 2,000 rows of V1 JSON


def _suggest(name: str) -> str:
    # "temperature" for "temp", "dep_hour" for "hour": prefixes and suffixes first, then spelling
    lowered = name.lower()
    close = [
        f for f in FEATURES if lowered.startswith(f) or lowered.endswith(f) or f.startswith(lowered)
    ]
    close = close or difflib.get_close_matches(lowered, FEATURES, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_value(field: str, value: Any, where: str) -> None:
    if value is None:
        if field in REQUIRED:
            raise BadRequest(400, f"{where}: '{field}' is null; it is required")
        return
    if field in STRINGS:
        if not isinstance(value, str) or not value:
            raise BadRequest(400, f"{where}: '{field}' must be a non-empty string, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(
            400, f"{where}: '{field}' must be a number, got {type(value).__name__} {value!r}"
        )
    if not math.isfinite(value):
        raise BadRequest(400, f"{where}: '{field}' must be a finite number, got {value!r}")
    if field in CALENDAR:
        low, high = CALENDAR[field]
        if value != int(value) or not low <= value <= high:
            raise BadRequest(
                400, f"{where}: '{field}' must be an integer from {low} to {high}, got {value!r}"
            )


def parse_instances(records: Any, limits: Limits) -> dict[str, list]:
    """V1 ``instances``: a list of objects, one per flight, with exactly the feature fields."""
    if not isinstance(records, list):
        raise BadRequest(
            400, f"'instances' must be a list of objects, got {type(records).__name__}"
        )
    _check_size(len(records), limits)
    # a few rows: the row-by-row checks are cheaper than setting up the column-wise ones
    columns = _valid_columns(records) if len(records) >= 4 else None
    if columns is not None:
        return columns
    # something is wrong (or unusual): the row-by-row checks find the first mistake and say it
    expected = set(FEATURES)
    for i, row in enumerate(records):
        where = f"instances[{i}]"
        if not isinstance(row, dict):
            raise BadRequest(
                400,
                f"{where} must be an object with fields {list(FEATURES)}, got {type(row).__name__}",
            )
        keys = set(row)
        if keys != expected:
            unknown = sorted(keys - expected)
            missing = sorted(expected - keys)
            parts = []
            if missing:
                parts.append(f"missing field(s) {missing}")
            if unknown:
                parts.append(
                    "unknown field(s) " + ", ".join(f"'{u}'{_suggest(u)}" for u in unknown)
                )
            raise BadRequest(400, f"{where}: " + "; ".join(parts))
        for field in FEATURES:
            _check_value(field, row[field], where)
    return {f: [row[f] for row in records] for f in FEATURES}


def parse_tensors(columns: dict[str, np.ndarray], limits: Limits) -> dict[str, list]:
    """V2 ``inputs``: one 1-D tensor per feature, all the same length."""
    names = set(columns)
    expected = set(FEATURES)
    if names != expected:
        missing, unknown = sorted(expected - names), sorted(names - expected)
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if unknown:
            parts.append("unknown input(s) " + ", ".join(f"'{u}'{_suggest(u)}" for u in unknown))
        raise BadRequest(400, "inputs: " + "; ".join(parts))
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise BadRequest(400, f"inputs must all have the same length, got {lengths}")
    rows = next(iter(lengths.values()))
    _check_size(rows, limits)
    out = {}
    for field in FEATURES:
        values = _valid_tensor(field, columns[field]) if rows > 8 else None  # numpy's set-up
        if values is not None:
            out[field] = values
            continue
        # something is wrong (or unusual): value by value, to name the first mistake
        values = [v.decode() if isinstance(v, bytes) else v for v in columns[field].tolist()]
        # a null in an FP tensor arrives as NaN: a missing reading where that is allowed
        values = [
            None if field in NULLABLE and isinstance(v, float) and v != v else v for v in values
        ]
        for i, value in enumerate(values):
            _check_value(field, value, f"inputs['{field}'][{i}]")
        out[field] = values
    return out


# The fast paths below accept only what the value-by-value checks (``_check_value``) accept,
# column by column with C-level loops; anything else goes to those checks, which say what is
# wrong. They answer the same as the checks for every input (tests/unit/test_schema.py).
_NUMBER_TYPES = {int, float}
_NULLABLE_NUMBER_TYPES = {int, float, type(None)}


def _valid_columns(records: list) -> dict[str, list] | None:
    """V1 rows as columns when every row is a dict of exactly the features with valid values;
    None when anything is off (then the row-by-row checks name the first mistake)."""
    n = len(FEATURES)
    if set(map(type, records)) != {dict} or set(map(len, records)) != {n}:
        return None
    try:  # n keys each and every feature present: exactly the features
        columns = {f: [row[f] for row in records] for f in FEATURES}
    except KeyError:
        return None
    for field, values in columns.items():
        if not _valid_values(field, values):
            return None
    return columns


def _valid_values(field: str, values: list) -> bool:
    """True when ``_check_value`` accepts every one of the values (False: it may not)."""
    kinds = set(map(type, values))
    if field in STRINGS:
        return kinds == {str} and all(values)  # non-empty strings
    if not kinds <= (_NUMBER_TYPES if field in REQUIRED else _NULLABLE_NUMBER_TYPES):
        return False  # bools, strings, nulls where required, numpy scalars: checked one by one
    if field in CALENDAR:
        low, high = CALENDAR[field]
        return kinds == {int} and low <= min(values) and max(values) <= high
    numbers = values if type(None) not in kinds else [v for v in values if v is not None]
    try:
        return all(map(math.isfinite, numbers))
    except OverflowError:  # an int too large for a float: the checks raise it as they always did
        return False


def _valid_tensor(field: str, array: np.ndarray) -> list | None:
    """A V2 tensor's values as ``parse_tensors`` gives them (text, numbers, None for a NaN
    reading) when all are valid; None when any may not be."""
    kind = array.dtype.kind
    if field in STRINGS:
        if kind != "O":
            return None
        values = array.tolist()
        kinds = set(map(type, values))
        if kinds == {bytes}:
            try:
                values = [v.decode() for v in values]
            except UnicodeDecodeError:
                return None
        elif kinds != {str}:
            return None
        return values if all(values) else None
    if kind not in "iuf":  # bools, objects: checked one by one
        return None
    if field in CALENDAR:
        low, high = CALENDAR[field]
        if len(array) and not (
            (array >= low).all() and (array <= high).all() and (array == np.floor(array)).all()
        ):
            return None  # NaN fails every comparison, so it lands here too
        return array.tolist()
    if kind in "iu":
        return array.tolist()
    finite = np.isfinite(array)
    if finite.all():
        return array.tolist()
    if field not in NULLABLE or not np.isnan(array[~finite]).all():
        return None  # infinity, or NaN where a value is required
    return [None if v != v else v for v in array.tolist()]


def to_frame(columns: dict[str, list]) -> pd.DataFrame:
    """The parsed columns as a typed DataFrame (for notebooks and the payload log reader)."""
    frame = pd.DataFrame(columns, columns=list(FEATURES))
    for col in CALENDAR:
        frame[col] = frame[col].astype("int64")
    for col in ("distance", *NULLABLE):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def _check_size(n: int, limits: Limits) -> None:
    if n == 0:
        raise BadRequest(400, "the batch is empty: send at least one row")
    if n > limits.max_batch:
        raise BadRequest(
            413,
            f"the batch has {n} rows; this server accepts at most {limits.max_batch} per request",
        )
