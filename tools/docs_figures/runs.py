"""The runs the figures need (Runs) and the arithmetic they share on what the runs measured."""

from __future__ import annotations

import json
import re
import shutil
import time
from functools import cache
from pathlib import Path

from common import FALSE_ALARM_COST, MISS_COST, say


# ------------------------------------------------------------------------------------ the runs
class Runs:
    """The runs the figures need, each done at most once, in one temporary workspace."""

    def __init__(self, tmp: Path):
        self.tmp = tmp

    @cache  # noqa: B019 (one Runs per process: caching on self is the point)
    def level0(self) -> dict:
        """Lab 01's Level 0 model (one epoch), its scores on August-October, the baselines."""
        import numpy as np
        import torch

        from reference import evaluate, ingest, metrics
        from reference.config import EvaluateParams
        from reference.level0 import train_by_hand
        from reference.model import Bundle, NetConfig, TabularNet
        from reference.train import labelled
        from reference.transform import FeatureTransform

        say("[level0] training by hand, 1 epoch (lab 01)")
        path = self.tmp / "model_level0.pt"
        test_auc = train_by_hand(out=path, epochs=1)["auc"]
        saved = torch.load(path, weights_only=True)  # the file knows no architecture: lab 01
        transform = FeatureTransform.from_dict(saved["transform"])
        net = TabularNet(
            NetConfig(
                cardinalities=tuple(transform.cardinalities), num_features=transform.num_features
            )
        )
        net.load_state_dict(saved["state_dict"])
        model = Bundle(net=net, transform=transform)

        frame = ingest.build(*ingest.load_raw())
        august = labelled(frame[frame["month"] == 8])
        y, scores = august["delayed"].to_numpy().astype(int), model.predict_proba(august)
        days = august["sched_dep"].dt.date.nunique()
        grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
        at = metrics.confusion_at(y, scores, grid)
        cost = (MISS_COST * at["fn"] + FALSE_ALARM_COST * at["fp"]) / days
        bars = evaluate.baselines(
            labelled(frame[frame["month"].between(1, 6)]), august, transform, EvaluateParams()
        )
        autumn = labelled(frame[frame["month"].between(8, 10)])
        autumn = autumn.assign(score=model.predict_proba(autumn), date=autumn["sched_dep"].dt.date)
        daily = autumn.groupby("date").apply(
            lambda d: metrics.roc_auc(d["delayed"].to_numpy(), d["score"].to_numpy()),
            include_groups=False,
        )
        return {
            "test_auc": test_auc,
            "august_flights": len(august),
            "august_late_share": float(y.mean()),
            "grid": grid.tolist(),
            "cost": cost.tolist(),
            "flag_nothing_cost": MISS_COST * int(y.sum()) / days,
            "auc": {
                "base rate": bars["base_rate"]["auc"],
                "logistic regression": bars["logistic_regression"]["auc"],
                "Level 0 (1 epoch)": metrics.roc_auc(y, scores),
            },
            "always_on_time_accuracy": float((y == 0).mean()),
            "daily_dates": [str(d) for d in daily.index],
            "daily_auc": daily.tolist(),
            "pooled_auc": metrics.roc_auc(autumn["delayed"].to_numpy(), autumn["score"].to_numpy()),
        }

    @cache  # noqa: B019
    def champion(self) -> dict:
        """The champion lab 04-06 start from: a pipeline run on January-June (@champion -> v1)."""
        from reference import registry, watch
        from reference.config import get_settings
        from reference.labkit.checkpoint import champion_workspace
        from reference.model import load_bundle

        started = time.monotonic()
        folder = self.tmp / "champion"
        settings = get_settings(folder)
        if folder.exists() and registry.version_by_alias(settings, registry.CHAMPION):
            say(f"[champion] reusing the champion in {folder} (--workspace)")
        else:
            say("[champion] the pipeline on January-June, in a fresh workspace (about a minute)")
            settings = champion_workspace(folder, log=lambda m: say("  ", m)).settings
        mv = registry.version_by_alias(settings, registry.CHAMPION)
        run = registry.version_run(settings, mv.version)
        train_months = json.loads(run.data.tags["split.train"])
        bundle = load_bundle(
            registry.download_bundle(settings, mv.version, self.tmp / "champion-bundle")
        )
        return {
            "settings": settings,
            "bundle": bundle,
            "version": str(mv.version),
            "train_months": train_months,
            "holdout": json.loads(run.data.tags["split.holdout"]),
            "holdout_auc": run.data.metrics["holdout.auc"],
            "reference": watch.reference_window(settings, bundle, train_months),
            "seconds": time.monotonic() - started,
        }

    @cache  # noqa: B019
    def watch_pair(self) -> dict:
        """`mlops-lab watch --month 11 --fault constant`, then without the fault, keeping the
        scrapes the replay made (watch.replay's return value) for the per-minute series."""
        from reference import watch

        c = self.champion()
        captured: list = []
        replay = watch.replay

        def recording(*args, **kwargs):
            snapshots = replay(*args, **kwargs)
            captured.append(snapshots)
            return snapshots

        watch.replay = recording  # watch.watch looks it up at call time
        try:
            out = {}
            for fault in ("constant", "none"):
                say(f"[watch] mlops-lab watch --month 11 --fault {fault}")
                report = watch.watch(
                    c["settings"], month=11, fault=fault, minutes=20, log=lambda m: say("  ", m)
                )
                out[fault] = (report, captured.pop())
        finally:
            watch.replay = replay
        return out

    @cache  # noqa: B019
    def loop(self) -> dict:
        """Story 2 of docs/level2.md: `mlops-lab loop --fresh --scenario bad-challenger`."""
        from reference.config import get_settings
        from reference.loop.controller import Controller, loop_settings

        say("[loop] Level 2, scenario bad-challenger (about 70 s)")
        started = time.monotonic()
        shutil.rmtree(self.tmp / "loop", ignore_errors=True)  # always a fresh story
        settings = loop_settings(get_settings(self.tmp / "loop"))
        controller = Controller(settings, "bad-challenger", log=lambda m: say("  ", m))
        controller.run(first_day="2013-08-01", until_decision=True)
        lines = (controller.dir / "router.jsonl").read_text().splitlines()
        return {
            "settings": settings,
            "events": controller.events.read(),
            "router": [json.loads(x) for x in lines if x.strip()],
            "params": controller.params,
            "seconds": time.monotonic() - started,
        }


# ------------------------------------------------------------------------- shared arithmetic
def histogram_quantile(q: float, bounds, counts) -> float:
    """Prometheus' histogram_quantile on one histogram: linear inside the bucket that holds the
    rank, the first bucket starting at 0 (what the recording rule model:score_spread computes)."""
    import numpy as np

    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if total == 0:
        return float("nan")
    cum, rank = np.cumsum(counts), q * total
    i = int(np.searchsorted(cum, rank, side="left"))
    lower = bounds[i - 1] if i else 0.0
    before = cum[i - 1] if i else 0.0
    return float(lower + (bounds[i] - lower) * (rank - before) / counts[i])


def bucketed_spread(scores) -> float:
    """p90 - p10 of scores counted in the server's 0.05-wide buckets."""
    import numpy as np

    from reference.serve.telemetry import SCORE_BUCKETS

    edges = np.array((0.0, *SCORE_BUCKETS))
    counts, _ = np.histogram(np.clip(scores, 0, 1), bins=edges)
    return histogram_quantile(0.9, SCORE_BUCKETS, counts) - histogram_quantile(
        0.1, SCORE_BUCKETS, counts
    )


def per_minute(snapshots: list[dict]) -> dict:
    """From the replay's scrapes: 2xx and other answers per minute, and the recording rule's
    p90 - p10 over the last 10 minutes of histogram increments."""
    from reference.serve.telemetry import SCORE_BUCKETS

    def total(snap, pattern):
        return sum(v for k, v in snap.items() if re.search(pattern, k))

    ok, other, spread = [], [], []
    for i in range(1, len(snapshots)):
        now, before, ten = snapshots[i], snapshots[i - 1], snapshots[max(0, i - 10)]
        ok.append(
            total(now, r'^model_requests_total\{code="2')
            - total(before, r'^model_requests_total\{code="2')
        )
        other.append(
            total(now, r'^model_requests_total\{code="[^2]')
            - total(before, r'^model_requests_total\{code="[^2]')
        )
        cum = [
            total(now, rf'^model_prediction_score_bucket\{{le="{b}"')
            - total(ten, rf'^model_prediction_score_bucket\{{le="{b}"')
            for b in SCORE_BUCKETS
        ]
        counts = [c - p for c, p in zip(cum, [0.0, *cum[:-1]], strict=True)]
        spread.append(
            histogram_quantile(0.9, SCORE_BUCKETS, counts)
            - histogram_quantile(0.1, SCORE_BUCKETS, counts)
        )
    return {"ok": ok, "other": other, "spread": spread}
