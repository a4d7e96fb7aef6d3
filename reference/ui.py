"""`mlops-lab ui`: a real `mlflow server` over the workspace's tracking store, on loopback.

::

    .venv/bin/mlops-lab ui                      # http://127.0.0.1:5000, Ctrl+C to stop
    .venv/bin/mlops-lab ui --port 5001          # when 5000 is taken
    .venv/bin/python -m reference.ui [PORT]     # the same without the CLI

Security by default: the server binds 127.0.0.1 unless a host is asked for explicitly, and
MLflow's host/CORS middleware stays on. The server runs in its own process group, so stopping
it also stops the uvicorn worker it spawns.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from reference.config import Settings, get_settings

LOG_NAME = "server.log"


def server_command(
    settings: Settings, host: str = "127.0.0.1", port: int = 5000, workers: int = 1
) -> list[str]:
    """The argv of `mlflow server` for this workspace; pure, touches nothing."""
    mlflow = Path(sys.executable).parent / "mlflow"  # the venv's mlflow, not whatever is on PATH
    return [
        str(mlflow), "server",
        "--backend-store-uri", settings.tracking_uri,
        # New experiments get artifacts under the workspace, next to the ones logged directly
        # to sqlite by the pipeline (which writes file:// locations the server reads locally).
        "--default-artifact-root", settings.artifact_root,
        # Keep proxied artifact serving on (clients that track over HTTP can upload and download
        # through the server) but point it at the same folder: the default is ./mlartifacts in
        # whatever directory the command ran from.
        "--serve-artifacts", "--artifacts-destination", settings.artifact_root,
        "--host", host, "--port", str(port),
        # One worker: a single user, one sqlite writer, less memory and a faster start than the
        # default 4.
        "--workers", str(workers),
        # No --allowed-hosts / --cors-allowed-origins / --disable-security-middleware: MLflow's
        # defaults accept localhost and private-network Host headers only, which is right for a
        # lab; exposing it beyond that should be a deliberate, explicit step.
    ]  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _client_host(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine (URL form)."""
    wildcard = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}
    return wildcard.get(host, f"[{host}]" if ":" in host else host)


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "taken"
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:  # refused while starting, or a reset
        return False


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def start(
    settings: Settings, host: str = "127.0.0.1", port: int = 5000, wait_s: float = 60
) -> subprocess.Popen:
    """Start the server and return once /health answers 200; RuntimeError with its output if not."""
    if _port_taken(host, port):
        raise RuntimeError(f"port {port} on {host} is taken: pick another with --port")
    if settings.tracking_uri.startswith("sqlite:///"):  # sqlite makes the file, not its folder
        Path(settings.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    # MLflow 3 also starts a job runner and seven huey consumers for GenAI jobs (scorers, prompt
    # optimisation) this lab never submits: off, unless the environment asks for them.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    # Output goes to a file, not a pipe: nobody reads a pipe while the server runs, and a full
    # pipe would block it.
    log = settings.mlflow_dir / LOG_NAME
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(settings, host, port),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() reaches the uvicorn child too
        )
    url = f"http://{_client_host(host)}:{port}/health"
    deadline = time.monotonic() + wait_s
    while not _healthy(url):
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"mlflow server not healthy after {wait_s:g} s:\n{_tail(log)}")
        time.sleep(0.2)
    return proc


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no member is left (0 only asks)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """SIGTERM the server's process group, SIGKILL whatever is left after ``grace_s``."""
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    # Wait for the whole group, not just the leader: the `mlflow` CLI dies on SIGTERM at once,
    # while its uvicorn worker is still shutting down gracefully.
    while _signal_group(proc.pid, 0) and time.monotonic() < deadline:
        proc.poll()  # reap the leader, or its zombie keeps the group alive
        time.sleep(0.1)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the UI in the foreground until Ctrl+C; the exit code for the CLI."""
    try:
        proc = start(settings, host, port)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"MLflow UI: http://{_client_host(host)}:{port} — Ctrl+C to stop")
    print(f"store: {settings.tracking_uri}   log: {settings.mlflow_dir / LOG_NAME}")
    # `kill` of this process should stop the server as cleanly as Ctrl+C does
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        code = proc.wait()
        print(f"mlflow server exited with {code}; see {settings.mlflow_dir / LOG_NAME}")
        return code or 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(proc)
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(serve(get_settings(), port=int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
