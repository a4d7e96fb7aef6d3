"""The payload log: every prediction the server made, append-only, for later joins with outcomes.

Labels arrive late (a flight lands hours after the prediction), so live quality is measured by
joining this log with the outcomes when they come in. One JSON object per row::

    {"request_id": "...", "row": 0, "time": "2026-...Z", "model_version": "3",
     "features": {...}, "probability": 0.23, "label": 0}

Files are ``payload-<UTC timestamp>.jsonl`` in one folder, rotated by size: a new file starts
when the current one passes ``max_bytes``. Nothing is ever rewritten.

Several server workers may append to the same file: each request's lines go out in one
``os.write`` on a file opened with ``O_APPEND``, which the kernel appends whole, so no line is
ever cut by another process's (a buffered file object may split a large write in two). A worker
gets the log by pickling: it reopens the file itself.

A write that fails (disk full, read-only disk, no permission) loses that request's records but
never the prediction: ``append`` returns False, the server counts it
(``payload_log_write_errors_total``) and warns once on stderr, and the next request tries the
same file again, so writing resumes by itself once there is space.

::

    from reference.serve.payload_log import read_payload_log
    df = read_payload_log("workspace/serving/payload")   # one row per prediction
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd


class PayloadLog:
    """Append-only JSONL files of every prediction in ``folder``, rotated at ``max_bytes``."""

    def __init__(self, folder: str | Path, max_bytes: int = 50 * 1024 * 1024):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.write_errors = 0  # requests whose records could not be written
        self._lock = threading.Lock()
        self._fd: int | None = None
        # named now, created on the first write: the server can say where it will write
        self._path = self._new_path()

    def __getstate__(self) -> dict:
        # a worker process gets the folder and the file's name; a lock and a descriptor don't
        # travel, so it opens its own (O_APPEND: the workers' lines interleave whole)
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_fd")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock(), _fd=None)

    def _new_path(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return self.folder / f"payload-{stamp}.jsonl"

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # append: a reopen after a failure keeps what is there, and every write lands at the end
        # of the file even when other processes write to it too
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def append(
        self,
        request_id: str,
        version: str,
        columns: dict[str, list],
        proba: np.ndarray,
        label: np.ndarray,
    ) -> bool:
        """Append one record per row; False when the write failed (the records are lost)."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        names = list(columns)
        records = [
            {
                "request_id": request_id,
                "row": i,
                "time": now,
                "model_version": version,
                "features": dict(zip(names, row, strict=False)),  # a row of the n columns: n values
                "probability": round(float(p), 6),
                "label": int(y),
            }
            for i, (row, p, y) in enumerate(
                zip(
                    zip(*columns.values(), strict=True), proba.tolist(), label.tolist(), strict=True
                )
            )
        ]
        data = _json_lines(records)
        with self._lock:
            try:
                if self._fd is not None and os.fstat(self._fd).st_size > self.max_bytes:
                    self.close()
                    self._path = self._new_path()
                if self._fd is None:
                    self._open()
                _write_all(self._fd, data)
                return True
            except OSError as e:
                self._drop()
                self.write_errors += 1
                error, first = e, self.write_errors == 1
        if first:  # once, not once per request: a full disk would flood the log that reports it
            print(
                f"WARNING payload log: cannot write {self._path}: {error}. Predictions are still "
                "answered, but their records are lost until the write succeeds again; each "
                "failed request is counted in payload_log_write_errors_total. "
                "(This warning is shown once.)",
                file=sys.stderr,
                flush=True,
            )
        return False

    def _drop(self) -> None:
        # the records that just failed are gone; the next write reopens the file
        with contextlib.suppress(OSError):
            self.close()

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _json_lines(records: list[dict]) -> bytes:
    """Each record as one line of JSON, the same bytes as ``orjson.dumps`` of each record: one
    orjson call for them all, its array cut at the records' boundaries (a 64-row request spent
    more in 64 calls than in the encoding). Every record starts with the key "request_id", and a
    quote inside a string is escaped, so ``},{"request_id":`` occurs only between records.

    orjson (KServe's own JSON library) is ~10x faster than json.dumps; NaN cannot occur here
    (the schema turned it into null)."""
    import orjson

    if not records:
        return b""
    blob = orjson.dumps(records)
    return blob[1:-1].replace(b'},{"request_id":', b'}\n{"request_id":') + b"\n"


def _write_all(fd: int, data: bytes) -> None:
    """One write for the whole chunk; the loop only matters when the kernel takes part of it
    (a disk filling up), and then the next write raises."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_payload_log(folder: str | Path) -> pd.DataFrame:
    """All rows of all files, features as columns, in time order."""
    import orjson  # the server's own writer; NaN never occurs in the log (null instead)

    records = []
    for path in sorted(Path(folder).glob("payload-*.jsonl")):
        with path.open("rb") as fh:
            records.extend(orjson.loads(line) for line in fh if line.strip())
    if not records:
        return pd.DataFrame(
            columns=["request_id", "row", "time", "model_version", "probability", "label"]
        )
    df = pd.json_normalize(records)
    df.columns = [c.removeprefix("features.") for c in df.columns]
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values(["time", "request_id", "row"], ignore_index=True)
