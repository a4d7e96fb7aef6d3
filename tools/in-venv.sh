#!/usr/bin/env bash
# Run a tool from the project's .venv when there is one, else from PATH (the conda route).
# The pre-commit hooks call tools through this, so `make lint` and a git hook installed with
# `make hooks` both work without an activated environment.
#   tools/in-venv.sh ruff check .
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tool="$1"
shift
if [ -x "$root/.venv/bin/$tool" ]; then
  exec "$root/.venv/bin/$tool" "$@"
fi
exec "$tool" "$@"
