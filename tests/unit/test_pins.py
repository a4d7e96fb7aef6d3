"""The pip route (requirements/constraints.txt) and the conda route (environment.yml) agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements/constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not an exact pin"
            pins[_norm(name)] = version
    return pins


def _conda() -> tuple[dict, dict[str, str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {}
    for item in pip:
        if not item.startswith("-"):
            req = Requirement(item)
            (spec,) = req.specifier
            assert spec.operator == "==", f"environment.yml pins with ==, not {item!r}"
            pins[_norm(req.name)] = spec.version
    return env, pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [
        r for group in project["optional-dependencies"].values() for r in group
    ]
    return [Requirement(r) for r in reqs]


def test_every_conda_pin_equals_the_lock():
    lock = _lock()
    _, conda = _conda()
    mismatched = {n: (v, lock.get(n)) for n, v in conda.items() if lock.get(n) != v}
    assert not mismatched, f"environment.yml vs constraints.txt (conda, lock): {mismatched}"


def test_every_declared_dependency_is_pinned_in_both_and_satisfies_its_range():
    lock = _lock()
    _, conda = _conda()
    for req in _declared():
        name = _norm(req.name)
        assert name in lock, f"{req.name} is declared in pyproject.toml but not locked"
        assert name in conda, (
            f"{req.name} is declared in pyproject.toml but missing from environment.yml"
        )
        assert req.specifier.contains(lock[name], prereleases=True), (
            f"lock {req.name}=={lock[name]} outside {req}"
        )


def test_torch_is_pinned_without_a_local_build_tag():
    # the same pin must take the CPU wheel here and the CUDA wheel on a GPU machine
    assert _lock()["torch"] == "2.13.0"


def test_python_versions_agree():
    env, _ = _conda()
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires.startswith(">=")
    assert Version(python.removeprefix("python=")) >= Version(requires.removeprefix(">="))
