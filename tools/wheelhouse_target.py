"""The machine a wheelhouse is for (tools/wheelhouse.py): its platform, the walk of requirements
under its markers, and whether a wheel's tags fit it.

Pure: no file, no network. Standard library only (plus tools/deps.py).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from deps import norm
from wheelhouse_plan import _REQ, marker_true


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
