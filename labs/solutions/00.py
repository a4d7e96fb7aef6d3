"""Solutions to lab 00. Try each exercise first: the check under it tells you when you're right."""

from reference.labkit import assess, meta, toolmap


def exercise_1(lab):
    # Start from the sample team and change what differs for yours: here, a team that already
    # joins its late labels with the predictions (live quality at Level 1).
    answers, _team = assess.load_answers(assess.SAMPLE)
    answers["live_quality"] = 1
    return answers


def exercise_2(lab):
    # The first lab in the row whose MLOps column names the Model Registry.
    row = next(r for r in toolmap.ROWS if "Model Registry" in r.mlops)
    return row.labs[0]


def exercise_3(lab):
    return sum(m.minutes for m in meta.all_labs(lab.root / "labs") if m.phase == 1)
