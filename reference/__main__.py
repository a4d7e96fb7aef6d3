"""`python -m reference <command>`: what dvc.yaml's stages run (the venv's python, no PATH lookup)."""

from reference.runlock import guard_stage

# first, before the heavy imports: a stage must never outlive the pipeline run that started it
guard_stage()

from reference.cli import main  # noqa: E402

main()
