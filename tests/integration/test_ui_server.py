"""`mlops-lab ui` for real: log a run to a workspace's sqlite store, serve it, find it over REST."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reference import ui
from reference.config import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch) -> Settings:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return get_settings(tmp_path / "ws")


def non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def request(url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_server_command_binds_loopback_and_keeps_the_store(settings: Settings) -> None:
    argv = ui.server_command(settings, port=5123)
    assert Path(argv[0]).name == "mlflow" and argv[1] == "server"
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and "0.0.0.0" not in argv
    assert argv[argv.index("--backend-store-uri") + 1] == settings.tracking_uri
    assert argv[argv.index("--artifacts-destination") + 1] == settings.artifact_root
    assert argv[argv.index("--port") + 1] == "5123"
    assert "--disable-security-middleware" not in argv and "--allowed-hosts" not in argv
    assert not settings.mlflow_dir.exists()  # building the argv touches nothing


def test_a_taken_port_is_reported_with_a_hint(settings: Settings, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(RuntimeError, match="--port"):
            ui.start(settings, port=port)
        assert ui.serve(settings, port=port) == 1
    assert f"port {port}" in capsys.readouterr().err


@pytest.mark.integration
def test_real_server_serves_the_logged_run_on_loopback_only(settings: Settings) -> None:
    from mlflow.tracking import MlflowClient

    settings.mlflow_dir.mkdir(parents=True)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    exp = client.create_experiment(settings.experiment, artifact_location=settings.artifact_root)
    run = client.create_run(exp, run_name="ui-test")
    client.log_param(run.info.run_id, "lr", "0.003")
    client.log_metric(run.info.run_id, "auc", 0.71)
    client.set_terminated(run.info.run_id)

    port = ui.free_port()
    start = time.monotonic()
    proc = ui.start(settings, port=port, wait_s=60)
    try:
        base = f"http://127.0.0.1:{port}"
        assert request(f"{base}/health")[0] == 200
        status, body = request(f"{base}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp]})
        assert status == 200
        [served] = json.loads(body)["runs"]
        assert served["info"]["run_id"] == run.info.run_id
        assert {"key": "lr", "value": "0.003"} in served["data"]["params"]
        # the security middleware is on: a request for a foreign Host header is refused
        search = f"{base}/api/2.0/mlflow/experiments/search"
        status, body = request(search, {"max_results": 5}, {"Host": "evil.example"})
        assert status == 403 and b"Invalid Host header" in body, (status, body)

        # bound to loopback only: the machine's own LAN address gets no answer
        address = non_loopback_address()
        if address:
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()
        psutil = pytest.importorskip("psutil")
        group = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        listening = {
            c.laddr.ip
            for p in group
            for c in p.connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
    finally:
        ui.stop(proc)
    print(f"server up and checked in {time.monotonic() - start:.1f} s")

    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of the group is left, uvicorn worker included
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not (Path.cwd() / "mlartifacts").exists()
