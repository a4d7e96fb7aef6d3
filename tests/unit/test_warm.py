"""The warm runner: a stage forked from it behaves as the stage run as its own process would.

Real processes throughout: a runner (`python -m reference.warm`, without its warm-up unless a
test needs it), real stage commands (`python -m reference ingest` in a real workspace), real
signals. Linux only, as the runner is.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from reference import warm
from reference.config import get_settings
from reference.pipeline import init_workspace, run_pipeline, stage_env

pytestmark = pytest.mark.skipif(not warm.supported(), reason="the runner needs Linux's fork")


@pytest.fixture
def runner():
    r = warm.Runner.start(dict(os.environ), warm_up=False)
    assert r.wait_ready(), "the runner did not start"
    yield r
    r.stop()


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = get_settings(tmp_path / "ws")
    init_workspace(settings)
    return settings


def _children(runner) -> list[psutil.Process]:
    return psutil.Process(runner.proc.pid).children()


def _stage_child(runner, timeout: float = 20.0) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(runner)
        if kids:
            return kids[0]
        time.sleep(0.02)
    raise AssertionError("no stage was forked from the runner")


def _client(runner, settings, *args: str) -> subprocess.Popen:
    env = {**stage_env(settings), warm.ENV: runner.env[warm.ENV]}
    return subprocess.Popen(
        [sys.executable, "-m", "reference", *args],
        cwd=settings.project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_stage_runs_forked_from_the_runner_in_the_callers_folder(runner, project):
    client = _client(runner, project, "ingest")
    child = _stage_child(runner)
    assert Path(child.cwd()) == project.project  # the stage command's folder, not the runner's
    out, err = client.communicate(timeout=120)
    assert client.returncode == 0, err
    assert "into 12 monthly batches" in out  # its stdout reached the caller
    assert sorted(p.name for p in (project.project / "data/batches").glob("*.parquet"))
    deadline = time.monotonic() + 10  # the child ends just after it reports its exit code
    while _children(runner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _children(runner)  # reaped: nothing left behind


def test_exit_code_and_stderr_come_back_through_the_callers_streams(runner, capfd):
    code = warm.delegate(["ingest", "--no-such-option"], runner.env[warm.ENV])
    assert code == 2  # not None: the runner ran it, and the usage error's code came back
    assert "No such option" in capfd.readouterr().err


def test_a_stage_killed_by_a_signal_is_reported_as_a_shell_would(runner, project):
    client = _client(runner, project, "ingest")
    _stage_child(runner).kill()
    _, err = client.communicate(timeout=60)
    assert client.returncode == 128 + signal.SIGKILL, err


def test_a_killed_stage_command_takes_its_stage_with_it(runner, project):
    client = _client(runner, project, "ingest")
    child = _stage_child(runner)
    client.kill()
    client.wait()
    gone, alive = psutil.wait_procs([child], timeout=10)
    assert gone and not alive


def test_sigterm_to_the_stage_command_reaches_the_stage(runner, project):
    client = _client(runner, project, "ingest")
    child = _stage_child(runner)
    client.send_signal(signal.SIGTERM)  # what DVC or a later run sends to the stage process
    _, err = client.communicate(timeout=60)
    assert client.returncode == 128 + signal.SIGTERM, err
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_only_stage_commands_are_taken(runner):
    assert warm.delegate(["pipeline"], runner.env[warm.ENV]) is None  # refused before asking
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    conn.connect(runner.env[warm.ENV])
    request = {"argv": ["pipeline"], "cwd": "/", "env": {}}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
    assert conn.recv(1024) == b""  # closed without forking anything
    conn.close()
    assert not _children(runner)


def test_without_a_runner_the_stage_runs_in_its_own_process(tmp_path):
    assert warm.delegate(["ingest"], str(tmp_path / "nobody.sock")) is None


def test_the_switch_turns_the_runner_off():
    assert warm.Runner.start({**os.environ, warm.SWITCH: "0"}) is None


def test_the_runner_dies_with_the_process_that_started_it(tmp_path):
    # a pipeline process killed with SIGKILL must not leave a runner (and its warm imports) behind
    script = (
        "import os, sys, time\n"
        "from reference import runlock, warm\n"
        "r = warm.Runner.start(dict(os.environ), runlock.dies_with(os.getpid()), warm_up=False)\n"
        "r.wait_ready()\n"
        "print(r.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    runner_pid = int(parent.stdout.readline())
    runner = psutil.Process(runner_pid)
    parent.kill()
    parent.wait()
    gone, alive = psutil.wait_procs([runner], timeout=10)
    assert gone and not alive


def _runners(root: psutil.Process) -> list[psutil.Process]:
    """The runner at ``root`` and the group runners forked one below the other (called before
    any stage runs: each runner's only child is the next group's runner)."""
    chain = [root]
    while kids := chain[-1].children():
        chain.append(kids[0])
    return chain


def test_each_group_of_stages_has_its_own_runner_and_all_go_with_the_first(project, monkeypatch):
    # with its warm-up: one runner per group, the last one making the workspace's MLflow store
    env = {**os.environ, "MLOPS_LAB_WORKSPACE": str(project.workspace)}
    db = project.mlflow_dir / "mlflow.db"
    assert not db.exists()
    r = warm.Runner.start(env)
    try:
        assert r.wait_ready()
        root = psutil.Process(r.proc.pid)
        deadline = time.monotonic() + 120  # a group's runner starts once the one above imported
        while time.monotonic() < deadline:
            chain = _runners(root)
            if len(chain) == len(warm.GROUPS) and db.exists():
                break
            time.sleep(0.1)
        assert len(chain) == len(warm.GROUPS)
        experiment = MlflowClient(project.tracking_uri).get_experiment_by_name(project.experiment)
        assert experiment is not None  # made ahead of the register stage
        for commands, _ in warm.GROUPS:  # every stage command is taken (not run cold: not None)
            assert warm.delegate([commands[0], "--help"], r.env[warm.ENV]) == 0
    finally:
        r.stop()
    gone, alive = psutil.wait_procs(chain, timeout=10)
    assert gone and not alive  # stopping the first takes the whole chain


def test_a_pipeline_run_with_and_without_the_runner_writes_the_same_data(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    results = {}
    for switch in ("1", "0"):
        monkeypatch.setenv(warm.SWITCH, switch)
        settings = get_settings(tmp_path / f"ws-{switch}")
        result = run_pipeline(settings, targets=["ingest"], log=tmp_path / f"{switch}.log")
        assert result.ok, (tmp_path / f"{switch}.log").read_text()
        results[switch] = (settings.project / "data/ingest_report.json").read_text()
    assert results["1"] == results["0"]
