"""The site's own Sphinx extension: the labs, the maps and the module contracts, from one source.

- The labs: labs/NN_*.ipynb are copied into docs/labs/ (git-ignored) before Sphinx reads, with
  their committed outputs, and labs/solutions/ becomes one page. Nothing is executed.
- docs/_generated/lab-plan.md (included by the learning path): the 90 days from the labs' own
  cards (reference.labkit.meta), the same source as labs/README.md and README.md's map.
- ``{tool-map}``: the DevOps -> MLOps rows of reference.labkit.toolmap, linked to labs and modules.
- ``{assessment}``: the maturity questions of reference.labkit.assess, answer by answer.
- ``{module-contract} reference.X``: what importing a module pulls in (``:imports:``, checked by
  tests/unit/test_module_isolation.py in a fresh interpreter) and, read from its source, the
  project modules it needs and what it imports lazily.
- ``{lab-figure} NN cell-id``: a figure a lab printed when it was committed, from its outputs.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
SOLUTIONS_PAGE = "solutions"


def _write_if_changed(path: Path, data: bytes) -> None:
    # Unchanged bytes keep their mtime, so an incremental build rereads only what changed.
    # Written aside and renamed: two builds at once never read a half-written copy.
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def copy_labs(app: Sphinx, config) -> None:
    """labs/*.ipynb -> docs/labs/, and one page for labs/solutions/."""
    out = Path(app.srcdir) / "labs"
    out.mkdir(exist_ok=True)
    wanted = {p.name for p in LABS.glob("[0-9][0-9]_*.ipynb")}
    for old in out.iterdir():
        if old.name not in wanted and old.name != f"{SOLUTIONS_PAGE}.md":
            old.unlink() if old.is_file() else shutil.rmtree(old)
    for name in sorted(wanted):
        _write_if_changed(out / name, (LABS / name).read_bytes())
    lines = [
        "# The exercises' solutions",
        "",
        "One file per lab, in `labs/solutions/`. Try the exercise first: the lab's check cell says",
        "what is wrong with an attempt, which teaches more than reading the answer.",
        "",
    ]
    for path in sorted((LABS / "solutions").glob("[0-9][0-9].py")):
        lines += [
            f"## Lab {path.stem}",
            "",
            f"```{{literalinclude}} ../../labs/solutions/{path.name}",
            ":language: python",
            "```",
            "",
        ]
    _write_if_changed(out / f"{SOLUTIONS_PAGE}.md", "\n".join(lines).encode())


def _doc_link(source: str, text: str) -> str:
    """A link to a page by its source path under docs/ (with its suffix: MyST resolves it)."""
    return f"[{text}](project:/{source})"


def _lab_doc(path: Path) -> str:
    return f"labs/{path.name}"


def _module_doc(name: str) -> str | None:
    """The module page for a card's module name (``serve`` or ``loop``), if it has one."""
    page = Path(__file__).resolve().parents[1] / "modules" / f"{name.replace('.', '-')}.md"
    return f"modules/{page.name}" if page.exists() else None


def _modules_md(mods) -> str:
    out = []
    for m in mods:
        doc = _module_doc(m)
        out.append(_doc_link(doc, f"`{m}`") if doc else f"`{m}`")
    return ", ".join(out) or "-"


class _MarkdownDirective(SphinxDirective):
    """A directive that renders markdown and parses it in the page's own parser."""

    def markdown(self) -> str:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        return self.parse_text_to_nodes(self.markdown())


def lab_plan() -> str:
    """The 90 days, phase by phase, from the labs' cards, as markdown with real sections (the
    learning path includes it: a directive's headings would not be sections of the page)."""
    from reference.labkit import meta

    labs = meta.all_labs(LABS)
    out: list[str] = []
    for phase, title in meta.PHASES.items():
        in_phase = [m for m in labs if m.phase == phase]
        minutes = sum(m.minutes for m in in_phase)
        out += [f"## {title}", "", f"{len(in_phase)} labs, about {minutes / 60:.1f} hours with "
                "the exercises.", ""]  # fmt: skip
        for m in in_phase:
            out += [
                f"### {m.lab} {m.title}",
                "",
                f"{m.day_range.capitalize()} · {m.teaching} min teaching + {m.exercises} "
                f"min exercises · starts from: {m.checkpoint} · "
                f"{_doc_link(_lab_doc(m.path), 'open the lab')}",
                "",
                f"**Goal.** {m.goal}.",
                "",
                f"**What is new.** {m.new}.",
                "",
                f"**Builds on** what you know: {m.builds_on}.",
                "",
                f"**Modules:** {_modules_md(m.modules)}",
                "",
            ]
    return "\n".join(out)


def write_generated(app: Sphinx, config) -> None:
    """Pages made from the project's own sources, included by hand-written ones."""
    _write_if_changed(Path(app.srcdir) / "_generated" / "lab-plan.md", lab_plan().encode())


class ToolMap(_MarkdownDirective):
    """The DevOps -> MLOps table, each row linked to its labs and modules."""

    def markdown(self) -> str:
        from reference.labkit import meta, toolmap

        self.env.note_dependency(toolmap.__file__)
        by_id = {m.lab: m for m in meta.all_labs(LABS)}
        rows = ["| you know | in MLOps | here | where in the code | lab |", "|---|---|---|---|---|"]
        for r in toolmap.ROWS:
            labs = ", ".join(_doc_link(_lab_doc(by_id[n].path), n) for n in r.labs)
            try:
                where = ", ".join(_where(w) for w in r.where)
            except ValueError as err:
                raise self.error(str(err)) from None
            rows.append(f"| {r.devops} | {r.mlops} | {r.here} | {where} | {labs} |")
        return "\n".join(rows)


def _where(item: str) -> str:
    """A module name links to its page; a manifest path links to the cluster page."""
    if "/" in item:
        if not (ROOT / item).exists():
            raise ValueError(f"tool map: {item} does not exist")
        return _doc_link("cluster.md", f"`{item}`")
    doc = _module_doc(item)
    if doc is None:
        raise ValueError(f"tool map: {item!r} has no page under docs/modules/")
    return _doc_link(doc, f"`reference.{item}`")


class Assessment(_MarkdownDirective):
    """The self-assessment's questions and what each level's answer looks like."""

    def markdown(self) -> str:
        from reference.labkit import assess

        self.env.note_dependency(assess.__file__)
        by_id = {p.stem.split("_")[0]: p for p in LABS.glob("[0-9][0-9]_*.ipynb")}
        out: list[str] = []
        for column in assess.COLUMNS:
            out += [f"### {column.capitalize()}", ""]
            for q in (q for q in assess.QUESTIONS if q.column == column):
                labs = ", ".join(_doc_link(_lab_doc(by_id[n]), n) for n in q.labs)
                out += [f"**{q.text}** (`{q.id}`; labs {labs})", ""]
                for level, answer in enumerate(q.answers):
                    out.append(f"- Level {level}: {answer}")
                out.append("")
        return "\n".join(out)


def _imports(tree: ast.Module) -> tuple[set[str], set[str], set[str]]:
    """(third-party imported at module level, third-party imported inside functions, project
    modules imported anywhere) of one module's source. reference/ imports absolutely only."""
    top, lazy, project = set(), set(), set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module:
                names = [child.module]
                if child.module.split(".")[0] == "reference":
                    # `from reference import ingest` names a module: keep the imported names
                    names = [f"{child.module}.{a.name}" for a in child.names]
            for name in names:
                head = name.split(".")[0]
                if head == "reference":
                    project.add(name)
                elif head not in sys.stdlib_module_names and head != "__future__":
                    (lazy if inner else top).add(head)
            visit(child, inner)

    visit(tree, False)
    return top, lazy - top, project


def _project_modules(names: set[str]) -> list[str]:
    """Project imports reduced to module names that exist (``reference.serve.schema``)."""
    out = set()
    for name in names:
        parts = name.split(".")
        while parts:
            path = ROOT.joinpath(*parts)
            if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
                out.add(".".join(parts))
                break
            parts.pop()
    return sorted(out)


def module_source(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


class ModuleContract(SphinxDirective):
    """A box: what importing the module pulls in, and what it needs from its source."""

    required_arguments = 1
    option_spec = {"imports": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        module = self.arguments[0]
        source = module_source(module)
        if not source.exists():
            raise self.error(f"module-contract: no source file for {module} ({source})")
        self.env.note_dependency(str(source))
        text = source.read_text()
        tree = ast.parse(text)
        top, lazy, project = _imports(tree)
        declared = sorted(
            n.strip() for n in (self.options.get("imports") or "").split(",") if n.strip()
        )
        project_mods = [m for m in _project_modules(project) if m != module]
        lines = [
            f":::{{admonition}} Contract of `{module}`",
            ":class: tip",
            "",
            f"- **Source:** `{source.relative_to(ROOT)}` ({len(text.splitlines())} lines)",
            "- **Importing it pulls in:** "
            + (", ".join(f"`{n}`" for n in declared) or "the standard library only")
            + " (checked in a fresh interpreter by `tests/unit/test_module_isolation.py`)",
            "- **Imported by its own code at module level:** "
            + (", ".join(f"`{n}`" for n in sorted(top)) or "the standard library only"),
            "- **Imported only when a function needs it:** "
            + (", ".join(f"`{n}`" for n in sorted(lazy)) or "nothing more"),
            "- **Project modules it uses** (copy them too, or replace them): "
            + (", ".join(f"`{m}`" for m in project_mods) or "none"),
            ":::",
        ]
        return self.parse_text_to_nodes("\n".join(lines))


class LabFigure(SphinxDirective):
    """A PNG a lab printed when it was committed: ``{lab-figure} 06 c40-e82853d8``, the
    content is the caption."""

    required_arguments = 2
    optional_arguments = 1  # which PNG of the cell, when it printed several (0 = the first)
    has_content = True
    option_spec = {"width": directives.unchanged, "alt": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        lab, cell_id = self.arguments[:2]
        which = int(self.arguments[2]) if len(self.arguments) > 2 else 0
        found = sorted(LABS.glob(f"{lab}_*.ipynb"))
        if len(found) != 1:
            raise self.error(f"lab-figure: no lab {lab!r}")
        self.env.note_dependency(str(found[0]))
        cells = json.loads(found[0].read_text())["cells"]
        cell = next((c for c in cells if c.get("id") == cell_id), None)
        if cell is None:
            raise self.error(f"lab-figure: lab {lab} has no cell {cell_id!r}")
        pngs = [o["data"]["image/png"] for o in cell.get("outputs", [])
                if "image/png" in o.get("data", {})]  # fmt: skip
        if len(pngs) <= which:
            raise self.error(f"lab-figure: cell {cell_id} of lab {lab} printed no PNG #{which}")
        data = base64.b64decode(
            pngs[which] if isinstance(pngs[which], str) else "".join(pngs[which])
        )
        name = f"lab{lab}-{hashlib.sha1(data).hexdigest()[:12]}.png"
        target = Path(self.env.srcdir) / "_generated" / name
        _write_if_changed(target, data)
        caption = "\n".join(self.content) or f"From lab {lab}."
        width = self.options.get("width", "100%")
        alt = self.options.get("alt", caption.splitlines()[0])
        text = (f"```{{figure}} /_generated/{name}\n:width: {width}\n:alt: {alt}\n\n"
                f"{caption}\n\n(from {_doc_link(_lab_doc(found[0]), f'lab {lab}')}, as "
                "committed)\n```")  # fmt: skip
        return self.parse_text_to_nodes(text)


def factory_defaults(app, what, name, obj, options, signature, return_annotation):
    """A dataclass field with ``default_factory`` shows as ``<factory>``, which is not Python and
    breaks the signature's parsing: show ``...`` (the default is made fresh per instance)."""
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


def setup(app: Sphinx) -> dict:
    app.connect("autodoc-process-signature", factory_defaults)
    app.connect("config-inited", copy_labs)
    app.connect("config-inited", write_generated)
    app.add_directive("tool-map", ToolMap)
    app.add_directive("assessment", Assessment)
    app.add_directive("module-contract", ModuleContract)
    app.add_directive("lab-figure", LabFigure)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
