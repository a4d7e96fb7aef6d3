"""Solutions to lab 02. Try each exercise first: the check under it tells you when you're right."""

import json
import subprocess

import yaml

from reference.pipeline import run_pipeline


def _july_checks(lab, fault, column):
    """Inject ``fault``, return July's checks of ``column`` that are not ok, then restore."""
    settings = lab.settings
    log = lab.workspace / f"exercise-{fault}.log"  # the stage output, out of the notebook
    try:
        run_pipeline(settings, [f"ingest.inject_fault={fault}"], targets=["transform"], log=log)
        report = json.loads((settings.project / "reports/validation.json").read_text())
        return [
            (c["check"], c["severity"])
            for c in report["checks"]
            if c["batch"] == "2013-07" and c["column"] == column and c["severity"] != "ok"
        ]
    finally:
        run_pipeline(settings, ["ingest.inject_fault=none"], targets=["transform"], log=log)


def exercise_1(lab):
    return _july_checks(lab, "null_carrier", "carrier")


def exercise_2(lab):
    checks = dict(_july_checks(lab, "new_carrier", "carrier"))
    return checks.get("unseen_category", "ok")


def exercise_3(lab):
    project = lab.settings.project
    # the oldest commit made by a pipeline run (the very first commit holds only the definition)
    log = subprocess.run(
        ["git", "log", "--reverse", "--format=%h %s"],
        cwd=project, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    first = next(line.split()[0] for line in log if "pipeline run" in line)
    lock = subprocess.run(
        ["git", "show", f"{first}:dvc.lock"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    outs = yaml.safe_load(lock)["stages"]["ingest"]["outs"]
    return next(o["md5"] for o in outs if o["path"] == "data/batches")
