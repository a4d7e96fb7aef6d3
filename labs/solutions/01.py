"""Solutions to lab 01. Try each exercise first."""

from __future__ import annotations

import numpy as np


def exercise_1(lab):
    """The carrier with the highest late share among carriers with at least 1,000 labelled flights."""
    frame = lab.facts["frame"]
    landed = frame[frame["delayed"].notna()]  # cancelled and diverted flights have no label
    by = landed.groupby("carrier")["delayed"].agg(["mean", "size"])
    return by.loc[by["size"] >= 1000, "mean"].idxmax()


def exercise_2(lab):
    """The cheapest threshold on August's scores when a miss costs 10 and a false alarm 1."""
    late = lab.facts["august"]["delayed"].to_numpy() == 1
    scores = lab.facts["scores"]
    best, lowest = None, None
    for threshold in np.round(np.arange(0.01, 1.0, 0.01), 2):
        flagged = scores >= threshold
        cost = 10 * np.sum(late & ~flagged) + 1 * np.sum(~late & flagged)
        if lowest is None or cost < lowest:
            best, lowest = float(threshold), cost
    return best


def exercise_3(lab):
    """The late share of flights scheduled at 6 pm or later, and before 9 am."""
    frame = lab.facts["frame"]
    landed = frame[frame["delayed"].notna()]
    evening = landed.loc[landed["hour"] >= 18, "delayed"].mean()
    morning = landed.loc[landed["hour"] < 9, "delayed"].mean()
    return float(evening), float(morning)
