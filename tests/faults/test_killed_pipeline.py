"""A pipeline killed at any point resumes with one more `mlops-lab pipeline`.

Real processes, real kills: `mlops-lab pipeline` is started as a learner starts it, and SIGKILL
hits it while a chosen stage runs, either the pipeline process alone (its `dvc repro` and the
stage would live on as orphans) or the whole process tree at once (nothing gets to clean up).
One workspace takes the kills in turn, each run resuming the last, so the chain costs about one
pipeline run. After the last kill, one run finishes, and then the workspace must be as if
nothing had happened: a clean git tree, `dvc status` up to date, and a registry without
half-made versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.fault]

SMALL = [
    "--set", "split.train_end=2", "--set", "split.holdout_months=1", "--set", "train.epochs=2",
    "--set", "gate.min_auc_margin_over_baseline=-1", "--set", "gate.max_calibration_error=1",
]  # fmt: skip
CLI = str(Path(sys.executable).parent / "mlops-lab")


def _env(workspace: Path) -> dict[str, str]:
    env = dict(os.environ, MLOPS_LAB_WORKSPACE=str(workspace))
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLOPS_LAB_MODEL_NAME", None)
    return env


def _start(workspace: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [CLI, "pipeline", *args],
        env=_env(workspace),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stage_process(proc: subprocess.Popen, stage: str, timeout: float = 180) -> psutil.Process:
    """Wait until the pipeline runs ``stage`` (its `python -m reference <stage>` process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before {stage}: {proc.stdout.read()}"
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                if child.cmdline()[-2:] == ["reference", stage]:
                    return child
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError(f"{stage} never started")


def _kill(proc: subprocess.Popen, how: str) -> str:
    """SIGKILL the pipeline process alone, or its whole tree at the same moment."""
    victims = [psutil.Process(proc.pid)]
    if how == "tree":
        victims += victims[0].children(recursive=True)
    for p in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return out


def _leftovers(project: Path) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if p.info["cwd"] == str(project) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(" ".join(p.info["cmdline"] or []))
        except psutil.Error:
            continue
    return found


def _wait_for_open_run(workspace: Path, timeout: float = 120) -> None:
    """Until the register stage has opened its MLflow run (read straight from the store)."""
    import sqlite3

    db = workspace / "mlflow" / "mlflow.db"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                if con.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]:
                    return
        except sqlite3.Error:
            pass  # the store is being created
        time.sleep(0.05)
    raise AssertionError("the register stage never opened its MLflow run")


def _registry(workspace: Path):
    from mlflow import MlflowClient

    from reference.config import get_settings

    settings = get_settings(workspace)
    c = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlflow' / 'mlflow.db'}")
    versions = c.search_model_versions(f"name='{settings.model_name}'")
    return c, versions


# which stage the kill hits, and what it hits: each run resumes the one before
KILLS = [
    ("ingest", "parent"),  # `dvc repro` and the ingest stage would go on as orphans
    ("validate", "parent"),
    ("train", "tree"),  # everything at once, as an OOM kill of the session would
    ("register", "tree"),  # mid-registration: MLflow run open, version maybe created
]


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """The chain of killed runs, then one run to the end; what each step printed."""
    workspace = tmp_path_factory.mktemp("killed")
    project = workspace / "project"
    steps = []
    for stage, how in KILLS:
        proc = _start(workspace, *SMALL)
        target = _stage_process(proc, stage)
        busy = None
        if stage == "train":  # meanwhile, a learner starts a second run in another terminal
            second = subprocess.run(
                [CLI, "pipeline"], env=_env(workspace), capture_output=True, text=True, timeout=60
            )
            busy = (second.returncode, second.stdout + second.stderr, proc.pid)
        if stage == "register":
            _wait_for_open_run(workspace)  # mid-registration: the MLflow run is being logged
        out = _kill(proc, how)
        time.sleep(0.5)
        steps.append(
            {
                "stage": stage,
                "how": how,
                "out": out,
                "stage_pid": target.pid,
                "leftovers": _leftovers(project),
                "busy": busy,
            }
        )
    final = subprocess.run(
        [CLI, "pipeline"], env=_env(workspace), capture_output=True, text=True, timeout=600
    )
    again = subprocess.run(
        [CLI, "pipeline"], env=_env(workspace), capture_output=True, text=True, timeout=600
    )
    return {"workspace": workspace, "steps": steps, "final": final, "again": again}


def test_a_killed_run_leaves_nothing_running(killed_runs):
    """Killing the pipeline process alone takes its `dvc repro` and stage with it."""
    for step in killed_runs["steps"]:
        # Linux: the children die with their parent; elsewhere the next run stops them
        if sys.platform.startswith("linux"):
            assert step["leftovers"] == [], step
        assert not psutil.pid_exists(step["stage_pid"]) or (
            psutil.Process(step["stage_pid"]).status() == psutil.STATUS_ZOMBIE
        ), step


def test_the_next_run_says_it_recovers_and_finishes(killed_runs):
    """Each run after a kill names the killed run, clears its lock and goes on; the last ends well."""
    final = killed_runs["final"]
    out = final.stdout + final.stderr
    assert final.returncode == 0, out
    assert "recovering: a previous pipeline run (pid" in out, out
    assert "is busy" not in out and "Traceback" not in out, out
    assert "pipeline done" in out


def test_a_second_run_while_one_is_in_progress_gets_a_plain_message(killed_runs):
    """Two runs in one workspace: the second is refused and told the first one's pid."""
    (code, out, pid), *_ = [s["busy"] for s in killed_runs["steps"] if s["busy"]]
    assert code != 0, out
    assert f"another pipeline run is in progress in this workspace (pid {pid}" in out, out
    assert "Traceback" not in out, out


def test_git_and_dvc_come_back_clean(killed_runs):
    """After the recovering run: no uncommitted change, every stage up to date."""
    project = killed_runs["workspace"] / "project"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout
    dvc = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(dvc.stdout or "{}") == {}, dvc.stdout
    rwlock = project / ".dvc/tmp/rwlock"  # DVC's lock on the outputs: held by nobody
    assert not rwlock.exists() or not any(json.loads(rwlock.read_text()).values())
    assert not (killed_runs["workspace"] / "pipeline.lock").exists()


def test_the_registry_holds_no_half_made_version(killed_runs):
    """Every version's run is FINISHED, none is left pending, and the one successful run
    registered one version, which is the champion and the challenger."""
    from reference.registry import PENDING_TAG

    c, versions = _registry(killed_runs["workspace"])
    for mv in versions:
        assert c.get_run(mv.run_id).info.status == "FINISHED", mv
        assert PENDING_TAG not in mv.tags, mv
    assert len(versions) == 1, [v.version for v in versions]
    aliases = c.get_registered_model(versions[0].name).aliases
    assert aliases == {"champion": versions[0].version, "challenger": versions[0].version}
    run = c.get_run(versions[0].run_id)
    assert run.data.tags.get("data.commit"), run.data.tags
    # no run is left RUNNING either: the killed register stage's run was marked KILLED
    experiment = c.get_experiment_by_name("flight-delay")
    running = c.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    assert running == [], running


def test_a_rerun_after_recovery_changes_nothing(killed_runs):
    """The next run is a no-op: no stage re-runs, no version is added."""
    again = killed_runs["again"]
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "nothing changed since the last run" in out, out
    assert "recovering" not in out, out
    _, versions = _registry(killed_runs["workspace"])
    assert len(versions) == 1
