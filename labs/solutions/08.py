"""Solutions to lab 08. Try each exercise first.

Each function gets the lab and returns the answer that the exercise's check cell tests.
Section 4 puts ``events``, ``loop`` (the loop's folder), ``se``, ``labelled`` and
``labelled_per_day`` into ``lab.facts``.
"""

from __future__ import annotations

import json

from reference.loop import policy
from reference.loop.router import goes_to_candidate


def exercise_1(lab):
    """The labels a gap of 0.10 needs, spread over 3 days: the share of a day's labels that is."""
    need = policy.labels_needed(0.10, lab.facts["se"], lab.facts["labelled"])
    percent = 1
    while 3 * lab.facts["labelled_per_day"] * percent / 100 < need:
        percent += 1
    return percent


def exercise_2(lab):
    """Every canary line of the router's log, against the hash the router splits by."""
    log = lab.facts["loop"] / "router.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    canary = [r for r in lines if r["mode"] == "canary"]
    return {
        "requests": len(canary),
        "candidate": sum(r["served_by"] == "candidate" for r in canary),
        "sticky": all(
            (r["served_by"] == "candidate") == goes_to_candidate(r["request_id"], 25)
            for r in canary
        ),
    }


def exercise_3(lab):
    """a: the rollout already did it. b: the model. c: both. d: the data. e: a retrain, not a rollback."""
    return {"a": "nothing", "b": "model", "c": "both", "d": "data", "e": "nothing"}
