"""Prometheus metrics of the predictions themselves, beyond KServe's latency histograms.

The names are a contract with monitoring/alerts.yml and the Grafana dashboard: change them there
too. A model can answer 200 OK with garbage; these series are how that shows: the score
distribution, the predicted-positive rate, and what the inputs looked like.

Metrics hold locks, so they cannot be pickled: a ``Telemetry`` sent to a server worker process
is created afresh there, in that process's default registry. With several workers, set
``PROMETHEUS_MULTIPROC_DIR`` before they start, and the workers' counts add up on ``/metrics``
(prometheus_client's multiprocess mode; see ``reference.serve.workers``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Telemetry:
    """The prediction metrics; ``create`` registers them, ``observe`` records one scored request."""

    score: Histogram
    predictions: Counter
    rows: Counter
    requests: Counter
    latency: Histogram
    missing: Counter
    unknown: Counter
    out_of_range: Counter
    payload_write_errors: Counter

    def __reduce__(self):
        return (Telemetry.create, ())  # rebuilt in the process that unpickles it (a worker)

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> Telemetry:
        return cls(
            score=Histogram(
                "model_prediction_score",
                "Predicted probability of a late arrival",
                ["model_version"],
                buckets=SCORE_BUCKETS,
                registry=registry,
            ),
            predictions=Counter(
                "model_predictions",
                "Predictions by label at the operating threshold",
                ["model_version", "label"],
                registry=registry,
            ),
            rows=Counter("model_rows", "Rows scored", ["model_version"], registry=registry),
            requests=Counter(
                "model_requests",
                "Prediction requests by protocol and HTTP status",
                ["model_version", "protocol", "code"],
                registry=registry,
            ),
            latency=Histogram(
                "model_request_latency_seconds",
                "Prediction request latency, end to end in the server",
                ["model_version", "protocol"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            missing=Counter(
                "model_feature_missing",
                "Missing feature values (imputed)",
                ["feature"],
                registry=registry,
            ),
            unknown=Counter(
                "model_feature_unknown_category",
                "Categories the model never saw (unknown bucket)",
                ["feature"],
                registry=registry,
            ),
            out_of_range=Counter(
                "model_feature_out_of_range",
                "Values outside the physical range of the feature",
                ["feature"],
                registry=registry,
            ),
            payload_write_errors=Counter(
                "payload_log_write_errors",
                "Prediction requests answered but missing from the payload log, because its "
                "file could not be written (disk full, read-only, no permission)",
                registry=registry,
            ),
        )

    def observe(
        self,
        version: str,
        proba: np.ndarray,
        label: np.ndarray,
        missing: dict[str, int],
        unknown: dict[str, int],
        out_of_range: dict[str, int],
    ) -> None:
        # one histogram observation per row: the distribution is the signal, not the mean
        _observe_all(self.score.labels(version), proba)
        positives = int(label.sum())
        self.predictions.labels(version, "1").inc(positives)
        self.predictions.labels(version, "0").inc(len(label) - positives)
        self.rows.labels(version).inc(len(label))
        for name, counts in (
            (self.missing, missing),
            (self.unknown, unknown),
            (self.out_of_range, out_of_range),
        ):
            for feature, n in counts.items():
                if n:
                    name.labels(feature).inc(n)


def _observe_all(histogram, values: np.ndarray) -> None:
    """``histogram.observe(v)`` for every value, counted per bucket with numpy: with several
    workers each observation is a locked write to a shared file, and 64 of them were about 7%
    of a 64-row request. Falls back to one ``observe`` each where prometheus_client's child
    histogram is not laid out as in 0.2x (upper bounds, one value per bucket, a sum)."""
    bounds, buckets, total = (
        getattr(histogram, name, None) for name in ("_upper_bounds", "_buckets", "_sum")
    )
    if (
        len(values) <= 4  # numpy's fixed cost is more than a few observe() calls
        or bounds is None
        or buckets is None
        or total is None
        or len(bounds) != len(buckets)
    ):
        for v in values.tolist():
            histogram.observe(v)
        return
    # observe() counts a value in the first bucket whose upper bound is >= it
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for i in np.flatnonzero(counts).tolist():
        buckets[i].inc(int(counts[i]))
    total.inc(float(values.sum()))
