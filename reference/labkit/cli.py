"""`mlops-lab lab ...` and `mlops-lab assess`: the lab kit from a terminal.

::

    mlops-lab lab list              # every lab: days, minutes, what it starts from
    mlops-lab lab start 05          # workspace/lab05 with the state lab 05 starts from
    mlops-lab lab map --check       # are labs/README.md and README.md in step with the cards?
    mlops-lab assess                # the maturity self-assessment, interactively
    mlops-lab assess --answers my-team.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

lab_app = typer.Typer(
    help="The labs: list them, start any one from scratch, keep the maps in step.",
    no_args_is_help=True,
)


@lab_app.command("list")
def list_labs() -> None:
    """Every lab with its days, minutes and the state it starts from."""
    from rich.console import Console
    from rich.table import Table

    from reference.labkit import meta
    from reference.labkit.checkpoint import repo_root

    table = Table(title="The 90-day plan")
    for column in ("lab", "title", "days", "minutes", "starts from", "goal"):
        table.add_column(column, overflow="fold")
    for m in meta.all_labs(repo_root() / "labs"):
        table.add_row(
            m.lab, m.title, f"{m.days[0]}-{m.days[1]}", str(m.minutes), m.checkpoint, m.goal
        )
    for p in meta.PLANNED:
        table.add_row(
            p["lab"], f"{p['title']} (planned)", f"{p['days'][0]}-{p['days'][1]}", "", "", ""
        )
    Console(width=140).print(table)


@lab_app.command("start")
def start_lab(
    lab: Annotated[str, typer.Argument(help="The lab's number, e.g. 05.")],
) -> None:
    """Build, in a fresh workspace/lab<NN>, the state the lab starts from (the real pipeline)."""
    from reference.labkit.checkpoint import start

    result = start(lab)
    if result.workspace is not None:
        typer.echo(
            f"ready: open labs/{result.meta.path.name}, or use the workspace from here with "
            f"`mlops-lab --workspace {result.rel(result.workspace)} status`"
        )
    else:
        typer.echo(f"lab {result.meta.lab} needs no state: open labs/{result.meta.path.name}")


@lab_app.command("map")
def lab_map(
    write: Annotated[bool, typer.Option(help="Rewrite the stale maps.")] = False,
    check: Annotated[bool, typer.Option(help="Exit 1 when a map is stale.")] = False,
) -> None:
    """Render labs/README.md's map and README.md's 90-day table from the labs' cards."""
    from reference.labkit import meta
    from reference.labkit.checkpoint import repo_root

    stale = meta.sync_maps(repo_root(), write=write)
    if not stale:
        typer.echo("the maps are in step with the labs' cards")
        return
    typer.echo(("rewrote: " if write else "stale: ") + ", ".join(stale))
    if check and not write:
        typer.echo("run `mlops-lab lab map --write` to refresh them", err=True)
        raise typer.Exit(1)


def assess(
    answers: Annotated[
        Path | None,
        typer.Option(
            help="A YAML file of answers {question: 0|1|2}; without it, the questions are asked "
            "one by one (a sample: reference/labkit/assess_sample.yaml)."
        ),
    ] = None,
) -> None:
    """The MLOps maturity self-assessment: Level 0/1/2 for training, deployment, monitoring."""
    from reference.labkit.assess import main

    raise typer.Exit(main(answers))
