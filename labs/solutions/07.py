"""Solutions to lab 07. Try each exercise first.

Each function gets the lab and returns the answer that the exercise's check cell tests.
``lab.facts["events"]`` is the event log of the controller's run in section 4, and
``lab.facts["settings"]`` the loop's settings (its project, its registry).
"""

from __future__ import annotations

import datetime as dt
import subprocess

import yaml

from reference import registry
from reference.config import RetrainParams
from reference.loop import policy
from reference.loop.traffic import landed_month


def exercise_1(lab):
    """Drift and schedule quiet, 0.05 under the holdout AUC on exactly min_labelled labels."""
    p = RetrainParams()
    return policy.Health(
        drift_share=0.0,
        live_auc=0.66,
        labelled=p.min_labelled,
        champion_auc=0.71,
        champion_data_age_days=30,
        new_month_landed=True,
    )


def exercise_2(lab):
    """Step one day at a time from the retrain until both brakes are off."""
    p = RetrainParams()
    last = dt.date.fromisoformat(
        next(e for e in lab.facts["events"] if e["kind"] == "retrain")["day"]
    )
    day = last + dt.timedelta(days=1)
    while (day - last).days < p.cooldown_days or landed_month(day, p.label_delay_days) <= 8:
        day += dt.timedelta(days=1)
    return day


def exercise_3(lab):
    """The version's run -> data.commit -> that commit's dvc.lock -> the ingest stage."""
    settings = lab.facts["settings"]  # the loop's workspace, inside the lab's
    decided = next(e for e in lab.facts["events"] if e["kind"] in ("promote", "rollback"))
    commit = registry.version_run(settings, decided["version"]).data.tags["data.commit"]
    lock = subprocess.run(
        ["git", "show", f"{commit}:dvc.lock"],
        cwd=settings.project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ingest = yaml.safe_load(lock)["stages"]["ingest"]
    batches = next(o for o in ingest["outs"] if o["path"] == "data/batches")
    return {
        "commit": commit,
        "nfiles": batches["nfiles"],
        "landed_through": ingest["params"]["params.yaml"]["ingest"]["landed_through"],
    }
