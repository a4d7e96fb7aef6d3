"""One pipeline run at a time per workspace, and a clean start after a run that was killed.

A run killed with SIGKILL (an OOM kill, a closed laptop whose session is reaped, `kill -9`) gets
no chance to clean up. Without care it leaves three things behind: DVC's lock on the stage
outputs (the next run fails with "... is busy, it is being blocked by"), the `dvc repro` it
started, still running on its own as an orphan, and half-made registry entries. So:

- ``acquire`` creates ``<workspace>/pipeline.lock`` naming the run's process (pid and start
  time, so a reused pid is not mistaken for it). A lock whose process is alive means another
  run is in progress: ``PipelineBusy`` says so, with its pid. A lock whose process is gone is
  stale: what that run left running is stopped, DVC's lock entries of dead processes are
  cleared, and the run goes on (``Acquired.notes`` says what was cleaned).
- ``die_with_parent`` (Linux) makes a process get SIGKILL when its parent dies: `dvc repro`
  with the pipeline, each stage with `dvc repro`. Elsewhere the next run's ``acquire`` stops
  the leftovers instead.
- The registry's half of it is ``reference.registry.recover``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOCK = "pipeline.lock"
RWLOCK = Path(".dvc") / "tmp" / "rwlock"


class PipelineBusy(RuntimeError):
    """Another run holds the workspace; the message names its process."""


@dataclass
class Acquired:
    path: Path
    owner: str  # this run's process token
    notes: list[str] = field(default_factory=list)
    stale: bool = False  # a killed run was cleaned up: check the registry too

    def record_child(self, pid: int) -> None:
        """Remember the `dvc repro` process, so a later run can stop it if this one is killed."""
        data = json.loads(self.path.read_text())
        data["child"] = owner_token(pid)
        _write(self.path, data)

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def owner_token(pid: int | None = None) -> str:
    """``pid:start time``: names one process, even after its pid is reused by another."""
    import psutil

    proc = psutil.Process(pid)
    return f"{proc.pid}:{proc.create_time():.2f}"


def owner_alive(token: str) -> bool:
    import psutil

    pid, _, started = token.partition(":")
    try:
        proc = psutil.Process(int(pid))
        # The start time is the boot time plus the process's age in ticks, and Linux gives the
        # boot time in whole seconds, computed from the wall clock: a clock adjusted by a
        # fraction of a second can move it by one, between the process that wrote the token
        # and the one reading it. A pid reused by another process within a second can't be.
        same = abs(proc.create_time() - float(started)) < 1.5
        # a zombie has exited; only its parent has not read its exit status yet
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError):
        return False


def _alive(token: str | None) -> bool:
    return bool(token) and owner_alive(token)


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a lock file


def _started(data: dict) -> str:
    return time.strftime("%H:%M:%S", time.localtime(data.get("since", 0)))


def acquire(workspace: Path, project: Path, command: str = "mlops-lab pipeline") -> Acquired:
    """Take the workspace's pipeline lock, or raise ``PipelineBusy``; clean up after a killed run."""
    path = workspace / LOCK
    notes: list[str] = []
    stale = False
    for _ in range(2):  # a stale lock is removed once, then taken
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                data = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                data = {}  # truncated by a crash mid-write: nobody can hold it
            if _alive(data.get("owner")):
                pid = data["owner"].split(":")[0]
                raise PipelineBusy(
                    f"another pipeline run is in progress in this workspace (pid {pid}, "
                    f"`{data.get('command', 'mlops-lab pipeline')}`, started {_started(data)}): "
                    f"wait for it to finish, or stop it with `kill {pid}`"
                ) from None
            stale = True
            pid = (data.get("owner") or "?").split(":")[0]
            notes.append(
                f"a previous pipeline run (pid {pid}, started {_started(data)}) was killed "
                "before it finished: cleaning up after it"
            )
            notes += stop_leftovers(data.get("child"), project)
            path.unlink(missing_ok=True)
            continue
        owner = owner_token()
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps({"owner": owner, "since": time.time(), "command": command}) + "\n")
        try:
            notes += clear_dvc_locks(project)
        except PipelineBusy:
            path.unlink(missing_ok=True)
            raise
        return Acquired(path, owner, notes, stale)
    raise PipelineBusy(f"could not take {path}: another run keeps creating it")


def stop_leftovers(child: str | None, project: Path) -> list[str]:
    """Kill the `dvc repro` a killed run left behind, and the stage it was running."""
    import psutil

    victims = []
    if _alive(child):
        root = psutil.Process(int(child.split(":")[0]))
        victims = [root, *root.children(recursive=True)]
    # a stage whose dvc died first is an orphan: find it by where it works
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.info["cmdline"] or [])
            if proc.info["cwd"] == str(project) and "-m reference" in cmd and proc not in victims:
                victims.append(proc)
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(victims, timeout=10)
    if not victims:
        return []
    return [f"stopped {len(victims)} process(es) the killed run left running (pids "
            f"{', '.join(str(p.pid) for p in victims)})"]  # fmt: skip


def clear_dvc_locks(project: Path) -> list[str]:
    """DVC's lock on stage outputs: entries of dead processes go; a live `dvc` is another run."""
    import psutil

    path = project / RWLOCK
    try:
        lock = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except ValueError:
        path.unlink()
        return [f"removed DVC's unreadable lock file {path}"]
    holders = [i for i in lock.get("write", {}).values()]
    holders += [i for infos in lock.get("read", {}).values() for i in infos]
    live = set()
    for info in holders:
        with contextlib.suppress(psutil.Error, KeyError, ValueError):
            proc = psutil.Process(int(info["pid"]))
            if "dvc" in " ".join(proc.cmdline()):
                live.add(proc.pid)
    if live:
        pid = min(live)
        raise PipelineBusy(
            f"a `dvc` command (pid {pid}) is working in {project}: wait for it to finish, "
            f"or stop it with `kill {pid}`"
        )
    if not holders:
        return []
    path.unlink()
    pids = sorted({int(i["pid"]) for i in holders if str(i.get("pid", "")).isdigit()})
    return [f"cleared DVC's lock on the stage outputs, left by process(es) {pids} that are gone"]


OWNER_ENV = "MLOPS_LAB_PIPELINE_OWNER"  # set for the stages: the run they belong to


def _prctl():
    """libc's prctl, resolved up front: a forked child should only call it, not load it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def dies_with(parent: int):
    """A ``preexec_fn`` for Popen (Linux): the child gets SIGKILL when ``parent`` dies, and exits
    at once if it already has. ``None`` where the platform has no such thing."""
    prctl = _prctl()
    if prctl is None:
        return None

    def arm() -> None:
        prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return arm


def guard_stage() -> None:
    """Called first by each stage: under `dvc repro`, die with it (Linux), and exit at once if
    the pipeline run that started it is already gone (elsewhere the next run stops it)."""
    import psutil

    with contextlib.suppress(psutil.Error):
        parent = psutil.Process().parent()
        if parent is not None and "dvc" in " ".join(parent.cmdline()):
            arm = dies_with(parent.pid)
            if arm is not None:
                arm()
    owner = os.environ.get(OWNER_ENV)
    if owner and not _alive(owner):
        os._exit(1)
