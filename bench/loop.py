"""Benchmark: the two Level 2 stories of `make demo`, and where one loop iteration spends its time.

    make bench                                  # writes its section of docs/benchmarks.md
    .venv/bin/python bench/loop.py              # prints only

Story 1 (natural): bootstrap a champion, replay August, drift -> retrain -> gate -> shadow ->
canary -> promote. Story 2 (bad-challenger, a fresh workspace): the same start, a challenger
served with a skew -> gate -> shadow -> canary -> rollback. One iteration is timed from the retrain decision to the promotion, from the events'
own timestamps. A benchmark, not a test: the target (both stories in under 5 minutes on a
2-core laptop) is reported against, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

from reference.config import get_settings  # noqa: E402
from reference.loop.controller import Controller, loop_settings  # noqa: E402

START, END = "<!-- bench:loop:start -->", "<!-- bench:loop:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="markdown file whose loop section to replace")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    quiet = lambda *a, **k: None  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        base = get_settings(Path(tmp) / "ws")
        settings = loop_settings(base)
        print("story 1: natural drift -> promotion ...", flush=True)
        tick, started = time.perf_counter(), time.time()
        one = Controller(settings, "natural", log=quiet)
        one.run()
        story1 = time.perf_counter() - tick
        print("story 2: bad challenger -> rollback ...", flush=True)
        tick = time.perf_counter()
        # the same start in a workspace of its own, as in the demo
        two = Controller(loop_settings(base, "level2-rollback"), "bad-challenger", log=quiet)
        two.run()
        story2 = time.perf_counter() - tick
        events = one.events.read()
        rollback = next(e for e in two.events.read() if e["kind"] == "rollback")
        days = sum(len((c.dir / "days.jsonl").read_text().splitlines()) for c in (one, two))
        requests = sum(len((c.dir / "ledger.jsonl").read_text().splitlines()) for c in (one, two))

    promote = next(e for e in events if e["kind"] == "promote")
    first = events
    t_retrain = next(e for e in first if e["kind"] == "retrain")["time"]
    t_gate = next(e for e in first if e["kind"] == "gate-pass")["time"]
    t_shadow = next(e for e in first if e["kind"] == "shadow")["time"]
    t_canary = next(e for e in first if e["kind"] == "canary")["time"]
    t_boot = next(e for e in events if e["kind"] == "bootstrap")["time"]
    shadow_days = (
        date.fromisoformat(next(e for e in first if e["kind"] == "canary")["day"])
        - date.fromisoformat(next(e for e in first if e["kind"] == "shadow")["day"])
    ).days
    canary_days = (
        date.fromisoformat(promote["day"])
        - date.fromisoformat(next(e for e in first if e["kind"] == "canary")["day"])
    ).days
    iteration = promote["time"] - t_retrain
    total = story1 + story2
    rows = [
        f"Measured {date.today()} on {machine()}; `make bench` (bench/loop.py).",
        "",
        "| what | seconds | target |",
        "|---|---:|---|",
        f"| story 1: bootstrap, replay, drift -> retrain -> gate -> shadow -> canary -> promote | {story1:.1f} | |",
        f"| story 2: the same start, a skewed challenger -> gate -> shadow -> canary -> automated rollback | {story2:.1f} | |",
        f"| both stories | {total:.1f} | < 300 |",
        f"| one loop iteration (retrain decision -> promotion) | {iteration:.1f} | recorded |",
        "",
        "Where one iteration (story 1) spends its time, from the events' timestamps:",
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| retrain: the DVC pipeline (new data version, train, evaluate, register, gate) | {t_gate - t_retrain:.1f} |",
        f"| the candidate's model server starts (download from the registry, load) | {t_shadow - t_gate:.1f} |",
        f"| shadow: {shadow_days} simulated day(s) of traffic through the router, mirrored | {t_canary - t_shadow:.1f} |",
        f"| canary: {canary_days} simulated days until enough labels, then DeLong's test, the alias move | {promote['time'] - t_canary:.1f} |",
        "",
        f"Before it, in story 1: the bootstrap champion's pipeline run ({t_boot - started:.1f} s), "
        f"then the replay of August ({t_retrain - t_boot:.1f} s with the servers' start and four drift "
        "checks) while drift waits for August's labels. "
        f"Replayed in both stories: {days} days, {requests:,} requests of up to 16 flights. "
        f"Story 2's rollback came on {rollback['day']}: {'; '.join(rollback['reasons'][:1])}.",
    ]
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, START, END, text)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
