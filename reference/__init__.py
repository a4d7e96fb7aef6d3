"""mlops-lab reference implementation: one module per pipeline stage."""

__version__ = "0.1.0"
