"""Self-checks and exercises: a lab checks what the learner just did and says what to try.

::

    from reference.labkit.selfcheck import expect
    expect(champion.version == "2", "the champion alias still points at v1",
           "the gate rejected v2: read its table above")

A failed check raises :class:`SelfCheckFailed`. In Jupyter it prints as two plain lines (what is
wrong, what to try) instead of a traceback, and the cell still counts as an error, so nbval fails
in CI when the committed path stops passing its own checks.

An exercise pairs the learner's function with a check::

    def my_answer(lab):
        ...  # your code: return the number
    lab.exercise(1, my_answer, check)

A learner's function that returns None has not been tried yet: the cell says where the solution
is and moves on. With MLOPS_LAB_SOLUTIONS=1 (set by the test suite) the solution from
``labs/solutions/NN.py`` runs in its place and goes through the same check, so a solution that rots
fails CI.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOLUTIONS_ENV = "MLOPS_LAB_SOLUTIONS"


class SelfCheckFailed(AssertionError):
    """A self-check that failed: ``wrong`` says what is wrong, ``hint`` what to try."""

    def __init__(self, wrong: str, hint: str = ""):
        self.wrong, self.hint = wrong, hint
        super().__init__(f"{wrong}. Try: {hint}" if hint else wrong)

    def explain(self) -> list[str]:
        """The two lines a learner reads: what is wrong, what to try."""
        lines = [f"\x1b[31mself-check failed:\x1b[0m {self.wrong}"]
        if self.hint:
            lines.append(f"\x1b[33mwhat to try:\x1b[0m {self.hint}")
        return lines

    def _render_traceback_(self) -> list[str]:
        # IPython prints these lines instead of a traceback: a learner needs the words, not the stack
        return self.explain()


def expect(condition: Any, wrong: str, hint: str = "", ok: str | None = None) -> None:
    """Raise SelfCheckFailed(wrong, hint) unless ``condition``; print ``ok`` when it holds."""
    if not condition:
        raise SelfCheckFailed(wrong, hint)
    if ok:
        print(f"ok: {ok}")


def solutions_enabled() -> bool:
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes")


def load_solution(solutions_file: Path, number: int) -> Callable:
    """``exercise_<number>`` from a lab's solutions file."""
    if not solutions_file.is_file():
        raise FileNotFoundError(f"no solutions file {solutions_file}")
    spec = importlib.util.spec_from_file_location(
        f"solutions_{solutions_file.stem}", solutions_file
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return getattr(module, f"exercise_{number}")
    except AttributeError as e:
        raise AttributeError(f"{solutions_file.name} has no exercise_{number}") from e


def run_exercise(
    number: int,
    attempt: Callable[[Any], Any],
    check: Callable[[Any], str | None],
    context: Any,
    solutions_file: Path,
    shown: str,
) -> Any:
    """Run the learner's ``attempt(context)`` (or the solution, see the module doc) and check it.

    ``check(answer)`` raises SelfCheckFailed when the answer is wrong and may return a sentence
    to print when it is right. ``shown`` is how the lab names the solutions file to a learner.
    Returns the answer, or None when the exercise has not been tried."""
    answer = attempt(context)
    source = "your answer"
    if answer is None:
        if not solutions_enabled():
            print(
                f"exercise {number}: not tried yet. Fill in the cell above and run both cells again; "
                f"a solution is in {shown} (open it once you've tried)."
            )
            return None
        answer = load_solution(solutions_file, number)(context)
        source = f"the solution in {shown}"
        if answer is None:
            raise SelfCheckFailed(
                f"exercise {number}: {shown} returned None", "the solution must return its answer"
            )
    said = check(answer)
    print(f"exercise {number}: {source} passes the check" + (f": {said}" if said else ""))
    return answer
