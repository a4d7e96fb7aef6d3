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
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

try:  # the modules below need tomllib and datetime.UTC
    from deps import LOCK, PYPROJECT
    from wheelhouse_files import check, download
    from wheelhouse_plan import SDIST_OK, requirements
    from wheelhouse_target import Target
except ImportError:  # Python < 3.11, common in a room: say so, not a traceback
    sys.exit(
        f"wheelhouse: this is Python {platform.python_version()}; mlops-lab needs 3.11+: install "
        "it (`uv python install 3.11`, pyenv or your OS), then make setup PYTHON=python3.11"
    )


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
