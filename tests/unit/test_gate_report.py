"""`mlops-lab gate-report` and the model's CI workflow that calls it (lab 04)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from reference.cli import app
from reference.gate import markdown

ROOT = Path(__file__).resolve().parents[2]
REJECT = {
    "promote": False,
    "decision": "reject",
    "candidate_version": "2",
    "champion_version": "1",
    "rules": [
        {"name": "auc_over_baseline", "value": 0.66, "threshold": 0.7057, "op": ">=", "verdict": "fail", "detail": "best baseline logistic_regression AUC 0.7007 + margin 0.005"},
        {"name": "auc_vs_champion", "value": None, "threshold": None, "op": ">=", "verdict": "n/a", "detail": ""},
    ],
}  # fmt: skip


def test_markdown_has_the_decision_and_one_row_per_rule():
    text = markdown(REJECT)
    assert text.startswith("### Gate: v2 (challenger) vs v1: **REJECT**")
    rows = [line for line in text.splitlines() if line.startswith("| auc")]
    assert (
        rows[0]
        == "| auc_over_baseline | 0.6600 | >= 0.7057 | fail | best baseline logistic_regression AUC 0.7007 + margin 0.005 |"
    )
    assert rows[1] == "| auc_vs_champion | - | - | n/a |  |"


def _workspace(tmp_path: Path, result: dict) -> Path:
    (tmp_path / "project/reports").mkdir(parents=True)
    (tmp_path / "project/reports/gate.json").write_text(json.dumps(result))
    return tmp_path


def test_strict_fails_exactly_on_a_reject(tmp_path):
    ws = _workspace(tmp_path / "a", REJECT)
    assert CliRunner().invoke(app, ["--workspace", str(ws), "gate-report"]).exit_code == 0
    strict = CliRunner().invoke(app, ["--workspace", str(ws), "gate-report", "--strict"])
    assert strict.exit_code == 1 and "**REJECT**" in strict.output
    ws = _workspace(tmp_path / "b", {**REJECT, "promote": True, "decision": "promote"})
    assert (
        CliRunner().invoke(app, ["--workspace", str(ws), "gate-report", "--strict"]).exit_code == 0
    )


def test_no_decision_yet_is_a_message(tmp_path):
    result = CliRunner().invoke(app, ["--workspace", str(tmp_path), "gate-report"])
    assert result.exit_code == 1
    assert "no gate decision yet" in result.output and "mlops-lab pipeline" in result.output


def test_the_model_workflow_gates_pull_requests_that_change_how_the_model_is_made():
    workflow = yaml.safe_load((ROOT / ".github/workflows/model.yml").read_text())
    paths = workflow[True]["pull_request"]["paths"]  # YAML 1.1 reads `on` as True
    assert "reference/project/params.yaml" in paths and "reference/project/dvc.yaml" in paths
    runs = "\n".join(s.get("run", "") for s in workflow["jobs"]["gate"]["steps"])
    # the champion from the base branch, the challenger from the pull request, then the gate
    assert 'git show "origin/$BASE_REF:reference/project/params.yaml"' in runs
    assert (
        runs.index("git show")
        < runs.index("cp reference/project/params.yaml")
        < runs.index("gate-report --strict")
    )
    assert workflow["permissions"] == {"contents": "read"}
