"""Benchmark: the whole Level 1 pipeline on the full year, against its compute floor.

    make bench                                     # writes its section of docs/benchmarks.md
    .venv/bin/python bench/pipeline.py             # prints only
    .venv/bin/python bench/pipeline.py --rounds 1  # one run of each kind

Each round runs, in a fresh workspace each (a new MLflow sqlite store, a new DVC project):
the pipeline as `mlops-lab pipeline` runs it (the stages forked from the warm runner, see
reference.warm), then an unchanged re-run; the pipeline with every stage in its own cold
process (MLOPS_LAB_WARM_STAGES=0); and the compute floor in one process, imports excluded:
read and join the two tables, and train the network with the project's params. Rounds
interleave the kinds, so a slow minute of the machine falls on all of them.

Where every second goes comes from the pipeline's own output: the time from one "Running
stage" line to the next is that stage (DVC's bookkeeping of its outputs included); before the
first is the set-up (workspace, git, DVC's start), after the last the wrap-up (push, commit,
tag). A benchmark, not a test: the targets are reported against, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
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
from reference.pipeline import stage_env  # noqa: E402
from reference.warm import STAGES, SWITCH  # noqa: E402

IMPORTS = ["pandas", "torch", "sklearn.linear_model", "pandera.pandas", "mlflow.pyfunc", "dvc.repo"]
START, END = "<!-- bench:pipeline:start -->", "<!-- bench:pipeline:end -->"
STAGE_LINE = re.compile(r"Running stage '(\w+)'")

FLOOR = """
import json, sys, time
from pathlib import Path
from reference import ingest
from reference.config import load_params
from reference.train import train_bundle
from reference.transform import FeatureTransform
project = Path(sys.argv[1])
params = load_params(project / "params.yaml")
tick = time.perf_counter()
df = ingest.build(*ingest.load_raw())
read = time.perf_counter() - tick
months = params.split.months()
train, valid = df[df.month.isin(months["train"])], df[df.month.isin(months["valid"])]
transform = FeatureTransform.load(project / "models/transform.json")
tick = time.perf_counter()
_, result = train_bundle(train, valid, transform, params.train, log=lambda line: None)
fit = time.perf_counter() - tick
print(json.dumps({"read": read, "fit": fit, "epochs": len(result.history)}))
"""


def pipeline(project: Path, env: dict) -> dict[str, float]:
    """One `mlops-lab pipeline` run; seconds per part, from when its lines appear."""
    marks, tick = [], time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference", "pipeline"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in proc.stdout:
        m = STAGE_LINE.search(line)
        if m:
            marks.append((m.group(1), time.perf_counter() - tick))
    if proc.wait():
        raise SystemExit(f"the pipeline failed in {project}")
    total = time.perf_counter() - tick
    if not marks:
        return {"total": total}
    parts = {"set-up": marks[0][1]}
    for (name, at), (_, after) in zip(marks, [*marks[1:], ("end", total)], strict=True):
        parts[name] = after - at
    parts["total"] = total
    return parts


def fresh(tmp: Path, name: str, switch: str) -> tuple[Path, dict]:
    settings = get_settings(tmp / name)
    env = stage_env(settings)
    env[SWITCH] = switch
    return settings.project, env


def timed(cmd: list[str], env: dict) -> float:
    tick = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - tick


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", type=Path, help="markdown file whose section to replace")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    warm_runs, cold_runs, noops, floors = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(1, args.rounds + 1):
            print(f"round {r}: pipeline (warm runner) ...", flush=True)
            project, env = fresh(Path(tmp), f"warm-{r}", "1")
            warm_runs.append(pipeline(project, env))
            noops.append(timed([sys.executable, "-m", "reference", "pipeline"], env))
            print(f"round {r}: compute floor ...", flush=True)
            out = subprocess.run(
                [sys.executable, "-c", FLOOR, str(project)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            floors.append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r}: pipeline (each stage its own process) ...", flush=True)
            project, env = fresh(Path(tmp), f"cold-{r}", "0")
            cold_runs.append(pipeline(project, env))
        imports = {
            m: timed([sys.executable, "-c", f"import {m}"], dict(os.environ)) for m in IMPORTS
        }
        bare = timed([sys.executable, "-c", "pass"], dict(os.environ))

    def mean(runs, key):
        return statistics.fmean(run.get(key, 0.0) for run in runs)

    floor = statistics.fmean(f["read"] + f["fit"] for f in floors)
    full = mean(warm_runs, "total")
    worst = max(run["total"] for run in warm_runs)
    both = " / ".join(f"{run['total']:.1f}" for run in warm_runs)
    cold_both = " / ".join(f"{run['total']:.1f}" for run in cold_runs)
    parts = ["set-up", *STAGES]
    rows = [
        f"Measured {date.today()} on {machine()}; `make bench` (bench/pipeline.py), "
        f"{args.rounds} interleaved round(s); each cell is the mean, runs shown as run 1 / run 2.",
        "",
        "| what | seconds | target |",
        "|---|---:|---|",
        f"| whole pipeline, full year (336,776 flights), fresh workspace, `mlops-lab pipeline` | {both} | <= 3x the floor: {3 * floor:.1f} |",
        f"| the same, every stage its own process (`MLOPS_LAB_WARM_STAGES=0`) | {cold_both} | recorded |",
        f"| compute floor, one process, imports excluded: read + join {statistics.fmean(f['read'] for f in floors):.1f} s, training {statistics.fmean(f['fit'] for f in floors):.1f} s ({floors[0]['epochs']} epochs) | {floor:.1f} | |",
        f"| whole pipeline / floor | {full / floor:.1f}x (worst run {worst / floor:.1f}x) | <= 3x |",
        f"| no-op re-run (nothing changed), `mlops-lab pipeline` | {' / '.join(f'{t:.1f}' for t in noops)} | <= 2 |",
        "",
        "Where every second goes, from the pipeline's own output (a stage's time includes DVC's "
        "bookkeeping of its outputs; set-up: the workspace, git and DVC's start; the last row "
        "includes the wrap-up: push, commit, tag):",
        "",
        "| part | warm runner | each stage its own process | saved |",
        "|---|---:|---:|---:|",
    ]
    for part in parts:
        w, c = mean(warm_runs, part), mean(cold_runs, part)
        label = f"{part} (and the wrap-up)" if part == STAGES[-1] else part
        rows.append(f"| {label} | {w:.1f} | {c:.1f} | {c - w:.1f} |")
    rows.append(
        f"| *total* | *{full:.1f}* | *{mean(cold_runs, 'total'):.1f}* | "
        f"*{mean(cold_runs, 'total') - full:.1f}* |"
    )
    rows += [
        "",
        f"Fixed costs a cold stage pays: Python start-up {bare:.2f} s; imports, each in a fresh "
        "process: " + ", ".join(f"`{m}` {t:.2f} s" for m, t in imports.items()) + ".",
    ]
    text = "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, START, END, text)
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
