"""`mlops-lab assess`: where does your team stand on Google's MLOps maturity model (Level 0/1/2)?

::

    mlops-lab assess                          # answer 12 questions, one keypress each
    mlops-lab assess --answers my-team.yaml   # or score a file: {question_id: 0|1|2, ...}
    .venv/bin/python -m reference.labkit.assess [ANSWERS.yaml]

Twelve questions, four per column of the model (training, deployment, monitoring), each with
three answers, one per level. A column is at the level of its weakest practice and the team at
the level of its weakest column; the report names the weakest practice and the labs that
address it. `SAMPLE` is a worked example: copy it, edit the numbers, run it.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

SAMPLE = Path(__file__).resolve().parent / "assess_sample.yaml"
COLUMNS = ("training", "deployment", "monitoring")
LEVELS = {0: "manual process", 1: "ML pipeline automation", 2: "CI/CD pipeline automation"}
LABS = {
    "00": "Start here",
    "01": "Deterministic vs probabilistic: scores, thresholds, baselines",
    "02": "The dataset pipeline: ingest, validate, transform, DVC",
    "03": "Experiments and the registry: MLflow runs, sweeps, aliases",
    "04": "The pipeline as code, the gate, CI/CD for the model",
    "05": "Serving with KServe: protocols, bad input, latency",
    "06": "Monitoring predictions, not 200s: drift, alerts, live quality",
    "07": "Drift-triggered retraining: the policy, the honest split, the controller",
    "08": "Shadow, canary and automated rollback: live labels, DeLong, model and data rollback",
    "09": "Kubernetes, GPUs and kind",
    "10": "Game day: find, name and fix an incident on call",
}


class AnswersError(ValueError):
    """The answers are incomplete or malformed; the message says what to change."""


@dataclass(frozen=True)
class Question:
    """One practice: the question, and what its answer looks like at Level 0, 1 and 2."""

    id: str
    column: str
    practice: str  # a few words: "your weakest practice is <practice>"
    text: str
    answers: tuple[str, str, str]  # what level 0, 1 and 2 look like, in that order
    labs: tuple[str, ...]  # the labs that take this practice up a level


QUESTIONS = (
    Question("how_trained", "training", "how models get trained",
             "How does a new model get trained?",
             ("Someone runs a notebook on their laptop and saves the model file.",
              "A pipeline (dvc repro) runs on a trigger, like a build job on merge, and logs "
              "its params and data version to MLflow.",
              "It retrains itself when drift or new labels arrive, on an honest time split "
              "(train on the past, test on the future)."),
             ("03", "04", "07")),
    Question("data_versioning", "training", "data versioning",
             "Can you say exactly which data a model was trained on?",
             ("No: the data is whatever is in the bucket today, and it gets overwritten.",
              "Yes: every dataset has a DVC version pinned in git next to the code, like a "
              "lockfile for data.",
              "Yes, without anyone doing it: each retrain records its new data window as a "
              "version, and the registry entry names it."),
             ("02", "04")),
    Question("data_validation", "training", "validating the data",
             "What stops a bad batch of data from reaching training?",
             ("Nothing: a broken file shows up as a bad model, or not at all.",
              "A validation stage: schema and range checks that warn or fail the pipeline, and "
              "one transform shared by training and serving (no skew).",
              "Every incoming batch is validated before the loop retrains on it; a failed "
              "check blocks the retrain and says which check."),
             ("02",)),
    Question("reproducibility", "training", "reproducible models",
             "Could you rebuild the model that is in production today?",
             ("Probably not: nobody wrote down the data, the params or the seed.",
              "Yes: data version + params + seed pin a model, and dependencies are pinned; "
              "rerunning that commit gives the same metrics.",
              "Yes, from its registry entry alone, and CI rebuilds one on a schedule to prove "
              "it, like a restore test for backups."),
             ("03", "04", "09")),
    Question("model_release", "deployment", "releasing a model",
             "How does a new model reach production?",
             ("Someone copies a model file onto the server, or bakes it into an image by hand.",
              "Through a registry with aliases (champion, challenger): CI/CD promotes a "
              "version by moving an alias, like tagging a release.",
              "By itself: shadow traffic first, then a canary share, promoted or rolled back "
              "on live labels."),
             ("03", "04", "08")),
    Question("validation_gate", "deployment", "the validation gate",
             "What decides that a new model is good enough to ship?",
             ("Someone looks at the accuracy and says it looks good (no baseline, no base rate).",
              "An automated gate in CI: it must beat the champion and a dumb baseline on the "
              "same holdout, or the release stops, like a failing test blocking a merge.",
              "The gate, then live labels: the canary against the champion with a statistical "
              "test (DeLong), not an eyeballed dashboard."),
             ("01", "04", "08")),
    Question("serving", "deployment", "the serving contract",
             "What does the model endpoint promise its callers?",
             ("Not much: a web app wraps the model; bad input gives a 500 or a silent wrong "
              "answer.",
              "A standard protocol (KServe V1/V2): bad input is a 4xx that says why, and the "
              "latency budget is measured.",
              "All that, plus resource requests and quotas, autoscaling on the latency "
              "budget, and a GPU only where its cost pays for itself."),
             ("05", "09")),
    Question("rollback", "deployment", "rolling back a model",
             "The new model is worse. How do you go back?",
             ("Find the old model file, if someone kept it, and redeploy by hand.",
              "One command moves the alias back to the previous version, and you know which "
              "data version each one was trained on.",
              "It happens automatically when live quality drops, and you can roll back the "
              "model, the data or both, knowing which one broke."),
             ("03", "08")),
    Question("what_you_watch", "monitoring", "watching predictions, not 200s",
             "What does your dashboard show about the model?",
             ("HTTP status codes and latency, like any web service.",
              "The prediction distribution too: positive rate, score histogram, input "
              "features against the training reference.",
              "All that per slice, with every prediction logged under an id so its outcome "
              "can be joined later."),
             ("06",)),
    Question("drift_detection", "monitoring", "detecting drift",
             "How would you find out that the input data has changed?",
             ("When the business complains.",
              "Drift reports (Evidently) on a schedule compare recent inputs with the "
              "training data.",
              "Drift over a window triggers a retrain by itself, through the same gate."),
             ("06", "07")),
    Question("alerting", "monitoring", "alerts on model behaviour",
             "What pages someone when the model goes wrong?",
             ("Only 5xx and pod restarts: a model that quietly predicts nonsense never pages.",
              "Prometheus alerts with statistical thresholds on the predictions and drift, "
              "with rule tests (promtool).",
              "A quality alert starts a retrain or a rollback without a human, and a game day "
              "checks that it fires."),
             ("06", "07", "08", "10")),
    Question("live_quality", "monitoring", "measuring live quality",
             "Do you know whether the model is still right?",
             ("No: predictions are never joined with what actually happened.",
              "A job joins the late labels with the logged predictions and reports live "
              "quality, say daily.",
              "Live quality from late labels feeds the retraining trigger and judges the "
              "canary."),
             ("06", "07", "08")),
)  # fmt: skip
BY_ID = {q.id: q for q in QUESTIONS}


@dataclass(frozen=True)
class Assessment:
    """A scored team: the level of each practice, each column, and the team's overall level."""

    levels: dict[str, int]  # question id -> level, in question order
    columns: dict[str, int]  # column -> level
    level: int  # the team's overall level
    weakest: tuple[str, ...]  # ids of the lowest-level questions, in question order
    labs: tuple[str, ...]  # the labs of the weakest questions, sorted
    team: str = ""

    @property
    def weakest_practice(self) -> str:
        """The practice of the first weakest question; "" when every practice is at Level 2."""
        return BY_ID[self.weakest[0]].practice if self.weakest else ""


def _level(value: object) -> int | None:
    if isinstance(value, bool):  # True == 1 in Python, but `yes` is not an answer
        return None
    if isinstance(value, int) and value in LEVELS:
        return value
    if isinstance(value, str) and value.strip() in ("0", "1", "2"):
        return int(value.strip())
    return None


def check_answers(answers: Mapping[object, object], source: str = "answers") -> dict[str, int]:
    """Levels by question id, in question order; AnswersError lists every problem at once."""
    problems = []
    for key, value in answers.items():
        if key not in BY_ID:
            close = difflib.get_close_matches(str(key), BY_ID, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown question id {key!r}{hint}")
        elif _level(value) is None:
            problems.append(f"{key}: {value!r} is not a level: answer 0, 1 or 2")
    missing = [q.id for q in QUESTIONS if q.id not in answers]
    if missing:
        problems.append(f"missing answers for: {', '.join(missing)}")
    if problems:
        raise AnswersError(
            f"{source}: " + "".join(f"\n  - {p}" for p in problems) + "\n"
            f"Every question id is in {SAMPLE}: copy it and edit the numbers,"
            " or run `mlops-lab assess` without --answers to answer one question at a time."
        )
    return {q.id: int(str(answers[q.id]).strip()) for q in QUESTIONS}  # 0-2 or "0"-"2" by now


def load_answers(path: Path) -> tuple[dict[str, int], str]:
    """(levels by question id, team name or "") from `{id: level}`, or `{team:, answers: {...}}`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as e:
        raise AnswersError(f"{path}: no such file; copy {SAMPLE} and edit it") from e
    except yaml.YAMLError as e:
        raise AnswersError(f"{path}: not valid YAML ({e}); compare it with {SAMPLE}") from e
    shape = f"{path}: expected a mapping `question_id: level` (optionally under `answers:`)"
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise AnswersError(f"{shape}, got {got}; see {SAMPLE}")
    data = dict(data)
    team = data.pop("team", "")
    if not isinstance(team, str):
        raise AnswersError(f"{path}: `team:` should be a name, got {team!r}")
    if "answers" in data:
        if extra := sorted(map(str, set(data) - {"answers"})):
            raise AnswersError(f"{path}: only `team:` may sit beside `answers:`, got {extra}")
        data = data["answers"]
        if not isinstance(data, dict):
            raise AnswersError(f"{shape}; `answers:` is a {type(data).__name__}, not a mapping")
    return check_answers(data, source=str(path)), team


def score(answers: Mapping[str, object], team: str = "") -> Assessment:
    levels = check_answers(answers)
    # Weakest link: a team is at Level 1 in deployment only when every deployment practice is.
    # An average would let a great registry hide a model that is still copied onto the server.
    columns = {c: min(levels[q.id] for q in QUESTIONS if q.column == c) for c in COLUMNS}
    lowest = min(levels.values())
    # at Level 2 there is nothing left to climb, so nothing is "weakest"
    weakest = tuple(q for q in levels if levels[q] == lowest) if lowest < 2 else ()
    labs = tuple(sorted({lab for q in weakest for lab in BY_ID[q].labs}))
    return Assessment(levels, columns, min(columns.values()), weakest, labs, team)


def ask(console: Console, input_fn: Callable[[str], str] = input) -> dict[str, int]:
    """Ask every question in turn; re-ask until the reply is 0, 1 or 2."""
    answers = {}
    for n, q in enumerate(QUESTIONS, 1):
        console.print(f"\n[bold]{n}/{len(QUESTIONS)} {q.column}: {escape(q.text)}[/]")
        choices = Table.grid(padding=(0, 1))  # a grid, so a wrapped answer keeps its indent
        choices.add_column(justify="right", min_width=4)
        choices.add_column()
        for i, text in enumerate(q.answers):
            choices.add_row(f"{i}.", escape(text))
        console.print(choices)
        while (level := _level(input_fn("your answer (0, 1 or 2): "))) is None:
            console.print("  please type 0, 1 or 2: the number of the answer closest to you")
        answers[q.id] = level
    return answers


def render(assessment: Assessment, console: Console) -> None:
    title = f"MLOps maturity: {assessment.team}" if assessment.team else "MLOps maturity"
    table = Table(title=escape(title))
    for column in ("#", "column", "practice", "your level"):
        table.add_column(column, overflow="fold")
    for n, (qid, level) in enumerate(assessment.levels.items(), 1):
        q = BY_ID[qid]
        mark = "  <- weakest" if qid in assessment.weakest else ""  # words, not only colour
        table.add_row(str(n), q.column, q.practice, f"Level {level}{mark}")
    console.print(table)
    for column, level in assessment.columns.items():
        console.print(f"{column + ':':<12} Level {level} ({LEVELS[level]})")
    console.print(
        f"[bold]overall:     Level {assessment.level} ({LEVELS[assessment.level]})[/],"
        " the level of the weakest column"
    )
    if not assessment.weakest:
        console.print("every practice is at Level 2: keep it there with lab 10's game day")
        return
    first, *ties = (BY_ID[q] for q in assessment.weakest)
    level = assessment.levels[first.id]
    console.print(f"weakest practice: {first.practice} ({first.column}, Level {level})")
    if ties:
        console.print(f"also at Level {level}: " + ", ".join(q.practice for q in ties))
    console.print("labs that address it: " + ", ".join(assessment.labs))
    for lab in assessment.labs:
        console.print(f"  {lab}  {LABS[lab]}")


def main(
    answers: Path | None = None,
    console: Console | None = None,
    input_fn: Callable[[str], str] = input,
) -> int:
    console = console or Console()
    try:
        if answers is not None:
            levels, team = load_answers(answers)
        else:
            levels, team = ask(console, input_fn), ""
    except AnswersError as e:
        console.print(f"[red]{escape(str(e))}[/]")
        return 2
    except (EOFError, KeyboardInterrupt):
        console.print("\nstopped before the last question: nothing scored")
        return 2
    render(score(levels, team), console)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
