"""Solutions to lab 06. Try each exercise first.

Each function gets the lab and returns the answer that the exercise's check cell tests.
``lab.facts["current"]`` is the lab's November window (the payload log, each row at its flight's
departure time) and ``lab.facts["drift"]`` its drift result; section 5 puts them there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from reference import ingest, metrics
from reference.features import CATEGORICAL
from reference.serve import client
from reference.serve.payload_log import read_payload_log
from reference.watch import replay


def exercise_1(lab):
    """The share of each day's flights the server flagged (label 1), from the payload log."""
    current = lab.facts["current"]
    return current["label"].groupby(current["time"].dt.floor("1D")).mean()


def exercise_2(lab):
    """No new Evidently run: the distances don't depend on the threshold, only the verdicts do."""
    return sorted(name for name, d in lab.facts["drift"].features.items() if d.score >= 0.05)


def exercise_3(lab):
    """Serve the fault, send November, read the three views."""
    settings = lab.settings
    november = ingest.read_months([11], settings.project / ingest.BATCH_DIR)
    november = november.sort_values("sched_dep", ignore_index=True)
    with tempfile.TemporaryDirectory() as tmp:
        payload = Path(tmp) / "payload"
        server = client.start(
            settings,
            name=settings.model_name,
            args=["--fault", "shuffled-vocab", "--payload-dir", str(payload)],
        )
        try:
            series = replay(server.url, november, settings.model_name, minutes=1, batch=256)[-1]
        finally:
            client.stop(server)
        served = read_payload_log(payload)
    if not (served["dest"].to_numpy() == november["dest"].to_numpy()).all():
        raise RuntimeError("the payload log is not in the order the flights were sent")
    p = served["probability"].to_numpy()
    rows = sum(v for k, v in series.items() if k.startswith("model_rows_total"))
    unknown = max(
        series.get(f'model_feature_unknown_category_total{{feature="{c}"}}', 0.0)
        for c in CATEGORICAL
    )
    y = november["delayed"].to_numpy()  # the log is in the order the flights were sent
    known = ~np.isnan(y)
    return {
        "spread": float(np.quantile(p, 0.9) - np.quantile(p, 0.1)),
        "unknown_share": unknown / rows,
        "auc": metrics.roc_auc(y[known], p[known]),
        "caught_by": "live labels",
    }
