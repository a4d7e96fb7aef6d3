"""Binary classification metrics in numpy alone: shared by the training core and evaluation.

Written out rather than taken from scikit-learn: the training core must import only torch, numpy
and pandas, and evaluation computes them for every slice, where scikit-learn's input checks cost
more than the arithmetic. tests/unit/test_evaluate.py checks them against scikit-learn.
"""

from __future__ import annotations

import numpy as np


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U), ties averaged; numpy only, so the core stays light."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    sorted_p = np.asarray(p)[order]
    ranks = np.empty(len(p), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def precision_recall(y: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    y, label = np.asarray(y).astype(bool), np.asarray(label).astype(bool)
    tp = float((y & label).sum())
    precision = tp / label.sum() if label.any() else 0.0
    recall = tp / y.sum() if y.any() else 0.0
    return precision, recall


def confusion_at(y: np.ndarray, p: np.ndarray, thresholds) -> dict[str, np.ndarray]:
    """Counts at each operating threshold (a flight is flagged when ``p >= t``), in one sort.

    Returns ``{"tp", "fp", "fn", "tn"}``, one int array each, aligned with ``thresholds``: the
    pages that were right, the false alarms, the misses and the quiet that was right. A cost
    ``miss_cost * fn + false_alarm_cost * fp`` picks the threshold to run.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    pos, neg = np.sort(p[y]), np.sort(p[~y])
    # searchsorted 'left' counts the scores below t, so what is left is flagged (p >= t)
    tp = len(pos) - np.searchsorted(pos, t, side="left")
    fp = len(neg) - np.searchsorted(neg, t, side="left")
    return {"tp": tp, "fp": fp, "fn": len(pos) - tp, "tn": len(neg) - fp}
