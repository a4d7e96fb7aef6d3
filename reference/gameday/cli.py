"""`mlops-lab gameday ...`: the game day from a terminal.

::

    mlops-lab gameday start [--seed 7]      # a hidden incident, and your first shift
    mlops-lab gameday status                # the on-call page of the last shift
    mlops-lab gameday answer celsius        # name the incident
    mlops-lab gameday fix refuse-batch      # take the runbook's action; the next shift checks it
    mlops-lab gameday score [--reveal]      # points and what you missed; --reveal gives up
"""

from __future__ import annotations

from typing import Annotated

import typer

from reference.gameday.incidents import FIXES, INCIDENTS

app = typer.Typer(
    help="Game day: an incident you do not know, on the real system. Find it, name it, fix it.",
    no_args_is_help=True,
)


def _settings():
    from reference.config import get_settings

    return get_settings()


def _quiet() -> None:
    import logging
    import warnings

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=UserWarning)


def _guard(fn, *args, **kwargs):
    from reference.gameday.game import GameError

    try:
        return fn(*args, **kwargs)
    except GameError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(2) from None


def _print_status(settings) -> None:
    from reference.gameday import game, page

    g = game.load(settings)
    evidence = game.last_evidence(settings, g)
    for line in page.status_lines(evidence, game.events(settings)):
        typer.echo(line)
    folder = game.game_dir(settings) / f"shift-{g.shifts}"
    where = _shown(folder)
    typer.echo(
        f"evidence: {where}/ ({', '.join(page.evidence_files(folder))}), "
        f"and {_shown(game.game_dir(settings) / 'events.jsonl')}"
    )
    if not g.over:
        for line in page.help_lines():
            typer.echo(line)


def _shown(path) -> str:
    """A path as the learner can open it from where they are (else as it is)."""
    import os

    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else rel


@app.command()
def start(
    seed: Annotated[
        int | None, typer.Option(help="Seed of the draw (same seed, same incident).")
    ] = None,
    incident: Annotated[
        str | None,
        typer.Option(help="Play this incident (facilitators, tests): " + ", ".join(INCIDENTS)),
    ] = None,
) -> None:
    """Start a game: restore the champion, inject a hidden incident, run your first shift."""
    from reference.gameday import game

    _quiet()
    settings = _settings()
    _guard(game.start, settings, seed=seed, name=incident)
    typer.echo("you are on call. Something is wrong. Read the page, then the evidence.")
    _print_status(settings)


@app.command()
def status() -> None:
    """The on-call page of the last shift: alerts, traffic, inputs, drift, labels, canary, batch."""
    _quiet()
    _guard(_print_status, _settings())


@app.command()
def answer(
    name: Annotated[str, typer.Argument(help="The incident: " + ", ".join(INCIDENTS))],
) -> None:
    """Name the incident. The game says whether you are right, and counts the tries."""
    from reference.gameday import game

    right, text = _guard(game.answer, _settings(), name)
    typer.secho(text, fg="green" if right else "yellow")


@app.command()
def fix(
    action: Annotated[
        str,
        typer.Argument(help="; ".join(f"{k}: {v}" for k, v in FIXES.items())),
    ],
) -> None:
    """Take a runbook action; the next shift shows whether the system is healthy again."""
    from reference.gameday import game

    _quiet()
    settings = _settings()
    healthy, note, evidence = _guard(game.fix, settings, action)
    if evidence is None:
        typer.secho(f"nothing changed: {note}", fg="yellow")
        return
    if healthy:
        typer.secho(f"healthy again: the next shift found nothing wrong ({note})", fg="green")
        _print_score(settings)
        return
    typer.secho(f"{note}; the next shift is still not healthy:", fg="yellow")
    for key in evidence.findings:
        typer.echo(f"  - {evidence.details[key]}")
    typer.echo("`mlops-lab gameday status` shows the whole page")


def _print_score(settings, reveal: bool = False) -> None:
    from reference.gameday import game

    g, s = game.score(settings, reveal=reveal)
    typer.echo(f"score: {s.points}/{s.out_of}")
    for line in s.lines:
        typer.echo(f"  {line}")
    if g.over or g.revealed:
        t = g.truth
        typer.echo(f"the incident: {t.name} ({t.title}): {t.story}")
        typer.echo(f"the runbook: {t.runbook} (fix: {t.fix})")
    for line in s.missed:
        typer.echo(f"  missed: {line}")


@app.command()
def score(
    reveal: Annotated[
        bool, typer.Option(help="Give up: end the game and name the incident.")
    ] = False,
) -> None:
    """Your points so far, and (once the game is over) what you missed."""
    _guard(_print_score, _settings(), reveal)
