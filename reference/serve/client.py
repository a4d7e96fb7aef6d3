"""Start, wait for, stop and call the model server: from a terminal, a test, or a notebook.

The server runs as its own process (``python -m reference.serve``), so a notebook never imports
KServe (which parses the kernel's argv and configures logging on import) and Ctrl+C or a crash in
one never takes down the other.

::

    from reference.serve.client import start, predict, stop
    server = start(settings, port=0)               # waits until the model is ready
    predict(server.url, rows)                      # a DataFrame with probability, label, version
    stop(server)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reference.features import FEATURES


@dataclass
class Server:
    """A running model server: its process, URL, model name and log file."""

    proc: subprocess.Popen
    url: str
    name: str
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start(
    settings,
    name: str = "flight-delay",
    host: str = "127.0.0.1",
    port: int = 0,
    args: list[str] | None = None,
    wait_s: float = 90.0,
    log: Path | None = None,
    workers: int = 1,
) -> Server:
    """Start the server process and return once the model reports ready (or raise with its log).

    ``workers``: 1 unless asked, whatever ``mlops-lab serve`` defaults to: a server for a
    notebook or a test is ready sooner in one process (``args`` may still say --workers)."""
    port = port or free_port(host)
    log = log or settings.workspace / "serving" / f"server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        MLOPS_LAB_WORKSPACE=str(settings.workspace),
        MLFLOW_TRACKING_URI=settings.tracking_uri,
        MLOPS_LAB_MODEL_NAME=settings.model_name,
        MLFLOW_DISABLE_TELEMETRY="true",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )  # one request, one thread: no oversubscription
    cmd = [
        sys.executable,
        "-m",
        "reference.serve",
        "--name",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        *(args or []),  # after ours: argparse keeps the last --workers
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = Server(proc, f"http://{host}:{port}", name, log)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the model server exited with code {proc.returncode}:\n{_tail(log)}"
            )
        if get_status(f"{server.url}/v2/models/{name}/ready") == 200:
            return server
        time.sleep(0.25)
    stop(server)
    raise RuntimeError(f"the model server was not ready after {wait_s:.0f} s:\n{_tail(log)}")


def stop(server: Server, grace_s: float = 15.0) -> int:
    """SIGTERM (uvicorn drains in-flight requests), then SIGKILL after the grace period."""
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()
    return server.proc.returncode


def load(server: Server, body: bytes, seconds: float = 1.5, threads: int = 8) -> tuple[int, int]:
    """POST the same V1 ``body`` for ``seconds``, each of ``threads`` on its own keep-alive
    connection (what a busy client pool does); returns (requests sent, requests not answered
    200). A quick load for a notebook or a smoke check; bench/serving.py measures properly."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    host, port = server.url.removeprefix("http://").split(":")
    path = f"/v1/models/{server.name}:predict"

    def one_connection(_) -> tuple[int, int]:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        sent = failed = 0
        end = time.perf_counter() + seconds
        try:
            while time.perf_counter() < end:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                answer = conn.getresponse()
                answer.read()
                sent, failed = sent + 1, failed + (answer.status != 200)
        finally:
            conn.close()
        return sent, failed

    with ThreadPoolExecutor(threads) as pool:
        counts = list(pool.map(one_connection, range(threads)))
    return sum(s for s, _ in counts), sum(f for _, f in counts)


def cpu_seconds(server: Server) -> float:
    """CPU time (user + system) the server has used so far: its process and every worker."""
    import psutil

    root = psutil.Process(server.proc.pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def request(
    url: str,
    body: bytes | dict,
    content_type: str = "application/json",
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """POST and return (status, JSON body), 4xx and 5xx included: for clients and tests.
    ``headers``: more request headers (``inference-header-content-length`` for V2 binary)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"error": raw.decode(errors="replace")}


def instances(rows: pd.DataFrame) -> list[dict]:
    """DataFrame rows as V1 instances: feature columns only, missing values as null."""
    frame = rows[list(FEATURES)].astype(object)
    return frame.where(frame.notna(), None).to_dict(orient="records")


def v2_inputs(rows: pd.DataFrame) -> list[dict]:
    """DataFrame rows as V2 tensors: one 1-D tensor per feature."""
    out = []
    for col in FEATURES:
        values = rows[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):  # pandas 3: "str" dtype
            out.append(
                {"name": col, "shape": [len(rows)], "datatype": "BYTES", "data": values.tolist()}
            )
        elif pd.api.types.is_integer_dtype(values):
            out.append(
                {
                    "name": col,
                    "shape": [len(rows)],
                    "datatype": "INT64",
                    "data": values.astype(int).tolist(),
                }
            )
        else:
            data = [None if pd.isna(v) else float(v) for v in values]
            out.append({"name": col, "shape": [len(rows)], "datatype": "FP64", "data": data})
    return out


def predict(
    url: str, rows: pd.DataFrame, name: str = "flight-delay", protocol: str = "v1"
) -> pd.DataFrame:
    """Score rows on a running server; raises with the server's message on a 4xx/5xx."""
    if protocol == "v1":
        status, body = request(f"{url}/v1/models/{name}:predict", {"instances": instances(rows)})
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body.get('error', body)}")
        out = pd.DataFrame(body["predictions"])
        out["model_version"] = body["model_version"]
        return out
    status, body = request(f"{url}/v2/models/{name}/infer", {"inputs": v2_inputs(rows)})
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body.get('error', body)}")
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    return pd.DataFrame(
        {
            "probability": outputs["probability"],
            "label": outputs["label"],
            "model_version": body.get("model_version"),
        }
    )


def get_status(url: str) -> int | None:
    """The HTTP status of a GET (None when nothing answers): health and readiness probes."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
