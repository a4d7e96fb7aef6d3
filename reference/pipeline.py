"""The workspace and the pipeline run: Level 1, automated and versioned.

A workspace is a folder outside the tracked files of this repository (default ``./workspace``,
git-ignored; set MLOPS_LAB_WORKSPACE to move it)::

    workspace/
      project/      a git + DVC repository: dvc.yaml, params.yaml, data/, models/, reports/
      dvc-remote/   the DVC remote (a local folder; S3 on MinIO in the cluster tier)
      mlflow/       the MLflow store: mlflow.db (sqlite) and artifacts/

``run_pipeline`` writes ``--set`` overrides into project/params.yaml (as if you edited it), runs
``dvc repro`` (only what changed re-runs), then pushes data and models to the remote and commits
the project: each successful run is a data version you can go back to.

::

    mlops-lab pipeline --set split.train_end=8
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from reference.config import MARKER, Settings, apply_overrides, load_params, make_dir

TEMPLATES = ("dvc.yaml", "params.yaml")


def _git(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=project, check=check, capture_output=True, text=True)


def stage_env(settings: Settings) -> dict[str, str]:
    """The environment stage commands run in: this venv's python first, settings passed down."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLOPS_LAB_WORKSPACE"] = str(settings.workspace)
    env["MLFLOW_TRACKING_URI"] = settings.tracking_uri
    env["MLOPS_LAB_MODEL_NAME"] = settings.model_name
    env["DVC_NO_ANALYTICS"] = "1"  # no usage reporting from a lab machine
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _repro(settings: Settings, args: list[str], lock, log: Path | None, runner=None) -> int:
    """`dvc repro` as a child that dies with this process (Linux), recorded in the run lock so
    that a later run can stop it if this one is killed; Ctrl+C stops it too. With a
    ``reference.warm.Runner``, the stages run in it."""
    from reference import runlock

    env = dict(runner.env) if runner is not None else stage_env(settings)
    env[runlock.OWNER_ENV] = lock.owner
    out = None
    if log is not None:  # the stages' output goes to a file (the Level 2 loop keeps it there)
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("a")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", *args],
            cwd=settings.project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            preexec_fn=runlock.dies_with(os.getpid()),  # noqa: PLW1509 (resolved before fork)
        )
        lock.record_child(proc.pid)
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to dvc too: give it a moment
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    finally:
        if out is not None:
            out.close()


def init_workspace(settings: Settings) -> Path:
    """Create the workspace (idempotent): git + DVC project, local remote, MLflow folder."""
    if shutil.which("git") is None:
        raise RuntimeError(
            "git is not installed: the pipeline versions data with git + DVC (apt-get install git)"
        )
    ws, project = settings.workspace, settings.project
    make_dir(project, f"the workspace at {ws}")
    settings.dvc_remote.mkdir(exist_ok=True)
    settings.mlflow_dir.mkdir(exist_ok=True)
    (ws / MARKER).write_text(json.dumps({"created_by": "mlops-lab"}) + "\n")
    if not (project / ".git").exists():
        _git(project, "init", "-q", "-b", "main")
        _git(project, "config", "user.name", "mlops-lab")
        _git(project, "config", "user.email", "mlops-lab@localhost")
    if not (project / ".dvc").exists():
        _init_dvc(project, settings.dvc_remote)
    for name in TEMPLATES:
        if not (project / name).exists():
            (project / name).write_text(files("reference").joinpath("project", name).read_text())
    if _git(project, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode:
        # first commit only: later changes (a failed run's leftovers included) are committed by
        # the next successful run, under a message that says what it was
        _git(project, "add", *TEMPLATES, ".dvc", ".dvcignore")
        _git(project, "commit", "-q", "-m", "workspace: pipeline definition")
    return project


def _init_dvc(project: Path, remote: Path) -> None:
    """`dvc init`, then `dvc config core.autostage true`, `dvc config core.analytics false` and
    `dvc remote add --local -d local <remote>`, through DVC's Python API: four `dvc` processes
    would cost a second each."""
    import logging

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    quiet = logging.getLogger("dvc")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # not "Initialized DVC repository." in the middle of a run
    try:
        repo = Repo.init(project)
        try:
            with repo.config.edit() as conf:
                conf["core"]["autostage"] = True
                conf["core"]["analytics"] = False
            # local: the remote's absolute path is this machine's, so it stays out of git
            # (.dvc/config.local); a workspace copied elsewhere keeps a clean tree
            with repo.config.edit("local") as conf:
                conf["remote"]["local"] = {"url": str(remote)}
                conf["core"]["remote"] = "local"
        finally:
            repo.close()
    except DvcException as e:
        shutil.rmtree(project / ".dvc", ignore_errors=True)  # the next run starts over
        raise RuntimeError(f"dvc init in {project} failed: {e}") from e
    finally:
        quiet.setLevel(level)


def write_overrides(params_file: Path, overrides: list[str]) -> None:
    """Apply ``section.key=value`` to params.yaml in place, keeping its comments and layout."""
    import yaml

    apply_overrides(yaml.safe_load(params_file.read_text()) or {}, overrides)  # validates names
    lines = params_file.read_text().splitlines()
    for item in overrides:
        key, _, raw = item.partition("=")
        section, name = key.strip().split(".")
        value = json.dumps(yaml.safe_load(raw))  # JSON is valid YAML: lists and nulls included
        start = next((i for i, line in enumerate(lines) if line.rstrip() == f"{section}:"), None)
        if start is None:
            lines += [f"{section}:", f"  {name}: {value}"]
            continue
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
            len(lines),
        )
        pattern = re.compile(rf"^(\s+{re.escape(name)}:\s*)([^#]*?)(\s*#.*)?$")
        for i in range(start + 1, end):
            m = pattern.match(lines[i])
            if m:
                lines[i] = f"{m.group(1)}{value}{m.group(3) or ''}"
                break
        else:
            lines.insert(end, f"  {name}: {value}")
    params_file.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class PipelineResult:
    ok: bool
    failed_stage: str | None
    seconds: float
    gate: dict | None
    commit: str | None
    recovered: tuple[str, ...] = ()  # what was cleaned up after an earlier, killed run


def run_pipeline(
    settings: Settings,
    overrides: list[str] | None = None,
    force: bool = False,
    log: Path | None = None,
    targets: list[str] | None = None,
) -> PipelineResult:
    """Run dvc repro in the workspace project; on success push to the remote and commit.
    ``log``: append the stages' output to this file instead of the terminal. ``targets``: run
    only up to these stages (``["transform"]``: ingest, validate, transform)."""
    from reference import runlock
    from reference.warm import Runner

    # first, so that its imports run while the workspace is set up (see reference.warm)
    runner = Runner.start(stage_env(settings), preexec_fn=runlock.dies_with(os.getpid()))
    try:
        project = init_workspace(settings)
        if overrides:
            write_overrides(project / "params.yaml", overrides)
        load_params(project / "params.yaml")  # fail early and clearly on a bad params file
        lock = runlock.acquire(settings.workspace, project)
        try:
            notes = _recover(settings, lock)
            return _run_locked(
                settings, project, lock, overrides, force, log, targets, notes, runner
            )
        finally:
            lock.release()
    finally:
        if runner is not None:
            runner.stop()


def _import_in_background(module: str) -> None:
    """Import while this process only waits on `dvc repro`: the import that follows is free."""
    import importlib
    import threading

    if module not in sys.modules:
        threading.Thread(target=importlib.import_module, args=(module,), daemon=True).start()


def _recover(settings: Settings, lock) -> list[str]:
    """Say what was cleaned after a killed run, and take its half-made entries out of the registry."""
    notes = list(lock.notes)
    if lock.stale:
        notes += _recover_registry(settings)
    for note in notes:
        print(f"recovering: {note}", file=sys.stderr)
    return notes


def _recover_registry(settings: Settings) -> list[str]:
    from reference.registry import recover

    done = recover(settings)
    notes = []
    if done.runs_marked_killed:
        notes.append(f"marked {len(done.runs_marked_killed)} unfinished MLflow run(s) KILLED")
    if done.versions_deleted:
        notes.append(
            f"deleted half-registered version(s) {', '.join(done.versions_deleted)} "
            f"of {settings.model_name}"
        )
    return notes


def _run_locked(
    settings, project, lock, overrides, force, log, targets, notes, runner
) -> PipelineResult:
    started = time.perf_counter()
    gate_before = (
        (project / "reports/gate.json").stat().st_mtime
        if (project / "reports/gate.json").exists()
        else None
    )
    args = [*(["--force"] if force else []), *(targets or [])]
    code = _repro(settings, args, lock, log, runner)
    seconds = time.perf_counter() - started
    if code:
        failed = _failed_stage(project)
        # a stage that failed (or was killed alone) in register may have left a pending version
        notes = notes + [f"after the failed run: {n}" for n in _recover_registry(settings)]
        return PipelineResult(False, failed, seconds, None, None, tuple(notes))
    gate_file = project / "reports/gate.json"
    gated = gate_file.exists() and (gate_before is None or gate_file.stat().st_mtime != gate_before)
    if (gated or lock.stale) and runner is None:
        _import_in_background("mlflow.tracking")  # for the tag, while git and DVC work
    push = _start_push(settings, project)  # neither the commit nor the tag needs it done
    gate = None
    try:
        commit, committed = _commit(project, overrides, targets)
        if gated:
            gate = json.loads(gate_file.read_text())
            _tag(settings, project, commit, False, runner)
        elif lock.stale and committed:
            # the killed run registered a model but never committed its data: this commit has it
            _tag(settings, project, commit, True, runner)
    finally:
        _finish_push(push, settings, project)
    return PipelineResult(True, None, seconds, gate, commit, tuple(notes))


def _tag(settings: Settings, project: Path, commit: str, only_if_missing: bool, runner) -> None:
    """``tag_data_version`` in the warm runner (MLflow is imported there), else here."""
    if runner is not None:
        args = ["tag-data-version", commit, *(["--only-if-missing"] if only_if_missing else [])]
        if runner.run(args, project) == 0:
            return
    tag_data_version(settings, project, commit, only_if_missing)


PUSHED = Path(".dvc") / "tmp" / "pushed"  # the project commit whose data the remote holds


def _start_push(settings: Settings, project: Path) -> subprocess.Popen | None:
    """`dvc push`, unless nothing re-ran since the last push that succeeded."""
    head = _git(project, "rev-parse", "HEAD", check=False).stdout.strip()
    unchanged = not _git(project, "status", "--porcelain", "--", "dvc.lock").stdout.strip()
    if unchanged and (project / PUSHED).exists() and (project / PUSHED).read_text() == head:
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "dvc", "push", "-q"],
        cwd=project,
        env=stage_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_push(push: subprocess.Popen | None, settings: Settings, project: Path) -> None:
    if push is None:
        return
    _, err = push.communicate()
    if push.returncode:
        (project / PUSHED).unlink(missing_ok=True)
        print(f"warning: dvc push to {settings.dvc_remote} failed: {err.strip()}", file=sys.stderr)
    else:
        head = _git(project, "rev-parse", "HEAD").stdout.strip()
        (project / PUSHED).write_text(head)


def _commit(project: Path, overrides, targets) -> tuple[str, bool]:
    """Commit the run's data version: (its short hash, whether there was anything to commit)."""
    _git(project, "add", "-A")
    committed = bool(_git(project, "diff", "--cached", "--quiet", check=False).returncode)
    if committed:
        _git(
            project,
            "commit",
            "-q",
            "-m",
            f"pipeline run: {' '.join(overrides or []) or 'params.yaml'}"
            + (f" (up to {', '.join(targets)})" if targets else ""),
        )
    return _git(project, "rev-parse", "--short", "HEAD").stdout.strip(), committed


def tag_data_version(
    settings: Settings, project: Path, commit: str, only_if_missing: bool = False
) -> None:
    """Write the project commit that holds this run's data and params onto the MLflow run:
    from the registry, `git checkout <commit> && dvc checkout` in the project brings them back."""
    from mlflow import MlflowClient

    candidate = project / "registry/candidate.json"
    if not candidate.exists():
        return
    run_id = json.loads(candidate.read_text())["run_id"]
    c = MlflowClient(tracking_uri=settings.tracking_uri)
    if only_if_missing and "data.commit" in c.get_run(run_id).data.tags:
        return
    c.set_tag(run_id, "data.commit", commit)


def failing_checks(project: Path) -> list[str]:
    """The messages of the validation checks that failed in the last run (empty if none)."""
    report = project / "reports/validation.json"
    if not report.exists():
        return []
    checks = json.loads(report.read_text()).get("checks", [])
    return [c["message"] for c in checks if c.get("severity") == "fail"]


def _failed_stage(project: Path) -> str | None:
    """Where the run stopped: DVC removes a stage's outputs before it runs, so the first stage of
    dvc.yaml with an output missing is the one that failed (validate also says so itself)."""
    import yaml

    validation = project / "reports/validation.json"
    if validation.exists() and not json.loads(validation.read_text()).get("passed", True):
        return "validate"
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for entry in [*stage.get("outs", []), *stage.get("metrics", [])]:
            path = next(iter(entry)) if isinstance(entry, dict) else entry
            if not (project / path).exists():
                return name
    return None
