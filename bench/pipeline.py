"""Benchmark: the whole Level 1 pipeline on the full year, a no-op re-run, and where the time goes.

    make bench                                     # writes its section of docs/benchmarks.md
    .venv/bin/python bench/pipeline.py             # prints only

A benchmark, not a test: numbers depend on the machine; the targets (whole pipeline <= 30 s,
no-op re-run <= 3 s on a 2-core laptop) are reported against, never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

from reference.config import get_settings  # noqa: E402
from reference.pipeline import init_workspace, stage_env  # noqa: E402

STAGES = ["ingest", "validate", "transform", "train", "evaluate", "register", "gate"]
IMPORTS = ["pandas", "torch", "sklearn.metrics", "pandera.pandas", "mlflow.pyfunc", "dvc.repo"]
START, END = "<!-- bench:pipeline:start -->", "<!-- bench:pipeline:end -->"


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    tick = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - tick


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--write", type=Path, help="markdown file whose pipeline section to replace"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        settings = get_settings(Path(tmp) / "ws")
        init_workspace(settings)
        env = stage_env(settings)
        # what a user runs and waits for: the CLI, start-up included
        cli = [sys.executable, "-m", "reference", "pipeline"]
        print("full pipeline (first run, fresh workspace) ...", flush=True)
        full = timed(cli, settings.project, env)
        noop = timed(cli, settings.project, env)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print("per stage (each re-run alone, as DVC runs it) ...", flush=True)
        stages = {
            s: timed([sys.executable, "-m", "reference", s], settings.project, env) for s in STAGES
        }
        startup = timed([sys.executable, "-m", "reference", "--help"], settings.project, env)
        imports = {
            m: timed([sys.executable, "-c", f"import {m}"], settings.project, env) for m in IMPORTS
        }
        bare = timed([sys.executable, "-c", "pass"], settings.project, env)

    rows = [
        f"Measured {date.today()} on {machine()}; `make bench` (bench/pipeline.py).",
        "",
        "| what | seconds | target |",
        "|---|---:|---|",
        f"| whole pipeline, full year (336,776 flights), fresh workspace, `mlops-lab pipeline` | {full:.1f} | <= 30 |",
        f"| no-op re-run (nothing changed), `mlops-lab pipeline` | {noop:.1f} | <= 3 |",
        f"| peak memory of any one stage process | {peak_mb:,.0f} MB | recorded |",
        "",
        "Where the time goes: each stage alone, as its own process (start-up and imports included):",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {s} | {t:.1f} |" for s, t in stages.items()],
        f"| *sum* | *{sum(stages.values()):.1f}* |",
        "",
        f"Fixed costs: Python start-up {bare:.2f} s; `mlops-lab --help` {startup:.2f} s; imports (each in a fresh process, start-up included): "
        + ", ".join(f"`{m}` {t:.2f} s" for m, t in imports.items())
        + ".",
    ]
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, START, END, text)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
