"""The wheelhouse on disk (tools/wheelhouse.py): the files' metadata and their walk, the manifest,
pip download, and the `download` and `check` commands.

Standard library only (plus tools/deps.py).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from deps import ROOT, norm, parse_pins
from wheelhouse_plan import SDIST_OK, Requirement, missing, parse_file_name, roots, satisfies
from wheelhouse_target import Target, _os, closure, wheel_misfit

MANIFEST = "MANIFEST.txt"


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
