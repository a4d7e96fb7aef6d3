"""Refresh the lock: requirements/constraints.txt and environment.yml from pyproject.toml's ranges.

The lock is what every `make setup` installs. Refreshing it takes the newest releases that the
declared ranges allow, so do it on purpose, after the churn canary (``make test-latest``) says
they break nothing, and review the diff like any other change:

    make lock                                      # resolve afresh in a throwaway venv, write both
    python3 tools/lock.py --from-venv .venv-latest # reuse the canary's environment instead
    python3 tools/lock.py --env-only               # only environment.yml, from the current lock
    python3 tools/lock.py --check                  # exit 1 if environment.yml is out of step

constraints.txt is ``pip freeze`` of the resolved environment, without the project itself and
with torch's local build tag (``+cpu``) stripped, so one pin takes the CPU or the CUDA build; its
header comment is kept. environment.yml keeps its layout, with the pip section's pins replaced by
the declared dependencies, in declared order, at their locked versions.
tests/unit/test_pins.py checks that the two agree.

Standard library only (plus tools/deps.py), so it runs with any Python 3.11+.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from deps import (
    ENVIRONMENT,
    LOCK,
    PYPROJECT,
    ROOT,
    Declared,
    build_unlocked,
    declared,
    freeze,
    parse_pins,
    project_name,
    strip_local,
)

# Packages whose local build tag is machine-specific: one pin must take any build.
STRIP_LOCAL = {"torch"}
_PIP_ITEM = re.compile(r"^(\s*)- (.*)$")


def lock_text(freeze_text: str, header: str, project: str) -> str:
    """The constraints file for a ``pip freeze``: ``header``, then one ``name==version`` a line,
    in freeze's order, without ``project`` and without the local tag of STRIP_LOCAL packages."""
    lines = []
    for key, (name, version) in parse_pins(freeze_text, skip=[project]).items():
        lines.append(f"{name}=={strip_local(version) if key in STRIP_LOCAL else version}")
    return header + "".join(f"{line}\n" for line in lines)


def lock_header(text: str) -> str:
    """The leading comment block of a constraints file."""
    header = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        header.append(line)
    return "".join(header)


def environment_text(current: str, lock: str, deps: Sequence[Declared]) -> str:
    """environment.yml with its pip pins regenerated from ``lock``; everything else kept.

    The pins are the declared dependencies (``deps``), in declared order, as
    ``name[extras]==locked version``; pip options in the section (``--constraint``,
    ``--editable``) stay where they are, after the pins.
    """
    pins = parse_pins(lock)
    missing = [d.name for d in deps if d.key not in pins]
    if missing:
        raise ValueError(f"declared but not in the lock: {', '.join(missing)}")
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == "- pip:"), None)
    if start is None:
        raise ValueError("environment.yml has no '- pip:' section to fill")
    end = start + 1
    indent = None
    while end < len(lines):
        match = _PIP_ITEM.match(lines[end])
        if not match or (indent is not None and match.group(1) != indent):
            break
        indent = match.group(1)
        end += 1
    indent = indent if indent is not None else " " * 6
    items = [_PIP_ITEM.match(line).group(2) for line in lines[start + 1 : end]]
    options = [item for item in items if item.startswith("-")]
    new = [f"{d.name}{d.extras}=={pins[d.key][1]}" for d in deps] + options
    return "".join(lines[: start + 1] + [f"{indent}- {item}\n" for item in new] + lines[end:])


def _diff(old: str, new: str, name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name, name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/lock.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter that creates the throwaway venv"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--from-venv",
        type=Path,
        metavar="VENV",
        help="freeze this environment (built without the lock) instead of building one",
    )
    mode.add_argument(
        "--env-only", action="store_true", help="only regenerate environment.yml from the lock"
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if environment.yml differs from what the lock gives",
    )
    args = parser.parse_args(argv)
    deps = declared(PYPROJECT)
    old_lock = LOCK.read_text()

    if args.env_only or args.check:
        lock = old_lock
    else:
        if args.from_venv:
            frozen = freeze(args.from_venv.absolute())
        else:
            with tempfile.TemporaryDirectory(prefix="lock-") as tmp:
                log = Path(tmp) / "install.log"
                print("lock: resolving pyproject.toml's ranges in a throwaway venv ...")
                try:
                    build_unlocked(Path(tmp) / "venv", args.python, log)
                except Exception:
                    print(log.read_text()[-3000:], file=sys.stderr)
                    raise
                frozen = freeze(Path(tmp) / "venv")
        lock = lock_text(frozen, lock_header(old_lock), project_name(PYPROJECT))

    old_env = ENVIRONMENT.read_text()
    env = environment_text(old_env, lock, deps)
    if args.check:
        if env != old_env:
            print(_diff(old_env, env, "environment.yml"), end="")
            print(
                "lock: environment.yml is out of step with the lock: run tools/lock.py --env-only"
            )
            return 1
        return 0
    if lock != old_lock:
        LOCK.write_text(lock)
    if env != old_env:
        ENVIRONMENT.write_text(env)
    old, new = parse_pins(old_lock), parse_pins(lock)
    changed = sum(
        old.get(k, ("", ""))[1] != new.get(k, ("", ""))[1] for k in old.keys() | new.keys()
    )
    print(
        f"lock: {LOCK.relative_to(ROOT)} ({'unchanged' if lock == old_lock else 'rewritten'}), "
        f"{ENVIRONMENT.relative_to(ROOT)} ({'unchanged' if env == old_env else 'rewritten'}); "
        f"{changed} pin(s) changed. Next: make test, then review `git diff` and commit."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
