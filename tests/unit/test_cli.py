"""The CLI: --help everywhere, and a learner's mistakes get a message, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from reference.cli import app

COMMANDS = [
    "ingest",
    "validate",
    "transform",
    "train",
    "evaluate",
    "register",
    "gate",
    "init",
    "pipeline",
    "status",
    "level0",
    "demo",
    "ui",
    "doctor",
    "serve",
    "predict",
    "watch",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output) > 200


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_a_bad_override_is_a_message_not_a_traceback(tmp_path):
    env = {
        "MLOPS_LAB_WORKSPACE": str(tmp_path / "ws"),
        "PATH": "/usr/bin:/bin",
        "DVC_NO_ANALYTICS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "reference", "pipeline", "--set", "train.epoch=3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown key(s) ['epoch'] in params.train" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_init_creates_a_git_and_dvc_project(tmp_path):
    result = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "init"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "ws" / "project"
    for name in (".git", ".dvc", "dvc.yaml", "params.yaml"):
        assert (project / name).exists(), name
    log = subprocess.run(
        ["git", "log", "--oneline"], cwd=project, capture_output=True, text=True
    ).stdout
    assert "pipeline definition" in log
    again = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "init"])  # idempotent
    assert again.exit_code == 0
