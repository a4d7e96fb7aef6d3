"""The churn canary (tools/churn.py): the report builder on a small junit XML and freeze.

The full run (build .venv-latest, run everything) is `make test-latest`; these test its parts.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))  # the tools import their sibling deps.py
churn = importlib.import_module("churn")
deps = importlib.import_module("deps")

LOCK = """\
# a header
evidently==0.7.23
foo==1.0
Jinja2==3.1.6
numpy==2.4.6
torch==2.13.0
"""
FREEZE = """\
bar==2.0
# Editable install with no version control (mlops-lab==0.1.0)
-e /somewhere/mlops-lab
evidently==0.8.1
jinja2==3.1.6
numpy==2.5.0
torch==2.13.0+cpu
"""
JUNIT = """\
<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="4" skipped="1"
 tests="9" time="12.5">
<testcase classname="tests.unit.test_a" name="test_ok" file="tests/unit/test_a.py" line="1"
 time="0.1" />
<testcase classname="tests.unit.test_a" name="test_skip" file="tests/unit/test_a.py" line="5"
 time="0.0"><skipped type="pytest.skip" message="shellcheck not installed">skip</skipped></testcase>
<testcase classname="tests.unit.test_a.TestGroup" name="test_assert" file="tests/unit/test_a.py"
 line="9" time="0.1"><failure message="AssertionError: nope&#10;assert 1 == 2">def test():
&gt;       assert 1 == 2, 'nope'
E       AssertionError: nope
E       assert 1 == 2

tests/unit/test_a.py:9: AssertionError</failure></testcase>
<testcase classname="tests.integration.test_b" name="test_pipeline" file="tests/integration/test_b.py"
 line="3" time="2.0"><error message="failed on setup with &quot;ImportError: cannot import name 'Report' from 'evidently'&quot;">
E   ImportError: cannot import name 'Report' from 'evidently'</error></testcase>
<testcase classname="labs.01_lab.ipynb" name="Cell 0" file="labs/01_lab.ipynb" line="0" time="1.0" />
<testcase classname="labs.01_lab.ipynb" name="Cell 3" file="labs/01_lab.ipynb" line="0" time="0.5"><failure message="#x1B[91mNotebook cell execution failed#x1B[0m">#x1B[91mNotebook cell execution failed#x1B[0m
#x1B[94mCell 3: Cell execution caused an exception

Input:
#x1B[0mfrom evidently.report import Report

#x1B[94mTraceback:#x1B[0m
#x1B[31mModuleNotFoundError#x1B[39m                       Traceback (most recent call last)
#x1B[32m----&gt; #x1B[39m#x1B[32m1#x1B[39m from evidently.report import Report

#x1B[31mModuleNotFoundError#x1B[39m: No module named 'evidently.report'
</failure></testcase>
<testcase classname="labs.01_lab.ipynb" name="Cell 4" file="labs/01_lab.ipynb" line="0" time="0.5"><failure message="#x1B[91mNotebook cell execution failed#x1B[0m">#x1B[94mCell 4: Cell execution caused an exception
#x1B[31mNameError#x1B[39m: name 'Report' is not defined
</failure></testcase>
<testcase classname="labs.02_lab.ipynb" name="Cell 7" file="labs/02_lab.ipynb" line="0" time="0.1"><failure message="#x1B[91mNotebook cell execution failed#x1B[0m">#x1B[91mNotebook cell execution failed#x1B[0m
#x1B[94mCell 7: Cell outputs differ

Input:
#x1B[0m# NBVAL_CHECK_OUTPUT
print(2)

#x1B[94mTraceback:#x1B[0m
#x1B[94m mismatch 'stdout'#x1B[91m

 assert reference_output == test_output failed:
</failure></testcase>
<testcase classname="labs.02_lab.ipynb" name="Cell 8" file="labs/02_lab.ipynb" line="0" time="0.1" />
</testsuite></testsuites>
"""


def test_pins_parse_skipping_comments_editables_and_the_project():
    pins = deps.parse_pins(FREEZE + "mlops-lab==0.1.0\nx @ file:///tmp/x.whl\n", skip=["mlops_lab"])
    assert pins == {
        "bar": ("bar", "2.0"),
        "evidently": ("evidently", "0.8.1"),
        "jinja2": ("jinja2", "3.1.6"),
        "numpy": ("numpy", "2.5.0"),
        "torch": ("torch", "2.13.0+cpu"),
    }


def test_what_moved_is_the_diff_of_lock_and_freeze():
    declared = [
        deps.Declared("numpy", "", ">=1.26,<3", "main"),
        deps.Declared("evidently", "", ">=0.7", "main"),
        deps.Declared("torch", "", "==2.13.0", "main"),
    ]
    moved = churn.diff_pins(deps.parse_pins(LOCK), deps.parse_pins(FREEZE), declared)
    # declared first; torch's +cpu and Jinja2's spelling are not moves
    assert [(m.name, m.locked, m.latest, m.declared, m.bump) for m in moved] == [
        ("evidently", "0.7.23", "0.8.1", ">=0.7", "minor"),
        ("numpy", "2.4.6", "2.5.0", ">=1.26,<3", "minor"),
        ("bar", None, "2.0", "", "new"),
        ("foo", "1.0", None, "", "gone"),
    ]


@pytest.mark.parametrize(
    ("old", "new", "bump"),
    [("1.2.3", "2.0.0", "major"), ("1.2.3", "1.2.4", "patch"), ("1.2.3", "1.2.3.1", "patch"),
     ("1.2.3", "1.1.9", "older"), ("1.0rc1", "1.0", "build")],
)  # fmt: skip
def test_bump_levels(old, new, bump):
    assert churn._bump(old, new) == bump


def test_junit_gives_counts_and_the_first_error_of_each_broken_case(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    counts, broken = churn.parse_junit(junit)
    assert (counts.total, counts.passed, counts.failed, counts.errors, counts.skipped) == (
        9,
        3,
        4,
        1,
        1,
    )
    assert [(b.nodeid, b.kind, b.outcome, b.error) for b in broken] == [
        ("tests/unit/test_a.py::TestGroup::test_assert", "test", "failed", "AssertionError: nope"),
        (
            "tests/integration/test_b.py::test_pipeline",
            "test",
            "error",
            "ImportError: cannot import name 'Report' from 'evidently'",
        ),
        (
            "labs/01_lab.ipynb::Cell 3",
            "lab",
            "failed",
            "ModuleNotFoundError: No module named 'evidently.report'",
        ),
        ("labs/01_lab.ipynb::Cell 4", "lab", "failed", "NameError: name 'Report' is not defined"),
        ("labs/02_lab.ipynb::Cell 7", "lab", "failed", "Cell 7: Cell outputs differ (mismatch 'stdout')"),
    ]  # fmt: skip


def test_the_report_says_what_moved_and_what_broke(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    timings = {"install": 125.0, "tests": 240.0}
    report = churn.build_report(tmp_path, LOCK, FREEZE, True, 1, timings, python="3.11.7")
    assert not report.ok
    assert [m.name for m in report.moved if m.direct] == ["evidently", "numpy"]  # the real ranges
    churn.write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "**2 test(s) and 2 lab(s) broke.** 3 passed, 4 failed, 1 errors, 1 skipped, of 9" in md
    assert "4 package(s) moved, 2 of them declared in pyproject.toml" in md
    assert "| evidently | `>=0.7,<0.8` | 0.7.23 | 0.8.1 | minor |" in md
    assert (
        "| `labs/01_lab.ipynb` | 2 | Cell 3 | ModuleNotFoundError: No module named 'evidently.report' |"
        in md
    )
    assert (
        "| `tests/unit/test_a.py::TestGroup::test_assert` | failed | AssertionError: nope |" in md
    )
    assert "install 2.1 min, tests and labs 4.0 min" in md
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["ok"] is False and data["counts"]["failed"] == 4
    assert {"name": "bar", "locked": None, "latest": "2.0", "declared": "", "bump": "new"} in data[
        "moved"
    ]


def test_a_green_run_reports_nothing_broke(tmp_path):
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite tests="1" failures="0" errors="0" skipped="0">'
        '<testcase classname="t" name="test_ok" file="t.py" /></testsuite></testsuites>'
    )
    report = churn.build_report(tmp_path, LOCK, LOCK, True, 0, {})
    assert report.ok and report.moved == []
    md = churn.render_markdown(report)
    assert "**Nothing broke.** 1 passed" in md
    assert "Nothing: the newest releases are the locked ones." in md


def test_a_failed_install_is_the_finding(tmp_path):
    (tmp_path / "install.log").write_text("ERROR: ResolutionImpossible: evidently>=0.7,<0.8 ...\n")
    report = churn.build_report(tmp_path, LOCK, None, False, None, {"install": 30.0})
    md = churn.render_markdown(report)
    assert not report.ok
    assert "**The environment did not build**" in md and "ResolutionImpossible" in md


def test_a_crashed_pytest_is_not_reported_as_green(tmp_path):
    (tmp_path / "pytest.log").write_text("INTERNALERROR> boom\n")
    report = churn.build_report(tmp_path, LOCK, LOCK, True, 3, {})
    assert not report.ok
    assert "pytest exited 3" in churn.render_markdown(report)


def test_the_command_line(tmp_path):
    run = [sys.executable, str(ROOT / "tools/churn.py")]
    help_ = subprocess.run([*run, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--strict" in help_ and "--reuse" in help_ and "--report-only" in help_
    refused = subprocess.run([*run, "--venv", str(ROOT / ".venv")], capture_output=True, text=True)
    assert refused.returncode == 2 and "never touches .venv" in refused.stderr
    # --report-only rebuilds the report from a recorded run; --strict turns a break into exit 1
    (tmp_path / "junit.xml").write_text(JUNIT)
    (tmp_path / "freeze.txt").write_text(FREEZE)
    (tmp_path / "run.json").write_text(
        json.dumps({"install_ok": True, "pytest_exit": 1, "timings": {"tests": 3.0}})
    )
    report_only = [*run, "--report-only", "--out", str(tmp_path), "--venv", str(tmp_path / "v")]
    assert subprocess.run(report_only, capture_output=True).returncode == 0
    assert (tmp_path / "report.md").exists() and (tmp_path / "report.json").exists()
    assert subprocess.run([*report_only, "--strict"], capture_output=True).returncode == 1


def test_churn_workflow_is_scheduled_and_never_gates_a_merge():
    churn_yml = yaml.safe_load((ROOT / ".github/workflows/churn.yml").read_text())
    on = churn_yml.get(True, churn_yml.get("on"))  # YAML 1.1 reads `on:` as True
    assert set(on) == {"schedule", "workflow_dispatch"}  # never on push or pull_request
    assert on["schedule"][0]["cron"]
    (job,) = churn_yml["jobs"].values()
    assert any("make test-latest" in step.get("run", "") for step in job["steps"])
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-"))
    assert upload["with"]["path"].rstrip("/") == "reports/churn"
    assert "cancelled()" in upload["if"]  # uploaded when the tests broke, too


def test_make_test_latest_calls_the_tool_and_never_names_dot_venv():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest-latest:")[1].split("\n\n")[0]
    assert "tools/churn.py" in recipe and "$(BIN)" not in recipe and ".venv/" not in recipe
    assert "/.venv-latest/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "/reports/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(
    ("spec", "newest", "cap"),
    [(">=2.2,<3", "3.1.1", "<3"), (">=3.5,<4", "3.18.0", None), ("==2.13.0", "2.15.0", "==2.13.0"),
     (">=0.7,<0.8", "0.8.0", "<0.8"), ("~=1.4", "1.9", None), ("~=1.4", "2.0", "~=1.4"),
     ("<=2", "2.0.1", "<=2"), (">=15", "26.0.1", None), ("==0.0.*", "0.1.0", "==0.0.*")],
)  # fmt: skip
def test_which_clause_of_a_range_caps_a_newer_release(spec, newest, cap):
    assert churn.capped_by(spec, newest) == cap


CONFLICT = """\
INFO: pip is looking at multiple versions of mlflow to determine which version is compatible.
ERROR: Cannot install mlflow==3.17.2, mlops-lab and pyarrow==26.0.1 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested pyarrow==26.0.1
    mlops-lab 0.1.0 depends on pyarrow>=15
    mlflow 3.17.2 depends on pyarrow<26 and >=4.0.0
    mlflow 3.17.1 depends on pyarrow<26 and >=4.0.0

To fix this you could try to:
ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/
"""
MISSING = """\
ERROR: Ignored the following yanked versions: 2.12.0, 3.1.2
ERROR: Could not find a version that satisfies the requirement mlflow-skinny==3.18.0 (from mlflow) (from versions: 1.14.0, 3.17.2)
ERROR: No matching distribution found for mlflow-skinny==3.18.0 (from mlflow)
"""


def test_pip_s_refusal_is_read_down_to_its_reason():
    assert churn.pip_refusal(CONFLICT) == (
        "mlflow 3.17.2 depends on pyarrow<26 and >=4.0.0; mlflow 3.17.1 depends on pyarrow<26 and >=4.0.0"
    )
    assert churn.pip_refusal(MISSING) == (
        "No matching distribution found for mlflow-skinny==3.18.0 (from mlflow)"
    )
    assert churn.pip_refusal("ERROR: Something else (from versions: 1, 2)\n") == "Something else"


def test_held_back_releases_are_reported(tmp_path):
    (tmp_path / "junit.xml").write_text(
        '<testsuite tests="1" failures="0" errors="0" skipped="0">'
        '<testcase classname="t" name="test_ok" file="t.py" /></testsuite>'
    )
    held = [
        churn.Held("pandas", ">=2.2,<3", "2.3.3", "3.1.1", "the range caps it (<3)"),
        churn.Held("mlflow", ">=3.5,<4", "3.17.2", "3.18.0", "the resolver held it back: x | y"),
    ]
    (tmp_path / "held.json").write_text(json.dumps([churn.asdict(h) for h in held]))
    report = churn.build_report(tmp_path, LOCK, LOCK, True, 0, {})
    assert report.ok and report.held == held  # held back is a decision to revisit, not a break
    md = churn.render_markdown(report)
    assert "2 newer release(s) of declared dependencies were not tested" in md
    assert "| pandas | `>=2.2,<3` | 2.3.3 | 3.1.1 | the range caps it (<3) |" in md
    assert "the resolver held it back: x \\| y |" in md
