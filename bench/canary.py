"""Benchmark: the canary's days to a verdict and its error rates, mirrored or not, over seeded replays.

    make bench                                  # writes its section of docs/benchmarks.md
    .venv/bin/python bench/canary.py            # prints only (about 2 minutes here)

A Level 2 champion is bootstrapped as the loop does (a real pipeline run: train January-May,
gate on July), and the retrain the loop makes on September 1 is trained (train January-June,
gate on August). Then the canary's
arithmetic (reference.loop.canary_replay: the router's split, requests of 16 flights, labels a
day late, policy.canary_verdict day after day) is replayed on the real August-December flights,
20 seeds (each its own start day and request ids), for four candidates:

- the champion itself, served twice: as good by construction, so a rollback is a false alarm;
- the champion behind a server on the wrong time zone (the bad-challenger story's skew): worse;
- the September retrain (story 1's candidate), and the same behind the skew (story 2's).

and three rules: only the candidate's 25% paired (the router before it mirrored); every flight
paired (the candidate also scores the champion's 75%) with a verdict at 1,000 labels; and the
same with the labels spread over ``rollout.canary_min_days`` days (the default). A benchmark, not a test: the days are
reported, never asserted (tests/integration/test_loop.py asserts the error rates).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

START, END = "<!-- bench:canary:start -->", "<!-- bench:canary:end -->"
SEEDS = range(20)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="markdown file whose canary section to replace")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from reference import faults, ingest, registry
    from reference.config import get_settings
    from reference.loop import canary_replay, policy
    from reference.loop.controller import Controller, loop_overrides, loop_settings
    from reference.model import load_bundle
    from reference.pipeline import run_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        settings = loop_settings(get_settings(Path(tmp) / "ws"))
        controller = Controller(settings, log=lambda *a, **k: None)
        print("bootstrapping a champion (a pipeline run) ...", flush=True)
        controller.bootstrap()
        params = controller.params
        print("the September retrain, as the loop runs it (a pipeline run) ...", flush=True)
        split = policy.training_split(8)  # August landed: train 1-6, stop on 7, gate on 8
        overrides = [f"{k}={v}" for k, v in split.items()] + loop_overrides(params)
        result = run_pipeline(settings, overrides, log=Path(tmp) / "pipeline.log")
        retrain = str(result.gate["candidate_version"])
        bundles = {
            v: load_bundle(registry.download_bundle(settings, v, Path(tmp) / f"v{v}"))
            for v in ("1", retrain)
        }
    flights = ingest.build(*ingest.load_raw())
    serving = flights[flights["month"] >= 8]
    champ, sept = bundles["1"], bundles[retrain]
    skew = faults.wrong_timezone
    candidates = {
        "the champion itself (as good by construction)": (champ, None),
        "the champion on the wrong time zone (worse)": (champ, skew),
        "the September retrain (story 1's candidate)": (sept, None),
        "the September retrain on the wrong time zone (story 2's)": (sept, skew),
    }
    candidates = {
        name: canary_replay.scored_flights(serving, champ, model, skew=fault)
        for name, (model, fault) in candidates.items()
    }
    rollout = params.rollout
    rows = [
        f"Measured {date.today()} on {machine()}; `make bench` (bench/canary.py). "
        f"{len(SEEDS)} seeded replays of the canary on August-December 2013 per cell "
        f"({rollout.canary_percent:g}% answered by the candidate, verdict at "
        f"{rollout.canary_min_labelled:,} labelled flights, alpha {rollout.alpha}).",
        "",
        "| candidate | paired flights | rule | promoted | rolled back | days to verdict (median, worst) |",
        "|---|---|---|---:|---:|---|",
    ]
    pct = f"{rollout.canary_percent:g}%"
    need = f"{rollout.canary_min_labelled:,} labels"
    rules = [  # (paired flights, rule, mirror, canary_min_days)
        (f"the candidate's {pct}", need, False, 1),
        ("every flight (mirrored)", f"{need}, any days", True, 1),
        ("every flight (mirrored)", f"{need} from {rollout.canary_min_days} days", True, None),
    ]
    for name, scored in candidates.items():
        for pairing, rule, mirror, min_days in rules:
            p = replace(rollout, canary_min_days=min_days or rollout.canary_min_days)
            s = canary_replay.summary(canary_replay.seeded(scored, p, SEEDS, mirror=mirror))
            rows.append(
                f"| {name} | {pairing} | {rule} | {s['promoted']} | {s['rolled_back']} | "
                f"{s['median_days']:g}, {s['max_days']} |"
            )
            print(rows[-1], flush=True)
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, START, END, text)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
