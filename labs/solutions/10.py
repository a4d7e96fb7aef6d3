"""Solutions to lab 10. Try each exercise first.

Each function gets the lab and returns the answer that the exercise's check cell tests.
"""

from __future__ import annotations


def exercise_1(lab):
    """Triage from the raw facts, in the order an on-call reads the page: is anything refused,
    is the canary the problem, is the model constant, are the inputs broken, the labels, the batch."""

    def triage(e) -> str:
        refused = sum(n for code, n in e.codes.items() if not code.startswith("2"))
        if e.requests and refused / e.requests > 0.05:
            return "rename-column"  # every request refused: a schema the server does not accept
        c = e.canary
        if c and c["requests"]:
            if c["failed"] / c["requests"] > 0.01 or not c.get("ready"):
                return "hung-candidate"
            if c.get("p_worse") is not None and c["labelled"] >= 200 and c["p_worse"] < 0.05:
                return "bad-challenger"
        if e.rows >= 100 and e.spread < 0.01:
            return "constant-score"
        if max(e.unknown.values(), default=0.0) > 0.05:
            return "new-carrier"
        if e.units_share > 0.2 or (e.batch and not e.batch["passed"]):
            return "celsius"  # the dew point above the temperature: a unit change upstream
        if e.expected_labelled >= 100 and e.labelled < 0.5 * e.expected_labelled:
            return "labels-stopped"
        if e.batch and e.batch["passed"]:
            return "drifted-month"  # a valid batch waiting for its retrain
        return "healthy"  # drift warnings alone are this data's normal week

    return triage


def exercise_2(lab):
    """The runbook's actions (docs/runbooks/), and why a data rollback is wrong for a canary."""
    return {
        "actions": {
            "celsius": "refuse-batch",
            "rename-column": "contract",
            "new-carrier": "contract",
            "constant-score": "rollback-model",
            "bad-challenger": "rollback-model",
            "hung-candidate": "rollback-model",
            "labels-stopped": "contract",
            "drifted-month": "retrain",
        },
        # the candidate's clock is wrong, not its data: ending the canary is the whole fix
        "why_not_rollback_data": "a",
    }


def exercise_3(lab):
    """A team after the 90 days: the sample team of lab 00, with what it took from the labs."""
    from reference.labkit import assess

    answers, _team = assess.load_answers(assess.SAMPLE)
    answers |= {
        "data_validation": 2,  # every incoming batch validated before a retrain
        "validation_gate": 2,  # the canary judged on live labels with DeLong
        "drift_detection": 2,  # drift over a window triggers the retrain
        "live_quality": 1,  # a daily job joins the late labels with the payload log
    }
    # the weakest-link rule: a column at its weakest practice, the team at its weakest column
    columns = {
        c: min(answers[q.id] for q in assess.QUESTIONS if q.column == c) for c in assess.COLUMNS
    }
    return {"answers": answers, "level": min(columns.values())}
