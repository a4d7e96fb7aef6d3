"""evaluate: judge the candidate on a later-in-time holdout, against simple baselines.

Metrics: ROC AUC, log loss, Brier score, expected calibration error, precision and recall at the
operating threshold, the predicted-positive rate; the same per slice (origin, carrier). Baselines
every candidate must beat: the base rate (a constant) and a logistic regression on the same
transformed features. Also the costs the gate budgets: single-row predict latency (transform
included) and the bundle's size. Plots: ROC and calibration.

::

    mlops-lab evaluate      # inside a workspace project: metrics/evaluate.json, reports/plots/
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from reference import metrics
from reference.config import EvaluateParams

OUT = Path("metrics/evaluate.json")
PLOTS = Path("reports/plots")
SLICES = ("origin", "carrier")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean ``|observed rate - mean score|`` over equal-width score bins, weighted by bin size."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.sum() * abs(y[mask].mean() - p[mask].mean())
    return float(total / len(y))


def score_metrics(y: np.ndarray, p: np.ndarray, params: EvaluateParams) -> dict:
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    label = (p >= params.threshold).astype(int)
    both = 0 < y.sum() < len(y)
    precision, recall = metrics.precision_recall(y, label)
    return {
        "n": int(len(y)),
        "positive_rate": round(float(y.mean()), 5),
        "predicted_positive_rate": round(float(label.mean()), 5),
        "mean_score": round(float(p.mean()), 5),
        "auc": round(metrics.roc_auc(y, p), 5) if both else None,
        "log_loss": round(metrics.log_loss(y, p), 5),
        "brier": round(metrics.brier(y, p), 5),
        "ece": round(expected_calibration_error(y, p, params.calibration_bins), 5),
        "precision": round(precision, 5),
        "recall": round(recall, 5),
    }


def slice_metrics(df: pd.DataFrame, y: np.ndarray, p: np.ndarray, params: EvaluateParams) -> dict:
    """Per-slice metrics; slices under min_slice_size are reported with judged=False."""
    out: dict[str, dict] = {}
    for col in SLICES:
        out[col] = {}
        for value, idx in df.groupby(col).indices.items():
            m = score_metrics(y[idx], p[idx], params)
            m["judged"] = bool(len(idx) >= params.min_slice_size and m["auc"] is not None)
            out[col][str(value)] = m
    return out


def evaluate_scores(df: pd.DataFrame, p: np.ndarray, params: EvaluateParams) -> dict:
    y = df["delayed"].to_numpy().astype(int)
    return {**score_metrics(y, p, params), "slices": slice_metrics(df, y, p, params)}


def baselines(
    train_df: pd.DataFrame, holdout_df: pd.DataFrame, transform, params: EvaluateParams
) -> dict:
    """The bar: a constant at the training base rate, and a logistic regression."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    y_train = train_df["delayed"].to_numpy().astype(int)
    base = np.full(len(holdout_df), y_train.mean())

    def design(df):
        enc = transform.apply(df)
        offsets = np.cumsum([0, *transform.cardinalities[:-1]])
        rows = np.repeat(np.arange(len(df)), enc.cat.shape[1])
        onehot = sparse.csr_matrix(
            (np.ones(rows.size), (rows, (enc.cat + offsets).ravel())),
            shape=(len(df), sum(transform.cardinalities)),
        )
        return sparse.hstack([onehot, sparse.csr_matrix(enc.num)]).tocsr()

    lr = LogisticRegression(max_iter=300, C=1.0)
    lr.fit(design(train_df), y_train)
    p_lr = lr.predict_proba(design(holdout_df))[:, 1]
    y = holdout_df["delayed"].to_numpy().astype(int)
    return {
        "base_rate": score_metrics(y, base, params),
        "logistic_regression": score_metrics(y, p_lr, params),
    }


def latency_ms_p95(bundle, df: pd.DataFrame, repeats: int = 100) -> float:
    """p95 of one-row predictions through the full path (transform + forward), after warm-up."""
    import torch

    torch.set_num_threads(1)  # one request, one thread: what a single-worker server does
    rows = [df.iloc[[i % len(df)]] for i in range(repeats)]
    for row in rows[:10]:
        bundle.predict_proba(row)
    times = []
    for row in rows:
        tick = time.perf_counter()
        bundle.predict_proba(row)
        times.append((time.perf_counter() - tick) * 1000)
    return round(float(np.percentile(times, 95)), 3)


def plot(y: np.ndarray, curves: dict[str, np.ndarray], folder: Path, bins: int = 10) -> list[Path]:
    """ROC and calibration plots: a picture beats a table of numbers here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_curve

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the holdout")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(folder / "roc.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in curves.items():
        if np.ptp(p) == 0:
            continue  # a constant has no curve
        obs, pred = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        ax.plot(pred, obs, marker="o", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed late share",
        title="Calibration on the holdout",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(folder / "calibration.png", dpi=100)
    plt.close(fig)
    return [folder / "roc.png", folder / "calibration.png"]


def run(
    params,
    bundle_dir: Path | None = None,
    batch_dir: Path | None = None,
    out: Path = OUT,
    plots: Path = PLOTS,
) -> dict:
    from reference import ingest
    from reference.model import bundle_size_mb, load_bundle
    from reference.train import OUT as BUNDLE
    from reference.train import labelled

    months = params.split.months()
    batch_dir = batch_dir or ingest.BATCH_DIR
    bundle_dir = bundle_dir or BUNDLE
    bundle = load_bundle(bundle_dir)
    holdout = labelled(ingest.read_months(months["holdout"], batch_dir))
    train_df = labelled(ingest.read_months(months["train"], batch_dir))
    p = bundle.predict_proba(holdout)
    result = {
        "holdout_months": months["holdout"],
        "candidate": evaluate_scores(holdout, p, params.evaluate),
        "baselines": baselines(train_df, holdout, bundle.transform, params.evaluate),
        "latency_ms_p95": latency_ms_p95(bundle, holdout),
        "model_size_mb": round(bundle_size_mb(bundle_dir), 4),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    y = holdout["delayed"].to_numpy().astype(int)
    base = np.full(len(y), train_df["delayed"].mean())
    plot(y, {"candidate": p, "base rate": base}, plots, params.evaluate.calibration_bins)
    c, lr = result["candidate"], result["baselines"]["logistic_regression"]
    print(
        f"holdout {months['holdout']}: AUC {c['auc']:.4f} (logistic regression {lr['auc']:.4f}, base rate 0.5), "
        f"log loss {c['log_loss']:.4f}, ECE {c['ece']:.4f}, p95 latency {result['latency_ms_p95']} ms"
    )
    return result
