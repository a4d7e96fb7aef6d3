"""The canary replayed offline (reference.loop.canary_replay) on synthetic scores: the split, the
late labels and the verdict day. The real flights and models: tests/integration/test_loop.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from reference.config import RolloutParams
from reference.loop.canary_replay import replay, seeded, summary

START = dt.date(2013, 9, 1)


def _scored(days: int = 30, per_day: int = 900, noise: float = 0.0, seed: int = 0):
    """``per_day`` flights a day; the champion ranks them by a signal, the candidate by the same
    signal plus ``noise`` (0: the same scores)."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    signal = rng.normal(size=n)
    label = (signal + rng.normal(size=n) > 0.8).astype(float)
    champion = 1 / (1 + np.exp(-signal))
    candidate = 1 / (1 + np.exp(-(signal + noise * rng.normal(size=n))))
    day = np.repeat([START + dt.timedelta(d) for d in range(days)], per_day)
    return pd.DataFrame({"day": day, "champion": champion, "candidate": candidate, "label": label})


def test_mirroring_pairs_four_times_the_flights_and_decides_sooner():
    scored, p = _scored(), RolloutParams()
    quarter = replay(scored, START, p, mirror=False)
    every = replay(scored, START, p, mirror=True)
    assert quarter.action == every.action == "promote"  # the same scores: never worse
    # day k's flights land on day k+1. Mirrored: 900 labelled a day, and the evidence must span
    # canary_min_days (4) days: day 5, 3,600 flights. At 25%: ~225 a day, 1,000 only on day 6
    assert every.days == p.canary_min_days + 1 == 5 and every.labelled == 3600
    assert quarter.days == 6 and 1000 <= quarter.labelled < 1300
    assert every.requests == 5 * (900 // 16 + 1)  # the traffic of days 1-5, 16 flights a request
    # with no rule on days, the labels alone decide: 1,800 on day 3
    one_day = replace(p, canary_min_days=1)
    assert replay(scored, START, one_day, mirror=True).days == 3


def test_a_much_worse_candidate_is_rolled_back_and_labels_never_come_from_the_future():
    p = RolloutParams()
    out = replay(_scored(noise=3.0), START, p, mirror=True)
    assert out.action == "rollback" and out.p_value is not None and out.p_value < p.alpha
    late = replay(_scored(noise=3.0), START, p, mirror=True, label_delay_days=3)
    assert late.days == out.days + 2  # each day's outcomes wait two days longer


def test_seeded_replays_start_on_days_that_leave_room_and_are_reproducible():
    scored, p = _scored(days=20), RolloutParams()
    runs = seeded(scored, p, range(5), mirror=True)
    assert all(START <= o.start <= START + dt.timedelta(20 - p.canary_max_days - 1) for o in runs)
    assert [o.start for o in runs] == [o.start for o in seeded(scored, p, range(5), mirror=True)]
    assert summary(runs) == {
        "replays": 5, "promoted": 5, "rolled_back": 0, "median_days": 5.0, "max_days": 5,
    }  # fmt: skip


def test_mistakes_say_what_is_missing():
    with pytest.raises(ValueError, match="missing \\['label'\\]"):
        replay(_scored().drop(columns="label"), START, RolloutParams(), mirror=True)
    with pytest.raises(ValueError, match="needs more than canary_max_days"):
        seeded(_scored(days=5), RolloutParams(), range(2), mirror=True)
