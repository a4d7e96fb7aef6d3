"""The canary's decision replayed offline: how many days a verdict takes, and how often it is right.

A loop run decides one canary. Whether the decision rule keeps its promises (a candidate as good
as the champion is promoted, a worse one rolled back) and how long it takes are questions about
many canaries. This module replays the canary's arithmetic on flights both models have scored:
the router's split (the same sticky hash of the request id), requests of ``batch`` flights in
departure order, labels that land ``label_delay_days`` after the flight, and the very
``policy.canary_verdict`` the controller calls each day. Errors and latency are not replayed
(every answer is on time): the question here is the live labels.

::

    from reference.loop.canary_replay import replay, seeded
    outcome = replay(scored, start, params.rollout, mirror=True)       # one canary
    outcomes = seeded(scored, params.rollout, seeds=range(20), mirror=False)  # 20 start days

``scored`` has one row per flight, in departure order: ``day`` (a date), ``champion`` and
``candidate`` (the two models' probabilities), ``label`` (1 late, 0 on time, NaN no outcome).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reference.config import RolloutParams
from reference.loop import policy
from reference.loop.router import goes_to_candidate


@dataclass(frozen=True)
class CanaryOutcome:
    """One replayed canary: its decision, the day it came, and the evidence it rested on."""

    action: str  # promote | rollback (policy: no verdict within canary_max_days rolls back)
    days: int  # days from the start of the canary to the decision
    start: dt.date  # the day the canary began (its traffic starts the day after)
    requests: int  # requests both models scored
    labelled: int  # flights with an outcome when it decided
    p_value: float | None  # DeLong's one-sided p; None when it decided without the test
    reasons: tuple[str, ...]


def replay(
    scored: pd.DataFrame,
    start: dt.date,
    params: RolloutParams,
    mirror: bool,
    seed: int = 0,
    batch: int = 16,
    label_delay_days: int = 1,
) -> CanaryOutcome:
    """One canary that begins on ``start``: which requests both models score (the candidate's
    ``params.canary_percent`` share, or with ``mirror`` every request), and the controller's
    verdict day after day until it decides. ``seed`` salts the request ids, as a different run
    would: it moves which requests land on the candidate's side."""
    need = {"day", "champion", "candidate", "label"}
    missing = need - set(scored.columns)
    if missing:
        raise ValueError(
            f"scored flights need the columns {sorted(need)}; missing {sorted(missing)}"
        )
    by_day = {d: frame for d, frame in scored.groupby("day", sort=True)}
    champ: list[np.ndarray] = []
    cand: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    flown: list[np.ndarray] = []
    requests = 0
    for k in range(1, params.canary_max_days + 1):
        day = start + dt.timedelta(days=k)
        frame = by_day.get(day)
        if frame is not None:
            # the day's flights as the replay sends them: ``batch`` at a time, each its own id
            for i, first in enumerate(range(0, len(frame), batch)):
                rid = f"{seed}:{day.isoformat()}:{i}"
                if mirror or goes_to_candidate(rid, params.canary_percent):
                    requests += 1
                    part = frame.iloc[first : first + batch]
                    champ.append(part["champion"].to_numpy(float))
                    cand.append(part["candidate"].to_numpy(float))
                    labels.append(part["label"].to_numpy(float))
                    flown.append(np.full(len(part), k))
        # the controller ticks after the day's traffic: outcomes of flights flown by then land
        y = np.concatenate(labels) if labels else np.empty(0)
        when = np.concatenate(flown) if flown else np.empty(0)
        y = np.where(when <= k - label_delay_days, y, np.nan)
        paired = policy.Paired(
            requests=requests,
            candidate_errors=0,
            champion_latency_p95_ms=1.0,
            candidate_latency_p95_ms=1.0,
            champion_scores=np.concatenate(champ) if champ else np.empty(0),
            candidate_scores=np.concatenate(cand) if cand else np.empty(0),
            labels=y,
            labelled_days=len(np.unique(when[~np.isnan(y)])),
        )
        verdict = policy.canary_verdict(paired, params, k)
        if verdict.action != policy.WAIT:
            return CanaryOutcome(
                action=verdict.action,
                days=k,
                start=start,
                requests=requests,
                labelled=int(verdict.metrics.get("labelled", 0)),
                p_value=verdict.metrics.get("p_value"),
                reasons=verdict.reasons,
            )
    raise AssertionError("canary_verdict decides by canary_max_days")  # pragma: no cover


def seeded(
    scored: pd.DataFrame,
    params: RolloutParams,
    seeds: Iterable[int],
    mirror: bool,
    batch: int = 16,
    label_delay_days: int = 1,
) -> list[CanaryOutcome]:
    """One canary per seed, each starting on a day drawn by the seed among those that leave
    ``canary_max_days`` of traffic after it (and the same salt for its request ids)."""
    days = sorted(scored["day"].unique())
    last = len(days) - params.canary_max_days - 1
    if last < 1:
        raise ValueError(
            f"{len(days)} days of scored flights: a canary needs more than canary_max_days "
            f"({params.canary_max_days})"
        )
    out = []
    for seed in seeds:
        start = days[int(np.random.default_rng(seed).integers(0, last))]
        out.append(replay(scored, start, params, mirror, seed, batch, label_delay_days))
    return out


def scored_flights(
    flights: pd.DataFrame,
    champion,
    candidate,
    skew: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """``flights`` (ingest's frame) scored by both models, in departure order, with the outcome:
    the input of :func:`replay`. ``champion`` and ``candidate`` are bundles
    (reference.model.load_bundle); ``skew`` is what the candidate's server does to the rows
    before its model sees them (e.g. faults.wrong_timezone)."""
    from reference.features import TARGET

    ordered = flights.sort_values("sched_dep", kind="stable").reset_index(drop=True)
    seen = skew(ordered) if skew else ordered
    return pd.DataFrame(
        {
            "day": ordered["sched_dep"].dt.date,
            "champion": champion.predict_proba(ordered),
            "candidate": candidate.predict_proba(seen),
            "label": ordered[TARGET].astype("float64"),
        }
    )


def summary(outcomes: list[CanaryOutcome]) -> dict:
    """Counts of each decision and the days they took (median and worst)."""
    days = np.array([o.days for o in outcomes])
    return {
        "replays": len(outcomes),
        "promoted": sum(o.action == policy.PROMOTE for o in outcomes),
        "rolled_back": sum(o.action == policy.ROLLBACK for o in outcomes),
        "median_days": float(np.median(days)) if len(days) else float("nan"),
        "max_days": int(days.max()) if len(days) else 0,
    }
