"""How steady this machine's CPU is: one fixed piece of pure-Python work, timed over and over.

A tail target (p99 <= 2x p50) assumes the same work takes about the same time. On a virtual
machine it may not: the host's other tenants and its clock changes make the same loop run
slower for tens of milliseconds at a time, whatever runs inside. So the serving benchmark times
this loop in the same run, on every core at once as its cells keep them busy, and shows the
ratio beside its verdict: no server on this machine can have a steadier tail than this loop.

    python bench/_jitter.py 5      # 5 s on each core; prints the JSON that ``measure`` returns
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

UNIT = 3000  # loop turns per timed unit: about 100 µs here, a tenth of a single-row request

CHILD = f"""
import json, sys, time
def unit():
    s = 0
    for i in range({UNIT}):
        s += i * i
    return s
times, end = [], time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    t = time.thread_time()  # CPU time: a slow stretch, not a wait for the other processes
    unit()
    times.append(time.thread_time() - t)
times.sort()
print(json.dumps([times[len(times) // 2], times[int(len(times) * 0.99)]]))
"""


def measure(seconds: float = 5.0, processes: int | None = None) -> dict:
    """The loop's CPU time per unit, p50 and p99 in µs, and their ratio (the process with the
    widest), with one process per core running at once."""
    n = processes or os.cpu_count() or 1
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(seconds)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    results = [json.loads(child.communicate()[0]) for child in children]
    p50, p99 = max(results, key=lambda r: r[1] / r[0])
    return {"p50_us": 1e6 * p50, "p99_us": 1e6 * p99, "ratio": p99 / p50, "processes": n}


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)))
