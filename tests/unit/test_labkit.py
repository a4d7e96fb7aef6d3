"""The lab kit: cards and maps, self-checks, exercises with solutions, checkpoints, and the shape
every lab in labs/ must have."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from reference.labkit import meta, toolmap
from reference.labkit.checkpoint import BUILDERS, fresh_workspace, repo_root, start
from reference.labkit.selfcheck import (
    SOLUTIONS_ENV,
    SelfCheckFailed,
    expect,
    run_exercise,
)

ROOT = Path(__file__).resolve().parents[2]
LABS = meta.all_labs(ROOT / "labs")

CARD = """# Lab 05: Serving

```yaml
lab: "05"
title: Serving with KServe
phase: 2
days: [41, 50]
goal: serve it
builds_on: "HTTP services: probes, status codes"
new: two protocols
minutes: {teaching: 40, exercises: 30}
modules: [serve]
checkpoint: champion
```
"""


def notebook(path: Path, first_cell: str, code: list[str] | None = None) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": first_cell}]
    cells += [
        {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
        for c in code or []
    ]
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    return path


def cells(card: meta.LabMeta) -> list[dict]:
    return json.loads(card.path.read_text())["cells"]


def code_of(card: meta.LabMeta) -> list[str]:
    return ["".join(c["source"]) for c in cells(card) if c["cell_type"] == "code"]


# ---- cards -------------------------------------------------------------------------------------
def test_a_card_parses_into_its_fields(tmp_path):
    card = meta.read(notebook(tmp_path / "05_serving.ipynb", CARD))
    assert (card.lab, card.phase, card.days, card.minutes) == ("05", 2, (41, 50), 70)
    assert card.builds_on == "HTTP services: probes, status codes"
    assert card.modules == ("serve",) and card.checkpoint == "champion"
    assert card.day_range == "days 41-50"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# Lab 05\n\nno card here", "has no ```yaml card"),
        (CARD.replace("goal: serve it\n", ""), "lacks goal"),
        (CARD.replace("checkpoint: champion", "checkpoint: magic"), "checkpoint 'magic'"),
        (CARD.replace('lab: "05"', 'lab: "06"'), "the card says lab '06'"),
    ],
)
def test_a_broken_card_says_what_is_wrong(tmp_path, text, message):
    with pytest.raises(meta.MetadataError, match=re.escape(message)):
        meta.read(notebook(tmp_path / "05_serving.ipynb", text))


def test_finding_a_lab_that_does_not_exist_names_the_labs_that_do(tmp_path):
    notebook(tmp_path / "05_serving.ipynb", CARD)
    assert meta.find(tmp_path, "5").title == "Serving with KServe"
    with pytest.raises(meta.MetadataError, match="no notebook is lab '42'; the labs are 05"):
        meta.find(tmp_path, "42")


def test_every_lab_on_disk_has_a_card_and_the_plan_covers_90_days_in_order():
    assert [m.lab for m in LABS] == sorted({m.lab for m in LABS}), "lab numbers must be unique"
    spans = sorted([m.days for m in LABS] + [tuple(p["days"]) for p in meta.PLANNED])
    assert spans[0][0] == 1 and spans[-1][1] == 90
    for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
        assert begin == end + 1, f"a gap or an overlap in the plan between day {end} and {begin}"
    bounds = {1: (1, 30), 2: (31, 60), 3: (61, 90)}
    for m in LABS:
        low, high = bounds[m.phase]
        assert low <= m.days[0] <= m.days[1] <= high, (
            f"lab {m.lab}'s days are outside phase {m.phase}"
        )
        assert 45 <= m.minutes <= 90, f"lab {m.lab} takes {m.minutes} minutes: aim at 45-90"


def test_the_labs_of_days_1_to_60_all_exist():
    assert [m.lab for m in LABS if m.days[1] <= 60] == ["00", "01", "02", "03", "04", "05", "06"]
    assert not [p for p in meta.PLANNED if p["days"][1] <= 60]


def test_every_module_a_card_names_exists():
    for m in LABS:
        for module in m.modules:
            found = (ROOT / "reference" / f"{module}.py").is_file() or (
                ROOT / "reference" / module
            ).is_dir()
            assert found, f"lab {m.lab} names module {module!r}, which reference/ lacks"


def test_a_planned_lab_has_no_notebook_yet():
    on_disk = {m.lab for m in LABS}
    assert not on_disk & {p["lab"] for p in meta.PLANNED}, (
        "a planned lab exists: drop it from PLANNED"
    )


# ---- maps --------------------------------------------------------------------------------------
def test_the_maps_are_in_step_with_the_cards():
    assert meta.sync_maps(ROOT) == [], "run `mlops-lab lab map --write`"


def _copy_pages(tmp_path: Path) -> Path:
    (tmp_path / "labs").mkdir()
    for m in LABS:
        shutil.copy(m.path, tmp_path / "labs" / m.path.name)
    shutil.copy(ROOT / "labs" / "README.md", tmp_path / "labs" / "README.md")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path


def test_a_lab_the_map_lacks_makes_the_maps_stale(tmp_path):
    root = _copy_pages(tmp_path)
    notebook(
        root / "labs" / "11_extra.ipynb",
        CARD.replace('"05"', '"11"')
        .replace("[41, 50]", "[89, 90]")
        .replace("phase: 2", "phase: 3"),
    )
    assert meta.sync_maps(root) == ["labs/README.md", "README.md"]
    meta.sync_maps(root, write=True)
    assert "11_extra.ipynb" in (root / "labs" / "README.md").read_text()
    assert meta.sync_maps(root) == []


def test_a_map_row_whose_lab_is_gone_makes_the_maps_stale(tmp_path):
    root = _copy_pages(tmp_path)
    (root / "labs" / LABS[-1].path.name).unlink()
    assert "README.md" in meta.sync_maps(root)


def test_a_page_without_markers_is_an_error():
    with pytest.raises(meta.MetadataError, match="markers"):
        meta.splice("no markers", "labs", "| table |")


def test_the_tool_map_has_every_row_of_the_source_guide_and_real_labs():
    devops = [r.devops for r in toolmap.ROWS]
    for tool in ("Git", "Artifactory", "Jenkins / GitHub Actions", "Docker registry", "Docker",
                 "Kubernetes", "Prometheus + Grafana", "Vault / K8s Secrets", "Terraform / Helm"):  # fmt: skip
        assert tool in devops
    known = {m.lab for m in LABS} | {p["lab"] for p in meta.PLANNED}
    assert all(set(r.labs) <= known for r in toolmap.ROWS)
    assert toolmap.lab_for("Model Registry") == ("03", "04")
    with pytest.raises(KeyError, match="no row"):
        toolmap.lab_for("Mainframe")


# ---- self-checks and exercises ----------------------------------------------------------------
def test_a_failed_self_check_renders_as_words_not_a_traceback():
    with pytest.raises(SelfCheckFailed) as info:
        expect(False, "the champion alias still points at v1", "read the gate's table above")
    lines = info.value._render_traceback_()  # what IPython prints instead of a traceback
    assert "the champion alias still points at v1" in lines[0]
    assert "read the gate's table above" in lines[1]
    assert not any("Traceback" in line for line in lines)


def test_a_passing_self_check_says_what_is_right(capsys):
    expect(True, "wrong", ok="the alias moved")
    assert capsys.readouterr().out == "ok: the alias moved\n"


def _solutions(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "05.py"
    path.write_text(body)
    return path


def test_an_exercise_not_tried_yet_says_where_the_solution_is(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(SOLUTIONS_ENV, raising=False)
    out = run_exercise(
        1, lambda lab: None, lambda a: "fine", None, tmp_path / "05.py", "labs/solutions/05.py"
    )
    assert out is None
    assert "not tried yet" in capsys.readouterr().out


def test_the_learners_answer_goes_through_the_check(tmp_path, capsys):
    def check(answer):
        expect(answer == 42, f"{answer} is not the answer", "count again")
        return "right"

    assert run_exercise(1, lambda lab: 42, check, None, tmp_path / "x.py", "x") == 42
    assert "your answer passes the check: right" in capsys.readouterr().out
    with pytest.raises(SelfCheckFailed, match="41 is not the answer"):
        run_exercise(1, lambda lab: 41, check, None, tmp_path / "x.py", "x")


def test_under_the_test_suite_the_solution_runs_through_the_same_check(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(SOLUTIONS_ENV, "1")
    good = _solutions(tmp_path, "def exercise_1(lab):\n    return lab * 2\n")
    assert run_exercise(1, lambda lab: None, lambda a: None, 21, good, "s.py") == 42
    assert "the solution in s.py passes" in capsys.readouterr().out

    def check(answer):
        expect(answer == 42, "a rotten solution")

    rotten = _solutions(tmp_path, "def exercise_1(lab):\n    return 41\n")
    with pytest.raises(SelfCheckFailed, match="a rotten solution"):
        run_exercise(1, lambda lab: None, check, None, rotten, "s.py")
    empty = _solutions(tmp_path, "def exercise_1(lab):\n    return None\n")
    with pytest.raises(SelfCheckFailed, match="returned None"):
        run_exercise(1, lambda lab: None, check, None, empty, "s.py")
    with pytest.raises(AttributeError, match="has no exercise_2"):
        run_exercise(2, lambda lab: None, check, None, good, "s.py")


# ---- checkpoints -------------------------------------------------------------------------------
def test_a_workspace_is_deleted_only_when_a_lab_made_it(tmp_path):
    mine = tmp_path / "precious"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SelfCheckFailed, match="was not made by a lab"):
        fresh_workspace(mine)
    assert (mine / "notes.txt").is_file()
    made = fresh_workspace(tmp_path / "lab05")
    (made / "leftover").write_text("x")
    again = fresh_workspace(tmp_path / "lab05")
    assert not (again / "leftover").exists()


def test_a_lab_without_state_writes_no_workspace(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mlops-lab"\n')
    (tmp_path / "labs").mkdir()
    notebook(
        tmp_path / "labs" / "00_start_here.ipynb",
        CARD.replace('"05"', '"00"').replace("checkpoint: champion", "checkpoint: none"),
    )
    lab = start("00", root=tmp_path / "labs")
    assert lab.workspace is None and not (tmp_path / "workspace").exists()
    assert lab.solutions == tmp_path / "labs" / "solutions" / "00.py"
    assert "lab 00: Serving with KServe (days 41-50" in capsys.readouterr().out


def test_outside_the_repository_the_checkpoint_says_where_to_open_the_labs(tmp_path):
    with pytest.raises(SelfCheckFailed, match="make lab"):
        repo_root(tmp_path)


def test_every_card_names_a_checkpoint_the_kit_can_build():
    for m in LABS:
        assert m.checkpoint in ("none", "workspace", *BUILDERS), m.lab


# ---- the shape of every lab -------------------------------------------------------------------
@pytest.mark.parametrize("card", LABS, ids=[m.lab for m in LABS])
def test_every_lab_has_the_shape_of_the_course(card):
    code = code_of(card)
    assert f'start("{card.lab}")' in code[0], "the first code cell is the checkpoint"
    checked = [c for c in code if c.lstrip().startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) >= 3, f"lab {card.lab} has {len(checked)} checked facts; at least 3"
    text = "\n".join("".join(c["source"]) for c in cells(card) if c["cell_type"] == "markdown")
    assert "## Key points" in text
    assert any("expect(" in c for c in code), "no self-check"
    assert "## Your turn" in text
    exercises = sorted({int(n) for c in code for n in re.findall(r"lab\.exercise\((\d+),", c)})
    assert 2 <= len(exercises) <= 4, f"lab {card.lab} has {len(exercises)} exercises"
    solutions = ROOT / "labs" / "solutions" / f"{card.lab}.py"
    assert solutions.is_file(), f"{solutions.name} is missing"
    defined = sorted(
        int(n) for n in re.findall(r"^def exercise_(\d+)\(", solutions.read_text(), re.M)
    )
    assert defined == exercises, f"solutions {defined} vs exercises {exercises}"


@pytest.mark.parametrize("card", LABS, ids=[m.lab for m in LABS])
def test_committed_labs_show_the_learners_view_not_the_solutions(card):
    outputs = "".join(
        "".join(o.get("text", ""))
        for c in cells(card)
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    assert "the solution in labs/solutions" not in outputs, (
        "executed with MLOPS_LAB_SOLUTIONS=1: re-execute without it before committing"
    )
    assert json.loads(card.path.read_text())["metadata"]["kernelspec"]["name"] == "mlops-lab"


def test_the_assessment_points_only_at_labs_that_exist_or_are_planned():
    from reference.labkit import assess

    known = {m.lab for m in LABS} | {p["lab"] for p in meta.PLANNED}
    assert set(assess.LABS) <= known
    for q in assess.QUESTIONS:
        assert set(q.labs) <= known, f"{q.id} points at {q.labs}"
