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


def _repro(settings: Settings, args: list[str], lock, log: Path | None) -> int:
    """`dvc repro` as a child that dies with this process (Linux), recorded in the run lock so
    that a later run can stop it if this one is killed; Ctrl+C stops it too."""
    from reference import runlock

    env = stage_env(settings)
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


def _dvc(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """A quick DVC command (init, config, push) with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=settings.project,
        env=stage_env(settings),
        capture_output=True,
        text=True,
    )


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
        for args in (
            ("init", "-q"),
            ("config", "core.autostage", "true"),
            ("config", "core.analytics", "false"),
            # --local: the remote's absolute path is this machine's, so it stays out of git
            # (.dvc/config.local); a workspace copied elsewhere keeps a clean tree
            ("remote", "add", "--local", "-d", "-f", "local", str(settings.dvc_remote)),
        ):
            proc = _dvc(settings, *args)
            if proc.returncode:
                raise RuntimeError(f"dvc {' '.join(args)} failed: {proc.stderr.strip()}")
    for name in TEMPLATES:
        if not (project / name).exists():
            (project / name).write_text(files("reference").joinpath("project", name).read_text())
    if _git(project, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode:
        # first commit only: later changes (a failed run's leftovers included) are committed by
        # the next successful run, under a message that says what it was
        _git(project, "add", *TEMPLATES, ".dvc", ".dvcignore")
        _git(project, "commit", "-q", "-m", "workspace: pipeline definition")
    return project


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

    project = init_workspace(settings)
    if overrides:
        write_overrides(project / "params.yaml", overrides)
    load_params(project / "params.yaml")  # fail early, with a clear message, on a bad params file
    lock = runlock.acquire(settings.workspace, project)
    try:
        notes = _recover(settings, lock)
        return _run_locked(settings, project, lock, overrides, force, log, targets, notes)
    finally:
        lock.release()


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


def _run_locked(settings, project, lock, overrides, force, log, targets, notes) -> PipelineResult:
    started = time.perf_counter()
    gate_before = (
        (project / "reports/gate.json").stat().st_mtime
        if (project / "reports/gate.json").exists()
        else None
    )
    code = _repro(settings, [*(["--force"] if force else []), *(targets or [])], lock, log)
    seconds = time.perf_counter() - started
    if code:
        failed = _failed_stage(project)
        # a stage that failed (or was killed alone) in register may have left a pending version
        notes = notes + [f"after the failed run: {n}" for n in _recover_registry(settings)]
        return PipelineResult(False, failed, seconds, None, None, tuple(notes))
    push = _dvc(settings, "push", "-q")
    if push.returncode:
        print(
            f"warning: dvc push to {settings.dvc_remote} failed: {push.stderr.strip()}",
            file=sys.stderr,
        )
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
    commit = _git(project, "rev-parse", "--short", "HEAD").stdout.strip()
    gate_file = project / "reports/gate.json"
    gate = None
    if gate_file.exists() and (gate_before is None or gate_file.stat().st_mtime != gate_before):
        gate = json.loads(gate_file.read_text())
        _tag_data_version(settings, project, commit)
    elif lock.stale and committed:
        # the killed run registered a model but never committed its data: this commit holds it
        _tag_data_version(settings, project, commit, only_if_missing=True)
    return PipelineResult(True, None, seconds, gate, commit, tuple(notes))


def _tag_data_version(
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
