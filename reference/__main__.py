"""`python -m reference <command>`: what dvc.yaml's stages run (the venv's python, no PATH lookup)."""

from reference.cli import main

main()
