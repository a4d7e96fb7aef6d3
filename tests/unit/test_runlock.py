"""The pipeline's run lock and the registry's recovery, on real processes and a real MLflow store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reference import runlock
from reference.runlock import owner_alive, owner_token


def _dead_token() -> str:
    """The token of a process that has exited (its pid may be reused: the start time differs)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = owner_token(proc.pid)
    proc.kill()
    proc.wait()
    return token


def _project(tmp_path: Path) -> tuple[Path, Path]:
    workspace, project = tmp_path / "ws", tmp_path / "ws" / "project"
    (project / ".dvc" / "tmp").mkdir(parents=True)
    return workspace, project


def test_a_token_names_one_process():
    assert owner_alive(owner_token())
    assert not owner_alive(_dead_token())
    pid = owner_token().split(":")[0]
    assert not owner_alive(f"{pid}:12.00")  # the same pid, started at another time
    assert not owner_alive("garbage")


def test_a_token_survives_the_boot_time_moving_by_a_second():
    # Linux's boot time is whole seconds from the wall clock: a clock adjusted by a fraction of
    # a second moves it by one between the process that wrote the token and the one reading it
    pid, started = owner_token().split(":")
    for moved in (-1.0, 1.0):
        assert owner_alive(f"{pid}:{float(started) + moved:.2f}")
    assert not owner_alive(f"{pid}:{float(started) - 5:.2f}")  # another process with this pid


def test_a_killed_process_not_yet_reaped_is_not_alive():
    # SIGKILLed, but its parent has not waited for it yet: a zombie holds no lock
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = owner_token(proc.pid)
    proc.kill()
    time.sleep(0.5)
    try:
        assert not owner_alive(token)
    finally:
        proc.wait()


def test_the_lock_is_taken_released_and_refused_while_held(tmp_path):
    workspace, project = _project(tmp_path)
    lock = runlock.acquire(workspace, project)
    assert (workspace / runlock.LOCK).exists() and lock.notes == [] and not lock.stale
    with pytest.raises(
        runlock.PipelineBusy, match=r"another pipeline run is in progress .*pid \d+"
    ):
        runlock.acquire(workspace, project)
    lock.release()
    runlock.acquire(workspace, project).release()
    assert not (workspace / runlock.LOCK).exists()


@pytest.mark.parametrize("content", ["dead", "truncated"])
def test_a_lock_left_by_a_killed_run_is_cleared_with_a_note(tmp_path, content):
    workspace, project = _project(tmp_path)
    text = (
        json.dumps({"owner": _dead_token(), "since": time.time()}) if content == "dead" else '{"own'
    )
    (workspace / runlock.LOCK).write_text(text)
    lock = runlock.acquire(workspace, project)
    assert lock.stale
    assert "was killed before it finished" in lock.notes[0]
    lock.release()


def test_dvc_lock_entries_of_dead_processes_are_cleared_and_a_live_dvc_is_busy(tmp_path):
    workspace, project = _project(tmp_path)
    rwlock = project / runlock.RWLOCK
    dead = int(_dead_token().split(":")[0])
    info = {"pid": dead, "cmd": "dvc repro"}
    rwlock.write_text(json.dumps({"write": {"out": info}, "read": {"in": [info]}}))
    lock = runlock.acquire(workspace, project)
    assert any("cleared DVC's lock" in n for n in lock.notes), lock.notes
    assert not rwlock.exists()
    lock.release()
    # a live process whose command line is dvc's: another run, not ours to clear
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "dvc", "repro"])
    try:
        rwlock.write_text(json.dumps({"write": {"out": {"pid": live.pid, "cmd": "dvc repro"}}}))
        with pytest.raises(runlock.PipelineBusy, match=f"pid {live.pid}"):
            runlock.acquire(workspace, project)
        assert not (workspace / runlock.LOCK).exists()  # refused: the pipeline lock is let go
    finally:
        live.kill()
        live.wait()


def test_an_unreadable_dvc_lock_is_removed(tmp_path):
    workspace, project = _project(tmp_path)
    (project / runlock.RWLOCK).write_text('{"write": {')
    lock = runlock.acquire(workspace, project)
    assert any("unreadable" in n for n in lock.notes)
    lock.release()


def test_recover_deletes_pending_versions_and_closes_runs_of_dead_processes(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    from reference import registry
    from reference.config import get_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_LAB_MODEL_NAME", raising=False)
    settings = get_settings(tmp_path / "ws")
    c = registry.client(settings)
    experiment = c.get_experiment_by_name(settings.experiment).experiment_id
    dead, alive = _dead_token(), owner_token()
    runs = {}
    for name, token, finished in (("dead-open", dead, False), ("live-open", alive, False),
                                  ("dead-done", dead, True)):  # fmt: skip
        run = c.create_run(experiment, tags={registry.OWNER_TAG: token}, run_name=name)
        if finished:
            c.set_terminated(run.info.run_id)
        runs[name] = run.info.run_id
    c.create_registered_model(settings.model_name)
    source = (tmp_path / "model").as_uri()
    pending_dead = c.create_model_version(
        settings.model_name, source, runs["dead-done"], tags={registry.PENDING_TAG: dead}
    )
    pending_live = c.create_model_version(
        settings.model_name, source, runs["dead-done"], tags={registry.PENDING_TAG: alive}
    )
    done = c.create_model_version(settings.model_name, source, runs["dead-done"])

    result = registry.recover(settings)

    assert result.runs_marked_killed == [runs["dead-open"]]
    assert result.versions_deleted == [str(pending_dead.version)]
    c = MlflowClient(tracking_uri=settings.tracking_uri)
    assert c.get_run(runs["dead-open"]).info.status == "KILLED"
    assert c.get_run(runs["live-open"]).info.status == "RUNNING"  # its process is alive: untouched
    left = {v.version for v in c.search_model_versions(f"name='{settings.model_name}'")}
    assert left == {pending_live.version, done.version}
    assert registry.recover(settings) == registry.Recovered([], [])  # nothing twice
