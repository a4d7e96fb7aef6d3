"""transform: the fitted feature pipeline that travels with the model.

Categorical columns become integer codes from a vocabulary learned on the training window
(index 0 is the unknown bucket: unseen or rare values, and missing ones). Numeric columns are
imputed with the training median, get a missing flag, and are standardised. Month becomes a
point on a circle (December is next to January).

The fitted state is plain JSON, saved next to the weights and logged with the model, so the server
applies exactly the transform training used, and loading it never unpickles anything.

::

    mlops-lab transform     # inside a workspace project: fits on the train months

The core imports only numpy and pandas, so it runs on a bare GPU machine too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reference.features import CATEGORICAL, NUMERIC

OUT = Path("models/transform.json")
UNKNOWN = 0


@dataclass(frozen=True)
class Encoded:
    """What the network eats: int64 codes (rows x categoricals), float32 values (rows x numerics)."""

    cat: np.ndarray
    num: np.ndarray
    unknown: dict[str, int] = field(default_factory=dict)  # unseen-category count per column

    def __len__(self) -> int:
        return len(self.cat)


@dataclass(frozen=True)
class FeatureTransform:
    vocab: dict[str, list[str]]
    median: dict[str, float]
    mean: dict[str, float]
    std: dict[str, float]

    # ------------------------------------------------------------------ fit / apply
    @classmethod
    def fit(cls, df: pd.DataFrame, min_category_count: int = 20) -> FeatureTransform:
        missing = [c for c in (*CATEGORICAL, *NUMERIC) if c not in df.columns]
        if missing:
            raise KeyError(f"cannot fit the transform: column(s) {missing} are missing")
        vocab = {}
        for col in CATEGORICAL:
            counts = _keys(df[col]).dropna().value_counts()
            vocab[col] = sorted(counts[counts >= min_category_count].index.tolist())
        median, mean, std = {}, {}, {}
        for col in NUMERIC:
            values = pd.to_numeric(df[col], errors="coerce").astype("float64")
            med = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(med)
            median[col], mean[col] = med, float(filled.mean())
            std[col] = float(filled.std()) or 1.0
        return cls(vocab=vocab, median=median, mean=mean, std=std)

    @property
    def cardinalities(self) -> list[int]:
        """Embedding sizes: the vocabulary plus the unknown bucket."""
        return [len(self.vocab[c]) + 1 for c in CATEGORICAL]

    @property
    def num_features(self) -> int:
        # each numeric (month as sin + cos) plus a missing flag per numeric
        return (len(NUMERIC) + 1) + len(NUMERIC)

    def apply(self, data: pd.DataFrame | Mapping[str, Sequence]) -> Encoded:
        """Encode rows: a DataFrame, or a mapping of feature name -> column values (the server's).

        Small batches take a plain-Python path (a dict lookup per value: ~0.1 ms for one row,
        where building pandas objects costs milliseconds); large ones the vectorised pandas
        path. Both give the same codes (tests/unit/test_transform.py checks it).
        """
        names = data.columns if isinstance(data, pd.DataFrame) else data.keys()
        missing = [c for c in (*CATEGORICAL, *NUMERIC) if c not in names]
        if missing:
            raise KeyError(f"input is missing feature column(s) {missing}")
        n = len(data) if isinstance(data, pd.DataFrame) else len(data[CATEGORICAL[0]])
        small = n <= SMALL_BATCH
        cat = np.zeros((n, len(CATEGORICAL)), dtype=np.int64)
        unknown = {}
        for j, col in enumerate(CATEGORICAL):
            if small:
                raw = data[col].tolist() if isinstance(data, pd.DataFrame) else list(data[col])
                lookup = self._lookup(col)
                kinds = set(map(type, raw))
                if kinds == {str} or kinds == {int}:  # what a server request holds: no missing
                    keys = raw if kinds == {str} else list(map(str, raw))
                    present = True
                else:
                    keys = [_key(v) for v in raw]
                    present = np.fromiter((not _missing(v) for v in raw), bool, n)
                codes = np.fromiter(map(lookup.get, keys, repeat(UNKNOWN, n)), np.int64, n)
            else:
                series = data[col] if isinstance(data, pd.DataFrame) else pd.Series(data[col])
                present = series.notna().to_numpy()
                # codes: -1 for missing or unseen, else the position in the vocabulary; +1
                # shifts them so that 0 is the unknown bucket
                codes = (
                    pd.Categorical(_keys(series), categories=self.vocab[col]).codes.astype(np.int64)
                    + 1
                )
            cat[:, j] = codes
            unknown[col] = int(((codes == UNKNOWN) & present).sum())
        if not n:
            return Encoded(
                cat=cat, num=np.zeros((0, self.num_features), np.float32), unknown=unknown
            )
        # all numerics at once, one row per column: the same arithmetic as column by column
        median, mean, std = self._numeric_stats()
        values = np.array([_numbers(data[col]) for col in NUMERIC])
        is_missing = ~np.isfinite(values)
        values = np.where(is_missing, median, values)
        scaled = (values - mean) / std
        m = NUMERIC.index("month")
        angle = 2 * math.pi * (values[m] - 1) / 12
        parts = [scaled[:m], [np.sin(angle), np.cos(angle)], scaled[m + 1 :], is_missing]
        num = np.concatenate(parts).T.astype(np.float32, order="C")
        return Encoded(cat=cat, num=num, unknown=unknown)

    def _numeric_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # median, mean and std as columns (one row per numeric), cached like the lookups
        stats = self.__dict__.get("_stats")
        if stats is None:
            stats = tuple(
                np.array([[part[col]] for col in NUMERIC], dtype="float64")
                for part in (self.median, self.mean, self.std)
            )
            object.__setattr__(self, "_stats", stats)
        return stats

    def _lookup(self, col: str) -> dict[str, int]:
        # cached on the instance (not a dataclass field: equality and JSON ignore it)
        cache = self.__dict__.get("_lookups")
        if cache is None:
            cache = {}
            object.__setattr__(self, "_lookups", cache)
        if col not in cache:
            cache[col] = {v: i + 1 for i, v in enumerate(self.vocab[col])}
        return cache[col]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "mlops-lab/feature-transform@1",
            "categorical": list(CATEGORICAL),
            "numeric": list(NUMERIC),
            "vocab": self.vocab,
            "median": self.median,
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureTransform:
        if data.get("format") != "mlops-lab/feature-transform@1":
            raise ValueError(f"not a feature transform (format={data.get('format')!r})")
        if data["categorical"] != list(CATEGORICAL) or data["numeric"] != list(NUMERIC):
            raise ValueError(
                "the saved transform was fitted on other feature columns than this code expects"
            )
        return cls(vocab=data["vocab"], median=data["median"], mean=data["mean"], std=data["std"])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureTransform:
        return cls.from_dict(json.loads(Path(path).read_text()))


SMALL_BATCH = 256  # rows; below it the plain-Python path is faster than building pandas objects


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def _key(value) -> str | None:
    """One category key, the same text as ``_keys`` gives: numbers as their integer text."""
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else None  # 9.5 is no hour
    return str(value)


def _numbers(column) -> np.ndarray:
    """A column as float64 with NaN for missing (and, as pandas' coerce does, for non-numbers)."""
    if isinstance(column, pd.Series):
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    try:  # numpy reads None as NaN itself; pd.NA and text that is no number raise
        return np.array(column, dtype="float64")
    except (TypeError, ValueError):
        pass
    try:
        return np.array([np.nan if _missing(v) else v for v in column], dtype="float64")
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(list(column)), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )


def _keys(raw: pd.Series) -> pd.Series:
    """Category keys as strings; numbers as their integer text, so 9, 9.0 and "9" all match."""
    if pd.api.types.is_bool_dtype(raw) or not pd.api.types.is_numeric_dtype(raw):
        return raw.astype("string")
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    whole = values.where(np.floor(values) == values)  # 9.5 is no hour: unknown
    return whole.astype("Int64").astype("string")


def run(train_df: pd.DataFrame, min_category_count: int = 20, out: Path = OUT) -> FeatureTransform:
    """Fit on the training window and save; returns the fitted transform."""
    fitted = FeatureTransform.fit(train_df, min_category_count=min_category_count)
    fitted.save(out)
    return fitted
