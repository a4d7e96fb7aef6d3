"""Where the single-row p99 at concurrency 8 comes from: a diagnostic beside bench/serving.py.

    .venv/bin/python bench/serving_tail.py                      # registers a small champion first
    .venv/bin/python bench/serving_tail.py --workspace W --cells 12

Not in ``make bench`` and not a target: it explains one. The server starts as bench/serving.py
starts ``kserve`` (2 workers, metrics and payload log on); then V1 single-row cells at
concurrency 8, each on 8 new keep-alive connections, alternate between two kinds:

  natural    the connections as the kernel spread them: with a listening socket per worker
             (SO_REUSEPORT), each connection goes to the worker its addresses hash to, so 8
             connections split 4/4 only about a quarter of the time (5/3: 44%, 6/2: 22%, 7/1: 6%)
  balanced   connections reopened until each worker holds 4

For each cell: the spread, the p50 and p99 of all requests and of each worker's, the generator's
CPU and other jobs' (each cell first waits for the machine to be quiet, as bench/serving.py's do).
Which worker holds a connection is read from the server processes' sockets (psutil). Every
garbage collection in the server's processes is timed (``gc.callbacks``, from a sitecustomize
put on the server's PYTHONPATH) and the ones that ran during the cells are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import serving  # bench/ is on sys.path when run as a script

GC_TRACE = """import gc, os, time
_path = os.path.join(os.environ["GC_TRACE_DIR"], f"gc-{os.getpid()}.jsonl")
_start = []
def _timed(phase, info):
    if phase == "start":
        _start[:] = [time.perf_counter()]
    elif _start:
        line = '{"gen": %d, "ms": %.3f, "at": %.3f}\\n' % (
            info["generation"], 1000 * (time.perf_counter() - _start[0]), time.time())
        fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, line.encode())
        os.close(fd)
gc.callbacks.append(_timed)
"""


class TracedLoad(serving.Load):
    """The benchmark's closed loop, with each connection's latencies kept apart."""

    def __init__(self, requests):
        super().__init__(requests)
        self.per_conn: dict[int, list[float]] = defaultdict(list)

    def done(self, conn) -> None:
        self.per_conn[id(conn)].append(time.perf_counter() - conn.sent)
        super().done(conn)


def owners(run: serving.Running) -> dict[int, int]:
    """Client port -> the pid of the server process holding that connection."""
    out = {}
    for proc in run.psutil_procs:
        try:
            for c in proc.connections(kind="tcp"):
                if c.status == "ESTABLISHED" and c.laddr.port == run.port and c.raddr:
                    out[c.raddr.port] = proc.pid
        except Exception:  # a process that ended holds nothing
            pass
    return out


async def cell(run, requests, balanced: bool, seconds: float, workers: int = 2) -> dict:
    load = TracedLoad(requests)
    per_worker = 8 // workers
    while True:
        await load.open(run.host, run.port, 8 - len(load.conns))
        await asyncio.sleep(0.05)  # the server has accepted them
        held = owners(run)
        by: dict[int, list] = defaultdict(list)
        for conn in load.conns:
            by[held.get(conn.transport.get_extra_info("sockname")[1], 0)].append(conn)
        if not balanced or (len(by) == workers and all(len(c) == per_worker for c in by.values())):
            break
        load.conns = []
        for conns in by.values():
            load.conns += conns[:per_worker]
            for extra in conns[per_worker:]:
                extra.transport.close()
    pid_of = {id(c): pid for pid, conns in by.items() for c in conns}
    await load.phase(0.5, run.cpu_seconds)  # warm-up
    load.per_conn.clear()
    started = time.time()
    result = await load.phase(seconds, run.cpu_seconds)
    result["window"] = (started, time.time())
    load.close()
    lat: dict[int, list[float]] = defaultdict(list)
    for conn_id, values in load.per_conn.items():
        lat[pid_of[conn_id]] += values
    result["workers"] = {
        pid: {
            "connections": len(by[pid]),
            "requests": len(values),
            "p50_ms": 1000 * serving._pct(sorted(values), 50),
            "p99_ms": 1000 * serving._pct(sorted(values), 99),
        }
        for pid, values in sorted(lat.items())
    }
    return result


def gc_during(folder: Path, windows: list[tuple[float, float]], pids: set[int]) -> dict:
    """Collections in the workers while a cell was measured: count, and the longest, per gen."""
    out = {"collections": [0, 0, 0], "longest_ms": [0.0, 0.0, 0.0], "measured_s": 0.0}
    out["measured_s"] = sum(b - a for a, b in windows)
    for path in folder.glob("gc-*.jsonl"):
        if int(path.stem[3:]) not in pids:
            continue
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            if any(a <= rec["at"] <= b for a, b in windows):
                out["collections"][rec["gen"]] += 1
                out["longest_ms"][rec["gen"]] = max(out["longest_ms"][rec["gen"]], rec["ms"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workspace", type=Path, help="reuse a workspace that has a champion")
    parser.add_argument("--cells", type=int, default=12, help="cells, natural and balanced in turn")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument(
        "--format",
        default="v1 instances",
        choices=["v1 instances", "v2 inputs", "v2 binary"],
        help="the single-row request's format (default %(default)s)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=300,
        help="before each cell, wait for other jobs to be under 15%% of a core, up to this many "
        "seconds over the whole run (default %(default)s)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp_name:
        tmp = Path(tmp_name)
        settings = serving.setup(args.workspace, tmp)
        rows = serving.holdout_rows(settings, 512 + 64)
        site, traces = tmp / "site", tmp / "gc"
        site.mkdir()
        traces.mkdir()
        (site / "sitecustomize.py").write_text(GC_TRACE)
        os.environ.update(  # the server's environment is this one's (reference.serve.client)
            PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            GC_TRACE_DIR=str(traces),
        )
        payload = ["--payload-dir", str(tmp / "payload")]
        run = serving.start_kserve(settings, "kserve", serving.WORKERS, payload, tmp)
        for key in ("PYTHONPATH", "GC_TRACE_DIR"):
            os.environ.pop(key)
        requests = serving.build_requests(run, rows.iloc[:512], rows.iloc[512:])[args.format, 1]
        results, new_loop = [], serving._loop_factory()[0]
        quiet = serving.Quiet(15, args.max_wait)
        try:
            with asyncio.Runner(loop_factory=new_loop) as runner:
                for i in range(args.cells):
                    kind = "balanced" if i % 2 else "natural"
                    quiet()  # other jobs' load would be measured as tail
                    res = runner.run(cell(run, requests, kind == "balanced", args.seconds))
                    held = sorted((w["connections"] for w in res["workers"].values()), reverse=True)
                    held += [0] * (serving.WORKERS - len(held))  # a worker with none: 8/0
                    spread = "/".join(map(str, held))
                    res.update(kind=kind, spread=spread)
                    results.append(res)
                    print(
                        f"{kind:8s} spread {spread}  {res['req_s']:5,.0f} req/s  p50 "
                        f"{res['p50_ms']:.2f}  p99 {res['p99_ms']:.2f} ms  p99/p50 "
                        f"{res['p99_ms'] / res['p50_ms']:.2f}  client {res['client_cpu']:.0f}%  "
                        f"other {res['other_cpu']:.0f}%  | "
                        + "; ".join(
                            f"{w['connections']} conns: {w['requests']} req, p50 "
                            f"{w['p50_ms']:.2f} p99 {w['p99_ms']:.2f}"
                            for w in res["workers"].values()
                        ),
                        flush=True,
                    )
        finally:
            serving.stop(run)
        pids = {pid for res in results for pid in res["workers"]}
        gc = gc_during(traces, [res["window"] for res in results], pids)
    print(
        f"garbage collections in the {len(pids)} workers during {gc['measured_s']:.0f} s of "
        f"cells: gen 0/1/2 = {'/'.join(map(str, gc['collections']))}, longest "
        + "/".join(f"{ms:.2f}" for ms in gc["longest_ms"])
        + " ms"
    )
    quiet_cells = [r for r in results if r["other_cpu"] <= serving.CONTENDED]
    if len(quiet_cells) < len(results):
        print(
            f"left out below: {len(results) - len(quiet_cells)} cell(s) during which other jobs "
            f"took more than {serving.CONTENDED}% of a core"
        )
    for spread in sorted({r["spread"] for r in quiet_cells}):
        ratios = [r["p99_ms"] / r["p50_ms"] for r in quiet_cells if r["spread"] == spread]
        print(
            f"spread {spread}: p99/p50 {min(ratios):.2f}-{max(ratios):.2f}, over 2x in "
            f"{sum(x > 2 for x in ratios)} of {len(ratios)} cells"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
