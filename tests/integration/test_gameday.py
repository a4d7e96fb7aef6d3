"""The game day on the real system: each incident, played with a wrong step and then the right
answer and fix, through the real model servers, the router, promtool and the registry.

One champion is built for the module (or copied from the test session's checkpoint cache) and
every game starts from it again, as `mlops-lab gameday start` does.
"""

from __future__ import annotations

import json
import logging
import warnings

import pytest
from typer.testing import CliRunner

from reference.gameday import game
from reference.gameday.incidents import FINDINGS, FIXES, INCIDENTS, incident
from reference.labkit.checkpoint import Lab, _champion

# a wrong step per incident: what a plausible but wrong on-call reflex does here
WRONG_ANSWER = {
    "celsius": "drifted-month",
    "rename-column": "new-carrier",
    "new-carrier": "drifted-month",
    "constant-score": "bad-challenger",
    "bad-challenger": "constant-score",
    "hung-candidate": "bad-challenger",
    "labels-stopped": "rename-column",
    "drifted-month": "celsius",
}
WRONG_FIX = {  # (action, does it change anything?)
    "celsius": ("contract", True),  # the feed is fixed, the bad batch still waits
    "rename-column": ("rollback-model", False),  # nothing to roll back to
    "new-carrier": ("refuse-batch", False),  # no batch waiting
    "constant-score": ("contract", False),  # the sender sends what the contract says
    "bad-challenger": ("rollback-data", False),  # the data is the champion's
    "hung-candidate": ("contract", False),
    "labels-stopped": ("rollback-model", False),
    "drifted-month": ("refuse-batch", False),  # a valid batch is not refused
}


@pytest.fixture(scope="module")
def settings(fresh_settings, tmp_path_factory):
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)
    lab = Lab(meta=None, root=fresh_settings.workspace.parent, workspace=fresh_settings.workspace)
    _champion(lab, log=lambda *_: None)
    return fresh_settings


def test_the_catalogue_is_consistent():
    assert set(WRONG_ANSWER) == set(INCIDENTS) == set(WRONG_FIX)
    for i in INCIDENTS.values():
        assert i.fix in FIXES and set(i.findings) <= set(FINDINGS) and i.clues
        assert (game.RUNBOOKS / f"{i.name}.md").is_file(), f"no runbook page for {i.name}"


@pytest.mark.fault
@pytest.mark.parametrize("name", sorted(INCIDENTS))
def test_an_incident_is_found_named_and_fixed(settings, name):
    truth = incident(name)
    evidence = game.start(settings, seed=0, name=name, log=lambda *_: None)
    assert set(truth.findings) <= set(evidence.findings), evidence.details
    others = set(evidence.findings) - set(truth.findings)
    assert not others, f"{name} also shows {others}: {evidence.details}"

    right, text = game.answer(settings, WRONG_ANSWER[name])
    assert not right and text.startswith(f"not {WRONG_ANSWER[name]}")
    right, text = game.answer(settings, name)
    assert right and truth.runbook in text

    action, changes = WRONG_FIX[name]
    healthy, note, after = game.fix(settings, action, log=lambda *_: None)
    assert not healthy
    assert (after is not None) == changes, note
    if after is not None:
        assert after.findings, "a wrong fix must not heal it"

    healthy, note, after = game.fix(settings, truth.fix, log=lambda *_: None)
    assert healthy and after is not None and after.findings == [], (note, after and after.details)

    g, s = game.score(settings)
    assert g.over and s.out_of == 5
    assert s.points == 1 + 1 + 1  # named on the second try, healed on the second, healthy
    assert any(m.startswith("the clue:") for m in s.missed)
    assert any(m.startswith(f"{action} did not heal it") for m in s.missed)
    log = [
        json.loads(x) for x in (game.game_dir(settings) / "events.jsonl").read_text().splitlines()
    ]
    assert [e["kind"] for e in log if e["kind"] in ("answer", "fix")] == [
        "answer",
        "answer",
        "fix",
        "fix",
    ]


def test_a_seeded_game_from_the_terminal_and_its_mistakes(settings, monkeypatch):
    from reference.cli import app

    monkeypatch.setenv("MLOPS_LAB_WORKSPACE", str(settings.workspace))
    runner = CliRunner()
    result = runner.invoke(app, ["gameday", "start", "--seed", "11"])
    assert result.exit_code == 0, result.output
    for part in (
        "you are on call",
        "alerts firing",
        "requests:",
        "labels:",
        "evidence:",
        "fix it:",
    ):
        assert part in result.output
    first = game.load(settings).incident
    raw = (game.game_dir(settings) / "game.json").read_text()
    assert first not in raw and "deployment" not in raw  # the answer key is not in plain sight
    assert game.draw(11) == first == game.draw(11)
    assert len({game.draw(s) for s in range(40)}) == len(INCIDENTS)

    result = runner.invoke(app, ["gameday", "answer", "gremlins"])
    assert result.exit_code == 2 and "is not an incident of the game" in result.output
    result = runner.invoke(app, ["gameday", "fix", "reboot"])
    assert result.exit_code == 2 and "is not a fix" in result.output
    result = runner.invoke(app, ["gameday", "start", "--incident", "gremlins"])
    assert result.exit_code == 2 and "unknown incident" in result.output
    result = runner.invoke(app, ["gameday", "score", "--reveal"])  # giving up ends the game
    assert result.exit_code == 0 and f"the incident: {first}" in result.output
    assert "missed: the clue:" in result.output
    result = runner.invoke(app, ["gameday", "answer", first])
    assert result.exit_code == 2 and "this game is over" in result.output
    result = runner.invoke(app, ["gameday", "status"])  # the last shift's page stays readable
    assert result.exit_code == 0 and "alerts firing" in result.output
    assert "Traceback" not in result.output


def test_no_game_yet_says_how_to_start(tmp_path, monkeypatch):
    from reference.cli import app

    monkeypatch.setenv("MLOPS_LAB_WORKSPACE", str(tmp_path / "ws"))
    result = CliRunner().invoke(app, ["gameday", "status"])
    assert result.exit_code == 2 and "mlops-lab gameday start" in result.output
