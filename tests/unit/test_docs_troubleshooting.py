"""docs/troubleshooting.md says what the project really prints, and where upstream said it.

The page's project-error tables (a first column headed "message") quote each message in backticks,
with `<...>` for a part that changes and `...` for a part left out. Every fixed fragment of at
least MIN_FRAGMENT characters must appear in a string literal of reference/ (f-strings and
literals split across lines included), so a message reworded in the code fails here until the
page follows. Every row of the upstream section must cite an http(s) source. Reads files only.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "troubleshooting.md"
REFERENCE = ROOT / "reference"
MIN_FRAGMENT = 12  # shorter fixed parts ("port ", " = ") would match almost anything
# A fragment's edges next to a placeholder often belong to the value: the quotes of a repr, the
# brackets of a list (`unknown field(s) '<name>'`). They are not compared.
EDGES = " '\"[](){}:;,.`"
MIN_ROWS = 40
HOLE = "\x00"  # an f-string's {expression}: a fragment may not span it
PLACEHOLDER = re.compile(r"<[^<>]+>|\.\.\.")
LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _render(node: ast.JoinedStr) -> str:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(value.value)
        else:
            parts.append(HOLE)
    return "".join(parts)


@cache
def literals() -> str:
    """Every string literal under reference/, an f-string's expressions as holes, one per line.
    ast joins implicit concatenation ("a " "b", across lines) into one constant."""
    found = []
    for path in sorted(REFERENCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.JoinedStr):
                found.append(_render(node))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return "\x01".join(_squash(s) for s in found)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def _code(cell: str) -> str | None:
    """The text of a cell that is one code span (`x` or `` x `` with backticks inside)."""
    m = re.fullmatch(r"(`+)(.+?)\1", cell)
    return m.group(2).strip() if m else None


@cache
def tables() -> list[dict]:
    """Every markdown table of the page: its section, header, and rows with their line numbers."""
    found, section, current = [], "", None
    for number, line in enumerate(PAGE.read_text().splitlines(), start=1):
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("|"):
            if current is None:
                current = {"section": section, "header": _cells(line), "rows": []}
                found.append(current)
            elif not re.fullmatch(r"\|[\s:|-]+\|", line.strip()):
                current["rows"].append((number, line))
        else:
            current = None
    return found


def message_rows() -> list[tuple[int, str]]:
    return [
        (number, line)
        for t in tables()
        if t["header"][0] == "message"
        for number, line in t["rows"]
    ]


def fragments(message: str) -> list[str]:
    """The fixed parts of a quoted message that are long enough to mean something; when none is,
    the longest one (a message like `MLflow: <...>` still names its fixed word)."""
    parts = [_squash(p).strip(EDGES) for p in PLACEHOLDER.split(message)]
    parts = [p for p in parts if p]
    long = [p for p in parts if len(p) >= MIN_FRAGMENT]
    if long:
        return long
    longest = max(parts, key=len, default="")
    return [longest] if len(longest) >= 5 else []


def test_every_message_on_the_page_is_one_the_code_prints():
    corpus = literals()
    missing = []
    for number, line in message_rows():
        message = _code(_cells(line)[0])
        if message is None:
            missing.append(f"line {number}: the first column is not a message in backticks")
            continue
        parts = fragments(message)
        if not parts:
            missing.append(f"line {number}: {message!r} has no fixed text to check")
        missing += [
            f"line {number}: {part!r} (of {message!r}) is not in reference/"
            for part in parts
            if part not in corpus
        ]
    assert not missing, "\n".join(missing)


def test_the_page_covers_the_messages_a_learner_meets():
    rows = message_rows()
    assert len(rows) >= MIN_ROWS, f"{len(rows)} message rows, fewer than {MIN_ROWS}"


def test_every_upstream_row_cites_a_source():
    upstream = [t for t in tables() if t["section"].lower().startswith("upstream")]
    assert upstream, "no table under an 'Upstream' section"
    for t in upstream:
        assert t["rows"], "an upstream table without rows"
        for number, line in t["rows"]:
            assert LINK.search(line), f"line {number}: an upstream row without an http(s) link"


def test_a_reworded_message_is_caught():
    """The check itself: a message the code does not print fails, a real one passes."""
    corpus = literals()
    real = "another pipeline run is in progress in this workspace (pid <pid>, ...): wait for it"
    assert all(p in corpus for p in fragments(real))
    reworded = "another pipeline job is in progress in this workspace (pid <pid>)"
    assert not all(p in corpus for p in fragments(reworded))
