"""The incidents a game day can draw, what each one breaks, and what fixes it (data only).

Each incident is one of the real scenarios of the Level 2 loop (reference/loop/traffic.py) or of
the monitoring lab, injected into the same real components: the upstream feed (traffic and the
monthly batch), the deployed model, a canary, or the label feed. A game never says which one it
drew; the on-call engineer finds it from the evidence and names it.

::

    layer      where the fault lives: feed | batch | model | canary | labels
    findings   what a shift of traffic shows while the incident is live (reference.gameday.shift)
    fix        the runbook's action (FIXES); the game checks the system is healthy after it
"""

from __future__ import annotations

from dataclasses import dataclass

# the findings a shift can report: key -> what it means, in the words of the status page
FINDINGS: dict[str, str] = {
    "errors": "requests are refused (4xx/5xx)",
    "collapsed": "every prediction is (nearly) the same score",
    "unknown": "categories the model never saw in many rows",
    "units": "the dew point is above the temperature in many rows (physically impossible)",
    "batch-bad": "the incoming monthly batch fails validation",
    "batch-waiting": "a valid monthly batch waits for a retrain that has not run",
    "canary-worse": "the canary's live AUC is below the champion's on the same flights",
    "candidate-down": "the canary's server times out or fails",
    "labels-stale": "outcomes of landed flights are not arriving",
}

# the actions `mlops-lab gameday fix` takes: name -> what it does, for --help and the status
FIXES: dict[str, str] = {
    "rollback-model": "move @champion back to the previous version, or end a canary (the "
    "candidate gets no traffic); seconds, nothing retrains",
    "rollback-data": "restore the project's data and params to the champion's data commit "
    "(git + dvc checkout); for a bad batch that got into the data",
    "rollback-both": "rollback-model, then rollback-data",
    "refuse-batch": "quarantine the incoming batch and file the contract breach with its "
    "sender, who fixes the feed",
    "contract": "ask the upstream sender to fix what they send (schema, codes, units, the "
    "label feed); the model and the data stay as they are",
    "retrain": "land the incoming batch and retrain on the newest labelled months (the "
    "pipeline, with the honest split; the gate decides)",
}


@dataclass(frozen=True)
class Incident:
    """One incident a game can draw: where it lives, what a shift shows, how it is fixed."""

    name: str
    title: str
    layer: str  # feed | batch | model | canary | labels
    story: str  # what happened, told after the game
    findings: tuple[str, ...]  # what a shift shows while it is live
    fix: str  # the runbook's action
    clues: tuple[str, ...]  # where an on-call engineer sees it, told as "what you missed"
    # how it is injected (read by reference.gameday.shift)
    traffic_fault: str = "none"  # reference.faults name applied to the traffic
    batch_fault: str | None = None  # an incoming batch (reference.faults name, or "none": clean)
    serving_fault: str = "none"  # the deployed champion serves with this predictor fault
    canary_fault: str | None = None  # a canary candidate serving with this fault
    canary_hang: bool = False  # the candidate's server stops answering
    labels_stop: bool = False

    @property
    def runbook(self) -> str:
        return f"docs/runbooks/{self.name}.md"


INCIDENTS: dict[str, Incident] = {
    i.name: i
    for i in (
        Incident(
            "celsius",
            "Celsius upstream",
            "batch",
            "the weather service switched temperature to Celsius (dew point stayed in "
            "Fahrenheit), in live traffic and in the monthly batch that arrived",
            ("units", "batch-bad"),
            "refuse-batch",
            (
                "the incoming batch's validation report fails on temp (dew point above temperature)",
                "in the served rows the dew point is above the temperature",
                "temp tops the drift list at several times its usual score; dewp stays at its usual level",
            ),
            traffic_fault="celsius",
            batch_fault="celsius",
        ),
        Incident(
            "rename-column",
            "A renamed column",
            "feed",
            "upstream renamed temp to temperature without telling anyone: every request is "
            "refused with a 4xx that names the missing field",
            ("errors",),
            "contract",
            (
                "model_requests_total by code: every request is a 400",
                "the server's 400 body names the missing field temp",
                "no alert fires: ErrorRateHigh counts 5xx only (a 4xx is the client's mistake), "
                "so a broken sender shows on the requests-by-code panel, not as a page",
            ),
            traffic_fault="rename_column",
        ),
        Incident(
            "new-carrier",
            "A new carrier code",
            "feed",
            "upstream recoded a fifth of the flights to a carrier code ZZ the model has never "
            "seen (a mapping table lost its entries); the unknown bucket scores them",
            ("unknown",),
            "contract",
            (
                'model_feature_unknown_category_total{feature="carrier"} climbs',
                "the alert UnknownCategorySpike",
                "the drift report: carrier drifted",
            ),
            traffic_fault="new_carrier",
        ),
        Incident(
            "constant-score",
            "A constant-score model",
            "model",
            "a new release of the champion (v2) answers 200 OK with the same score for every "
            "flight: working, and failing",
            ("collapsed",),
            "rollback-model",
            (
                "the score histogram: every prediction in one bucket",
                "the alert PredictionScoresCollapsed",
                "@champion moved to a new version just before the shift",
            ),
            serving_fault="constant",
        ),
        Incident(
            "bad-challenger",
            "A bad challenger in canary",
            "canary",
            "the candidate in canary passed the gate, but its container runs on another time "
            "zone and reads a 5 pm departure as 5 am: plausible scores, worse on live labels",
            ("canary-worse",),
            "rollback-model",
            (
                "the router log: per-variant live AUC on the same flights",
                "the candidate's scores look plausible: only the labels show it",
                "the candidate's own metrics (metrics-candidate.prom, the status's canary line): "
                "departure hours it never saw, because its clock is off by half a day",
            ),
            canary_fault="wrong-timezone",
        ),
        Incident(
            "hung-candidate",
            "A hung candidate",
            "canary",
            "the candidate's server stopped answering mid-shift; the router answered its share "
            "from the champion, so users saw only slower answers",
            ("candidate-down",),
            "rollback-model",
            (
                "the router log: the candidate's requests time out",
                "the candidate's readiness probe fails",
            ),
            canary_hang=True,
        ),
        Incident(
            "labels-stopped",
            "Labels that stop arriving",
            "labels",
            "the feed of flight outcomes stopped after the first day: nothing looks wrong, and "
            "nothing can be judged (live AUC has no data, a canary could never decide)",
            ("labels-stale",),
            "contract",
            (
                "the status: 0 of the landed flights have an outcome, and live AUC has no data",
                "no alert fires: with no labels the live-quality gauge has no value, so "
                "LiveQualityBelowFloor has nothing to compare",
            ),
            labels_stop=True,
        ),
        Incident(
            "drifted-month",
            "A drifted month",
            "batch",
            "November's batch arrived with its labels, valid, and drifted (the weather moved "
            "with the season); the retrain it should trigger has not run",
            ("batch-waiting",),
            "retrain",
            (
                "the incoming batch passed validation, with drift warnings only",
                "the batch's validation report: drift warnings on the weather, no failed check",
                "no contract is broken: no 4xx, no unknown codes, no impossible values",
            ),
            batch_fault="none",
        ),
    )
}


def incident(name: str) -> Incident:
    if name not in INCIDENTS:
        raise ValueError(f"unknown incident {name!r}; one of: {', '.join(INCIDENTS)}")
    return INCIDENTS[name]
