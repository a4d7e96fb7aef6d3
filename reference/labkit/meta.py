"""Lab metadata: one card per lab, in the lab's own first cell, and the maps made from it.

The first cell of every notebook in labs/ is markdown: a title line, then a fenced ``yaml``
block (the Carpentries put the same facts in an episode's front matter)::

    lab: "05"
    title: Serving with KServe
    phase: 2
    days: [41, 50]
    goal: ...
    builds_on: ...          # the DevOps skill the lab starts from
    new: ...                # what is new for a DevOps engineer
    minutes: {teaching: 40, exercises: 30}
    modules: [serve, registry]
    checkpoint: champion    # the state reference.labkit.checkpoint builds before the lab

labs/README.md's map and README.md's 90-day table are rendered from these cards between
``<!-- lab-map -->`` markers (`mlops-lab lab map --write`); a test fails when they differ, when a
lab on disk has no row, or a row has no lab.

::

    mlops-lab lab list             # the cards as a table
    mlops-lab lab map --check      # exit 1 when a map is stale
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

PHASES = {
    1: "Days 1-30: Level 0 and foundations",
    2: "Days 31-60: Level 1",
    3: "Days 61-90: Level 2, the cluster, a game day",
}
REQUIRED = ("lab", "title", "phase", "days", "goal", "builds_on", "new", "minutes", "modules")
CHECKPOINTS = ("none", "workspace", "champion", "traffic")
_FENCE = re.compile(r"```yaml\n(.*?)```", re.S)
MARKERS = {
    "labs": ("<!-- lab-map:start -->", "<!-- lab-map:end -->"),
    "plan": ("<!-- plan-map:start -->", "<!-- plan-map:end -->"),
}

# Phase 3 labs that have no notebook yet: what covers the days meanwhile. A row here whose
# notebook exists fails a test, so this list can only shrink.
PLANNED: tuple[dict, ...] = ()


class MetadataError(ValueError):
    """A lab's first cell lacks its card, or the card is incomplete."""


@dataclass(frozen=True)
class LabMeta:
    """One lab's card, as its first cell states it."""

    lab: str
    title: str
    phase: int
    days: tuple[int, int]
    goal: str
    builds_on: str
    new: str
    teaching: int
    exercises: int
    modules: tuple[str, ...]
    checkpoint: str
    path: Path

    @property
    def minutes(self) -> int:
        return self.teaching + self.exercises

    @property
    def day_range(self) -> str:
        first, last = self.days
        return f"day {first}" if first == last else f"days {first}-{last}"


def parse_card(text: str, path: Path) -> LabMeta:
    """The card in a first cell's markdown; raises MetadataError naming what is missing."""
    found = _FENCE.search(text)
    if not found:
        raise MetadataError(
            f"{path.name}: the first cell has no ```yaml card (see reference/labkit/meta.py)"
        )
    card = yaml.safe_load(found.group(1)) or {}
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise MetadataError(f"{path.name}: the lab card lacks {', '.join(missing)}")
    lab = str(card["lab"])
    if not path.name.startswith(f"{lab}_"):
        raise MetadataError(f"{path.name}: the card says lab {lab!r}, the file name says otherwise")
    days = tuple(card["days"]) if isinstance(card["days"], list) else (card["days"],) * 2
    checkpoint = card.get("checkpoint", "none")
    if checkpoint not in CHECKPOINTS:
        raise MetadataError(f"{path.name}: checkpoint {checkpoint!r} is not one of {CHECKPOINTS}")
    return LabMeta(
        lab=lab,
        title=str(card["title"]),
        phase=int(card["phase"]),
        days=(int(days[0]), int(days[1])),
        goal=str(card["goal"]).strip(),
        builds_on=str(card["builds_on"]).strip(),
        new=str(card["new"]).strip(),
        teaching=int(card["minutes"]["teaching"]),
        exercises=int(card["minutes"]["exercises"]),
        modules=tuple(card["modules"]),
        checkpoint=checkpoint,
        path=path,
    )


def read(path: str | Path) -> LabMeta:
    """The card of one notebook."""
    path = Path(path)
    cells = json.loads(path.read_text())["cells"]
    if not cells or cells[0]["cell_type"] != "markdown":
        raise MetadataError(f"{path.name}: the first cell must be the lab card (markdown)")
    return parse_card("".join(cells[0]["source"]), path)


def all_labs(labs_dir: str | Path) -> list[LabMeta]:
    """Every lab in the folder (``NN_*.ipynb``), in order."""
    return [read(p) for p in sorted(Path(labs_dir).glob("[0-9][0-9]_*.ipynb"))]


def find(labs_dir: str | Path, lab_id: str) -> LabMeta:
    """One lab by its number ("5" and "05" both work)."""
    want = str(lab_id).zfill(2)
    found = sorted(Path(labs_dir).glob(f"{want}_*.ipynb"))
    if len(found) == 1:
        return read(found[0])
    known = ", ".join(sorted({p.name[:2] for p in Path(labs_dir).glob("[0-9][0-9]_*.ipynb")}))
    many = f"{len(found)} notebooks are" if found else "no notebook is"
    raise MetadataError(f"{many} lab {lab_id!r}; the labs are {known}")


def _days(days) -> str:
    first, last = days
    return str(first) if first == last else f"{first}-{last}"


def _modules(mods) -> str:
    return ", ".join(f"`{m}`" for m in mods) or "-"


def render_lab_map(labs: list[LabMeta]) -> str:
    """The table of labs/README.md (links relative to labs/)."""
    rows = [
        "| # | lab | days | goal | builds on | minutes (teach + exercises) | modules |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in labs:
        rows.append(
            f"| {m.lab} | [{m.title}]({m.path.name}) | {_days(m.days)} | {m.goal} "
            f"| {m.builds_on} | {m.teaching} + {m.exercises} | {_modules(m.modules)} |"
        )
    for p in PLANNED:
        rows.append(
            f"| {p['lab']} | {p['title']} (planned) | {_days(p['days'])} "
            f"| meanwhile: {p['today'].replace('](docs/', '](../docs/')} | | | {_modules(p['modules'])} |"
        )
    return "\n".join(rows)


def render_plan(labs: list[LabMeta]) -> str:
    """The 90-day table of README.md (links relative to the repository root)."""
    rows = [
        "| phase | days | lab | what you learn | modules in `reference/` |",
        "|---|---|---|---|---|",
    ]
    entries = [(m.phase, m.days, m.lab, m) for m in labs] + [
        (p["phase"], tuple(p["days"]), p["lab"], p) for p in PLANNED
    ]
    last_phase = None
    for phase, days, _, m in sorted(entries, key=lambda e: (e[1], e[2])):
        label = PHASES[phase] if phase != last_phase else ""
        last_phase = phase
        if isinstance(m, LabMeta):
            lab = f"[{m.lab} {m.title}](labs/{m.path.name})"
            rows.append(f"| {label} | {_days(days)} | {lab} | {m.new} | {_modules(m.modules)} |")
        else:
            rows.append(
                f"| {label} | {_days(days)} | {m['lab']} {m['title']} (planned) "
                f"| meanwhile: {m['today']} | {_modules(m['modules'])} |"
            )
    return "\n".join(rows)


def splice(text: str, which: str, table: str) -> str:
    """Replace what sits between the two markers of ``which`` in a markdown page."""
    begin, end = MARKERS[which]
    if begin not in text or end not in text:
        raise MetadataError(f"the page has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def sync_maps(root: str | Path, write: bool = False) -> list[str]:
    """Render both maps from the cards; with ``write`` update the pages. Returns the stale pages.
    (The site's learning path renders the same cards itself: docs/_ext/mlops_docs.py.)"""
    root = Path(root)
    labs = all_labs(root / "labs")
    stale = []
    for page, which, table in (
        (root / "labs" / "README.md", "labs", render_lab_map(labs)),
        (root / "README.md", "plan", render_plan(labs)),
    ):
        text = page.read_text()
        new = splice(text, which, table)
        if new != text:
            name = str(page.relative_to(root))
            stale += [] if name in stale else [name]
            if write:
                page.write_text(new)
    return stale
