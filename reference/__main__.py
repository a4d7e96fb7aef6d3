"""`python -m reference <command>`: what dvc.yaml's stages run (the venv's python, no PATH lookup)."""

import sys

from reference.runlock import guard_stage

# first, before the heavy imports: a stage must never outlive the pipeline run that started it
guard_stage()

from reference.warm import delegate  # noqa: E402  (stdlib only: no heavy import yet)

# under `mlops-lab pipeline` a stage runs in the warm runner; None: here, as its own process
code = delegate(sys.argv[1:])
if code is not None:
    raise SystemExit(code)

from reference.cli import main  # noqa: E402

main()
