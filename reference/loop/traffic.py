"""Live traffic for Level 2: the 2013 flights after the training window, replayed day by day.

Each simulated day, that day's flights are sent to the router as prediction requests (in
departure order, ``batch`` flights per request), and the request ids are written to a ledger.
Labels arrive late: a flight's outcome is known ``label_delay_days`` after its departure day,
and only then can it be joined (request id -> flights -> outcome) with what the models said.

Scenarios inject what happens in production on the real data: the seasons drift by themselves
(``natural``); an upstream unit change, a renamed column or a new carrier code hit the traffic
from a given day; a candidate that is broken, skewed, crashes or hangs is what the next rollout
gets; a wrong label (``bad-labels``) reaches the landed data and the live labels alike.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reference.features import TARGET

# columns of the ingested frame that are not sent to the model (the label among them)
NOT_SENT = ("row_id", "sched_dep", "year", "day", "flight", "status", "arr_delay", TARGET)


@dataclass(frozen=True)
class Scenario:
    """One story of a run: what breaks (the traffic, the data, the next candidate) and when."""

    name: str
    description: str
    candidate_fault: str = "none"  # what the next candidate serves with (predictor --fault)
    candidate_incident: str | None = None  # crash | hang, one day into the canary
    traffic_fault: str = "none"  # reference.faults name applied to traffic from fault_from
    fault_from: str | None = None  # ISO day
    data_fault: bool = False  # the landed month of the fault carries it too (validate's job)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "natural",
            "the seasons drift by themselves: a winter-trained champion meets the summer",
        ),
        Scenario(
            "bad-challenger",
            "the next candidate passes the gate, but its container runs on another time zone and "
            "reads a 5 pm departure as 5 am (training/serving skew): plausible scores that pass "
            "the shadow, worse on live labels",
            candidate_fault="wrong-timezone",
        ),
        Scenario(
            "broken-model",
            "the next candidate answers 200 OK with a constant score",
            candidate_fault="constant",
        ),
        Scenario(
            "crash",
            "the next candidate's server dies one day into the canary",
            candidate_incident="crash",
        ),
        Scenario(
            "hang",
            "the next candidate's server stops answering one day into the canary",
            candidate_incident="hang",
        ),
        Scenario(
            "celsius",
            "from August 15 an upstream system sends temperatures in Celsius, in traffic and data",
            traffic_fault="celsius",
            fault_from="2013-08-15",
            data_fault=True,
        ),
        Scenario(
            "rename-column",
            "from August 15 an upstream system renames temp to temperature",
            traffic_fault="rename_column",
            fault_from="2013-08-15",
        ),
        Scenario(
            "new-carrier",
            "from August 15 a new carrier code appears in traffic",
            traffic_fault="new_carrier",
            fault_from="2013-08-15",
        ),
        Scenario(
            "bad-labels",
            "from August 25 the upstream job that computes the arrival delay reads Chicago's "
            "arrivals on Eastern time: nearly every ORD flight is labelled late, in the landed "
            "data and in the live labels; every feature is right, so validation passes. Then "
            "the three rollbacks side by side (reference/loop/drill.py)",
            traffic_fault="arrival_timezone",
            fault_from="2013-08-25",
            data_fault=True,
        ),
    )
}


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def day_of(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def landed_month(day: dt.date, delay_days: int) -> int:
    """The newest month whose every outcome is known at the end of ``day`` (0: none yet)."""
    known_until = day - dt.timedelta(days=delay_days)
    nxt = dt.date(known_until.year, known_until.month, 28) + dt.timedelta(days=4)
    last_of_month = nxt - dt.timedelta(days=nxt.day)
    month = known_until.month if known_until == last_of_month else known_until.month - 1
    return month if known_until.year == 2013 else (12 if known_until.year > 2013 else 0)


def month_end(month: int) -> dt.date:
    return dt.date(2013, 12, 31) if month == 12 else dt.date(2013, month + 1, 1) - dt.timedelta(1)


class Ledger:
    """request id -> (day, row ids): written as requests go out, read to join late labels."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, tuple[str, list[int]]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                self.rows[entry["request_id"]] = (entry["day"], entry["row_ids"])

    def add(self, entries: list[tuple[str, str, list[int]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            for request_id, day, row_ids in entries:
                self.rows[request_id] = (day, row_ids)
                f.write(
                    json.dumps({"request_id": request_id, "day": day, "row_ids": row_ids}) + "\n"
                )


class Traffic:
    """The year's flights (ingest's join, without faults), served one day at a time."""

    def __init__(self, flights: pd.DataFrame, plan: Scenario):
        self.flights = flights
        self.plan = plan
        days = flights["sched_dep"].dt.date
        self.by_day = {d: idx for d, idx in flights.groupby(days).groups.items()}
        self.label = pd.Series(flights[TARGET].to_numpy(), index=flights["row_id"].to_numpy())
        self.label_day = pd.Series(days.to_numpy(), index=flights["row_id"].to_numpy())
        from reference import faults

        if plan.traffic_fault in faults.LABEL_FAULTS:
            # the outcomes come from the same upstream job as the landed data: from the day it
            # broke, the labels the loop joins carry its defect too (the truth is ingest's)
            hit = (days >= day_of(plan.fault_from)).to_numpy()
            wrong = faults.inject(flights[hit], plan.traffic_fault)
            self.label.loc[wrong["row_id"].to_numpy()] = wrong[TARGET].to_numpy()

    @classmethod
    def load(cls, plan: Scenario) -> Traffic:
        from reference import ingest

        return cls(ingest.build(*ingest.load_raw()), plan)

    def frame(self, day: dt.date) -> pd.DataFrame:
        """The flights of one day, as the upstream system sends them (faults included)."""
        idx = self.by_day.get(day)
        if idx is None:
            return self.flights.iloc[:0]
        frame = self.flights.loc[idx].reset_index(drop=True)
        if self.plan.traffic_fault != "none" and day >= day_of(self.plan.fault_from):
            from reference import faults

            frame = faults.inject(frame, self.plan.traffic_fault)
        return frame

    def labels(self, row_ids: np.ndarray, as_of: dt.date, delay_days: int) -> np.ndarray:
        """Outcomes known on ``as_of``: NaN for a flight too recent (or cancelled: no outcome)."""
        y = self.label.reindex(row_ids).to_numpy(dtype="float64")
        flown = self.label_day.reindex(row_ids).to_numpy()
        cutoff = as_of - dt.timedelta(days=delay_days)
        y[np.array([d > cutoff for d in flown], dtype=bool)] = np.nan
        return y


def instances(frame: pd.DataFrame) -> list[dict]:
    """V1 instances of whatever columns upstream sent (a renamed column stays renamed)."""
    cols = [c for c in frame.columns if c not in NOT_SENT]
    part = frame[cols].astype(object)
    return part.where(part.notna(), None).to_dict(orient="records")


def send_day(
    http, url: str, model: str, frame: pd.DataFrame, day: dt.date, ledger: Ledger, batch: int = 16
) -> dict[int, int]:
    """Send one day of flights; returns {HTTP status: count}. Never raises on a bad answer."""
    codes: dict[int, int] = {}
    entries = []
    for i, start in enumerate(range(0, len(frame), batch)):
        part = frame.iloc[start : start + batch]
        request_id = f"{day.isoformat()}-{i:04d}"
        entries.append((request_id, day.isoformat(), part["row_id"].astype(int).tolist()))
        try:
            resp = http.post(
                f"{url}/v1/models/{model}:predict",
                json={"instances": instances(part)},
                headers={"x-request-id": request_id},
            )
            code = resp.status_code
        except Exception:  # the router itself did not answer: counted, the replay goes on
            code = 0
        codes[code] = codes.get(code, 0) + 1
    ledger.add(entries)
    return codes
