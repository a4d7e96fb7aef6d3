"""What a shift measured, and the findings: what is wrong, each with the fact behind it.

Nothing here knows which incident is live: each finding is a threshold on a measurement an
on-call engineer has (status codes, scores, the unknown bucket, the payload log, the outcomes
that arrived, the router log, the incoming batch's validation).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

LABEL_DELAY_DAYS = 1  # an outcome is known the day after the flight (as in the Level 2 loop)
# thresholds of the findings (the alert rules use the same levels where one exists)
ERROR_SHARE = 0.05
MIN_SPREAD = 0.01
UNKNOWN_SHARE = 0.05
UNITS_SHARE = 0.2
CANDIDATE_FAILURES = 0.01
LABELS_SHARE = 0.5
CANARY_ALPHA = 0.05
CANARY_MIN_LABELLED = 200


@dataclass
class Evidence:
    """What one shift measured; ``findings`` and ``details`` are filled by :func:`findings`."""

    days: list[str]
    requests: int
    codes: dict[str, int]
    rows: int
    spread: float
    positive_rate: float
    unknown: dict[str, float]
    units_share: float
    labelled: int
    expected_labelled: int
    live_auc: float | None
    drift_share: float
    drifted: list[str]
    top_drift: dict[str, float]
    alerts: list[str] | None
    canary: dict | None = None
    batch: dict | None = None
    drift_checked: bool = True  # False: skipped on purpose (the shift after a fix)
    findings: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)  # finding -> the measured fact

    def to_dict(self) -> dict:
        return asdict(self)


def _outcomes(frame: pd.DataFrame, days: list[dt.date], labels_stop: bool) -> pd.Series:
    """row_id -> outcome, for the flights whose outcome has arrived by the end of the shift."""
    from reference.features import TARGET

    known_before = max(days) - dt.timedelta(days=LABEL_DELAY_DAYS - 1)
    departed = pd.to_datetime(frame["sched_dep"]).dt.date
    arrived = (departed < known_before) & frame[TARGET].notna() & (not labels_stop)
    return frame.loc[arrived].set_index("row_id")[TARGET].astype(float)


def _expected(frame: pd.DataFrame, days: list[dt.date]) -> int:
    return len(_outcomes(frame, days, labels_stop=False))


def measure(
    settings, deployment, frame, days, out, codes, ledger, finals, with_drift=True
) -> Evidence:
    from reference.serve.payload_log import read_payload_log

    payload = read_payload_log(out / "payload-champion")
    if len(payload):
        payload["row_id"] = [
            ledger[r][int(i)] if r in ledger and int(i) < len(ledger[r]) else -1
            for r, i in zip(payload["request_id"], payload["row"], strict=True)
        ]
    rows = len(payload)
    probs = payload["probability"].to_numpy(dtype=float) if rows else np.array([])
    unknown = _unknown(finals.get("champion", {}))
    units = 0.0
    if rows and {"temp", "dewp"} <= set(payload.columns):
        t = pd.to_numeric(payload["temp"], errors="coerce")
        d = pd.to_numeric(payload["dewp"], errors="coerce")
        both = t.notna() & d.notna()
        units = float((d[both] > t[both] + 1.0).mean()) if both.any() else 0.0
    outcomes = _outcomes(frame, days, deployment.labels_stop)
    labelled = len(outcomes)  # outcomes that arrived, whether or not their requests were served
    live_auc = None
    if rows:
        y = payload["row_id"].map(outcomes)
        known = y.notna().to_numpy()
        if known.sum() >= 100 and len(np.unique(y[known])) == 2:
            from reference.metrics import roc_auc

            live_auc = float(roc_auc(y[known].to_numpy(), probs[known]))
    drift = _drift(settings, deployment, payload, out) if rows and with_drift else None
    evidence = Evidence(
        days=[d.isoformat() for d in days],
        requests=sum(codes.values()),
        codes=dict(sorted(codes.items())),
        rows=rows,
        spread=float(probs.std()) if rows else 0.0,
        positive_rate=float((probs >= 0.5).mean()) if rows else float("nan"),
        unknown=dict(sorted(unknown.items(), key=lambda kv: -kv[1])),
        units_share=units,
        labelled=labelled,
        expected_labelled=_expected(frame, days),
        live_auc=live_auc,
        drift_share=drift.drift_share if drift else float("nan"),
        drifted=drift.drifted_features if drift else [],
        top_drift=dict(
            sorted(
                ((k, round(v.score, 3)) for k, v in drift.features.items()), key=lambda kv: -kv[1]
            )[:5]
        )
        if drift
        else {},
        alerts=None,
        drift_checked=with_drift,
    )
    evidence._drift = drift  # type: ignore[attr-defined]  # for the gauges, not serialised
    if deployment.canary:
        evidence.canary = _canary(out, ledger, outcomes, deployment.canary)
        unknown_c = _unknown(finals.get("candidate", {}))
        evidence.canary["unknown"] = dict(sorted(unknown_c.items(), key=lambda kv: -kv[1])[:3])
    if deployment.incoming:
        evidence.batch = validate_batch(settings, Path(deployment.incoming), out)
    return evidence


def _unknown(metrics: dict[str, float]) -> dict[str, float]:
    """feature -> share of the rows scored whose category the model never saw."""
    total = sum(v for k, v in metrics.items() if k.startswith("model_rows_total"))
    out = {}
    for key, value in metrics.items():
        if key.startswith("model_feature_unknown_category_total") and total:
            out[key.split('feature="')[1].split('"')[0]] = value / total
    return out


def _drift(settings, deployment, payload: pd.DataFrame, out: Path):
    """The drift report of the shift's served rows against the champion's training months."""
    from reference import monitor, registry
    from reference.model import load_bundle
    from reference.watch import reference_window

    run = registry.version_run(settings, deployment.champion)
    months = json.loads(run.data.tags.get("split.train", "[1, 2, 3]"))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(
            registry.download_bundle(settings, deployment.champion, Path(tmp) / "model")
        )
        reference = reference_window(settings, bundle, months, rows=20_000)
    current = payload.copy()
    for col in ("temp",):  # a renamed column never reached the log: nothing to compare
        if col not in current.columns:
            return None
    try:
        drift = monitor.drift_report(reference, current)
    except ValueError:
        return None
    drift.to_html(out / "drift.html")
    return drift


def _canary(out: Path, ledger, outcomes: pd.Series, canary: dict) -> dict:
    """The router log of the candidate's share: failures, and live AUC on the same flights."""
    from reference.loop.policy import delong_test
    from reference.metrics import roc_auc

    path = out / "router.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    mine = [x for x in lines if x.get("mode") == "canary" and x.get("candidate")]
    failed = sum(1 for x in mine if x["candidate"].get("code") != 200)
    y, cand, champ = [], [], []
    for x in mine:
        c, h = x["candidate"].get("scores"), (x.get("champion") or {}).get("scores")
        rows = ledger.get(x["request_id"], [])
        if not c or not h or len(c) != len(rows) or len(h) != len(rows):
            continue
        for row, sc, sh in zip(rows, c, h, strict=True):
            if row in outcomes.index:
                y.append(outcomes[row])
                cand.append(sc)
                champ.append(sh)
    result = {
        "version": canary["version"],
        "percent": canary["percent"],
        "requests": len(mine),
        "failed": failed,
        "labelled": len(y),
    }
    if len(y) >= 2 and len(set(y)) == 2:
        y_, a, b = np.array(y), np.array(cand), np.array(champ)
        diff, p = delong_test(y_, a, b)
        result |= {
            "candidate_auc": float(roc_auc(y_, a)),
            "champion_auc": float(roc_auc(y_, b)),
            "p_worse": float(p),
        }
    return result


def validate_batch(settings, path: Path, out: Path) -> dict:
    """Validate the incoming batch against the project's reference profile, as the pipeline would."""
    from reference.config import load_params
    from reference.validate import ValidationReport, check_batch

    project = settings.project
    profile = json.loads((project / "reports" / "reference_profile.json").read_text())
    params = load_params(project / "params.yaml")
    name = path.stem
    report = ValidationReport(check_batch(pd.read_parquet(path), profile, params.validate, name))
    (out / "validation.md").write_text(report.summary())
    counts = report.counts
    failing = [c.message for c in report.checks if c.severity == "fail"][:3]
    return {"batch": name, "passed": report.passed, "counts": counts, "failing": failing}


def gauges(evidence: Evidence) -> dict[str, float]:
    """The monitor job's gauges for the shift (drift, live AUC), as series for promtool."""
    from prometheus_client import CollectorRegistry

    from reference import monitor
    from reference.watch import _selector

    drift = getattr(evidence, "_drift", None)
    if drift is None:
        return {}
    live = None
    if evidence.live_auc is not None:
        live = pd.DataFrame(
            [{"window_start": pd.Timestamp(evidence.days[0]), "rows": evidence.rows,
              "labelled": evidence.labelled, "auc": evidence.live_auc}]
        )  # fmt: skip
    registry = CollectorRegistry()
    monitor.export_gauges(drift, live, registry)
    series = {}
    for family in registry.collect():
        for s in family.samples:
            if s.value == s.value:
                series[_selector(s.name, s.labels)] = float(s.value)
    return series


def findings(e: Evidence) -> None:
    """What is wrong, measured; each with the fact behind it (for the status page)."""
    add = lambda key, fact: (e.findings.append(key), e.details.__setitem__(key, fact))  # noqa: E731
    refused = sum(v for c, v in e.codes.items() if not c.startswith("2"))
    if e.requests and refused / e.requests > ERROR_SHARE:
        add("errors", f"{refused} of {e.requests} requests answered {_non2xx(e.codes)}")
    if e.rows >= 100 and e.spread < MIN_SPREAD:
        add("collapsed", f"score std {e.spread:.4f} over {e.rows:,} rows (< {MIN_SPREAD})")
    worst = max(e.unknown.items(), key=lambda kv: kv[1], default=(None, 0.0))
    if worst[1] > UNKNOWN_SHARE:
        add("unknown", f"{worst[0]}: {worst[1]:.0%} of rows in the unknown bucket")
    if e.units_share > UNITS_SHARE:
        add("units", f"dew point above temperature in {e.units_share:.0%} of served rows")
    if e.batch:
        if not e.batch["passed"]:
            add(
                "batch-bad", f"{e.batch['batch']} fails validation: {'; '.join(e.batch['failing'])}"
            )
        else:
            add("batch-waiting", f"{e.batch['batch']} passed validation and waits for a retrain")
    c = e.canary
    if c:
        if c["requests"] and (
            c["failed"] / c["requests"] > CANDIDATE_FAILURES or not c.get("ready")
        ):
            add(
                "candidate-down",
                f"{c['failed']} of {c['requests']} canary requests failed or timed out; "
                f"readiness {'ok' if c.get('ready') else 'FAILING'}",
            )
        elif (
            c.get("p_worse") is not None
            and c["labelled"] >= CANARY_MIN_LABELLED
            and c["p_worse"] < CANARY_ALPHA
        ):
            add(
                "canary-worse",
                f"AUC {c['candidate_auc']:.3f} (v{c['version']}) vs {c['champion_auc']:.3f} "
                f"(champion) on the same {c['labelled']} flights, DeLong p = {c['p_worse']:.2g}",
            )
    if e.expected_labelled >= 100 and e.labelled < LABELS_SHARE * e.expected_labelled:
        add(
            "labels-stale",
            f"{e.labelled} of {e.expected_labelled} landed flights have an outcome",
        )


def _non2xx(codes: dict[str, int]) -> str:
    return ", ".join(f"{c}: {n}" for c, n in codes.items() if not c.startswith("2"))
