"""YAML hygiene: every YAML file in the repository parses (all documents in a multi-document file).

Run it (pre-commit and ``make lint`` do)::

    python tools/check_yaml.py                  # every *.yml / *.yaml in the repository
    python tools/check_yaml.py environment.yml  # just these

It exits 1 and prints one line per file that does not parse, or exits 0 silently. Needs PyYAML
(a declared dependency). Environments, the git-ignored workspace and reports are not searched.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", ".venv-latest", "workspace", "reports", ".git", "node_modules"}
SUFFIXES = (".yml", ".yaml")


def check_yaml(path: Path) -> str | None:
    """Why ``path`` is not valid YAML, or None when every document in it parses."""
    try:
        with path.open(encoding="utf-8") as f:
            for _ in yaml.safe_load_all(f):
                pass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        return " ".join(str(e).split())
    return None


def find_yaml(root: Path) -> list[Path]:
    """The repository's YAML files, without environments and workspaces."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        found += [Path(folder, f) for f in files if f.endswith(SUFFIXES)]
    return sorted(found)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="With no FILE, checks every YAML file in the repository.",
    )
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE")
    args = parser.parse_args(list(argv) if argv is not None else None)
    failed = 0
    for path in args.files or find_yaml(ROOT):
        problem = check_yaml(path)
        if problem:
            print(f"{path}: {problem}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
