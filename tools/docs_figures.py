"""The Concepts pages' figures, made from the project's own runs on the real 2013 data.

    .venv/bin/python tools/docs_figures.py                   # every figure
    .venv/bin/python tools/docs_figures.py --only drift      # one figure, and only the runs it needs
    .venv/bin/python tools/docs_figures.py --data m.json     # also keep what the runs measured
    .venv/bin/python tools/docs_figures.py --replot m.json   # redraw from it, run nothing

Each figure runs the code of ``reference/`` (Level 0 training, the pipeline and its champion, the
model server behind ``mlops-lab watch``, the monitor, the Level 2 loop and its rollbacks), writes
``docs/_static/figures/<name>.png`` and prints the numbers its page quotes. A figure is a
measurement, not a drawing: the numbers on the page come from this output.

The runs happen in a temporary workspace (never ``workspace/``), deleted at the end unless
``--keep``; ``--workspace DIR`` runs in DIR, keeps it and reuses a champion already built there.
Runs are shared: ``alerting``, ``drift`` and ``working-vs-healthy`` use one pipeline run;
``shadow-canary`` and ``rollback`` one Level 2 loop. Everything took 17 minutes on a busy
two-core machine; most of it is the pipeline runs and model-server starts (docs/benchmarks.md),
a few minutes on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "figures"
sys.path.insert(0, str(ROOT))

# Okabe-Ito: distinguishable with every common colour-vision deficiency
BLUE, ORANGE, GREEN, VERMILION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
SKY, PURPLE, GREY = "#56B4E9", "#CC79A7", "#777777"
MISS_COST, FALSE_ALARM_COST = 4, 1  # lab 01's costs: a missed late flight, a false alarm
NAIVE_PAGE = 0.6  # lab 01's naive alert: page when one day's AUC is under 0.6


def say(*parts) -> None:
    print(*parts, flush=True)


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


# ---------------------------------------------------------------------- what the figures need
def data_probabilistic(runs: Runs) -> dict:
    import numpy as np

    d = runs.level0()
    grid, cost = np.array(d["grid"]), np.array(d["cost"])
    auc = np.array(d["daily_auc"])
    low, high = np.quantile(auc, [0.05, 0.95])
    d |= {
        "cheapest": float(grid[np.argmin(cost)]),
        "cheapest_cost": float(cost.min()),
        "cost_at_05": float(cost[grid == 0.5][0]),
        "daily_median": float(np.median(auc)),
        "daily_band": [float(low), float(high)],
        "pages": int((auc < NAIVE_PAGE).sum()),
        "days": len(auc),
    }
    return d


def data_alerting(runs: Runs) -> dict:
    import numpy as np
    import pandas as pd

    from reference import ingest, monitor

    c = runs.champion()
    ref = c["reference"]
    low, mean, high = monitor.positive_rate_band(ref)
    ref_daily = (ref["probability"] >= 0.5).groupby(ref["time"].dt.floor("1D")).mean()
    batches = c["settings"].project / ingest.BATCH_DIR
    year = ingest.read_months(list(range(1, 13)), batches).sort_values("sched_dep")
    scores = c["bundle"].predict_proba(year)
    daily = pd.Series(scores >= 0.5).groupby(year["sched_dep"].dt.floor("1D").to_numpy()).mean()
    later = daily[daily.index >= pd.Timestamp("2013-07-01")]  # never seen in training
    windows = scores[: len(scores) // 300 * 300].reshape(-1, 300)
    spreads = np.array([bucketed_spread(w) for w in windows])
    lowest = int(np.argmin(spreads))
    first = year.iloc[lowest * 300]["sched_dep"]
    last = year.iloc[lowest * 300 + 299]["sched_dep"]
    return {
        "reference_rows": len(ref),
        "train_months": c["train_months"],
        "band": [low, mean, high],
        "ref_days": [str(t.date()) for t in ref_daily.index],
        "ref_daily": ref_daily.tolist(),
        "days": [str(pd.Timestamp(t).date()) for t in daily.index],
        "daily": daily.tolist(),
        "later_days": len(later),
        "later_outside": [
            str(pd.Timestamp(t).date()) for t in later.index[(later < low) | (later > high)]
        ],
        "later_range": [float(later.min()), float(later.max())],
        "ref_outside": int(((ref_daily < low) | (ref_daily > high)).sum()),
        "year_rows": len(scores),
        "spreads": spreads.tolist(),
        "spread_min": float(spreads.min()),
        "spread_median": float(np.median(spreads)),
        "spread_under_005": int((spreads < 0.05).sum()),
        "lowest_window": [str(first), str(last)],
        "spread_p1": float(np.quantile(spreads, 0.01)),
        "constant_spread": bucketed_spread(np.full(300, 0.27)),
    }


def data_drift(runs: Runs) -> dict:
    from reference import ingest, metrics, monitor

    c = runs.champion()
    ref = c["reference"]
    batches = c["settings"].project / ingest.BATCH_DIR
    months, out = list(range(7, 13)), {}
    for m in months:
        say(f"[drift] month {m} against the reference (Evidently)")
        cur = ingest.read_months([m], batches)
        cur = cur.assign(probability=c["bundle"].predict_proba(cur))
        r = monitor.drift_report(ref, cur)
        known = cur["delayed"].notna().to_numpy()
        y, p = cur["delayed"].to_numpy()[known], cur["probability"].to_numpy()[known]
        out[m] = {
            "drift_share": r.drift_share,
            "drifted": sorted(r.drifted_features),
            "scores": {f: c.score for f, c in r.features.items()},
            "threshold": {f: c.threshold for f, c in r.features.items()},
            "prediction_drift": r.prediction.score,
            "auc": metrics.roc_auc(y, p),
            "late_share": float(y.mean()),
            "mean_score": float(cur["probability"].mean()),
        }
    # the pipeline's validate stage on the same run: drift is warn-only there
    report = c["settings"].project / "reports" / "validation.json"
    warned: dict[str, list[str]] = {}
    for ch in json.loads(report.read_text())["checks"] if report.exists() else []:
        if ch["check"] == "drift" and ch["severity"] == "warn":
            warned.setdefault(ch["batch"], []).append(ch["column"])
    ref_y = ref["delayed"].dropna()
    return {
        "months": months,
        "by_month": {str(k): v for k, v in out.items()},
        "reference_late_share": float(ref_y.mean()),
        "reference_mean_score": float(ref["probability"].mean()),
        "holdout_auc": c["holdout_auc"],
        "holdout": c["holdout"],
        "train_months": c["train_months"],
        "validate_drift_warnings": warned,
    }


def data_working(runs: Runs) -> dict:
    out = {}
    for fault, (r, snapshots) in runs.watch_pair().items():
        ok = sum(v for code, v in r.codes.items() if code.startswith("2"))
        out[fault] = {
            "requests": sum(r.codes.values()),
            "ok": ok,
            "ready": r.ready,
            "rows": r.rows,
            "scores": {str(k): v for k, v in r.scores.items()},
            "positive_rate": r.positive_rate,
            "band": list(r.band),
            "drift_share": r.drift_share,
            "prediction_drift": r.prediction_drift,
            "alerts": r.alerts,
            "minutes": per_minute(snapshots),
        }
    return out


def data_shadow_canary(runs: Runs) -> dict:
    import numpy as np

    from reference.loop import policy

    lp = runs.loop()
    events = lp["events"]

    def first(kind):
        return next((e for e in events if e["kind"] == kind), None)

    shadow_lines = [r for r in lp["router"] if r["mode"] == "shadow" and r.get("candidate")]
    champ = [s for r in shadow_lines for s in (r["champion"] or {}).get("scores") or []]
    cand = [s for r in shadow_lines for s in (r["candidate"] or {}).get("scores") or []]
    canary_lines = [r for r in lp["router"] if r["mode"] == "canary"]
    by_candidate = [r for r in canary_lines if r["served_by"] == "candidate"]
    answered = [(r.get(r["served_by"]) or {}).get("code") for r in lp["router"]]
    waits = [
        e
        for e in events
        if e["kind"] in ("canary-wait", "rollback", "promote")
        and e["metrics"].get("candidate_auc") is not None
    ]
    decision = first("rollback") or first("promote")
    m = decision["metrics"]
    need = {
        f"{g:.3f}": policy.labels_needed(g, m["auc_diff_se"], m["labelled"])
        for g in (abs(m["auc_diff"]), 0.05, 0.02)
    }
    rollout = lp["params"].rollout
    return {
        "story": [e["kind"] for e in events if e["kind"] not in ("check", "canary-wait")],
        "gate": first("gate-pass")["reasons"],
        "shadow": first("canary")["metrics"],
        "shadow_reasons": first("canary")["reasons"],
        "shadow_champion_scores": np.round(champ, 4).tolist(),
        "shadow_candidate_scores": np.round(cand, 4).tolist(),
        "canary_days": [e["day"] for e in waits],
        "canary_candidate_auc": [e["metrics"]["candidate_auc"] for e in waits],
        "canary_champion_auc": [e["metrics"]["champion_auc"] for e in waits],
        "canary_labelled": [e["metrics"]["labelled"] for e in waits],
        "decision": {
            "kind": decision["kind"],
            "day": decision["day"],
            "reasons": decision["reasons"],
            "metrics": m,
        },
        "canary_requests": len(canary_lines),
        "canary_by_candidate": len(by_candidate),
        "client_requests": len(lp["router"]),
        "client_errors": sum(code != 200 for code in answered),
        "labels_needed": need,
        "rollout": {
            "canary_percent": rollout.canary_percent,
            "alpha": rollout.alpha,
            "canary_min_labelled": rollout.canary_min_labelled,
            "shadow_min_requests": rollout.shadow_min_requests,
            "min_spread_ratio": rollout.min_spread_ratio,
            "max_score_ks": rollout.max_score_ks,
        },
        "loop_seconds": lp["seconds"],
    }


def data_rollback(runs: Runs) -> dict:
    """Lab 08, section 6, on the loop's workspace: a hand promotion of the bad challenger, then
    `rollback model`, then `rollback data` (restore alone, then restore and retrain)."""
    from reference import registry
    from reference.loop.rollback import rollback_data, rollback_model

    settings = runs.loop()["settings"]
    name, c = settings.model_name, registry.client(settings)

    def describe(version):
        run = registry.version_run(settings, version)
        return {
            "version": version,
            "train": json.loads(run.data.tags.get("split.train", "[]")),
            "holdout": json.loads(run.data.tags.get("split.holdout", "[]")),
            "holdout_auc": run.data.metrics.get("holdout.auc"),
            "data_commit": run.data.tags.get("data.commit"),
        }

    say("[rollback] hand-promote v2 (the Level 1 way), then the three calls")
    c.set_registered_model_alias(name, registry.CHAMPION, "2")
    c.set_model_version_tag(name, "2", "previous_champion", "1")
    started = time.monotonic()
    was, now = rollback_model(settings)
    t_model = time.monotonic() - started
    started = time.monotonic()
    restored = rollback_data(settings, retrain=False)
    t_restore = time.monotonic() - started
    started = time.monotonic()
    retrained = rollback_data(settings, retrain=True, log=runs.tmp / "rollback-retrain.log")
    t_retrain = time.monotonic() - started
    versions = [describe(v) for v in ("1", "2", retrained.retrained_version)]
    return {
        "model": {"from": was, "to": now, "seconds": t_model},
        "restore": {
            "commit": restored.commit,
            "source": restored.source_version,
            "seconds": t_restore,
        },
        "retrain": {
            "version": retrained.retrained_version,
            "seconds": t_retrain,
            "auc": retrained.retrained_auc,
            "source_auc": retrained.source_auc,
            "reproduced": retrained.reproduced,
        },
        "versions": versions,
        "champion_after": str(registry.version_by_alias(settings, registry.CHAMPION).version),
    }


# -------------------------------------------------------------------------------- the figures
def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "DejaVu Sans",
            "font.size": 10,
            "axes.titlesize": 10.5,
            "axes.labelsize": 10,
            "legend.fontsize": 8.5,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "axes.grid": True,
            "grid.color": "#e6e6e6",
            "axes.axisbelow": True,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 100,
        }
    )
    return plt


def _save(fig, name: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    # no Software/date metadata: the same run gives the same bytes
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    # 256 colours are plenty for a chart and a third of the bytes (no metadata: same run, same file)
    Image.open(buffer).convert("RGB").quantize(256).save(path, optimize=True)
    kb = path.stat().st_size / 1024
    say(
        f"wrote {path.relative_to(ROOT)} ({kb:.0f} KB)"
        + ("  TOO BIG (> 150 KB)" if kb > 150 else "")
    )
    return path


def _dates(strings):
    import datetime as dt

    return [dt.date.fromisoformat(s) for s in strings]


def plot_probabilistic(d: dict) -> None:
    import matplotlib.dates as mdates

    plt = _style()
    fig = plt.figure(figsize=(7.7, 6.4))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.1), width_ratios=(1.25, 1))
    a, b, c = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    a.plot(d["grid"], d["cost"], color=VERMILION)
    a.axvline(
        d["cheapest"],
        color=VERMILION,
        ls="--",
        lw=1,
        label=f"cheapest: {d['cheapest']:.2f} ({d['cheapest_cost']:.0f} a day)",
    )
    a.axvline(0.5, color=GREY, ls=":", label=f"the default 0.5 ({d['cost_at_05']:.0f} a day)")
    a.axhline(
        d["flag_nothing_cost"],
        color=BLUE,
        ls="-.",
        lw=1,
        label=f"flag nothing ({d['flag_nothing_cost']:.0f} a day)",
    )
    a.set(
        xlabel="threshold t (flag when score >= t)",
        ylabel=f"cost a day ({MISS_COST} x miss + {FALSE_ALARM_COST} x false alarm)",
        title="A threshold has a cost",
    )
    a.legend(loc="lower right", fontsize=8)
    names = list(d["auc"])
    values = [d["auc"][n] for n in names]
    bars = b.barh(names, values, color=[GREY, SKY, BLUE])
    for bar, v in zip(bars, values, strict=True):
        b.text(v + 0.004, bar.get_y() + bar.get_height() / 2, f"{v:.3f}", va="center", fontsize=9)
    b.set_xlim(0.45, 0.8)
    b.invert_yaxis()
    b.set_yticks(
        range(len(names)), [n.replace(" (", "\n(").replace(" regr", "\nregr") for n in names]
    )
    b.set(xlabel="AUC on August (0.5 = a coin)", title="Good means: beats a baseline")
    b.grid(axis="y", visible=False)
    days, auc = _dates(d["daily_dates"]), d["daily_auc"]
    low, high = d["daily_band"]
    c.plot(days, auc, ".-", color=GREEN, lw=0.8, ms=4, label="AUC of one day")
    c.axhspan(low, high, color=GREEN, alpha=0.12, label=f"90% of days: {low:.2f}-{high:.2f}")
    c.axhline(
        d["pooled_auc"],
        color=GREEN,
        ls="--",
        lw=1,
        label=f"the three months pooled: {d['pooled_auc']:.2f}",
    )
    c.axhline(NAIVE_PAGE, color=VERMILION, ls=":", lw=1.2, label=f"a naive page below {NAIVE_PAGE}")
    pages = [(t, v) for t, v in zip(days, auc, strict=True) if v < NAIVE_PAGE]
    c.plot(
        [t for t, _ in pages],
        [v for _, v in pages],
        "o",
        color=VERMILION,
        ms=4,
        label=f"it would page: {len(pages)} of {len(days)} days",
    )
    c.set(
        ylabel="AUC of the day",
        ylim=(0.4, 0.9),
        title="Healthy is a spread: one model, unbroken data, Aug-Oct 2013",
    )
    c.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    c.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    _save(fig, "probabilistic")
    plt.close(fig)


def plot_alerting(d: dict) -> None:
    import matplotlib.dates as mdates
    import numpy as np

    plt = _style()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.7, 6.2), gridspec_kw={"height_ratios": (1.2, 1)})
    low, mean, high = d["band"]
    days, daily = np.array(_dates(d["days"])), np.array(d["daily"])
    seen = np.array([t.month <= 6 for t in days])
    a.axhspan(low, high, color=BLUE, alpha=0.1, label=f"band: mean +/- 3 sd = {low:.0%}-{high:.0%}")
    a.axhline(mean, color=BLUE, lw=1, ls="--", label=f"reference mean {mean:.1%}")
    a.plot(days[seen], daily[seen], ".", color=BLUE, ms=4, label="January-June (the reference)")
    a.plot(days[~seen], daily[~seen], "s", color=ORANGE, ms=2.8, label="July-December (served)")
    a.set(
        ylabel="share flagged late (score >= 0.5)",
        ylim=(-0.03, 1.0),
        title="The predicted-positive band, one point a day",
    )
    a.xaxis.set_major_locator(mdates.MonthLocator())
    a.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
    a.legend(loc="upper left", fontsize=8, ncol=2)
    spreads = np.array(d["spreads"])
    b.hist(
        spreads,
        bins=np.arange(0, spreads.max() + 0.02, 0.01),
        color=GREEN,
        alpha=0.8,
        label=f"{len(spreads):,} windows of 300 flights:\nmin {d['spread_min']:.3f}, "
        f"median {d['spread_median']:.2f}",
    )
    b.axvline(0.05, color=VERMILION, ls="--", label="the alert: under 0.05")
    b.axvline(
        d["constant_spread"],
        color=VERMILION,
        lw=3,
        alpha=0.5,
        label=f"a constant score: {d['constant_spread']:.2f}",
    )
    b.set(
        xlabel="score spread p90 - p10, from 0.05-wide buckets",
        ylabel="windows",
        title="The score spread of real traffic: windows of 300 flights, all of 2013",
    )
    b.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, "alerting")
    plt.close(fig)


def plot_drift(d: dict) -> None:
    import numpy as np

    plt = _style()
    months = ["Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    rows = [d["by_month"][str(m)] for m in d["months"]]
    features = list(rows[0]["scores"])
    x = np.arange(len(rows))
    fig = plt.figure(figsize=(7.7, 7.8))
    grid = fig.add_gridspec(3, 2, width_ratios=(1.1, 1))
    a = fig.add_subplot(grid[:, 0])
    b, c, e = (fig.add_subplot(grid[i, 1]) for i in range(3))
    scores = np.array([[r["scores"][f] for r in rows] for f in features])
    a.imshow(np.minimum(scores, 1.0), cmap="cividis", vmin=0, vmax=1.0, aspect="auto")
    for i, f in enumerate(features):
        for j, r in enumerate(rows):
            v, drifted = r["scores"][f], r["scores"][f] >= r["threshold"][f]
            a.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold" if drifted else "normal",
                color="black" if v > 0.55 else "white",
            )
            if drifted:  # a frame as well as bold: visible at any zoom and in grey print
                a.add_patch(
                    plt.Rectangle(
                        (j - 0.46, i - 0.44), 0.92, 0.88, fill=False, edgecolor=ORANGE, lw=1.6
                    )
                )
    a.set_xticks(x, [f"{m}\n{r['drift_share']:.2f}" for m, r in zip(months, rows, strict=True)])
    a.set_yticks(np.arange(len(features)), features)
    a.tick_params(length=0)
    a.grid(False)
    a.set_title("Data drift: each input's distance\nfrom Jan-Jun (framed: drifted)")
    a.set_xlabel("month; under it, the drift share")
    b.plot(x, [r["prediction_drift"] for r in rows], "o-", color=PURPLE, label="scores' distance")
    b.axhline(0.1, color=VERMILION, ls="--", lw=1, label="alert: 0.1")
    b.set(ylim=(0, 0.55), ylabel="Wasserstein", title="Prediction drift: the scores moved")
    b.legend(loc="upper left", fontsize=8, ncol=2)
    c.plot(x, [r["auc"] for r in rows], "o-", color=GREEN, label="AUC, the month's labels")
    c.axhline(
        d["holdout_auc"], color=GREEN, ls="--", lw=1, label=f"holdout AUC {d['holdout_auc']:.2f}"
    )
    c.axhline(0.6, color=VERMILION, ls=":", lw=1.2, label="alert floor 0.6")
    c.set(ylim=(0.45, 0.82), ylabel="AUC", title="Concept drift: does the ranking hold?")
    c.legend(loc="lower left", fontsize=8)
    e.plot(x, [r["late_share"] for r in rows], "o-", color=VERMILION, label="late share (labels)")
    e.plot(x, [r["mean_score"] for r in rows], "s--", color=BLUE, label="mean score (model)")
    e.axhline(d["reference_late_share"], color=GREY, ls=":", lw=1, label="late share, Jan-Jun")
    e.set(ylim=(0, 0.45), ylabel="share of flights", title="Label shift: the base rate moved")
    e.legend(loc="lower right", fontsize=8)
    for ax in (b, c, e):
        ax.set_xticks(x, months if ax is e else [""] * len(months))
    fig.tight_layout()
    _save(fig, "drift")
    plt.close(fig)


def plot_working(d: dict) -> None:
    import numpy as np

    from reference.serve.telemetry import SCORE_BUCKETS

    plt = _style()
    fig = plt.figure(figsize=(7.7, 6.4))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.1))
    a, b, c = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    broken, healthy = d["constant"], d["none"]
    minutes = np.arange(1, len(broken["minutes"]["ok"]) + 1)
    a.plot(
        minutes,
        healthy["minutes"]["ok"],
        "-",
        color=BLUE,
        lw=3,
        alpha=0.5,
        label="healthy: 200 OK per minute",
    )
    a.plot(
        minutes, broken["minutes"]["ok"], "--", color=VERMILION, label="broken: 200 OK per minute"
    )
    a.plot(
        minutes,
        np.array(broken["minutes"]["other"]) + np.array(healthy["minutes"]["other"]),
        ":",
        color=GREY,
        label="errors per minute (both): 0",
    )
    a.set(
        ylim=(0, max(healthy["minutes"]["ok"]) * 1.6),
        xlabel="minute of the replay",
        ylabel="requests",
        title="Working: all 200 OK, both ready",
    )
    a.legend(loc="upper left", fontsize=8)
    b.plot(minutes, healthy["minutes"]["spread"], "-", color=BLUE, label="healthy")
    b.plot(minutes, broken["minutes"]["spread"], "--", color=VERMILION, label="broken (constant)")
    b.axhline(0.05, color=VERMILION, ls=":", lw=1.2, label="alert under 0.05")
    b.set(
        ylim=(0, 0.7),
        xlabel="minute of the replay",
        ylabel="p90 - p10 of scores (10 min)",
        title="Healthy? The spread says no",
    )
    b.legend(loc="upper right", fontsize=8, ncol=2)
    for ax in (a, b):
        ax.set_xticks([1, 5, 10, 15, 20])
    extra = sorted(set(broken["alerts"] or []) - set(healthy["alerts"] or []))
    lows = np.array(SCORE_BUCKETS) - 0.05
    fires = f",\nfires {', '.join(extra)}" if extra else ""
    for r, color, off, label, tail in (
        (healthy, BLUE, -0.0125, "healthy", ""),
        (broken, VERMILION, 0.0125, "broken (--fault constant)", fires),
    ):
        counts = np.array([r["scores"].get(str(b), 0.0) for b in SCORE_BUCKETS])
        c.bar(
            lows + 0.025 + off,
            counts / r["rows"],
            width=0.024,
            color=color,
            label=f"{label}: predicted late {r['positive_rate']:.1%}{tail}",
        )
    c.set(
        xlim=(0, 0.95),
        xlabel="score bucket (0.05 wide)",
        ylabel="share of November's rows",
        title=f"The same {broken['rows']:,} November flights: where the scores fell",
    )
    c.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    _save(fig, "working-vs-healthy")
    plt.close(fig)


def plot_shadow_canary(d: dict) -> None:
    import numpy as np

    plt = _style()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.7, 6.6))
    bins = np.linspace(0, 1, 41)
    a.hist(
        d["shadow_champion_scores"],
        bins=bins,
        density=True,
        color=BLUE,
        alpha=0.55,
        label="champion v1 (answers the users)",
    )
    a.hist(
        d["shadow_candidate_scores"],
        bins=bins,
        density=True,
        color=ORANGE,
        alpha=0.55,
        label="candidate v2 (a copy, in shadow)",
    )
    s = d["shadow"]
    a.set(
        xlabel="score, on the same mirrored requests",
        ylabel="density",
        yticks=[],
        title="Shadow: no labels yet, so errors, latency and the scores' shape",
    )
    a.text(
        0.6,
        0.5,
        f"{s['requests']} requests mirrored\nerrors {s['error_rate']:.0%}\n"
        f"spread {s['spread_ratio']:.2f}x the champion's\nKS {s['score_ks']:.2f} (limit "
        f"{d['rollout']['max_score_ks']})\n-> passed",
        transform=a.transAxes,
        ha="right",
        va="center",
        fontsize=8.5,
        bbox={"facecolor": "white", "edgecolor": GREY, "alpha": 0.85},
    )
    a.legend(loc="upper right", fontsize=8)
    days = _dates(d["canary_days"])
    b.plot(
        days, d["canary_candidate_auc"], "s-", color=ORANGE, label="candidate v2, its canary rows"
    )
    b.plot(days, d["canary_champion_auc"], "o--", color=BLUE, label="champion v1, the same rows")
    m = d["decision"]["metrics"]
    b.text(
        0.97,
        0.05,
        f"{d['decision']['kind']} on {days[-1]:%b %d}: DeLong p = {m['p_value']:.2g}",
        transform=b.transAxes,
        ha="right",
        fontsize=8.5,
        color=VERMILION,
    )
    b.set(
        ylim=(0.35, 0.7),
        ylabel="AUC, same labelled flights",
        title=f"Canary ({d['rollout']['canary_percent']:g}% of requests): live labels decide",
    )
    b.set_xticks(
        days, [f"{t:%b %d}\n{n:,}" for t, n in zip(days, d["canary_labelled"], strict=True)]
    )
    b.set_xlabel("day (under it: labelled canary flights so far)")
    b.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save(fig, "shadow-canary")
    plt.close(fig)


def plot_rollback(d: dict) -> None:
    plt = _style()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.7, 5.2))
    calls = [
        ("rollback model\n(move the alias)", d["model"]["seconds"], BLUE),
        ("rollback data\n(git + dvc checkout)", d["restore"]["seconds"], ORANGE),
        ("rollback data\n(+ the retrain)", d["retrain"]["seconds"], VERMILION),
    ]
    bars = a.barh([c[0] for c in calls], [c[1] for c in calls], color=[c[2] for c in calls])
    for bar, (_, s, _) in zip(bars, calls, strict=True):
        a.text(
            s * 1.2,
            bar.get_y() + bar.get_height() / 2,
            f"{s:.1f} s" if s < 10 else f"{s:.0f} s",
            va="center",
            fontsize=9,
        )
    a.set_xscale("log")
    a.set_xlim(0.05, 3000)
    a.invert_yaxis()
    a.grid(axis="y", visible=False)
    a.set(xlabel="seconds (log scale)", title="How long each call took")
    v1, v2, v3 = d["versions"]

    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

    def months(v):
        return (
            f"trained {names[v['train'][0] - 1]}-{names[v['train'][-1] - 1]}, "
            f"holdout {names[v['holdout'][0] - 1]}"
        )

    rows = [
        (f"v{v1['version']}: the champion\n{months(v1)}", v1, BLUE),
        (f"v{v2['version']}: the bad challenger\n{months(v2)}", v2, VERMILION),
        (
            f"v{v3['version']}: v{v1['version']}'s data ({d['restore']['commit']})\n{months(v3)}",
            v3,
            SKY,
        ),
    ]
    bars = b.barh(
        [r[0] for r in rows],
        [r[1]["holdout_auc"] for r in rows],
        color=[r[2] for r in rows],
        height=0.6,
    )
    for bar, (_, v, _) in zip(bars, rows, strict=True):
        b.text(
            v["holdout_auc"] + 0.002,
            bar.get_y() + bar.get_height() / 2,
            f"{v['holdout_auc']:.4f}",
            va="center",
            fontsize=9,
        )
    b.set_xlim(0.65, 0.74)
    b.invert_yaxis()
    b.grid(axis="y", visible=False)
    b.set(
        xlabel="holdout AUC, as registered in MLflow", title="Same data, params, seed: same model"
    )
    fig.tight_layout()
    _save(fig, "rollback")
    plt.close(fig)


# ------------------------------------------------------------------------------ the numbers
def numbers(name: str, d: dict) -> None:
    """What the pages quote, printed once per figure."""
    say(f"\n== numbers: {name}")
    if name == "probabilistic":
        say(
            f"Level 0 test AUC (Aug-Oct) {d['test_auc']:.4f}; August {d['august_flights']:,} "
            f"flights, {d['august_late_share']:.1%} late; 'always on time' accuracy "
            f"{d['always_on_time_accuracy']:.3f}"
        )
        say("AUC on August:", ", ".join(f"{k} {v:.3f}" for k, v in d["auc"].items()))
        say(
            f"cost {MISS_COST}x miss + {FALSE_ALARM_COST}x false alarm: cheapest t "
            f"{d['cheapest']:.2f} = {d['cheapest_cost']:.0f}/day; at 0.5 {d['cost_at_05']:.0f}; "
            f"flag nothing {d['flag_nothing_cost']:.0f}"
        )
        say(
            f"daily AUC: median {d['daily_median']:.2f}, 90% of days {d['daily_band'][0]:.2f}-"
            f"{d['daily_band'][1]:.2f}, pooled {d['pooled_auc']:.2f}; page < {NAIVE_PAGE}: "
            f"{d['pages']} of {d['days']} days"
        )
    elif name == "alerting":
        low, mean, high = d["band"]
        say(
            f"reference {d['reference_rows']:,} rows of months {d['train_months']}; band "
            f"{low:.1%}-{high:.1%}, mean {mean:.1%}; reference days outside {d['ref_outside']}; "
            f"July-December: {len(d['later_outside'])} of {d['later_days']} days outside "
            f"{d['later_outside']}, daily {d['later_range'][0]:.1%}-{d['later_range'][1]:.1%}"
        )
        say(
            f"{len(d['spreads']):,} windows of 300 of the year's {d['year_rows']:,} flights: "
            f"spread min {d['spread_min']:.3f}, median {d['spread_median']:.3f}, under 0.05: "
            f"{d['spread_under_005']}; 1st percentile {d['spread_p1']:.3f}; lowest window "
            f"{d['lowest_window']}; a constant: {d['constant_spread']:.3f}"
        )
    elif name == "drift":
        say(
            f"champion: trained {d['train_months']}, holdout {d['holdout']} AUC {d['holdout_auc']:.4f}; "
            f"reference late share {d['reference_late_share']:.3f}, mean score "
            f"{d['reference_mean_score']:.3f}"
        )
        for m, r in d["by_month"].items():
            say(
                f"  month {m:>2}: drift share {r['drift_share']:.2f} ({', '.join(r['drifted'])}); "
                f"prediction drift {r['prediction_drift']:.3f}; AUC {r['auc']:.3f}; late "
                f"{r['late_share']:.3f}, mean score {r['mean_score']:.3f}"
            )
        say(
            "validate's drift warnings (reference Jan-Mar):",
            "; ".join(f"{b}: {', '.join(c)}" for b, c in d["validate_drift_warnings"].items())
            or "none",
        )
    elif name == "working-vs-healthy":
        for fault, r in d.items():
            used = [k for k, v in r["scores"].items() if v]
            sp = r["minutes"]["spread"]
            say(
                f"{fault:9} requests {r['requests']:.0f} (2xx {r['ok']:.0f}), ready {r['ready']}, "
                f"rows {r['rows']:,}; buckets used {len(used)} (busiest up to "
                f"{max(r['scores'], key=r['scores'].get)}); predicted positive "
                f"{r['positive_rate']:.1%} (band {r['band'][0]:.1%}-{r['band'][2]:.1%}); spread "
                f"(10 min) {min(sp):.3f}-{max(sp):.3f}; drift share {r['drift_share']:.2f}, "
                f"prediction drift {r['prediction_drift']:.3f}; alerts {r['alerts']}"
            )
    elif name == "shadow-canary":
        s, m = d["shadow"], d["decision"]["metrics"]
        say("story:", " -> ".join(d["story"]), f"(loop {d['loop_seconds']:.0f} s)")
        say("gate:", "; ".join(d["gate"]))
        say(
            "shadow:",
            "; ".join(d["shadow_reasons"]),
            "| metrics",
            {k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()},
        )
        say(
            f"canary: {d['decision']['kind']} on {d['decision']['day']}: "
            + "; ".join(d["decision"]["reasons"])
        )
        say(
            f"  days {m.get('days')}, labelled {m['labelled']}, AUC {m['candidate_auc']:.3f} vs "
            f"{m['champion_auc']:.3f}, diff {m['auc_diff']:+.3f}, se {m['auc_diff_se']:.4f}, "
            f"p {m['p_value']:.2g}"
        )
        say(
            f"  canary requests {d['canary_requests']}, answered by the candidate "
            f"{d['canary_by_candidate']}; client requests {d['client_requests']}, errors "
            f"{d['client_errors']}"
        )
        say("  labels needed (gap: flights):", d["labels_needed"], "| rollout", d["rollout"])
    elif name == "rollback":
        say(
            f"rollback model v{d['model']['from']} -> v{d['model']['to']} in {d['model']['seconds']:.2f} s"
        )
        say(
            f"rollback data (restore {d['restore']['commit']}, the data of v{d['restore']['source']}) "
            f"in {d['restore']['seconds']:.1f} s"
        )
        r = d["retrain"]
        say(
            f"rollback data + retrain in {r['seconds']:.0f} s: v{r['version']} AUC {r['auc']:.4f} vs "
            f"v{d['restore']['source']} {r['source_auc']:.4f}, reproduced {r['reproduced']}"
        )
        for v in d["versions"]:
            say(
                f"  v{v['version']}: train {v['train']}, holdout {v['holdout']} AUC "
                f"{v['holdout_auc']:.4f}, data {v['data_commit']}"
            )
        say(f"  @champion after: v{d['champion_after']}")


FIGURES = {
    "probabilistic": (data_probabilistic, plot_probabilistic),
    "alerting": (data_alerting, plot_alerting),
    "drift": (data_drift, plot_drift),
    "shadow-canary": (data_shadow_canary, plot_shadow_canary),
    "rollback": (data_rollback, plot_rollback),
    "working-vs-healthy": (data_working, plot_working),
}


def _jsonable(value):
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="figures: " + ", ".join(FIGURES),
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=list(FIGURES),
        metavar="NAME",
        help="make only this figure (repeatable); default: all",
    )
    ap.add_argument("--data", type=Path, help="also write what the runs measured to this JSON file")
    ap.add_argument("--replot", type=Path, help="redraw from a --data file; run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    ap.add_argument(
        "--workspace",
        type=Path,
        help="run in this folder and keep it; a champion already built there is reused",
    )
    args = ap.parse_args(argv)
    names = args.only or list(FIGURES)
    if args.replot:
        saved = json.loads(args.replot.read_text())
        missing = [n for n in names if n not in saved]
        if missing:
            ap.error(f"--replot: {args.replot} holds no {', '.join(missing)}: run it with --only")
        for name in names:
            numbers(name, saved[name])
            FIGURES[name][1](saved[name])
        return 0
    # Everything below writes to a temporary workspace: never workspace/, never a tracking
    # server named in the caller's environment.
    labs = (ROOT / "workspace").resolve()
    if args.workspace:
        chosen = args.workspace.resolve()
        if chosen == labs or labs in chosen.parents:
            ap.error("--workspace: use a folder outside workspace/ (the labs' own)")
        chosen.mkdir(parents=True, exist_ok=True)
        args.keep = True
    tmp = chosen if args.workspace else Path(tempfile.mkdtemp(prefix="mlops-docs-figures-"))
    os.environ["MLOPS_LAB_WORKSPACE"] = str(tmp / "default")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("MPLBACKEND", "Agg")
    started = time.monotonic()
    collected = {}
    try:
        runs = Runs(tmp)
        for name in names:
            d = _jsonable(FIGURES[name][0](runs))
            collected[name] = d
            numbers(name, d)
            FIGURES[name][1](d)
            say(f"({time.monotonic() - started:.0f} s so far)")
    finally:
        if args.data and collected:
            args.data.write_text(json.dumps(collected))
            say(f"measurements: {args.data}")
        if args.keep:
            say(f"workspace kept: {tmp}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
