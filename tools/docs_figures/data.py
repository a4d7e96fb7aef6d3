"""What each figure needs, measured from the runs: one data_<figure>(runs) -> dict each."""

from __future__ import annotations

import json
import time

from common import NAIVE_PAGE, say
from runs import Runs, bucketed_spread, per_minute


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
    low, mean, high = monitor.positive_rate_band(ref, freq="1D")  # the figure plots days
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
