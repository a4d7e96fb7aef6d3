"""The maturity self-assessment: the questions, weakest-link scoring, errors, both routes in."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from reference.labkit import assess
from reference.labkit.assess import QUESTIONS, SAMPLE, AnswersError

IDS = [q.id for q in QUESTIONS]
KNOWN_LABS = {"00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10"}


def capture() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=100), out


def all_at(level: int, **overrides: int) -> dict[str, int]:
    return {qid: overrides.get(qid, level) for qid in IDS}


def test_the_question_bank_is_well_formed() -> None:
    assert len(QUESTIONS) == 12 and len(set(IDS)) == 12
    for column in assess.COLUMNS:
        assert sum(q.column == column for q in QUESTIONS) == 4, column
    for q in QUESTIONS:
        assert q.id.isidentifier() and q.id == q.id.lower(), q.id
        assert len(q.answers) == 3 and all(a.strip() for a in q.answers), q.id
        assert len(set(q.answers)) == 3, q.id
        assert q.labs and set(q.labs) <= KNOWN_LABS, q.id
        assert q.practice and q.text.endswith("?"), q.id
    assert set(assess.LABS) == KNOWN_LABS


def test_the_sample_scores_by_the_weakest_link() -> None:
    levels, team = assess.load_answers(SAMPLE)
    raw = yaml.safe_load(SAMPLE.read_text())["answers"]
    assert levels == raw and list(levels) == IDS and team
    result = assess.score(levels, team)
    # training: all four at 1. deployment: serving is 2, the rest 1, so 1.
    # monitoring: live_quality is the only 0 in the file, so monitoring, and the team, are 0.
    assert result.columns == {"training": 1, "deployment": 1, "monitoring": 0}
    assert result.level == 0
    assert result.weakest == ("live_quality",)
    assert result.weakest_practice == assess.BY_ID["live_quality"].practice
    # live quality is lab 06's, the retraining trigger it feeds lab 07's, the canary lab 08's
    assert result.labs == ("06", "07", "08")


def test_one_level_0_answer_pulls_its_column_to_0() -> None:
    result = assess.score(all_at(2, rollback=0))
    assert result.columns == {"training": 2, "deployment": 0, "monitoring": 2}
    assert result.level == 0
    assert result.weakest == ("rollback",) and result.labs == ("03", "08")


def test_a_level_2_team_is_level_2_everywhere_and_has_nothing_weakest() -> None:
    result = assess.score(all_at(2))
    assert result.columns == dict.fromkeys(assess.COLUMNS, 2) and result.level == 2
    assert result.weakest == () and result.labs == () and result.weakest_practice == ""
    console, out = capture()
    assess.render(result, console)
    assert "every practice is at Level 2" in out.getvalue()


def test_ties_keep_question_order_and_pool_their_labs() -> None:
    # chosen out of order on purpose: the result follows the question bank's order
    result = assess.score(all_at(2, live_quality=1, data_validation=1, serving=1))
    assert result.weakest == ("data_validation", "serving", "live_quality")
    assert result.weakest_practice == assess.BY_ID["data_validation"].practice
    assert result.labs == ("02", "05", "06", "07", "08", "09")
    assert result.columns == {"training": 1, "deployment": 1, "monitoring": 1}
    console, out = capture()
    assess.render(result, console)
    text = out.getvalue()
    assert f"weakest practice: {assess.BY_ID['data_validation'].practice}" in text
    assert "also at Level 1: " in text and assess.BY_ID["live_quality"].practice in text
    assert "labs that address it: 02, 05, 06, 07, 08, 09" in text


def test_levels_may_be_strings_but_nothing_else() -> None:
    assert assess.score(dict.fromkeys(IDS, "1")).levels == dict.fromkeys(IDS, 1)
    for bad in (3, -1, "two", True, 1.5, None):
        with pytest.raises(AnswersError) as e:
            assess.score(all_at(1) | {"alerting": bad})
        assert f"alerting: {bad!r} is not a level" in str(e.value)
        assert "0, 1 or 2" in str(e.value)


def test_an_unknown_id_suggests_the_closest_one() -> None:
    answers = all_at(1)
    answers["data_versionning"] = answers.pop("data_versioning")
    with pytest.raises(AnswersError) as e:
        assess.score(answers)
    message = str(e.value)
    assert "unknown question id 'data_versionning' (did you mean 'data_versioning'?)" in message
    assert "missing answers for: data_versioning" in message  # both problems, one message


def test_missing_ids_are_named() -> None:
    answers = {qid: 1 for qid in IDS if qid not in ("rollback", "alerting")}
    with pytest.raises(AnswersError, match="missing answers for: rollback, alerting"):
        assess.score(answers)


def test_file_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(AnswersError, match="no such file") as e:
        assess.load_answers(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(e.value) and str(SAMPLE) in str(e.value)

    bad = tmp_path / "bad.yaml"
    bad.write_text("how_trained: 1\n  serving: [2\n")
    with pytest.raises(AnswersError, match="not valid YAML"):
        assess.load_answers(bad)

    for text, problem in (("- 1\n- 2\n", "got a list"), ("", "got an empty file"),
                          ("answers: 3\n", "`answers:` is a int, not a mapping"),
                          ("team: [a]\nanswers: {}\n", "`team:` should be a name"),
                          ("answers: {}\nextra: 1\n", "only `team:` may sit beside")):  # fmt: skip
        bad.write_text(text)
        with pytest.raises(AnswersError, match=problem) as e:
            assess.load_answers(bad)
        assert str(bad) in str(e.value)

    bad.write_text(yaml.safe_dump(all_at(1) | {"drift_detection": 5}))
    with pytest.raises(AnswersError, match="drift_detection: 5 is not a level") as e:
        assess.load_answers(bad)
    assert str(e.value).startswith(str(bad))


def test_a_flat_file_with_a_team_name_also_loads(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump({"team": "Ops", **all_at(1)}))
    assert assess.load_answers(path) == (all_at(1), "Ops")


def test_the_interactive_route_reasks_on_bad_input() -> None:
    replies = iter(["3", *["1"] * 11, " 0 "])  # one bad reply, then the 12 real ones
    prompts = []

    def scripted(prompt: str) -> str:
        prompts.append(prompt)
        return next(replies)

    console, out = capture()
    answers = assess.ask(console, input_fn=scripted)
    assert answers == all_at(1, live_quality=0)
    assert len(prompts) == 13
    text = out.getvalue()
    assert text.count("please type 0, 1 or 2") == 1
    words = " ".join(text.split())  # long answers wrap at 100 columns
    for q in QUESTIONS:
        assert q.text in words and all(f"{n}. {a}" in words for n, a in enumerate(q.answers))


def test_main_scores_a_file_and_prints_the_overall_level() -> None:
    console, out = capture()
    assert assess.main(SAMPLE, console=console) == 0
    text = out.getvalue()
    assert "overall:     Level 0" in text
    assert "monitoring:  Level 0" in text and "training:    Level 1" in text
    assert "weakest practice: measuring live quality (monitoring, Level 0)" in text
    assert "labs that address it: 06, 07, 08" in text and assess.LABS["06"] in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_main_on_a_bad_file_says_why_and_returns_2(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("how_trainedd: 1\n")
    console, out = capture()
    assert assess.main(path, console=console) == 2
    text = out.getvalue()
    assert "did you mean 'how_trained'" in text and "Traceback" not in text


def test_main_interactive_scores_the_replies() -> None:
    replies = iter(["2"] * 12)
    console, out = capture()
    assert assess.main(console=console, input_fn=lambda _: next(replies)) == 0
    assert "overall:     Level 2" in out.getvalue()

    def closed(_: str) -> str:
        raise EOFError

    console, out = capture()
    assert assess.main(console=console, input_fn=closed) == 2
    assert "nothing scored" in out.getvalue()
