"""The project's dependencies: what pyproject.toml declares, what a lock pins, what an env holds.

Shared by ``tools/churn.py`` (the upstream-churn canary) and ``tools/lock.py`` (the lock refresh).
Both build an environment from the *declared ranges* without the lock, which means the newest
releases those ranges allow, the way ``make setup`` builds ``.venv``: torch first and alone (its
exact pin takes the build that fits the machine), then the project with its dev extra.

Standard library only, so the tools run with any Python 3.11+, without ``.venv``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements" / "constraints.txt"
ENVIRONMENT = ROOT / "environment.yml"
EXTRA = "dev"

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_RELEASE = re.compile(r"^(\d+(?:\.\d+)*)")


def norm(name: str) -> str:
    """PEP 503's normal form: ``PyYAML``, ``pyyaml`` and ``py_yaml`` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def strip_local(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: a local build tag is not a different release."""
    return version.split("+", 1)[0]


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version (``1.26.4rc1`` -> ``(1, 26, 4)``), for rough ordering."""
    match = _RELEASE.match(version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


@dataclass(frozen=True)
class Declared:
    """One dependency as pyproject.toml declares it: ``name``, ``extras`` (``[x]`` or ``""``),
    the rest of the specifier (``>=2.2,<3``, markers included), and its group."""

    name: str
    extras: str
    spec: str
    group: str

    @property
    def key(self) -> str:
        return norm(self.name)

    @property
    def exact(self) -> str | None:
        """The version when the declaration is an exact pin (``==2.13.0``), else None."""
        match = re.fullmatch(r"==\s*([^,;\s]+)", self.spec.strip())
        return match.group(1) if match else None


def project_name(pyproject: Path = PYPROJECT) -> str:
    return tomllib.loads(pyproject.read_text())["project"]["name"]


def declared(pyproject: Path = PYPROJECT) -> list[Declared]:
    """Every declared dependency in declared order: ``dependencies``, then each optional group."""
    project = tomllib.loads(pyproject.read_text())["project"]
    groups = {"main": project.get("dependencies", [])} | project.get("optional-dependencies", {})
    found = []
    for group, requirements in groups.items():
        for requirement in requirements:
            match = _NAME.match(requirement)
            if not match:
                raise ValueError(f"cannot read the requirement {requirement!r} in {pyproject}")
            name, extras, spec = match.groups()
            found.append(Declared(name, extras or "", spec.strip(), group))
    return found


def parse_pins(text: str, skip: Sequence[str] = ()) -> dict[str, tuple[str, str]]:
    """``name==version`` lines (a lock or ``pip freeze``) -> {normal name: (name, version)}.

    Comments, options, editable installs (``-e ...``) and direct references (``x @ url``) are
    not pins and are left out, and so are the names in ``skip`` (the project itself).
    """
    skipped = {norm(name) for name in skip}
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or " @ " in line or "==" not in line:
            continue
        name, _, version = line.partition("==")
        name = name.strip()
        if norm(name) not in skipped:
            pins[norm(name)] = (name, version.strip())
    return pins


# ---- building an environment from the declared ranges ------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _run(cmd: Sequence[str | os.PathLike[str]], log, env: Mapping[str, str] | None = None) -> None:
    """Run ``cmd``, appending its output to ``log``; raise CalledProcessError when it fails."""
    log.write(f"$ {' '.join(map(str, cmd))}\n")
    log.flush()
    subprocess.run(
        [str(c) for c in cmd], stdout=log, stderr=subprocess.STDOUT, check=True, cwd=ROOT, env=env
    )


def build_unlocked(venv: Path, python: str = sys.executable, log_path: Path | None = None) -> None:
    """Build ``venv`` afresh from pyproject.toml's declared ranges, *without* the lock.

    Like ``make setup``: torch first and alone (pyproject pins it exactly, so this takes the build
    that fits the machine), then the project, editable, with its dev extra. pip picks the newest
    release every range allows. Raises CalledProcessError (its output is in ``log_path``) when
    pip cannot build the environment, which is itself a finding: the ranges no longer resolve.
    """
    venv = venv.absolute()
    torch = next((d for d in declared() if d.key == "torch"), None)
    env = dict(os.environ)
    env.pop("PIP_CONSTRAINT", None)  # the whole point: no lock
    log_path = log_path or Path(os.devnull)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        _run([python, "-m", "venv", "--clear", venv], log, env)
        pip = [venv_python(venv), "-m", "pip", "install", "--no-input"]
        _run([*pip, "--upgrade", "pip>=24"], log, env)
        if torch is not None:
            _run([*pip, f"{torch.name}{torch.extras}{torch.spec}"], log, env)
        _run([*pip, "-e", f".[{EXTRA}]"], log, env)


def freeze(venv: Path) -> str:
    """``pip freeze`` of ``venv``: every installed distribution, the project as an editable line."""
    return subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
