"""Notebook hygiene: committed notebooks keep their outputs, but nothing that leaks or breaks.

The labs are committed *with* their outputs (a reader sees what a run prints before running it),
so the outputs must be fit to publish:

- no machine paths (``/tmp/``, ``/root/``, ``/home/``, ``/Users/``, ``C:\\Users\\``, macOS's
  ``/var/folders/``, or the repository's own absolute path) in outputs, metadata or code;
- no error outputs (an ``error`` output or a traceback on stderr), except in a cell tagged
  ``raises-exception``, nbval's tag for an error the lab shows on purpose;
- no more than ``--max-output-mb`` (default 2) of outputs per notebook.

Markdown cells are not searched for paths: prose may name ``/tmp/`` on purpose.

Run it (pre-commit and ``make lint`` do)::

    python tools/check_notebooks.py                      # every notebook in the repository
    python tools/check_notebooks.py labs/01_*.ipynb      # just these

It exits 1 and prints one line per finding, or exits 0 silently. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Not the project's notebooks: environments, the git-ignored workspace, Jupyter's autosaves.
SKIP_DIRS = {".venv", ".venv-latest", "workspace", ".ipynb_checkpoints", ".git", "node_modules"}
MAX_OUTPUT_MB = 2.0
ALLOWED_ERROR_TAG = "raises-exception"

# A path that only makes sense on the machine that ran the notebook. The look-behind keeps
# URLs (example.org/tmp/) and relative paths (data/tmp/) out.
MACHINE_PATH = re.compile(
    r"(?<![\w.~\-/])(?:/tmp/|/root/|/home/|/Users/|/private/var/|/var/folders/)"
    r"|\b[A-Za-z]:\\+Users\\+"
)


@dataclass(frozen=True)
class Finding:
    """One problem in one notebook; ``cell`` is 0-based, None for the notebook as a whole."""

    path: Path
    cell: int | None
    problem: str

    def __str__(self) -> str:
        where = "" if self.cell is None else f" cell {self.cell}:"
        return f"{self.path}:{where} {self.problem}"


def _texts(value: object) -> Iterator[str]:
    """Every string inside a JSON value (outputs and metadata nest lists and dicts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)


def _path_patterns(repo_root: Path | None) -> list[re.Pattern[str]]:
    patterns = [MACHINE_PATH]
    if repo_root is not None and len(repo_root.parts) > 1:  # never "/" itself
        patterns.insert(0, re.compile(re.escape(str(repo_root))))  # the most telling: first
    return patterns


def _first_path(value: object, patterns: list[re.Pattern[str]]) -> str | None:
    """The first machine path in ``value``, with a little context, or None."""
    text = "\n".join(_texts(value))
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            end = min(len(text), match.end() + 40)
            return text[match.start() : end].splitlines()[0]
    return None


def _is_error(output: dict) -> str | None:
    """Why ``output`` is an error output, or None."""
    if output.get("output_type") == "error":
        return f"error output ({output.get('ename', '?')}: {output.get('evalue', '')})".strip()
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        text = "".join(_texts(output.get("text", "")))
        if "Traceback (most recent call last)" in text:
            return "traceback on stderr"
    return None


def check_notebook(
    path: Path, repo_root: Path | None = ROOT, max_output_mb: float = MAX_OUTPUT_MB
) -> list[Finding]:
    """Every hygiene problem in the notebook at ``path`` (an empty list when it is clean)."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return [Finding(path, None, f"not a readable notebook: {e}")]
    patterns = _path_patterns(repo_root)
    findings: list[Finding] = []

    where = _first_path(notebook.get("metadata", {}), patterns)
    if where:
        findings.append(Finding(path, None, f"machine path in notebook metadata: {where!r}"))

    output_bytes = 0
    for index, cell in enumerate(notebook.get("cells", [])):
        metadata = cell.get("metadata", {})
        outputs = cell.get("outputs", [])
        output_bytes += len(json.dumps(outputs).encode())
        if cell.get("cell_type") == "code":
            where = _first_path(cell.get("source", ""), patterns)
            if where:
                findings.append(Finding(path, index, f"machine path in code: {where!r}"))
        where = _first_path(metadata, patterns)
        if where:
            findings.append(Finding(path, index, f"machine path in cell metadata: {where!r}"))
        for output in outputs:
            where = _first_path(output, patterns)
            if where:
                findings.append(Finding(path, index, f"machine path in output: {where!r}"))
                break  # one per cell is enough to find it
        if ALLOWED_ERROR_TAG not in metadata.get("tags", []):
            for output in outputs:
                why = _is_error(output)
                if why:
                    findings.append(Finding(path, index, why))

    limit = int(max_output_mb * 1024 * 1024)
    if output_bytes > limit:
        findings.append(
            Finding(
                path,
                None,
                f"outputs are {output_bytes / 1024 / 1024:.1f} MB (limit {max_output_mb:g} MB):"
                " clear the large ones or make them smaller",
            )
        )
    return findings


def find_notebooks(root: Path) -> list[Path]:
    """The repository's notebooks, without environments, workspaces and autosaves."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]  # prune: never walk into .venv
        found += [Path(folder, f) for f in files if f.endswith(".ipynb")]
    return sorted(found)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="With no NOTEBOOK, checks every notebook in the repository.",
    )
    parser.add_argument("notebooks", nargs="*", type=Path, metavar="NOTEBOOK")
    parser.add_argument(
        "--max-output-mb",
        type=float,
        default=MAX_OUTPUT_MB,
        help=f"largest total size of one notebook's outputs (default {MAX_OUTPUT_MB:g})",
    )
    parser.add_argument(
        "--repo-root",
        type=Path,
        default=ROOT,
        help="the absolute path that must not appear (default: this repository)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    root = args.repo_root.resolve()
    notebooks = args.notebooks or find_notebooks(root)
    findings = [
        finding
        for notebook in notebooks
        for finding in check_notebook(notebook, root, args.max_output_mb)
    ]
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
