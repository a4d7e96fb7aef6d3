"""Benchmark: one game day per incident, played right, and where its time goes.

    make bench                                   # writes its section of docs/benchmarks.md
    .venv/bin/python bench/gameday.py            # prints only
    .venv/bin/python bench/gameday.py celsius    # some incidents

In a fresh workspace (its champion is trained once, first, and not counted), each incident is
played as a learner who gets it right: `start` (the first shift), `answer`, the runbook's `fix`
(and the shift after it), `score`. A benchmark, not a test: the target (a game in at most 2
minutes on a 2-core laptop) is reported against, never asserted. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

START, END = "<!-- bench:gameday:start -->", "<!-- bench:gameday:end -->"
TARGET_S = 120


def play(settings, name: str) -> dict:
    from reference.gameday import game
    from reference.gameday.incidents import incident

    quiet = lambda *_: None  # noqa: E731
    t0 = time.perf_counter()
    game.start(settings, seed=0, name=name, log=quiet)
    t1 = time.perf_counter()
    game.answer(settings, name)
    healthy, note, _ = game.fix(settings, incident(name).fix, log=quiet)
    t2 = time.perf_counter()
    _, score = game.score(settings)
    return {"incident": name, "start": t1 - t0, "fix": t2 - t1, "total": time.perf_counter() - t0,
            "healthy": healthy, "points": score.points, "action": incident(name).fix}  # fmt: skip


def report(rows: list[dict], champion_s: float) -> str:
    lines = [
        f"Measured {date.today().isoformat()} on {machine()}: a fresh workspace, its champion "
        f"trained first ({champion_s:.0f} s, not counted); each incident played right.",
        "",
        "| incident | start (first shift) | fix + the shift after it | game | healed | score |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        flag = "" if r["total"] <= TARGET_S else " (over the 2 min target)"
        lines.append(
            f"| {r['incident']} | {r['start']:.0f} s | {r['fix']:.0f} s (`{r['action']}`) | "
            f"{r['total']:.0f} s{flag} | {'yes' if r['healthy'] else 'NO'} | {r['points']}/5 |"
        )
    worst = max(rows, key=lambda r: r["total"])
    lines += [
        "",
        f"Longest game: {worst['incident']}, {worst['total']:.0f} s (target {TARGET_S} s).",
    ]
    return "\n".join(lines)


def main() -> int:
    from reference.gameday.incidents import INCIDENTS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("incidents", nargs="*", help="incident names (default: every one)")
    parser.add_argument(
        "--write", type=Path, help="markdown file whose game-day section to replace"
    )
    args = parser.parse_args()
    for var in ("MLFLOW_TRACKING_URI", "MLOPS_LAB_MODEL_NAME", "MLOPS_LAB_CHECKPOINT_CACHE"):
        os.environ.pop(var, None)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    from reference.config import get_settings
    from reference.labkit.checkpoint import Lab, _champion

    names = args.incidents or sorted(INCIDENTS)
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings(Path(tmp) / "ws")
        settings.workspace.mkdir(parents=True)
        t = time.perf_counter()
        _champion(Lab(meta=None, root=ROOT, workspace=settings.workspace), log=lambda *_: None)
        champion_s = time.perf_counter() - t
        rows = []
        for name in names:
            print(f"{name} ...", flush=True)
            rows.append(play(settings, name))
            print(f"  {rows[-1]['total']:.0f} s", flush=True)
    text = report(rows, champion_s)
    print(text)
    if args.write:
        intro = (
            "## Game day (`bench/gameday.py`)\n\nOne game per incident, played right: the first "
            "shift (the servers start, two days of December replayed, the evidence measured), the "
            "answer, the runbook's fix and the shift that checks it.\n\n"
        )
        write_section(args.write, START, END, text, intro)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
