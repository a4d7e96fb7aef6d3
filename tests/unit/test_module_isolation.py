"""Each module page of the site (docs/modules/*.md) declares what importing its module pulls in;
a fresh interpreter imports the modules and records what reference/ code itself imports, and the
two must agree. One interpreter serves them all: every import statement of reference/ is
attributed to the module whose code runs it, and what a module pulls in is the closure over the
project modules it imports. So an engineer who copies `reference/train.py` knows it needs torch,
numpy and pandas and nothing else, and a new import that breaks that promise fails here, not in
their repo.

Every module of reference/ must have its contract and its API section on some page, and each
page's "Example" runs as written, in a fresh interpreter in an empty folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "modules").glob("*.md"))
CONTRACT = re.compile(r"```\{module-contract\}\s+(\S+)\s*\n(?::imports:(.*)\n)?```")
AUTOMODULE = re.compile(r"^\.\. automodule:: (\S+)", re.M)
EXAMPLE = re.compile(r"^## Example[^\n]*\n(.*?)(?=^## |\Z)", re.M | re.S)
PY_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)

# Run in the child, a fresh interpreter: wrap __import__ and importlib.import_module, import
# every module, and note for each module of reference/ what its own code asked for while it was
# imported: third-party top-level packages, and other modules of reference/. Each import statement
# runs once, when its module is first imported, whoever imports it first, so one interpreter sees
# every module's own imports; what importing a module pulls in is then its own third-party
# imports plus those of the project modules it imports, and theirs (the closure).
PROBE = textwrap.dedent(
    """
    import builtins, importlib, json, sys
    own = {}  # module -> {"third": [...], "project": [...]}
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def resolve(name, globals_, level):
        if not level:
            return name
        package = globals_.get("__package__") or ""
        base = package.rsplit(".", level - 1)[0] if level > 1 else package
        return f"{base}.{name}" if name else base

    def note(name, globals_, level, fromlist=()):
        caller = (globals_ or {}).get("__name__", "") or ""
        if not caller.startswith("reference"):
            return
        entry = own.setdefault(caller, {"third": set(), "project": set()})
        full = resolve(name, globals_ or {}, level)
        head = full.split(".")[0]
        if head == "reference":
            targets = [full] + [f"{full}.{f}" for f in fromlist or () if f != "*"]
            entry["project"].update(t for t in targets if t != caller)
        elif head and head not in sys.stdlib_module_names:
            entry["third"].add(head)

    def hooked(name, globals=None, locals=None, fromlist=(), level=0):
        note(name, globals, level, fromlist)
        return real_import(name, globals, locals, fromlist, level)

    def hooked_module(name, package=None):
        note(name, sys._getframe(1).f_globals, 0)
        return real_import_module(name, package)

    builtins.__import__, importlib.import_module = hooked, hooked_module
    for module in sys.argv[1:]:
        real_import_module(module)
    modules = set(sys.modules)
    print(json.dumps({
        m: {"third": sorted(v["third"]), "project": sorted(p for p in v["project"] if p in modules)}
        for m, v in own.items()
    }))
    """
)


def contracts() -> dict[str, tuple[Path, set[str]]]:
    found: dict[str, tuple[Path, set[str]]] = {}
    for page in PAGES:
        for module, imports in CONTRACT.findall(page.read_text()):
            assert module not in found, f"{module} has a contract on two pages"
            found[module] = (page, {n.strip() for n in (imports or "").split(",") if n.strip()})
    return found


def all_modules() -> list[str]:
    out = []
    for path in sorted((ROOT / "reference").rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        if "__pycache__" in rel.parts or rel.name == "__main__":
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out.append(".".join(parts))
    return out


def _pulled_in(modules: list[str]) -> dict[str, set[str]]:
    """For each module: the third-party packages that importing it pulls in through reference/
    code, measured in one fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, f"importing the modules failed:\n{proc.stderr[-3000:]}"
    own = json.loads(proc.stdout.strip().splitlines()[-1])

    def closure(module: str, seen: set[str]) -> set[str]:
        if module in seen:
            return set()
        seen.add(module)
        entry = own.get(module, {"third": [], "project": []})
        out = set(entry["third"])
        # importing reference.a.b runs reference/__init__ and reference/a/__init__ first
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        for dep in entry["project"] + parents:
            out |= closure(dep, seen)
        return out

    return {m: closure(m, set()) for m in modules}


def test_every_module_has_a_contract_and_an_api_section():
    declared = contracts()
    documented = {m for p in PAGES for m in AUTOMODULE.findall(p.read_text())}
    missing = [m for m in all_modules() if m != "reference" and m not in declared]
    assert not missing, f"no {{module-contract}} on any docs/modules page for: {missing}"
    no_api = [m for m in all_modules() if m != "reference" and m not in documented]
    assert not no_api, f"no `.. automodule::` on any docs/modules page for: {no_api}"
    stale = sorted(set(declared) - set(all_modules()))
    assert not stale, f"contracts for modules that no longer exist: {stale}"


def test_each_module_pulls_in_only_what_its_page_declares():
    declared = contracts()
    assert declared, "no module contracts found under docs/modules/"
    actual = _pulled_in(sorted(declared))
    wrong = []
    for module, (page, want) in declared.items():
        got = actual[module]
        if got != want:
            extra, unused = sorted(got - want), sorted(want - got)
            wrong.append(
                f"{module} ({page.relative_to(ROOT)}): pulls in {sorted(got) or 'nothing'}"
                + (f"; not declared: {extra}" if extra else "")
                + (f"; declared but not imported: {unused}" if unused else "")
            )
    assert not wrong, "module pages out of step with the code:\n" + "\n".join(wrong)


def _examples() -> list[tuple[Path, str]]:
    out = []
    for page in PAGES:
        for section in EXAMPLE.findall(page.read_text()):
            code = "\n".join(PY_BLOCK.findall(section))
            if code.strip():
                out.append((page, code))
    return out


EXAMPLES = _examples()


def test_every_module_page_has_an_example():
    with_example = {page for page, _ in EXAMPLES}
    missing = [p.name for p in PAGES if p.name != "index.md" and p not in with_example]
    assert not missing, f"module pages without a runnable '## Example': {missing}"


@pytest.mark.parametrize("page,code", EXAMPLES, ids=[p.stem for p, _ in EXAMPLES])
def test_module_page_example_runs(page, code, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MLOPS_LAB_WORKSPACE": str(tmp_path / "ws")},
    )
    assert proc.returncode == 0, (
        f"the example on {page.relative_to(ROOT)} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
    )
