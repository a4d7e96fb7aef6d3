"""Benchmark: every lab top to bottom, the way `make test` runs it, and where its time goes.

    make bench                                   # writes its section of docs/benchmarks.md
    .venv/bin/python bench/labs.py               # prints only
    .venv/bin/python bench/labs.py 05 06         # some labs

Each lab is executed from labs/ in a fresh kernel with MLOPS_LAB_SOLUTIONS=1 (its checkpoint, its
cells, its exercises' solutions), on a copy of the notebook, so the committed outputs stay as
they are. Each cell's time comes from the kernel's own timestamps. A benchmark, not a test: the
targets (about 3 minutes a lab, all labs under 20 minutes on a 2-core laptop) are reported
against, never asserted. Run it on an otherwise idle machine: two heavy jobs on 2 cores double
every number.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

from reference.labkit import meta  # noqa: E402

START, END = "<!-- bench:labs:start -->", "<!-- bench:labs:end -->"
TARGET_S, TOTAL_TARGET_S = 180, 1200


def _seconds(cell: dict) -> float:
    timing = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    begin = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - begin).total_seconds()


def _label(cell: dict) -> str:
    lines = [
        ln for ln in "".join(cell["source"]).splitlines() if ln.strip() and not ln.startswith("#")
    ]
    return (lines[0][:60] if lines else "(comment only)").replace("|", "\\|")


def run_lab(card: meta.LabMeta) -> dict:
    """Execute one lab; its total seconds, its checkpoint's and its three slowest other cells."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(card.path, as_version=4)
    os.environ["MLOPS_LAB_SOLUTIONS"] = "1"
    started = time.perf_counter()
    NotebookClient(
        nb, timeout=900, kernel_name="python3", record_timing=True,
        resources={"metadata": {"path": str(ROOT / "labs")}},
    ).execute()  # fmt: skip
    total = time.perf_counter() - started
    code = [c for c in nb.cells if c.cell_type == "code"]
    timed = [(_seconds(c), _label(c)) for c in code]
    checkpoint = timed[0][0] if timed else 0.0
    return {"lab": card.lab, "title": card.title, "total": total, "checkpoint": checkpoint,
            "slowest": sorted(timed[1:], reverse=True)[:3]}  # fmt: skip


def report(results: list[dict]) -> str:
    total = sum(r["total"] for r in results)
    lines = [
        f"Measured {date.today().isoformat()} on {machine()}: each lab in a fresh kernel, "
        "checkpoint and solutions included (`MLOPS_LAB_SOLUTIONS=1`, as `make test` runs them).",
        "",
        "| lab | total | checkpoint | where the rest goes (slowest cells) |",
        "|---|---:|---:|---|",
    ]
    for r in results:
        where = "; ".join(f"{s:.0f} s `{label}`" for s, label in r["slowest"] if s >= 1) or "-"
        flag = "" if r["total"] <= TARGET_S else " (over the 3 min target)"
        lines.append(
            f"| {r['lab']} {r['title']} | {r['total']:.0f} s{flag} | {r['checkpoint']:.0f} s | {where} |"
        )
    lines += [
        "",
        f"All {len(results)} labs: {total / 60:.1f} min (target {TOTAL_TARGET_S // 60} min).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("labs", nargs="*", help="lab numbers (default: every lab)")
    parser.add_argument("--write", type=Path, help="markdown file whose labs section to replace")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    cards = [
        c
        for c in meta.all_labs(ROOT / "labs")
        if not args.labs or c.lab in {a.zfill(2) for a in args.labs}
    ]
    results = []
    for card in cards:
        print(f"lab {card.lab} ...", flush=True)
        results.append(run_lab(card))
        print(f"  {results[-1]['total']:.0f} s", flush=True)
    text = report(results)
    print(text)
    if args.write:
        intro = (
            "## Labs (`bench/labs.py`)\n\nEvery lab top to bottom as `make test` runs it, and where "
            "its time goes. The checkpoint is the lab's first code cell (it runs the real pipeline "
            "for labs that start from a champion).\n\n"
        )
        write_section(args.write, START, END, text, intro)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
