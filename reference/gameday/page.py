"""What the on-call engineer reads: the status page of a shift, and the score at the end."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from reference.gameday.evidence import Evidence
from reference.gameday.incidents import FIXES, INCIDENTS

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "alerts.yml"


@cache
def severities(rules: Path = RULES) -> dict[str, str]:
    """alert name -> severity, from monitoring/alerts.yml."""
    import yaml

    if not rules.exists():
        return {}
    return {
        r["alert"]: r.get("labels", {}).get("severity", "?")
        for g in yaml.safe_load(rules.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }


def status_lines(e: Evidence, events: list[dict], rel=str) -> list[str]:
    """The page, as plain lines (no colour), so a notebook and a terminal show the same."""
    sev = severities()
    out = [f"shift {e.days[0]}..{e.days[-1]}"]
    if e.alerts is None:
        out.append("alerts: promtool is not installed (apt-get install prometheus): not evaluated")
    elif e.alerts:
        ranked = sorted(e.alerts, key=lambda a: (sev.get(a) != "critical", a))
        out.append("alerts firing: " + ", ".join(f"{a} ({sev.get(a, '?')})" for a in ranked))
    else:
        out.append("alerts firing: none")
    codes = ", ".join(f"{c}: {n}" for c, n in e.codes.items())
    out.append(f"requests: {e.requests} ({codes}); rows scored {e.rows:,}")
    if e.rows:
        out.append(
            f"scores: std {e.spread:.3f}, predicted late {e.positive_rate:.1%} (threshold 0.5)"
        )
    unknown = ", ".join(f"{k} {v:.1%}" for k, v in list(e.unknown.items())[:3]) or "none"
    out.append(
        f"inputs: unknown categories {unknown}; dew point above temperature in "
        f"{e.units_share:.1%} of rows"
    )
    if e.top_drift:
        top = ", ".join(f"{k} {v:.2f}" for k, v in e.top_drift.items())
        out.append(f"drift vs the champion's training months: share {e.drift_share:.2f}; top {top}")
    elif e.rows and not e.drift_checked:
        out.append("drift: not measured on the shift after a fix (no finding depends on it)")
    else:
        out.append("drift: not measured (no served rows with every feature)")
    auc = f"live AUC {e.live_auc:.3f}" if e.live_auc is not None else "live AUC: no data"
    out.append(
        f"labels: {e.labelled:,} of {e.expected_labelled:,} landed flights have an outcome; {auc}"
    )
    c = e.canary
    if c:
        line = (
            f"canary: v{c['version']} at {c['percent']:.0f}%, {c['requests']} requests, "
            f"{c['failed']} failed or timed out, readiness {'ok' if c.get('ready') else 'FAILING'}"
        )
        if c.get("unknown"):
            line += "; its unknown categories " + ", ".join(
                f"{k} {v:.1%}" for k, v in c["unknown"].items()
            )
        if c.get("candidate_auc") is not None:
            line += (
                f"; on the same {c['labelled']} labelled flights AUC {c['candidate_auc']:.3f} "
                f"(candidate) vs {c['champion_auc']:.3f} (champion), one-sided p = {c['p_worse']:.2g}"
            )
        out.append(line)
    else:
        out.append("canary: none")
    b = e.batch
    if b:
        verdict = "passed" if b["passed"] else "FAILED"
        counts = ", ".join(f"{n} {k}" for k, n in b["counts"].items())
        out.append(f"incoming batch {b['batch']}: validation {verdict} ({counts})")
    else:
        out.append("incoming batch: none waiting")
    for ev in events:
        out.append(f"event {ev['day']} {ev['kind']}: {ev['text']}")
    return out


def evidence_files(folder: Path) -> list[str]:
    names = (
        "metrics.prom", "metrics-candidate.prom", "drift.html", "validation.md", "router.jsonl",
        "evidence.json",
    )  # fmt: skip
    return [n for n in names if (folder / n).exists()]


def help_lines() -> list[str]:
    return [
        "name it:  mlops-lab gameday answer <incident>   (" + ", ".join(INCIDENTS) + ")",
        "fix it:   mlops-lab gameday fix <action>         (" + ", ".join(FIXES) + ")",
    ]
