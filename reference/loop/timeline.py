"""The loop's run as a timeline: a table of decisions for the terminal, a plot for the eyes.

mlops-lab timeline            # after `mlops-lab loop`: prints the events, writes timeline.png
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from reference.loop.state import EventLog

# the decisions worth a line on the plot, and their colours
MARKS = {
    "retrain": "tab:blue",
    "retrain-stopped": "tab:gray",
    "gate-reject": "tab:gray",
    "shadow": "tab:purple",
    "canary": "tab:orange",
    "promote": "tab:green",
    "rollback": "tab:red",
    "incident": "black",
}


def table(events: list[dict], title: str = "Level 2 timeline"):
    """A rich Table of the decisions (checks with no trigger left out)."""
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col in ("day", "event", "version", "why"):
        t.add_column(col, overflow="fold")
    for e in events:
        if e["kind"] in ("canary-wait",):
            continue
        if e["kind"] == "check" and e["reasons"][:1] == [
            "no trigger: data, quality and schedule within policy"
        ]:
            continue
        style = {"promote": "green", "rollback": "red", "incident": "bold"}.get(e["kind"], "")
        t.add_row(
            e["day"] or "-",
            f"[{style}]{e['kind']}[/]" if style else e["kind"],
            f"v{e['version']}" if e["version"] else "",
            "; ".join(e["reasons"]),
        )
    return t


def _days(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _by_version(events: list[dict]) -> list[list[dict]]:
    """Consecutive runs of events of the same champion version."""
    groups: list[list[dict]] = []
    for e in events:
        if groups and groups[-1][0]["version"] == e["version"]:
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def plot(loop_dir: Path, out: Path | None = None) -> Path:
    """Drift share and live AUC at each check, the canary's AUC against the champion's, the
    rollout phases as bands and every decision as a line. Returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed (CI, SSH); a notebook shows the PNG
    import matplotlib.pyplot as plt

    events = EventLog(loop_dir / "events.jsonl").read()
    days = _days(loop_dir / "days.jsonl")
    out = out or loop_dir / "timeline.png"
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 6), sharex=True)

    def when(e):
        # a decision is taken after its day's traffic: draw it at the end of that day, where
        # the next day's phase band starts
        return dt.date.fromisoformat(e["day"]) + dt.timedelta(1)

    checks = [e for e in events if e["kind"] == "check" and e["day"]]
    # one line per champion: each is judged against its own reference, and has its own AUC
    for i, group in enumerate(_by_version(checks)):
        ax1.plot(
            [when(e) for e in group],
            [e["metrics"].get("drift_share") for e in group],
            "o-",
            color="tab:blue",
            label=None if i else "drift share, vs the champion's own months",
        )
        ax1.annotate(
            f"v{group[0]['version']}",
            (when(group[0]), group[0]["metrics"].get("drift_share") or 0),
            textcoords="offset points",
            xytext=(0, 6),
            fontsize=7,
            color="tab:blue",
        )
    shares = [e["metrics"].get("drift_share") or 0 for e in checks]
    ax1.set_ylabel("drift share")
    # room for the small shares of a calibrated check, and for the decisions' labels above them
    ax1.set_ylim(0, max(0.5, 1.6 * max(shares, default=0)))
    canary = [e for e in events if e["kind"] in ("canary-wait", "promote", "rollback") and e["day"]]
    live = [e for e in checks if e["metrics"].get("live_auc") is not None]
    for i, group in enumerate(_by_version(live)):
        ax2.plot(
            [when(e) for e in group],
            [e["metrics"]["live_auc"] for e in group],
            "o-",
            color="tab:blue",
            label=None if i else "champion, live AUC (labels landed)",
        )
    with_auc = [e for e in canary if e["metrics"].get("candidate_auc") is not None]
    for i, group in enumerate(_by_version(with_auc)):  # one pair of lines per canary
        ax2.plot(
            [when(e) for e in group],
            [e["metrics"]["candidate_auc"] for e in group],
            "s-",
            color="tab:orange",
            label=None if i else "candidate on its canary rows",
        )
        ax2.plot(
            [when(e) for e in group],
            [e["metrics"]["champion_auc"] for e in group],
            "s--",
            color="tab:blue",
            alpha=0.6,
            label=None if i else "champion on the same rows",
        )
    ax2.set_ylabel("AUC")
    for ax in (ax1, ax2):
        for d in days:
            if d["phase"] in ("shadow", "canary"):
                day = dt.date.fromisoformat(d["day"])
                ax.axvspan(
                    day,
                    day + dt.timedelta(1),
                    color="tab:purple" if d["phase"] == "shadow" else "tab:orange",
                    alpha=0.12,
                    lw=0,
                )
        for e in events:
            if e["kind"] in MARKS and e["day"]:
                ax.axvline(when(e), color=MARKS[e["kind"]], lw=1, alpha=0.8)
    marked = [e for e in events if e["kind"] in MARKS and e["day"]]
    for i, e in enumerate(marked):
        label = e["kind"] + (f" v{e['version']}" if e["version"] else "")
        # several decisions on one day: step the labels down instead of printing them on top
        same_day = [m for m in marked[:i] if m["day"] == e["day"]]
        ax1.annotate(
            label,
            (when(e), 0.98 - 0.3 * len(same_day)),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            va="top",
            ha="right",
            color=MARKS[e["kind"]],
        )
    level = next((e["metrics"].get("drift_threshold") for e in checks), None)
    if level is not None:
        ax1.axhline(level, color="tab:blue", ls=":", lw=1, label=f"retrain trigger ({level})")
    # beside the plots, where no decision's label can be under them
    if checks:
        ax1.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if live or with_auc:
        ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax1.set_title("Level 2: checks, retraining, shadow (purple), canary (orange), decisions")
    fig.autofmt_xdate()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
