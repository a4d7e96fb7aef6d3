"""The payload log: every prediction the server made, append-only, for later joins with outcomes.

Labels arrive late (a flight lands hours after the prediction), so live quality is measured by
joining this log with the outcomes when they come in. One JSON object per row:

    {"request_id": "...", "row": 0, "time": "2026-...Z", "model_version": "3",
     "features": {...}, "probability": 0.23, "label": 0}

Files are ``payload-<UTC timestamp>.jsonl`` in one folder, rotated by size: a new file starts
when the current one passes ``max_bytes``. Nothing is ever rewritten.

    from reference.serve.payload_log import read_payload_log
    df = read_payload_log("workspace/serving/payload")   # one row per prediction
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd


class PayloadLog:
    def __init__(self, folder: str | Path, max_bytes: int = 50 * 1024 * 1024):
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._file = None
        self._path: Path | None = None

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self._path = self.folder / f"payload-{stamp}.jsonl"
        self._file = self._path.open("ab")

    def append(
        self,
        request_id: str,
        version: str,
        columns: dict[str, list],
        proba: np.ndarray,
        label: np.ndarray,
    ) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        names = list(columns)
        features = [
            dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)
        ]
        # orjson (KServe's own JSON library) is ~10x faster than json.dumps per row, which
        # dominated a 64-row request; NaN cannot occur here (the schema turned it into null)
        import orjson

        lines = [
            orjson.dumps(
                {
                    "request_id": request_id,
                    "row": i,
                    "time": now,
                    "model_version": version,
                    "features": f,
                    "probability": round(float(p), 6),
                    "label": int(y),
                }
            )
            for i, (f, p, y) in enumerate(
                zip(features, proba.tolist(), label.tolist(), strict=True)
            )
        ]
        with self._lock:
            if self._file is None or self._file.tell() > self.max_bytes:
                self.close()
                self._open()
            self._file.write(b"\n".join(lines) + b"\n")
            self._file.flush()

    @property
    def path(self) -> Path | None:
        return self._path

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_payload_log(folder: str | Path) -> pd.DataFrame:
    """All rows of all files, features as columns, in time order."""
    records = []
    for path in sorted(Path(folder).glob("payload-*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            records.extend(json.loads(line) for line in fh if line.strip())
    if not records:
        return pd.DataFrame(
            columns=["request_id", "row", "time", "model_version", "probability", "label"]
        )
    df = pd.json_normalize(records)
    df.columns = [c.removeprefix("features.") for c in df.columns]
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df.sort_values(["time", "request_id", "row"], ignore_index=True)
