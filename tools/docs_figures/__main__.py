"""The Concepts pages' figures, made from the project's own runs on the real 2013 data.

    .venv/bin/python tools/docs_figures                   # every figure
    .venv/bin/python tools/docs_figures --only drift      # one figure, and only the runs it needs
    .venv/bin/python tools/docs_figures --data m.json     # also keep what the runs measured
    .venv/bin/python tools/docs_figures --replot m.json   # redraw from it, run nothing

Each figure runs the code of ``reference/`` (Level 0 training, the pipeline and its champion, the
model server behind ``mlops-lab watch``, the monitor, the Level 2 loop and its rollbacks), writes
``docs/_static/figures/<name>.png`` and prints the numbers its page quotes. A figure is a
measurement, not a drawing: the numbers on the page come from this output.

The runs happen in a temporary workspace (never ``workspace/``), deleted at the end unless
``--keep``; ``--workspace DIR`` runs in DIR, keeps it and reuses a champion already built there.
Runs are shared: ``alerting``, ``drift`` and ``working-vs-healthy`` use one pipeline run;
``shadow-canary`` and ``rollback`` one Level 2 loop. Everything took 17 minutes on a busy
two-core machine; most of it is the pipeline runs and model-server starts (docs/benchmarks.md),
a few minutes on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# the sibling modules: `python tools/docs_figures` puts this folder first on sys.path already;
# this makes sure of it whatever the cwd or however the folder was named on the command line
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, say
from data import (
    data_alerting,
    data_drift,
    data_probabilistic,
    data_rollback,
    data_shadow_canary,
    data_working,
)
from plots import plot_alerting, plot_drift, plot_probabilistic, plot_working
from plots_loop import plot_rollback, plot_shadow_canary
from printout import numbers
from runs import Runs

FIGURES = {
    "probabilistic": (data_probabilistic, plot_probabilistic),
    "alerting": (data_alerting, plot_alerting),
    "drift": (data_drift, plot_drift),
    "shadow-canary": (data_shadow_canary, plot_shadow_canary),
    "rollback": (data_rollback, plot_rollback),
    "working-vs-healthy": (data_working, plot_working),
}


def _jsonable(value):
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="figures: " + ", ".join(FIGURES),
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=list(FIGURES),
        metavar="NAME",
        help="make only this figure (repeatable); default: all",
    )
    ap.add_argument("--data", type=Path, help="also write what the runs measured to this JSON file")
    ap.add_argument("--replot", type=Path, help="redraw from a --data file; run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    ap.add_argument(
        "--workspace",
        type=Path,
        help="run in this folder and keep it; a champion already built there is reused",
    )
    args = ap.parse_args(argv)
    names = args.only or list(FIGURES)
    if args.replot:
        saved = json.loads(args.replot.read_text())
        missing = [n for n in names if n not in saved]
        if missing:
            ap.error(f"--replot: {args.replot} holds no {', '.join(missing)}: run it with --only")
        for name in names:
            numbers(name, saved[name])
            FIGURES[name][1](saved[name])
        return 0
    # Everything below writes to a temporary workspace: never workspace/, never a tracking
    # server named in the caller's environment.
    labs = (ROOT / "workspace").resolve()
    if args.workspace:
        chosen = args.workspace.resolve()
        if chosen == labs or labs in chosen.parents:
            ap.error("--workspace: use a folder outside workspace/ (the labs' own)")
        chosen.mkdir(parents=True, exist_ok=True)
        args.keep = True
    tmp = chosen if args.workspace else Path(tempfile.mkdtemp(prefix="mlops-docs-figures-"))
    os.environ["MLOPS_LAB_WORKSPACE"] = str(tmp / "default")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.setdefault("MPLBACKEND", "Agg")
    started = time.monotonic()
    collected = {}
    try:
        runs = Runs(tmp)
        for name in names:
            d = _jsonable(FIGURES[name][0](runs))
            collected[name] = d
            numbers(name, d)
            FIGURES[name][1](d)
            say(f"({time.monotonic() - started:.0f} s so far)")
    finally:
        if args.data and collected:
            args.data.write_text(json.dumps(collected))
            say(f"measurements: {args.data}")
        if args.keep:
            say(f"workspace kept: {tmp}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
    say(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
