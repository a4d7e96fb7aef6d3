"""Shell scripts pass shellcheck (skipped, naming the tool, where shellcheck is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([ROOT / ".ci/run", *ROOT.glob("**/*.sh")], key=str)
# not the environments' own scripts: .venv, and .venv-latest from `make test-latest`
SCRIPTS = [
    p
    for p in SCRIPTS
    if not any(part.startswith(".venv") for part in p.parts) and "workspace" not in p.parts
]


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck not installed (apt-get install shellcheck)",
)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(script):
    proc = subprocess.run(["shellcheck", "-x", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
