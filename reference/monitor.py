"""monitor: drift and live quality of the *served* model, with Evidently 0.7 and Prometheus gauges.

``validate`` guards the pipeline (is this batch fit to train on?). This module watches serving:
has the traffic moved away from the training reference, have the predictions moved, and, once the
delayed labels land, is the model still right? A server can answer 200 OK all day and be wrong.

::

    from reference import monitor
    result = monitor.drift_report(reference, window)    # frames with FEATURES (+ "probability")
    result.to_dict(); result.to_html("reports/drift.html")
    table = monitor.compare_methods(reference, window)   # p-value tests vs distances, per feature
    live = monitor.live_performance(payload_log, outcomes, window="1D")
    monitor.export_gauges(result, live, registry)        # a prometheus_client CollectorRegistry

Evidently is imported inside the functions that run a report: ``import evidently`` takes 3-5 s
here, which a server or a CLI should not pay at start. Nothing happens on import.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reference import metrics
from reference.band import Band, positive_rate_band  # noqa: F401  (re-exported: monitor's API)
from reference.features import CATEGORICAL, FEATURES, RANGES, TARGET


@dataclass(frozen=True)
class MonitorParams:
    """Drift methods and thresholds, the live-quality floor and the positive-rate band.

    The defaults were measured on the 2013 data: the comments in the source say how.
    """

    # Distances, not p-values. Measured on the real data (Evidently 0.7.23, whole frames):
    # - two random halves of January (no drift by construction), 20 seeds: no normed Wasserstein
    #   or Jensen-Shannon score above 0.05 (worst: dest 0.050, dewp 0.042). KS/chi-square at 0.05
    #   flagged 2-7 of 14 features per split. KS keeps its promise (8 of 180 numeric tests, ~5%);
    #   Evidently's chi-square does not (dest 20 of 20 splits, carrier 18, hour 16, weekday 12):
    #   it tests the current counts against the reference counts taken as exact, and a category
    #   missing from the reference has expected count 0, so p = 0.
    # - January vs February: p-values flag weekday and visib at JS 0.04 / W 0.03 (February 2013
    #   has exactly four of each weekday): real, significant, and of no consequence to anyone.
    # - winter (Jan-Mar) vs July: the distances flag 9 of 14 (temp 5.24, dewp 3.66, wind_speed
    #   0.36, pressure 0.34, wind_dir 0.32, humid 0.32, visib 0.28, precip 0.19, dest 0.105);
    #   the p-values flag all 14, 13 of them at p < 1e-12: they say "different", never how far.
    # 0.1 is twice the worst noise of the 20 splits and under the smallest seasonal weather move.
    numeric_method: str = "wasserstein"  # W1 / reference std: 0.1 = a tenth of a std moved
    numeric_threshold: float = 0.1
    # Evidently's JS uses the natural log: 0 (same) to 0.83 (disjoint), where validate's base-2
    # distance tops at 1; the same 0.1 is a slightly stricter level here (0.1 = 0.12 in base 2).
    categorical_method: str = "jensenshannon"
    categorical_threshold: float = 0.1
    # The score is a number in [0, 1]; drift in reference std, the unit monitoring/alerts.yml uses.
    prediction_method: str = "wasserstein"
    prediction_threshold: float = 0.1
    # Evidently's rule (share >= drift_share). 8 of the 14 features are weather, so 0.5 means
    # "the weather and more moved": July vs winter scores 9/14 = 0.64, January vs February 6/14.
    drift_share_alert: float = 0.5
    # The month of a window differs from the reference months by construction: its drift is the
    # calendar, not the data (as in validate). Still checked for missing and out-of-range values.
    exclude: tuple[str, ...] = ("month",)
    # AUC's standard error (Hanley-McNeil) at 500 labelled rows, 23-31% delayed, AUC 0.68-0.71:
    # 0.026-0.030. Fewer rows and a window's AUC is mostly noise, so it is reported as NaN.
    min_labelled_rows: int = 500
    # The champion's holdout AUC is ~0.68-0.71; 0.6 sits 2.7-4.2 standard errors below it at 500
    # rows, so a healthy model seldom dips under it by chance (the alert rule uses the same 0.6).
    live_auc_floor: float = 0.6
    decision_threshold: float = 0.5  # the server's operating threshold, when the log has no label
    # The reference positive-rate band (reference.band): mean +/- band_k std of the rates of
    # windows of band_rows consecutive rows, as the alert's 10-minute window sees them (300: its
    # traffic guard). Measured (bench/band.py, a January-June champion): 0-81% where the daily
    # band read 0-64%, 3.8% of the reference's own windows outside, not the 0.3% of a bell curve:
    # the rates pile up at 0% (calm hours) with a long storm tail. band_freq="1D": the daily band.
    band_rows: int = 300
    band_k: float = 3.0
    band_freq: str | None = None
    time_col: str = "time"  # the payload log's request time


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift: the method, its threshold, the score, and the verdict."""

    kind: str  # numerical | categorical
    method: str
    threshold: float
    score: float
    drifted: bool  # Evidently's verdict: p < threshold for tests, score >= threshold for distances


@dataclass(frozen=True)
class ColumnQuality:
    """One column's missing, out-of-range and unseen shares in the window."""

    missing_share: float
    reference_missing_share: float
    out_of_range_share: float | None  # of non-missing values; None: no range in features.RANGES
    unseen_share: float | None  # of non-missing values, categories absent from the reference


@dataclass(frozen=True)
class DriftResult:
    """One window judged against the reference: per-feature and prediction drift, data quality."""

    features: dict[str, ColumnDrift]
    drift_share: float
    dataset_drift: bool
    prediction: ColumnDrift | None
    data_quality: dict[str, ColumnQuality]
    rows: dict[str, int]
    positive_rate_band: Band | None  # unpacks as (low, mean, high); reference.band
    params: MonitorParams
    snapshot: Any = field(default=None, repr=False, compare=False)  # evidently Snapshot

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, d in self.features.items() if d.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (NaN as null); the Evidently snapshot stays out: see to_html."""
        band = self.positive_rate_band
        return _plain(
            {
                "rows": self.rows,
                "drift_share": self.drift_share,
                "dataset_drift": self.dataset_drift,
                "drifted_features": self.drifted_features,
                "features": {k: asdict(v) for k, v in self.features.items()},
                "prediction": asdict(self.prediction) if self.prediction else None,
                "data_quality": {k: asdict(v) for k, v in self.data_quality.items()},
                "positive_rate_band": band.to_dict() if band else None,
                "params": asdict(self.params),
            }
        )

    def to_html(self, path: str | Path) -> Path:
        """Evidently's HTML report of this window (self-contained, ~4 MB for 80k + 30k rows)."""
        if self.snapshot is None:
            raise ValueError("this result has no Evidently snapshot: run drift_report again")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # str, not Path: Snapshot.save_html in 0.7.23 silently writes nothing for anything else.
        self.snapshot.save_html(str(path))
        return path


def _plain(value: Any) -> Any:
    """numpy scalars to Python, NaN to None, tuples to lists: what json.dumps accepts strictly."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _require(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(
            f"{name} lacks column(s) {missing}: a monitoring window needs every feature of "
            "reference.features.FEATURES (a renamed column upstream? see validate's schema check)"
        )


def _method(col: str, p: MonitorParams) -> tuple[str, str, float]:
    if col in CATEGORICAL:
        return "categorical", p.categorical_method, p.categorical_threshold
    return "numerical", p.numeric_method, p.numeric_threshold


def base_threshold(col: str, params: MonitorParams = MonitorParams()) -> float:
    """The threshold params set for a feature (categorical or numeric), before any calibration."""
    return _method(col, params)[2]


def _drifted(result: Any, col: str) -> bool:
    if not result.tests:
        raise RuntimeError(f"Evidently returned no drift verdict for {col}")
    return any(t.status.value == "FAIL" for t in result.tests)


def _run(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], report_metrics: list):
    from evidently import DataDefinition, Dataset, Report

    # Column kinds set explicitly: Evidently would guess hour and weekday (ints) as numbers.
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c not in CATEGORICAL],
        categorical_columns=[c for c in columns if c in CATEGORICAL],
    )
    # include_tests: a ValueDrift's verdict is its test; the quality metrics pass tests=[] so
    # Evidently adds none of its implicit "within 10% of the reference" tests to the report.
    report = Report(report_metrics, include_tests=True)
    return report.run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def drift_scores(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: MonitorParams = MonitorParams(),
) -> dict[str, float]:
    """Each monitored feature's drift score (params' methods), without verdicts or data quality:
    what reference.drift_reference calibrates thresholds from (a third of drift_report's time)."""
    from evidently.metrics import ValueDrift

    _require(reference, FEATURES, "reference")
    _require(current, FEATURES, "current")
    monitored = [c for c in FEATURES if c not in params.exclude]
    how = {c: _method(c, params) for c in monitored}
    drift = {c: ValueDrift(column=c, method=m, threshold=t) for c, (_, m, t) in how.items()}
    res = _run(reference, current, list(FEATURES), list(drift.values())).metric_results
    return {c: float(res[drift[c].metric_id].value) for c in monitored}


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: MonitorParams = MonitorParams(),
    prediction_col: str = "probability",
    thresholds: Mapping[str, float] | None = None,
) -> DriftResult:
    """Per-feature, prediction and dataset drift plus data quality of a window, in one Evidently run.

    Takes ~2 s for a 80k-row reference and a 30k-row window. The prediction column is judged
    when both frames have it; the positive-rate band when the reference also has ``time_col``.
    ``thresholds`` replaces params' threshold for the features it names (the loop's calibrated
    reference, reference.drift_reference); the method stays params'.
    """
    from evidently.metrics import (
        DriftedColumnsCount,
        MissingValueCount,
        OutListValueCount,
        OutRangeValueCount,
        ValueDrift,
    )

    _require(reference, FEATURES, "reference")
    _require(current, FEATURES, "current")
    monitored = [c for c in FEATURES if c not in params.exclude]
    how = {c: _method(c, params) for c in monitored}
    unknown = sorted(set(thresholds or {}) - set(monitored))
    if unknown:
        raise ValueError(f"thresholds for {unknown}: not monitored features (one of {monitored})")
    how = {c: (k, m, float((thresholds or {}).get(c, t))) for c, (k, m, t) in how.items()}
    drift = {c: ValueDrift(column=c, method=m, threshold=t) for c, (_, m, t) in how.items()}
    with_pred = prediction_col in reference.columns and prediction_col in current.columns
    pred = ValueDrift(
        column=prediction_col,
        method=params.prediction_method,
        threshold=params.prediction_threshold,
    )
    # The same methods again for Evidently's own share widget; its count must equal ours (tested).
    count = DriftedColumnsCount(
        columns=monitored,
        drift_share=params.drift_share_alert,
        per_column_method={c: m for c, (_, m, _) in how.items()},
        per_column_threshold={c: t for c, (_, _, t) in how.items()},
    )
    missing = {c: MissingValueCount(column=c, tests=[]) for c in FEATURES}
    outside = {
        c: OutRangeValueCount(column=c, left=lo, right=hi, tests=[])
        for c, (lo, hi) in RANGES.items()
    }
    unseen = {
        c: OutListValueCount(column=c, values=reference[c].dropna().unique().tolist(), tests=[])
        for c in CATEGORICAL
    }
    report_metrics = [count, *drift.values(), *([pred] if with_pred else [])]
    report_metrics += [*missing.values(), *outside.values(), *unseen.values()]
    columns = list(FEATURES) + ([prediction_col] if with_pred else [])
    snapshot = _run(reference, current, columns, report_metrics)
    res = snapshot.metric_results

    def verdict(metric: Any, kind: str, method: str, threshold: float) -> ColumnDrift:
        r = res[metric.metric_id]
        return ColumnDrift(kind, method, threshold, float(r.value), _drifted(r, metric.column))

    def share(metric: Any, where: Any = res.__getitem__) -> float:
        return float(where(metric.metric_id).share.value)

    features = {c: verdict(drift[c], *how[c]) for c in monitored}
    prediction = None
    if with_pred:
        p = params
        prediction = verdict(pred, "numerical", p.prediction_method, p.prediction_threshold)
    drift_share = share(count)
    quality = {
        c: ColumnQuality(
            missing_share=share(missing[c]),
            reference_missing_share=share(missing[c], snapshot.context.get_reference_metric_result),
            out_of_range_share=share(outside[c]) if c in outside else None,
            unseen_share=share(unseen[c]) if c in unseen else None,
        )
        for c in FEATURES
    }
    band = None
    if with_pred and params.time_col in reference.columns:
        band = positive_rate_band(
            reference,
            params.decision_threshold,
            params.band_freq,
            params.band_k,
            params.time_col,
            prediction_col,
            window_rows=params.band_rows,
        )
    return DriftResult(
        features=features,
        drift_share=drift_share,
        dataset_drift=drift_share >= params.drift_share_alert,
        prediction=prediction,
        data_quality=quality,
        rows={"reference": len(reference), "current": len(current)},
        positive_rate_band=band,
        params=params,
        snapshot=snapshot,
    )


def compare_methods(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    params: MonitorParams = MonitorParams(),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """The lab's table: each feature judged by p-value tests (KS / chi-square) and by distances.

    ``unseen_categories`` counts current categories absent from the reference: each gives
    chi-square an expected count of 0, an infinite statistic and p = 0 whatever the sizes.
    """
    from evidently.metrics import ValueDrift

    _require(reference, FEATURES, "reference")
    _require(current, FEATURES, "current")
    monitored = [c for c in FEATURES if c not in params.exclude]
    tests, dists = {}, {}
    for c in monitored:
        kind, method, threshold = _method(c, params)
        test = "chisquare" if kind == "categorical" else "ks"
        tests[c] = ValueDrift(column=c, method=test, threshold=alpha)
        dists[c] = ValueDrift(column=c, method=method, threshold=threshold)
    with warnings.catch_warnings():
        # scipy's chisquare divides by those expected counts of 0: the p = 0 above, expected here.
        warnings.simplefilter("ignore", RuntimeWarning)
        res = _run(reference, current, monitored, [*tests.values(), *dists.values()]).metric_results
    rows = []
    for c in monitored:
        kind, method, threshold = _method(c, params)
        t, d = res[tests[c].metric_id], res[dists[c].metric_id]
        unseen = 0
        if kind == "categorical":
            unseen = len(set(current[c].dropna().unique()) - set(reference[c].dropna().unique()))
        rows.append(
            {
                "feature": c,
                "kind": kind,
                "test": tests[c].method,
                "p_value": float(t.value),
                "test_drifted": _drifted(t, c),
                "distance_method": method,
                "distance": float(d.value),
                "distance_threshold": threshold,
                "distance_drifted": _drifted(d, c),
                "unseen_categories": unseen,
            }
        )
    return pd.DataFrame(rows).set_index("feature")


def live_performance(
    payload: pd.DataFrame,
    outcomes: pd.DataFrame,
    window: str = "1D",
    on: str | Sequence[str] = ("request_id", "row"),
    params: MonitorParams = MonitorParams(),
    by: str | None = None,
    outcome_col: str = TARGET,
) -> pd.DataFrame:
    """Per time window: rows served, rows labelled so far, AUC, log loss, predicted vs observed rate.

    ``payload`` is the payload log (reference.serve.payload_log: request_id, row, time,
    model_version, probability, label), ``outcomes`` the labels that have arrived, keyed the same
    way (``on``) with ``outcome_col`` (NaN: no outcome, e.g. a cancelled flight). Pass only the
    outcomes known at the time you judge: late labels are the point. ``by="model_version"``
    splits each window by version (a canary). AUC is NaN under ``params.min_labelled_rows``.
    """
    keys = [on] if isinstance(on, str) else list(on)
    _require(payload, [*keys, params.time_col, "probability"], "payload")
    _require(outcomes, [*keys, outcome_col], "outcomes")
    dupes = int(outcomes.duplicated(keys).sum())
    if dupes:
        raise ValueError(f"outcomes hold {dupes} duplicate key(s) on {keys}: keep one per key")
    df = payload.merge(outcomes[[*keys, outcome_col]], on=keys, how="left")
    df[params.time_col] = pd.to_datetime(df[params.time_col])
    # The served decision when the log has it: the server's threshold may not be ours.
    if "label" in df.columns:
        df["_flagged"] = df["label"].astype(float)
    else:
        df["_flagged"] = (df["probability"] >= params.decision_threshold).astype(float)
    groups = [pd.Grouper(key=params.time_col, freq=window)] + ([by] if by else [])
    rows = []
    for key, part in df.groupby(groups):
        if part.empty:
            continue
        key = key if isinstance(key, tuple) else (key,)
        known = part[outcome_col].notna()
        y, p = part.loc[known, outcome_col].to_numpy(), part.loc[known, "probability"].to_numpy()
        n = int(known.sum())
        auc = metrics.roc_auc(y, p) if n >= params.min_labelled_rows else float("nan")
        row = {"window_start": key[0], **({by: key[1]} if by else {})}
        rows.append(
            row
            | {
                "rows": len(part),
                "labelled": n,
                "auc": auc,
                "log_loss": metrics.log_loss(y, p) if n else float("nan"),
                "mean_probability": float(part["probability"].mean()),
                "predicted_positive_rate": float(part["_flagged"].mean()),
                "observed_positive_rate": float(y.mean()) if n else float("nan"),
                "below_auc_floor": bool(auc < params.live_auc_floor),  # NaN: False
            }
        )
    return pd.DataFrame(rows)


# The contract with monitoring/alerts.yml and the Grafana dashboard: names, help, labels.
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "model_drift_share": ("Share of monitored features that drifted from the reference", ()),
    "model_dataset_drift": ("1 when the drift share reaches drift_share_alert", ()),
    "model_feature_drift_score": ("Drift score per feature (distance, or p-value)", ("feature",)),
    "model_feature_drifted": (
        "1 when the feature's drift score crossed its threshold",
        ("feature",),
    ),
    "model_prediction_drift_score": ("Drift of the score distribution (NaN: no scores)", ()),
    "model_live_auc": ("AUC of the latest window with enough labels (NaN: none yet)", ()),
    "model_live_labelled_rows": ("Labelled rows behind model_live_auc", ()),
    "model_reference_positive_rate": ("Band of the predicted-positive rate", ("bound",)),
}
_REGISTERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # registry -> its gauges


def export_gauges(result: DriftResult, live: pd.DataFrame | None, registry: Any) -> None:
    """Set the monitor's gauges in ``registry``; call again for each window to update them.

    ``live`` is one model version's table (filter a ``by="model_version"`` one first): the live
    gauges take its latest window with an AUC, else its latest window (AUC NaN, rows labelled).

    Unknown values are NaN, never 0: a 0 AUC or a 0 band would fire alerts on no data.
    """
    from prometheus_client import Gauge

    if registry not in _REGISTERED:
        _REGISTERED[registry] = {
            name: Gauge(name, doc, labels, registry=registry)
            for name, (doc, labels) in GAUGES.items()
        }
    g = _REGISTERED[registry]
    nan = float("nan")
    g["model_drift_share"].set(result.drift_share)
    g["model_dataset_drift"].set(int(result.dataset_drift))
    for name, d in result.features.items():
        g["model_feature_drift_score"].labels(feature=name).set(d.score)
        g["model_feature_drifted"].labels(feature=name).set(int(d.drifted))
    g["model_prediction_drift_score"].set(result.prediction.score if result.prediction else nan)
    auc, labelled = nan, nan
    if live is not None and len(live):
        judged = live[live["auc"].notna()]
        last = judged.iloc[-1] if len(judged) else live.iloc[-1]  # else: why there is no AUC
        auc, labelled = float(last["auc"]), float(last["labelled"])
    g["model_live_auc"].set(auc)
    g["model_live_labelled_rows"].set(labelled)
    band = result.positive_rate_band or (nan, nan, nan)
    for bound, value in zip(("low", "mean", "high"), band, strict=True):
        g["model_reference_positive_rate"].labels(bound=bound).set(value)
