"""The doctor on this machine: real checks, a tool hidden from PATH, the disk, pinned versions."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from reference import doctor


def by_name(findings: list[doctor.Finding]) -> dict[str, doctor.Finding]:
    return {f.name: f for f in findings}


def test_real_checks_pass_on_this_machine(tmp_path: Path) -> None:
    start = time.perf_counter()
    findings = doctor.check_all(tmp_path)
    assert time.perf_counter() - start < 2.0  # no heavy imports, commands run concurrently
    found = by_name(findings)
    for name in ("python", "git", "dvc CLI", "mlflow", "scikit-learn", "torch", "disk space"):
        assert found[name].required and found[name].ok, found[name]
        assert found[name].found and not found[name].fix
    assert found["git"].found.startswith("git version")
    assert "dvc" in found["dvc CLI"].found  # the path of the dvc it used
    assert doctor.exit_code(findings) == 0
    assert {n for n, f in found.items() if not f.required} >= set(doctor.OPTIONAL_TOOLS)


def test_a_tool_missing_from_path_is_reported_with_a_fix(tmp_path, monkeypatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    found = by_name(doctor.check_all(tmp_path))
    kind = found["kind"]
    assert not kind.ok and not kind.required and kind.status == "optional: missing"
    assert "sigs.k8s.io/kind" in kind.fix and "cluster" in kind.fix
    assert "prometheus" in found["promtool"].fix
    assert not found["git"].ok and found["git"].status == "MISSING" and found["git"].fix
    # git is gone, so the exit code fails; without it only optional tools fail, and they never do
    assert doctor.exit_code(list(found.values())) == 1
    rest = [f for f in found.values() if f.name != "git"]
    assert [f for f in rest if not f.ok] and all(f.ok for f in rest if f.required)
    assert doctor.exit_code(rest) == 0


def test_disk_check_on_a_workspace_that_does_not_exist_yet(tmp_path: Path) -> None:
    ws = tmp_path / "not" / "yet" / "there"
    finding = doctor.check_disk(ws)
    assert finding.ok and "GiB free" in finding.found and str(tmp_path) in finding.found
    assert not ws.exists()  # a check, not a setup step
    short = doctor.check_disk(ws, min_free_gib=1e9)
    assert not short.ok and short.required and "MLOPS_LAB_WORKSPACE" in short.fix
    assert doctor.exit_code([short]) == 1


def test_a_version_that_differs_from_the_pin_warns(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\nmlflow==0.0.1\nscikit_learn==0.0.2  # odd spelling\n")
    found = by_name(doctor.check_all(tmp_path, constraints=constraints))
    pin = found["mlflow pin"]
    assert not pin.ok and not pin.required and pin.status == "warn"
    assert "pinned 0.0.1" in pin.found and "make setup" in pin.fix
    assert "pinned 0.0.2" in found["scikit-learn pin"].found
    assert found["mlflow"].ok  # installed and importable: a warning, not a failure
    assert doctor.exit_code(list(found.values())) == 0


def test_the_repo_pins_match_this_venv() -> None:
    findings = doctor.check_all(Path.cwd(), constraints=doctor.CONSTRAINTS)
    assert not [f for f in findings if f.name.endswith(" pin")]


def test_render_has_one_row_per_finding(tmp_path: Path, capsys) -> None:
    findings = doctor.check_all(tmp_path)
    table = doctor.render(findings)
    assert isinstance(table, Table) and table.row_count == len(findings)
    assert [c.header for c in table.columns] == ["check", "status", "found", "how to fix"]
    assert doctor.main(tmp_path) == 0
    assert "all required checks passed" in capsys.readouterr().out


def test_a_hanging_tool_times_out(tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kind = bin_dir / "kind"
    kind.write_text("#!/bin/sh\nexec sleep 30\n")
    kind.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(doctor, "TIMEOUT_S", 0.5)
    start = time.perf_counter()
    found = by_name(doctor.check_all(tmp_path))
    assert time.perf_counter() - start < 5
    assert not found["kind"].ok and found["kind"].status == "warn"
    assert "no answer within 0.5 s" in found["kind"].found and "sigs.k8s.io" in found["kind"].fix
