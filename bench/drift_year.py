"""Benchmark: the Level 2 loop over the whole replayed year, and whether its drift trigger thrashes.

    make bench                                       # writes its section of docs/benchmarks.md
    .venv/bin/python bench/drift_year.py             # prints only (about 6 minutes here)
    .venv/bin/python bench/drift_year.py --repo ../old-checkout   # the same replay of another tree

The natural scenario from August 1 to December 31 with real servers, real retrains and real
rollouts (reference.loop.controller, until the last day instead of the first decision). It
counts the retrains and what triggered each, and lists every check's drift share against the
reference it was judged on. For the first check of each newly promoted champion, the same window
is also scored against the outgoing champion's reference: a trigger that only the switch of
reference fired would show as drift against the new reference and none against the old. A
benchmark, not a test: nothing is asserted (tests/integration/test_loop.py checks one switch).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:drift-year:start -->", "<!-- bench:drift-year:end -->"
FIRST, LAST = "2013-08-01", "2013-12-31"


def replay(workspace: Path) -> tuple[list[dict], float]:
    """Run the year in ``workspace`` with the ``reference`` on sys.path; the events, the seconds."""
    from reference.config import get_settings
    from reference.loop.controller import Controller, loop_settings

    settings = loop_settings(get_settings(workspace))
    tick = time.perf_counter()
    controller = Controller(settings, "natural", log=lambda *a, **k: None)
    controller.run(first_day=FIRST, until_decision=False, last_day=LAST)
    return controller.events.read(), time.perf_counter() - tick


def switch_check(events: list[dict]) -> list[str]:
    """Each new champion's first check, its window also scored against the outgoing reference."""
    import datetime as dt

    from reference import drift_reference, ingest, monitor
    from reference.config import RetrainParams

    p = RetrainParams()
    months_of = {
        e["version"]: e["metrics"]["months"] for e in events if e["kind"] == "drift-reference"
    }
    flights = ingest.build(*ingest.load_raw())
    day = flights["sched_dep"].dt.date
    refs, out, seen = {}, [], []
    for e in events:
        if e["kind"] != "check" or not e["day"]:
            continue
        if seen and e["version"] != seen[-1] and seen[-1] in months_of:
            old = seen[-1]
            if old not in refs:
                months = months_of[old]
                refs[old] = drift_reference.calibrate(
                    flights[flights["month"].isin(months)],
                    months,
                    p.window_days,
                    margin=p.drift_margin,
                )
            end = dt.date.fromisoformat(e["day"])
            window = flights[(day > end - dt.timedelta(p.window_days)) & (day <= end)]
            r = monitor.drift_report(refs[old].sample, window, thresholds=refs[old].thresholds)
            out.append(
                f"{e['day']}, v{e['version']}'s first check: drift share "
                f"{e['metrics']['drift_share']:.2f} against its own months {months_of[e['version']]}; "
                f"the same window against v{old}'s months {months_of[old]}: {r.drift_share:.2f} "
                f"({', '.join(r.drifted_features) or 'nothing'})"
            )
        if not seen or seen[-1] != e["version"]:
            seen.append(e["version"])
    return out


def table(events: list[dict], seconds: float, label: str) -> list[str]:
    retrains = [e for e in events if e["kind"] == "retrain"]
    outcome = {}
    for e in events:
        if e["kind"] in ("gate-reject", "promote", "rollback", "retrain-stopped"):
            outcome.setdefault(
                e["day"][:7], e["kind"] + (f" v{e['version']}" if e["version"] else "")
            )
    rows = [
        f"**{label}**: {len(retrains)} retrains in {seconds:.0f} s.",
        "",
        "| retrain | triggers | outcome |",
        "|---|---|---|",
    ]
    for e in retrains:
        triggers = [r.split(" (")[0] for r in e["reasons"][:-1]]
        rows.append(f"| {e['day']} | {'; '.join(triggers)} | {outcome.get(e['day'][:7], '')} |")
    checks = [e for e in events if e["kind"] == "check" and e["day"]]
    rows += ["", "| check | champion | drift share | drifted |", "|---|---|---:|---|"]
    for e in checks:
        drifted = next((r for r in e["reasons"] if r.startswith("drift share")), "")
        moved = drifted.split("(")[1].split(")")[0] if "(" in drifted else ""
        share = e["metrics"].get("drift_share")
        rows.append(
            f"| {e['day']} | v{e['version']} | {share:.2f} | {moved} |"
            if share is not None
            else f"| {e['day']} | v{e['version']} | - | |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    parser.add_argument("--repo", type=Path, help="replay with the reference/ of this tree instead")
    parser.add_argument("--events-out", type=Path, help=argparse.SUPPRESS)  # --repo's child
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if args.repo:  # a child process, so that tree's reference/ is the one imported
        repo = args.repo.resolve()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "events.json"
            env = {**os.environ, "PYTHONPATH": str(repo)}
            subprocess.run(
                [sys.executable, __file__, "--events-out", str(out)], env=env, cwd=repo, check=True
            )
            import json

            data = json.loads(out.read_text())
        rows = table(data["events"], data["seconds"], f"{repo.name} (the tree given)")
        print("\n".join(rows))
        return 0
    if not args.events_out:  # --repo's child imports that tree's reference/ (PYTHONPATH)
        sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        print(f"replaying {FIRST} to {LAST} (natural) ...", flush=True)
        events, seconds = replay(Path(tmp) / "ws")
    if args.events_out:
        import json

        args.events_out.write_text(json.dumps({"events": events, "seconds": seconds}))
        return 0
    from _machine import machine, write_section

    rows = [
        f"Measured {date.today()} on {machine()}; `make bench` (bench/drift_year.py).",
        "",
        *table(events, seconds, "the natural scenario, August 1 to December 31"),
        "",
        "The first check of each promoted champion, against its own reference and the outgoing one:",
        "",
        *[f"- {line}" for line in switch_check(events)],
    ]
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, START, END, text)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
