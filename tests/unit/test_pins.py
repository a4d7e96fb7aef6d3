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


def test_every_library_the_package_imports_is_declared():
    """A library ``reference`` imports by name is declared, not borrowed from another's
    dependencies: an engineer who lifts a module finds it in pyproject, and a release of
    KServe or MLflow that drops it cannot break the server."""
    import ast
    import importlib.metadata
    import sys

    imported: dict[str, set[str]] = {}
    for path in sorted((ROOT / "reference").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "reference":
                    imported.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    declared = {_norm(r.name) for r in _declared()}  # the dev extra: the cluster checks' tools
    distributions = importlib.metadata.packages_distributions()
    undeclared = {
        top: sorted(files)[0]
        for top, files in imported.items()
        if not {_norm(d) for d in distributions.get(top, [top])} & declared
    }
    assert "kserve" in imported and "torch" in imported  # the walk found the package's imports
    assert not undeclared, f"imported by reference/ but not declared in pyproject: {undeclared}"
