"""The operating threshold: counts at each threshold, the way an alert threshold trades pages for misses."""

from __future__ import annotations

import numpy as np

from reference import metrics


def test_confusion_at_matches_counting_by_hand():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3000)
    p = np.round(rng.random(3000) * 0.7 + y * 0.2, 2)  # rounded: many ties, some on a threshold
    thresholds = np.round(np.arange(0.0, 1.01, 0.05), 2)
    c = metrics.confusion_at(y, p, thresholds)
    for i, t in enumerate(thresholds):
        flagged = p >= t
        assert c["tp"][i] == (flagged & (y == 1)).sum()
        assert c["fp"][i] == (flagged & (y == 0)).sum()
        assert c["fn"][i] == (~flagged & (y == 1)).sum()
        assert c["tn"][i] == (~flagged & (y == 0)).sum()
        precision, recall = metrics.precision_recall(y, flagged)
        if flagged.any():
            assert precision == c["tp"][i] / (c["tp"][i] + c["fp"][i])
        assert recall == c["tp"][i] / y.sum()


def test_the_ends_flag_everything_or_nothing():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.4, 0.4, 0.0])
    c = metrics.confusion_at(y, p, [0.0, 0.4, 1.5])
    assert c["tp"].tolist() == [3, 2, 0]  # at 0 every flight is flagged; above every score none
    assert c["fp"].tolist() == [2, 1, 0]  # p == t is flagged: 0.4 >= 0.4
    assert (c["tp"] + c["fp"] + c["fn"] + c["tn"] == len(y)).all()


def test_a_calibrated_score_is_cheapest_near_the_cost_ratio():
    rng = np.random.default_rng(5)
    p = rng.random(200_000)
    y = rng.random(200_000) < p  # outcomes drawn from the scores: calibrated
    thresholds = np.round(np.arange(0.01, 1.0, 0.01), 2)
    c = metrics.confusion_at(y, p, thresholds)
    cost = 4 * c["fn"] + 1 * c["fp"]  # a miss costs 4 false alarms
    best = thresholds[int(np.argmin(cost))]
    assert abs(best - 1 / (1 + 4)) <= 0.02  # flag when p >= cost_fp / (cost_fp + cost_fn)
