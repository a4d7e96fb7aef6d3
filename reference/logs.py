"""The libraries' logs go to the workspace; the terminal shows what the project says.

MLflow, alembic and friends log INFO lines ("Creating initial MLflow database tables...") that
mean nothing to a learner and bury the lines that do. ``quiet_libraries`` sends their records
to ``<workspace>/logs/libraries.log`` (opened only when something is written) and lets only
their warnings and errors through to the terminal.

::

    from reference.logs import quiet_libraries
    quiet_libraries(settings.workspace)

Call it before MLflow is imported where you can: MLFLOW_CONFIGURE_LOGGING=false stops MLflow
from installing its own terminal handler on import (and is inherited by the stage processes
DVC starts). Calling it later still works: the handlers are replaced.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# what is kept in the file: MLflow's INFO says what it did to the store; SQLAlchemy's and
# alembic's INFO is every mapper and migration step (thousands of lines), so warnings only
LIBRARIES = {
    "mlflow": logging.INFO,
    "alembic": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "urllib3": logging.WARNING,
    "git": logging.WARNING,
}
LOG_FILE = Path("logs") / "libraries.log"


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates its folder and file on the first record, not before: a
    `--help` or a read-only command leaves no trace in the workspace."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def quiet_libraries(workspace: Path | None = None, terminal_level: int = logging.WARNING) -> Path:
    """Route the libraries' records to the workspace log file; only ``terminal_level`` and up
    reach stderr. Returns the log file's path. Idempotent."""
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    if workspace is None:
        from reference.config import get_settings

        workspace = get_settings().workspace
    path = Path(workspace) / LOG_FILE
    to_file = _LazyFileHandler(path, delay=True)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(terminal_level)
    to_terminal.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
    for name, level in LIBRARIES.items():
        logger = logging.getLogger(name)
        for old in logger.handlers:
            if isinstance(old, logging.FileHandler):
                old.close()
        logger.handlers = [to_file, to_terminal]
        logger.setLevel(level)
        logger.propagate = False
    return path
