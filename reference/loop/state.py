"""The controller's memory: a state file written atomically after every step, and an event log.

A controller that is killed mid-rollout and started again reads ``state.json`` and carries on
from the phase it was in (it re-attaches to the router and the model servers, which are their own
processes and kept serving). ``events.jsonl`` is append-only: every decision with its reasons.

::

    workspace/loop/
      state.json      phase, champion, candidate, router, the simulated day
      events.jsonl    one JSON line per decision: day, kind, version, reasons, metrics
      ledger.jsonl    request id -> the flights (row ids) it carried: how late labels are joined
      router.jsonl    the router's log: who answered each request, each backend's scores
      timeline.png    the run drawn as a timeline (mlops-lab loop --timeline)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

IDLE, SHADOW, CANARY, PROMOTING, ROLLING_BACK = (
    "idle",
    "shadow",
    "canary",
    "promoting",
    "rolling_back",
)


@dataclass
class LoopState:
    """Where the controller is: phase, champion, candidate, router, the simulated day."""

    day: str | None = None  # the last simulated day whose traffic was replayed (ISO date)
    phase: str = IDLE
    scenario: str = "natural"
    champion: dict | None = None  # version, url, pid, trained_through, auc
    candidate: dict | None = None  # version, url, pid, fault, trained_through
    router: dict | None = None  # url, pid
    phase_since_day: str | None = None
    phase_since_time: float | None = None  # wall clock: router log lines after it are the evidence
    last_retrain_day: str | None = None
    last_retrain_landed: int | None = None  # the newest month the last retrain had
    last_check_day: str | None = None
    pending: dict | None = None  # the last check that found a trigger but had to wait
    decided: dict = field(default_factory=dict)  # version -> promoted | rolled_back (never twice)

    @classmethod
    def load(cls, path: Path) -> LoopState:
        if not path.exists():
            return cls()
        try:
            values = json.loads(path.read_text())
            if not isinstance(values, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            # save() is atomic, so this is damage from outside (a disk error, a hand edit):
            # guessing where the loop was could promote or kill the wrong model
            raise ValueError(
                f"{path} is unreadable ({e}): the controller cannot tell where it was. "
                "Start over with `mlops-lab loop --fresh`, or restore the file from a backup"
            ) from None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, path: Path) -> None:
        """Write to a temporary file and rename: a crash leaves the old state or the new, never half."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)


def _torn(line: str) -> bool:
    """A line that starts as an event but was cut short (append() ended it with a newline)."""
    return line.startswith("{") and not line.rstrip().endswith("}")


class EventLog:
    """Append-only JSON lines: what the controller decided, when, and why."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, day: str | None, kind: str, reasons=(), version=None, **metrics) -> dict:
        event = {
            "time": time.time(),
            "day": day,
            "kind": kind,
            "version": version,
            "reasons": list(reasons),
            "metrics": metrics,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"  # a killed writer's half line: end it, keep ours whole
            else:
                torn = False
            f.write((("\n" if torn else "") + json.dumps(event, default=_plain) + "\n").encode())
        return event

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        events = []
        for number, line in enumerate(lines, 1):
            try:
                events.append(json.loads(line))
            except ValueError:
                if number == len(lines) or _torn(line):
                    continue  # a controller killed mid-append leaves half a line: not an event
                raise ValueError(
                    f"{self.path} line {number} is not JSON: the event log was edited or damaged"
                ) from None
        return events


def _plain(value):
    """numpy scalars and NaN-free floats for JSON."""
    try:
        return value.item()
    except AttributeError:
        return str(value)
