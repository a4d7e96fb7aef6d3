"""validate: check every monthly batch against a reference profile before anything trains on it.

The profile (missing rates, moments, quantiles, category frequencies) is built from the
reference months; each batch of the run window is then checked: schema (pandera), missing rate,
physical range, unseen categories, drift and a physical invariant. A check is ``ok``, ``warn``
(reported: the gray areas a person looks at) or ``fail`` (the pipeline stops).

::

    mlops-lab validate      # inside a workspace project: writes reports/validation.{json,md}

or from Python: ``validate.run(config.load_params())``. The core (``build_profile``,
``check_batch``) is pure; pandera and scipy are imported only when a check runs, so importing
this module stays fast.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reference import ingest
from reference.config import Params, ValidateParams
from reference.features import CATEGORICAL, FEATURES, NUMERIC, ORIGINS, RANGES, TARGET

OUT_DIR = Path("reports")
SEVERITIES = ("ok", "warn", "fail")
# Drift compares quantile functions on one grid of 101 mid-point levels (never the min and max):
# W1 is the mean gap between the two quantile functions, so a batch equal to the reference
# scores 0 exactly, and one extreme value cannot move the score.
QUANTILES = (np.arange(101) + 0.5) / 101
DEW_MARGIN = 1.0  # °F: readings are rounded; slack so that rounding never counts as physics
# The month of a batch differs from the reference months by construction: its "drift" is the
# calendar, not the data, and a warning that is always on teaches people to ignore warnings.
NO_DRIFT = ("month",)


@dataclass(frozen=True)
class Check:
    batch: str
    column: str
    check: str  # schema | missing_rate | out_of_range | unseen_category | drift | invariant
    value: float | None
    warn: float | None  # None: the check never warns (it fails or passes)
    fail: float | None  # None: the check only warns
    severity: str  # ok | warn | fail
    message: str


def _pct(x: float) -> str:
    """30.1%, 0.13%, 0.0034%: enough digits that one row in 30,000 does not print as 0.00%."""
    if 0 < abs(x) < 0.0001:
        return f"{100 * x:.2g}%"
    return f"{x:.2%}" if 0 < abs(x) < 0.01 else f"{x:.1%}"


def _grade(value: float, warn: float | None, fail: float | None) -> str:
    if fail is not None and value > fail:
        return "fail"
    return "warn" if warn is not None and value > warn else "ok"


def _limits(severity: str, warn: float | None, fail: float | None, fmt, sign: str = "") -> str:
    """The thresholds the reader needs: the one crossed on a fail, otherwise what would trip."""
    if severity == "fail" or warn is None:
        return f"fail above {sign}{fmt(fail)}"
    return f"warn above {sign}{fmt(warn)}, " + (
        f"fail above {sign}{fmt(fail)}" if fail is not None else "warn only"
    )


def _numeric(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _in_range(col: str, values: pd.Series) -> pd.Series:
    lo, hi = RANGES.get(col, (-np.inf, np.inf))
    return values.notna() & values.between(lo, hi)


def _categories(s: pd.Series) -> pd.Series:
    """Non-missing values as strings; 5.0 and 5 are the same hour (a NaN makes ints floats)."""
    s = s.dropna()
    out = s.astype(str)
    if pd.api.types.is_float_dtype(s):
        whole = s % 1 == 0
        out[whole] = s[whole].astype("int64").astype(str)
    return out


def _dew_above_temp(df: pd.DataFrame) -> float:
    both = _numeric(df["dewp"]).notna() & _numeric(df["temp"]).notna()
    above = _numeric(df["dewp"]) > _numeric(df["temp"]) + DEW_MARGIN
    return float(above[both].mean()) if both.any() else 0.0


# ------------------------------------------------------------------------------------ profile


def build_profile(df: pd.DataFrame) -> dict[str, Any]:
    """The reference profile, plain JSON: what a good batch looks like."""
    missing = [c for c in FEATURES if c not in df.columns]
    if missing:
        raise KeyError(f"cannot build the reference profile: column(s) {missing} are missing")
    numeric = {}
    for col in NUMERIC:
        values = _numeric(df[col])
        # Moments and quantiles over in-range values only: a 1048 mph glitch is an error (the
        # range check reports it), and left in it would inflate the std every drift divides by.
        valid = values[_in_range(col, values)].to_numpy()
        numeric[col] = {
            "missing_rate": float(df[col].isna().mean()),
            "mean": float(valid.mean()) if len(valid) else None,
            "std": float(valid.std()) if len(valid) else None,
            "quantiles": np.quantile(valid, QUANTILES).tolist() if len(valid) else [],
        }
    categorical = {
        col: {
            "missing_rate": float(df[col].isna().mean()),
            "frequencies": {
                k: float(v) for k, v in _categories(df[col]).value_counts(normalize=True).items()
            },
        }
        for col in CATEGORICAL
    }
    return {
        "rows": int(len(df)),
        "months": sorted(int(m) for m in df["month"].dropna().unique()),
        "numeric": numeric,
        "categorical": categorical,
        "invariant": {"dewp_above_temp": _dew_above_temp(df)},
    }


# ------------------------------------------------------------------------------------- checks


def _schema(df: pd.DataFrame, name: str) -> list[Check]:
    """Columns, dtypes and origins with pandera; every failure case becomes a fail Check."""
    import pandera.pandas as pa

    columns = {c: pa.Column(float, coerce=True, nullable=True) for c in NUMERIC}
    columns |= {c: pa.Column(str, nullable=True) for c in ("carrier", "dest")}
    columns["origin"] = pa.Column(str, pa.Check.isin(list(ORIGINS)), nullable=True)
    # hour and weekday are categories coded as integers: 5.5 o'clock is a broken feed.
    columns |= {c: pa.Column("Int64", coerce=True, nullable=True) for c in ("hour", "weekday")}
    # The other columns ingest writes are allowed, so strict=True flags only unknown columns.
    columns |= {c: pa.Column(required=False, nullable=True) for c in (*ingest.KEEP, TARGET)}
    try:
        pa.DataFrameSchema(columns, strict=True).validate(df, lazy=True)
        return [Check(name, "*", "schema", None, None, 0.0, "ok", f"{name}: schema ok")]
    except pa.errors.SchemaErrors as e:
        cases = e.failure_cases
    unknown = cases.loc[cases["check"] == "column_in_schema", "failure_case"].astype(str).tolist()
    checks = []
    for col in cases.loc[cases["check"] == "column_in_dataframe", "failure_case"].astype(str):
        hint = f"; {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a known column"
        msg = f"{name} {col}: schema: {col} is missing" + (hint if unknown else "")
        checks.append(Check(name, col, "schema", None, None, 0.0, "fail", msg))
    for col in unknown:  # a rename shows up twice: the lost column fails, the new one warns
        msg = f"{name} {col}: schema: unexpected column {col} (not a feature or ingest column)"
        checks.append(Check(name, col, "schema", None, 0.0, None, "warn", msg))
    for col, part in cases[cases["column"].notna()].groupby("column"):
        rows = part["index"].dropna().nunique()
        share = rows / max(len(df), 1)
        examples = ", ".join(part["failure_case"].dropna().astype(str).unique()[:3])
        check = str(part["check"].iloc[0])  # coerce_dtype('float64'), dtype('str'), isin([...])
        what = f"not readable as {check.split(chr(39))[1]}" if "dtype" in check else check
        what = f"not one of {', '.join(ORIGINS)}" if check.startswith("isin") else what
        msg = (
            f"{name} {col}: schema: {rows} rows ({_pct(share)}) {what}, e.g. {examples}"
            if rows  # element-wise failures, or the whole column (5.5 is no hour)
            else f"{name} {col}: schema: the column is {what} (dtype {examples})"
        )
        checks.append(
            Check(name, str(col), "schema", share if rows else 1.0, None, 0.0, "fail", msg)
        )
    return checks


def check_batch(
    df: pd.DataFrame, profile: dict[str, Any], params: ValidateParams, name: str
) -> list[Check]:
    """Every check of one batch against the profile; pure, never raises on bad data."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    p = params
    checks = _schema(df, name)
    present = [c for c in FEATURES if c in df.columns]  # a missing column was failed above

    def add(col: str, check: str, value: float, warn, fail, text: str) -> None:
        checks.append(Check(name, col, check, value, warn, fail, _grade(value, warn, fail), text))

    for col in present:
        ref = profile["numeric"].get(col) or profile["categorical"][col]
        rate, ref_rate = float(df[col].isna().mean()), ref["missing_rate"]
        sev = _grade(rate - ref_rate, p.missing_rate_warn, p.missing_rate_fail)
        lim = _limits(sev, p.missing_rate_warn, p.missing_rate_fail, _pct, "+")
        text = f"{name} {col}: missing rate {_pct(rate)} (reference {_pct(ref_rate)}, {lim})"
        add(col, "missing_rate", rate - ref_rate, p.missing_rate_warn, p.missing_rate_fail, text)

    for col in (c for c in present if c in RANGES):
        values = _numeric(df[col])
        known = values.notna()
        outside = known & ~_in_range(col, values)
        share = float(outside.sum() / known.sum()) if known.any() else 0.0
        sev = _grade(share, p.out_of_range_warn, p.out_of_range_fail)
        lo, hi = RANGES[col]
        worst = f"; e.g. {values[outside].iloc[0]:g}" if outside.any() else ""
        lim = _limits(sev, p.out_of_range_warn, p.out_of_range_fail, _pct)
        text = f"{name} {col}: {_pct(share)} of values out of range [{lo:g}, {hi:g}]{worst} ({lim})"
        add(col, "out_of_range", share, p.out_of_range_warn, p.out_of_range_fail, text)

    for col in (c for c in CATEGORICAL if c in present):
        freq = profile["categorical"][col]["frequencies"]
        values = _categories(df[col])
        unseen = values[~values.isin(list(freq))]
        share = len(unseen) / max(len(df), 1)
        sev = _grade(share, p.unseen_category_warn, p.unseen_category_fail)
        codes = ", ".join(unseen.value_counts().index[:5])
        lim = _limits(sev, p.unseen_category_warn, p.unseen_category_fail, _pct)
        text = f"{name} {col}: unseen categories in {_pct(share)} of rows" + (
            f" ({codes}; {lim})" if codes else f" ({lim})"
        )
        add(col, "unseen_category", share, p.unseen_category_warn, p.unseen_category_fail, text)

        # Jensen-Shannon distance (base 2: 0 same, 1 disjoint) over the union of categories.
        if len(values):
            batch = values.value_counts(normalize=True)
            keys = sorted(set(freq) | set(batch.index))
            dist = float(
                jensenshannon(
                    [freq.get(k, 0.0) for k in keys], batch.reindex(keys, fill_value=0.0), base=2
                )
            )
            _drift(add, name, col, dist, "Jensen-Shannon", p)

    for col in (c for c in NUMERIC if c in present and c not in NO_DRIFT):
        ref = profile["numeric"][col]
        values = _numeric(df[col])
        valid = values[_in_range(col, values)]
        if len(valid) and ref["quantiles"]:
            # Wasserstein-1 in units of the reference std: 0.1 = the mass moved a tenth of a std.
            batch_q = np.quantile(valid.to_numpy(), QUANTILES)
            dist = wasserstein_distance(ref["quantiles"], batch_q) / (ref["std"] or 1.0)
            _drift(add, name, col, float(dist), "Wasserstein / reference std", p)

    if {"dewp", "temp"} <= set(present):
        # Physics: the dew point cannot exceed the temperature. This is the only check that sees
        # an upstream switch of temp to Celsius (faults.celsius): 25 °C sits inside the physical
        # range, and a July in Celsius drifts *less* from the winter reference (1.2 std) than
        # the real July does (5.2 std), so no range or drift check can tell it from summer. But
        # a dew point of 65 °F above a "temperature" of 25 breaks physics on every row.
        share, base = _dew_above_temp(df), profile["invariant"]["dewp_above_temp"]
        lim = _limits("fail", None, p.invariant_fail, _pct)
        text = (
            f"{name} dewp/temp: invariant broken, dewp > temp + {DEW_MARGIN:g} °F in "
            f"{_pct(share)} of rows (reference {_pct(base)}, {lim})"
        )
        add("dewp/temp", "invariant", share, None, p.invariant_fail, text)
    return checks


def _drift(add, name: str, col: str, dist: float, how: str, p: ValidateParams) -> None:
    # Drift is warn-only by default (drift_fail None): the seasons move the data for real (July
    # temperatures sit 5 std above a January-March reference), so a summer batch far from a
    # winter reference is news for a person, not a broken feed; a drift fail would stop every
    # summer run and teach people to raise the threshold until it means nothing.
    # Two scales, two levels: a Wasserstein distance in reference std (numbers) and a
    # Jensen-Shannon distance in [0, 1] (categories) mean different things at the same value.
    warn = p.drift_warn_categorical if how.startswith("Jensen") else p.drift_warn
    sev = _grade(dist, warn, p.drift_fail)
    text = f"{name} {col}: drift {dist:.3f} ({how}; "
    text += _limits(sev, warn, p.drift_fail, lambda x: f"{x:.2f}") + ")"
    add(col, "drift", dist, warn, p.drift_fail, text)


# ------------------------------------------------------------------------------------- report


@dataclass
class ValidationReport:
    checks: list[Check]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(ch.severity for ch in self.checks)
        return {s: c.get(s, 0) for s in SEVERITIES}

    @property
    def passed(self) -> bool:
        return self.counts["fail"] == 0

    def by_batch(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter] = {}
        for ch in self.checks:
            out.setdefault(ch.batch, Counter())[ch.severity] += 1
        return {b: {s: c.get(s, 0) for s in SEVERITIES} for b, c in out.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "counts": self.counts,
            "batches": self.by_batch(),
            "checks": [asdict(ch) for ch in self.checks],
        }

    def summary(self) -> str:
        counts = self.counts
        lines = [
            "# Data validation",
            "",
            f"{len(self.by_batch())} batches, {len(self.checks)} checks: "
            f"{counts['fail']} fail, {counts['warn']} warn, {counts['ok']} ok",
            "",
        ]
        lines += [
            f"- {b}: {c['fail']} fail, {c['warn']} warn, {c['ok']} ok"
            for b, c in self.by_batch().items()
        ]
        for severity, title in (("fail", "Failed"), ("warn", "Warnings")):
            messages = [ch.message for ch in self.checks if ch.severity == severity]
            if messages:
                lines += ["", f"## {title}", "", *(f"- {m}" for m in messages)]
        n_fail, n_warn = counts["fail"], counts["warn"]
        verdict = (
            f"validation FAILED: {n_fail} check{'s' * (n_fail != 1)} failed; the pipeline stops here"
            if n_fail
            else f"validation passed with {n_warn} warning{'s' * (n_warn != 1)}"
        )
        return "\n".join([*lines, "", verdict]) + "\n"


class ValidationFailed(Exception):
    """A check failed: the message lists the failed checks, ``report`` holds all of them."""

    def __init__(self, report: ValidationReport):
        self.report = report
        fails = [ch.message for ch in report.checks if ch.severity == "fail"]
        super().__init__("validation failed:\n" + "\n".join(f"  {m}" for m in fails))


# ---------------------------------------------------------------------------------------- run


def run(
    params: Params, batch_dir: Path = ingest.BATCH_DIR, out_dir: Path = OUT_DIR
) -> ValidationReport:
    """Profile the reference months, check every month of the run window, write the reports."""
    profile = build_profile(ingest.read_months(list(params.validate.reference_months), batch_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "reference_profile.json").write_text(
        json.dumps(profile, indent=2, allow_nan=False) + "\n"
    )
    windows = params.split.months()
    months = sorted({m for window in windows.values() for m in window})
    checks: list[Check] = []
    for month in months:
        batch = ingest.read_months([month], batch_dir)
        checks += check_batch(batch, profile, params.validate, f"2013-{month:02d}")
    report = ValidationReport(checks)
    (out_dir / "validation.json").write_text(
        json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    )
    (out_dir / "validation.md").write_text(report.summary())
    if not report.passed:  # after writing: the learner reads the reports to see why it stopped
        raise ValidationFailed(report)
    return report
