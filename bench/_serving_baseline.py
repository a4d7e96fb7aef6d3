"""The batch-64 baseline of bench/serving.py: main before issue 15, checked out and served beside us.

Issue 15's target is ">= 2.5x the rows/s of main before this issue (commit 6725d80, checked out
beside it and measured in the same run)". So the benchmark extracts that commit's ``reference``
package into a temporary folder (``git archive``: nothing is added to this repository's worktrees
or refs) and starts that tree's model server, ``python -m reference.serve``, with this venv, on the
same registry and the same champion, as that commit's own benchmark started it: one worker,
prediction metrics and payload log on, KServe's per-request logging and timing as they were then.

The old package is put first with ``PYTHONPATH`` and the child runs *in* the checkout, because
``python -m`` puts the working directory before everything else on ``sys.path``: run from this
repository, the child would import today's package. A quick import in a child started the same way
checks that ``reference`` resolves into the checkout before the server starts.

When git, the commit or the old server is not available, ``prepare`` says why and the benchmark
measures without this column (its report says so); it never falls back to older numbers silently.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from reference.serve.client import get_status

COMMIT = "6725d80"
LABEL = f"kserve-{COMMIT}"


@dataclass
class Baseline:
    """Where the old tree is and how its server is started; ``reason`` is why not, when it isn't."""

    root: Path | None = None
    reason: str | None = None

    def env(self, settings, workspace: Path) -> dict:
        """The environment the old ``client.start`` gave its server, with the old tree first."""
        return dict(
            os.environ,
            PYTHONPATH=str(self.root),
            # its own workspace: the old predictor downloads the champion into
            # <workspace>/serving/models, the folder today's servers read from
            MLOPS_LAB_WORKSPACE=str(workspace),
            MLFLOW_TRACKING_URI=settings.tracking_uri,  # the same registry, the same champion
            MLOPS_LAB_MODEL_NAME=settings.model_name,
            MLFLOW_DISABLE_TELEMETRY="true",
            OMP_NUM_THREADS="1",
        )


def prepare(repo: Path, tmp: Path) -> Baseline:
    """Extract ``COMMIT``'s ``reference`` package under ``tmp`` and check that a child imports it."""
    dest = tmp / f"at-{COMMIT}"
    dest.mkdir()
    try:  # the package alone is a few hundred KB: read it whole, then extract
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", COMMIT, "reference"],
            capture_output=True,
        )
    except OSError as e:
        return Baseline(reason=f"git is not available ({e})")
    if archive.returncode != 0:
        err = archive.stderr.decode(errors="replace").strip()
        return Baseline(reason=f"`git archive {COMMIT}` failed: {err[-300:]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    check = subprocess.run(
        [sys.executable, "-c", "import reference; print(reference.__file__)"],
        cwd=dest,
        env=dict(os.environ, PYTHONPATH=str(dest)),
        capture_output=True,
        text=True,
    )
    where = Path(check.stdout.strip() or "?")
    if check.returncode != 0 or dest.resolve() not in where.resolve().parents:
        return Baseline(
            reason=f"a child started in the checkout imports reference from {where}, not from "
            f"{dest}: {check.stderr.strip()[-300:]}"
        )
    return Baseline(root=dest)


def start(
    baseline: Baseline,
    settings,
    name: str,
    port: int,
    log: Path,
    payload_dir: Path,
    wait_s: float = 120,
) -> tuple[subprocess.Popen, float]:
    """The old server on 127.0.0.1:port; returns (process, seconds to ready) once it answers its
    V2 readiness probe, or raises with its log's last lines."""
    cmd = [
        *(sys.executable, "-m", "reference.serve", "--name", name),
        *("--host", "127.0.0.1", "--port", str(port), "--payload-dir", str(payload_dir)),
    ]
    env = baseline.env(settings, baseline.root.parent / f"ws-{COMMIT}")
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=baseline.root,  # `-m` puts the working directory first on sys.path
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"it exited ({proc.returncode}): {_tail(log)}")
        if get_status(f"http://127.0.0.1:{port}/v2/models/{name}/ready") == 200:
            return proc, time.perf_counter() - started
        time.sleep(0.25)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise RuntimeError(f"not ready after {wait_s:.0f} s: {_tail(log)}")


# The old tree's transform and forward pass, timed in a child as bench/serving.py times today's:
# the same bundle, the same 64 rows, through that commit's own request parsing (median µs)
FLOOR = """
import json, statistics, sys, time
import pandas as pd
from reference.model import load_bundle, predict_encoded
from reference.serve import client
from reference.serve.schema import Limits, parse_instances
bundle = load_bundle(sys.argv[1])
columns = parse_instances(client.instances(pd.read_parquet(sys.argv[2]).head(64)), Limits())
def median_us(fn, n=1000):
    for _ in range(50):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return 1e6 * statistics.median(out)
encoded = bundle.transform.apply(columns)
print(json.dumps({
    "transform": median_us(lambda: bundle.transform.apply(columns)),
    "forward": median_us(lambda: predict_encoded(bundle.net, encoded)),
}))
"""


def floor(baseline: Baseline, bundle_dir: Path, rows: Path) -> dict | None:
    """``COMMIT``'s transform and forward pass on 64 rows of ``rows`` (a parquet file), median µs
    each, timed in a child with one thread; None (and why, on stderr) if that fails."""
    import json

    env = dict(os.environ, PYTHONPATH=str(baseline.root), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", FLOOR, str(bundle_dir), str(rows)],
        cwd=baseline.root,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        print(f"{COMMIT}'s floor not timed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def served_version(log: Path) -> str | None:
    """The model version the old server says it serves (its 'serving <name> version N' line)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("serving ") and " version " in line:
            return line.split(" version ", 1)[1].split()[0]
    return None


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
