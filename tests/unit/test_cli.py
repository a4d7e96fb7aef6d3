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
    "gate-report",
    "assess",
    "lab",
    "loop",
    "timeline",
    "rollback",
    "deploy",
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


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["loop", "--scenario", "chaos"],
            "unknown scenario 'chaos'; one of: natural, bad-challenger",
        ),
        (["timeline"], "no Level 2 run in"),
        (["rollback", "model"], "there is no champion to roll back"),
    ],
    ids=["unknown-scenario", "timeline-before-a-run", "rollback-without-champion"],
)
def test_level2_mistakes_are_messages_not_tracebacks(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("MLOPS_LAB_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (1, 2), result.output
    assert message in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_rollback_lists_the_three_kinds():
    result = CliRunner().invoke(app, ["rollback", "--help"])
    assert result.exit_code == 0
    for kind in ("model", "data", "both"):
        assert kind in result.output
