"""The lock refresh (tools/lock.py): constraints.txt from a freeze, environment.yml from the lock.

Resolving afresh (`make lock`) needs pip and minutes; these test what it writes, on the real files.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))  # the tools import their sibling deps.py
lock = importlib.import_module("lock")
deps = importlib.import_module("deps")

CONSTRAINTS = (ROOT / "requirements/constraints.txt").read_text()
ENVIRONMENT = (ROOT / "environment.yml").read_text()


def test_environment_yml_regenerates_byte_for_byte_from_the_current_lock():
    assert lock.environment_text(ENVIRONMENT, CONSTRAINTS, deps.declared()) == ENVIRONMENT


def test_a_new_pin_in_the_lock_lands_in_environment_yml_and_nothing_else_moves():
    bumped = CONSTRAINTS.replace("\nnumpy==2.4.6\n", "\nnumpy==2.5.0\n")
    assert bumped != CONSTRAINTS
    new = lock.environment_text(ENVIRONMENT, bumped, deps.declared())
    changed = [
        (a, b) for a, b in zip(ENVIRONMENT.splitlines(), new.splitlines(), strict=True) if a != b
    ]
    assert changed == [("      - numpy==2.4.6", "      - numpy==2.5.0")]


def test_a_declared_dependency_missing_from_the_lock_is_an_error():
    without_rich = "".join(
        line for line in CONSTRAINTS.splitlines(keepends=True) if not line.startswith("rich==")
    )
    with pytest.raises(ValueError, match="declared but not in the lock: rich"):
        lock.environment_text(ENVIRONMENT, without_rich, deps.declared())


def test_a_new_declared_dependency_is_added_in_declared_order_before_the_options():
    declared = [*deps.declared(), deps.Declared("Jinja2", "", ">=3", "dev")]
    new = lock.environment_text(ENVIRONMENT, CONSTRAINTS, declared)
    tail = new.splitlines()[-4:]
    last = deps.declared()[-1]  # the last declared dependency (with its extras), then the new one
    assert tail[0].startswith(f"      - {last.name}{last.extras}==")
    assert tail[1:] == [
        "      - Jinja2==3.1.6",
        "      - --constraint requirements/constraints.txt",
        "      - --editable .",
    ]


def test_the_lock_is_a_freeze_without_the_project_and_without_torch_s_build_tag():
    header = lock.lock_header(CONSTRAINTS)
    assert header.startswith("# The pinned set") and header.endswith("(make lock).\n")
    freeze = (
        "# Editable install with no version control (mlops-lab==0.1.0)\n"
        "-e /somewhere/mlops-lab\n"
        "Jinja2==3.1.6\nnumpy==2.5.0\ntorch==2.13.0+cpu\ntorchvision==0.29.1+cpu\n"
    )
    text = lock.lock_text(freeze, header, "mlops-lab")
    assert text == header + "Jinja2==3.1.6\nnumpy==2.5.0\ntorch==2.13.0\ntorchvision==0.29.1+cpu\n"


def test_the_committed_lock_is_what_lock_text_writes_for_it():
    # the committed file is in the generator's form already: a refresh diffs only real moves
    header = lock.lock_header(CONSTRAINTS)
    assert lock.lock_text(CONSTRAINTS, header, "mlops-lab") == CONSTRAINTS


def test_check_mode_passes_on_the_repository():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools/lock.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
