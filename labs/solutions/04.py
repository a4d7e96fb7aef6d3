"""Solutions to lab 04. Try each exercise first: the check under it tells you when you're right."""

import re

import yaml

from reference.pipeline import run_pipeline


def exercise_1(lab):
    log = lab.workspace / "exercise-1.log"
    run_pipeline(lab.settings, ["gate.max_calibration_error=0.01"], log=log)
    ran = re.findall(r"Running stage '([a-z]+)':", log.read_text())
    run_pipeline(lab.settings, ["gate.max_calibration_error=0.06"], log=log)
    return ran


def exercise_2(lab):
    log = lab.workspace / "exercise-2.log"
    weak = run_pipeline(lab.settings, ["train.hidden=[2]", "train.epochs=1"], log=log)
    return weak.gate["decision"]


def exercise_3(lab):
    workflow = yaml.safe_load((lab.root / ".github/workflows/model.yml").read_text())
    return workflow[True]["pull_request"]["paths"]  # YAML 1.1 reads the key `on` as True
