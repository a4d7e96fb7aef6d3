"""What a learner sees when a command fails: one message that says what to do, not a traceback.

``explain(exc)`` turns the exceptions a predictable mistake raises (no model registered yet, no
server listening, a workspace that cannot be written, a full disk, a bad value) into a message.
Anything else is a bug: the message says so, the traceback is saved to
``<workspace>/logs/last-error.txt`` for the bug report, and ``mlops-lab --debug ...`` (or
MLOPS_LAB_DEBUG=1) shows it in the terminal instead.
"""

from __future__ import annotations

import errno
import os
import traceback
from pathlib import Path

DEBUG_ENV = "MLOPS_LAB_DEBUG"
LAST_ERROR = Path("logs") / "last-error.txt"

_WORKSPACE_HINT = "choose a writable workspace with --workspace DIR or MLOPS_LAB_WORKSPACE=DIR"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def _os_error(e: OSError) -> str | None:
    where = f" {e.filename}" if e.filename else ""
    if isinstance(e, PermissionError) or e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: permission denied or read-only; {_WORKSPACE_HINT}"
    if e.errno == errno.ENOTDIR:
        return f"cannot create{where}: a file is in the way of that folder; {_WORKSPACE_HINT}"
    if e.errno == errno.ENOSPC:
        return f"the disk is full{where and ' at' + where}: free some space, or {_WORKSPACE_HINT}"
    if e.errno == errno.EADDRINUSE:
        return (
            f"the port is already in use ({e.strerror}): stop what holds it, or pick another --port"
        )
    if e.errno == errno.ECONNREFUSED:
        return "nothing is listening there: start the model server first (`mlops-lab serve`)"
    return None


def explain(e: BaseException) -> str | None:
    """The learner's message for a predictable failure, or None when it is a bug."""
    from urllib.error import URLError

    name = type(e).__name__
    if name == "MlflowException":
        text = str(e).splitlines()[0] if str(e) else name
        if "Registered Model with name=" in text and "not found" in text:
            return (
                "no model is registered in this workspace yet: run `mlops-lab pipeline` first "
                f"({text})"
            )
        if "alias" in text.lower() and ("not found" in text or "does not exist" in text.lower()):
            # MLflow's sentence ends with a period; ours follows it as a sentence of its own
            return (
                f"{text.rstrip('.')}. Run `mlops-lab pipeline` first, or name a version with "
                "models:/NAME/N"
            )
        return f"MLflow: {text}"
    if name == "SelfCheckFailed":
        return str(e)
    if isinstance(e, URLError):
        reason = e.reason
        if isinstance(reason, OSError) and (explained := _os_error(reason)):
            return explained
        return f"no answer from the server ({reason}): is it running? (`mlops-lab serve`)"
    if isinstance(e, OSError) and (explained := _os_error(e)):
        return explained
    if isinstance(e, FileNotFoundError) and e.filename and not Path(e.filename).is_absolute():
        # a stage run by hand, out of order: its input is an earlier stage's output
        return (
            f"{e.filename} is missing: an earlier stage writes it. Run the stages in order, "
            "or all of them with `mlops-lab pipeline`"
        )
    if isinstance(e, ValueError | FileNotFoundError | RuntimeError | KeyError):
        return str(e).strip("'\"") or name
    return None


def save_traceback(e: BaseException, workspace: Path) -> Path | None:
    """Keep the traceback where the bug report can find it; None when that is not possible."""
    path = workspace / LAST_ERROR
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(e)))
    except OSError:
        return None
    return path


def bug_message(e: BaseException, saved: Path | None) -> str:
    first = str(e).splitlines()[0] if str(e) else ""
    lines = [f"unexpected error: {type(e).__name__}{': ' + first if first else ''}"]
    lines.append("  this looks like a bug in mlops-lab, not something you did.")
    if saved:
        lines.append(f"  the traceback is in {saved}")
    lines.append(
        "  to report it: run the command again as `mlops-lab --debug ...`, and paste its output"
        " with the block `mlops-lab doctor` prints"
    )
    return "\n".join(lines)
