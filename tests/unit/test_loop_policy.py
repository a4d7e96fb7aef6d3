"""The Level 2 rules, table-driven: each row is a situation and the decision the policy must take."""

from __future__ import annotations

import numpy as np
import pytest

from reference.config import RetrainParams, RolloutParams
from reference.loop import policy
from reference.loop.policy import PASS, PROMOTE, RETRAIN, ROLLBACK, WAIT, Health, Paired

R = (
    RetrainParams()
)  # drift_share 0.05, quality_drop 0.03, min_labelled 2000, cooldown 14, schedule 60

RETRAIN_CASES = [
    # (id, health, expected action, a phrase the reasons must hold)
    (
        "calm",
        Health(0.0, live_auc=0.70, labelled=5000, champion_auc=0.70, new_month_landed=True),
        WAIT,
        "no trigger",
    ),
    ("drift", Health(0.6, ("temp",), new_month_landed=True), RETRAIN, "drift share 0.60"),
    ("drift-at-threshold", Health(0.05, new_month_landed=True), RETRAIN, "drift share 0.05"),
    ("drift-under-threshold", Health(0.04, new_month_landed=True), WAIT, "no trigger"),
    (
        "drift-names-its-reference",
        Health(0.07, ("temp",), new_month_landed=True, reference="v1's months 4-5"),
        RETRAIN,
        "drift share 0.07 >= 0.05 (temp) against v1's months 4-5",
    ),
    ("drift-no-new-data", Health(0.6, new_month_landed=False), WAIT, "waiting for labels"),
    (
        "drift-in-cooldown",
        Health(0.6, days_since_retrain=5, new_month_landed=True),
        WAIT,
        "cooldown",
    ),
    (
        "drift-after-cooldown",
        Health(0.6, days_since_retrain=14, new_month_landed=True),
        RETRAIN,
        "drift",
    ),
    (
        "quality-drop",
        Health(0.0, live_auc=0.64, labelled=3000, champion_auc=0.70, new_month_landed=True),
        RETRAIN,
        "live AUC 0.640",
    ),
    (
        "quality-drop-few-labels",
        Health(0.0, live_auc=0.60, labelled=500, champion_auc=0.70, new_month_landed=True),
        WAIT,
        "no trigger",
    ),
    (
        "quality-small-dip",
        Health(0.0, live_auc=0.68, labelled=3000, champion_auc=0.70, new_month_landed=True),
        WAIT,
        "no trigger",
    ),
    (
        "schedule",
        Health(0.0, champion_data_age_days=61, new_month_landed=True),
        RETRAIN,
        "schedule",
    ),
    (
        "schedule-not-yet",
        Health(0.0, champion_data_age_days=59, new_month_landed=True),
        WAIT,
        "no trigger",
    ),
    ("no-measurement", Health(None, new_month_landed=True), WAIT, "no trigger"),
]


@pytest.mark.parametrize(
    "health,expected,phrase", [c[1:] for c in RETRAIN_CASES], ids=[c[0] for c in RETRAIN_CASES]
)
def test_retrain_decision(health, expected, phrase):
    verdict = policy.retrain_decision(health, R)
    assert verdict.action == expected, verdict.reasons
    assert any(phrase in r for r in verdict.reasons), verdict.reasons


def test_training_split_never_reaches_into_the_future():
    split = policy.training_split(8)
    assert split["split.train_end"] == 6 and split["ingest.landed_through"] == 8
    # the gate's holdout is the newest landed month, and nothing after it
    assert (
        split["split.train_end"] + split["split.valid_months"] + split["split.holdout_months"] == 8
    )
    with pytest.raises(ValueError, match="three landed months"):
        policy.training_split(2)


P = RolloutParams()
RNG = np.random.default_rng(0)
CHAMP = RNG.beta(2, 6, 4000)  # scores around 0.25, like the champion's


def paired(requests=200, errors=0, lat=(5.0, 6.0), cand=None, labels=None):
    cand = CHAMP + RNG.normal(0, 0.01, len(CHAMP)) if cand is None else cand
    return Paired(requests, errors, lat[0], lat[1], CHAMP, np.clip(cand, 0, 1), labels)


SHADOW_CASES = [
    ("healthy", paired(), PASS, "shadow passed"),
    ("too-early", paired(requests=10), WAIT, "10/40 requests"),
    ("no-scored-rows", paired(cand=np.array([])), WAIT, "0 scored rows"),
    ("errors", paired(errors=5), ROLLBACK, "candidate errors 5/200"),
    ("one-error-too-early", paired(requests=10, errors=1), ROLLBACK, "candidate errors"),
    ("slow", paired(lat=(5.0, 20.0)), ROLLBACK, "4.0x"),
    ("constant-score", paired(cand=np.full(len(CHAMP), 0.27)), ROLLBACK, "collapsed"),
    ("another-kind", paired(cand=1 - CHAMP), ROLLBACK, "KS"),
    ("better-calibrated-is-fine", paired(cand=np.clip(CHAMP * 0.6, 0, 1)), PASS, "shadow passed"),
]


@pytest.mark.parametrize(
    "evidence,expected,phrase", [c[1:] for c in SHADOW_CASES], ids=[c[0] for c in SHADOW_CASES]
)
def test_shadow_verdict(evidence, expected, phrase):
    verdict = policy.shadow_verdict(evidence, P)
    assert verdict.action == expected, verdict.reasons
    assert any(phrase in r for r in verdict.reasons), verdict.reasons


def _labels_for(scores, known=1.0, seed=1):
    """Outcomes drawn from the scores themselves: a model that knows them is calibrated."""
    rng = np.random.default_rng(seed)
    y = (rng.random(len(scores)) < scores).astype(float)
    y[rng.random(len(scores)) >= known] = np.nan
    return y


def test_canary_promotes_a_candidate_that_is_not_worse():
    truth = CHAMP
    verdict = policy.canary_verdict(
        paired(cand=truth + RNG.normal(0, 0.005, len(truth)), labels=_labels_for(truth)), P, days=3
    )
    assert verdict.action == PROMOTE, verdict.reasons
    assert "not worse on live labels" in verdict.reasons[0] and "DeLong" in verdict.reasons[0]
    assert verdict.metrics["p_value"] >= P.alpha


def test_canary_rolls_back_a_candidate_worse_on_live_labels():
    # the candidate's scores carry less of the truth: same distribution, shuffled rows
    worse = RNG.permutation(CHAMP)
    verdict = policy.canary_verdict(paired(cand=worse, labels=_labels_for(CHAMP)), P, days=3)
    assert verdict.action == ROLLBACK, verdict.reasons
    assert "worse on live labels" in verdict.reasons[0]
    assert verdict.metrics["p_value"] < P.alpha
    assert verdict.metrics["candidate_auc"] < verdict.metrics["champion_auc"]


def test_canary_waits_for_labels_then_gives_up():
    few = _labels_for(CHAMP, known=0.1)  # ~400 labelled rows < canary_min_labelled
    assert policy.canary_verdict(paired(labels=few), P, days=2).action == WAIT
    late = policy.canary_verdict(paired(labels=few), P, days=P.canary_max_days)
    assert late.action == ROLLBACK and "no verdict" in late.reasons[0]


def test_canary_waits_until_its_labels_span_enough_days():
    """Plenty of labels from too few days (a mirrored canary's first days) is not yet evidence:
    a day's flights share its weather. Where the days are unknown the rule does not apply."""
    from dataclasses import replace

    labels = _labels_for(CHAMP)  # 4,000 labelled rows, well over canary_min_labelled
    early = replace(paired(cand=CHAMP, labels=labels), labelled_days=P.canary_min_days - 2)
    wait = policy.canary_verdict(early, P, days=3)
    assert wait.action == WAIT and "from 2/4 days" in wait.reasons[0], wait.reasons
    assert wait.metrics["labelled_days"] == 2
    spread = replace(early, labelled_days=P.canary_min_days)
    assert policy.canary_verdict(spread, P, days=5).action == PROMOTE
    assert policy.canary_verdict(replace(early, labelled_days=None), P, days=3).action == PROMOTE


@pytest.mark.parametrize(
    "evidence,phrase",
    [
        (paired(errors=3), "candidate errors"),
        (paired(lat=(5.0, 50.0)), "p95"),
        (paired(cand=np.full(len(CHAMP), 0.27)), "collapsed"),
    ],
    ids=["errors", "latency", "distribution"],
)
def test_canary_rolls_back_at_once_on_errors_latency_or_distribution(evidence, phrase):
    verdict = policy.canary_verdict(evidence, P, days=0)  # no labels needed for these
    assert verdict.action == ROLLBACK
    assert any(phrase in r for r in verdict.reasons), verdict.reasons


def test_ks_distance():
    a = np.linspace(0, 1, 1000)
    assert policy.ks_distance(a, a) == 0.0
    assert policy.ks_distance(a, a + 2) == 1.0
    assert 0.45 < policy.ks_distance(a, a + 0.5) < 0.55


def test_delong_matches_the_aucs_and_is_one_sided():
    from reference.metrics import roc_auc

    y = _labels_for(CHAMP)
    known = ~np.isnan(y)
    y, champ = y[known], CHAMP[known]
    worse = np.where(RNG.random(len(champ)) < 0.5, RNG.permutation(champ), champ)
    diff, p = policy.delong_test(y, worse, champ)
    assert diff == pytest.approx(roc_auc(y, worse) - roc_auc(y, champ), abs=1e-9)
    assert diff < 0 and p < 0.01  # worse, and the test says so
    diff, p = policy.delong_test(y, champ, worse)
    assert diff > 0 and p > 0.99  # better: no evidence at all that it is worse
    assert policy.delong_test(y, champ, champ) == (0.0, 1.0)  # identical: nothing to act on


def test_a_better_ranking_is_not_rolled_back_for_its_calibration():
    """The September case: the candidate ranks better but its scores sit higher."""
    y = _labels_for(CHAMP)
    shifted = np.clip(CHAMP + 0.15, 0, 1)  # same ranking, worse calibration
    verdict = policy.canary_verdict(paired(cand=shifted, labels=y), P, days=3)
    assert verdict.action == PROMOTE, verdict.reasons
    assert verdict.metrics["log_loss_diff"] > 0  # log loss alone would have rolled it back


def test_a_shadow_without_evidence_gives_up_after_its_deadline():
    # every request refused (a renamed column upstream): no pair of answers to judge
    empty = paired(requests=0, cand=np.array([]))
    assert policy.shadow_verdict(empty, P, days=1).action == WAIT
    late = policy.shadow_verdict(empty, P, days=P.shadow_max_days)
    assert late.action == ROLLBACK and "no shadow verdict" in late.reasons[0]


def test_too_few_labels_are_named_in_the_reasons():
    verdict = policy.retrain_decision(
        Health(0.0, live_auc=0.60, labelled=800, champion_auc=0.70, new_month_landed=True), R
    )
    assert verdict.action == WAIT
    assert any("800 labels: too few to act on" in r for r in verdict.reasons)


def test_labels_needed_follows_the_square_root_law():
    # z(0.95) + z(0.8) = 2.486: with se 0.01 on 1,000 flights a gap of 0.02 needs 1,000 * 1.545
    assert policy.labels_needed(0.02, se=0.01, labelled=1000) == 1546
    assert policy.labels_needed(0.01, se=0.01, labelled=1000) == 6183  # half the gap: 4x
    assert policy.labels_needed(0.02, se=0.01, labelled=1000, power=0.5) < 1546
    assert policy.labels_needed(0.02, se=0.01, labelled=1000, alpha=0.01) > 1546
    for bad in ({"gap": 0.0}, {"se": -1.0}, {"labelled": 0}, {"alpha": 0.6}, {"power": 1.0}):
        with pytest.raises(ValueError, match="must be positive|need 0 < alpha"):
            policy.labels_needed(**({"gap": 0.02, "se": 0.01, "labelled": 1000} | bad))


def _two_models(n, rng):
    """A hidden risk per flight; the champion sees it through less noise than the candidate."""
    risk = rng.beta(2, 6, n)
    y = (rng.random(n) < risk).astype(float)
    return y, risk + rng.normal(0, 0.14, n), risk + rng.normal(0, 0.10, n)  # y, candidate, champion


def test_labels_needed_gives_the_power_it_promises():
    """Simulated canaries of the size labels_needed asks for catch the worse candidate ~80% of
    the time (DeLong's test at 0.05); the se comes from one large sample, as from a long canary."""
    from scipy import stats

    from reference.metrics import roc_auc

    rng = np.random.default_rng(4)
    y, cand, champ = _two_models(400_000, rng)
    gap = roc_auc(y, champ) - roc_auc(y, cand)  # the true gap, about 0.02
    y, cand, champ = _two_models(50_000, rng)
    se = policy.auc_diff_se(y, cand, champ)
    diff, p = policy.delong_test(y, cand, champ)
    assert se == pytest.approx(diff / stats.norm.ppf(p), rel=1e-6)  # the test's own variance
    n = policy.labels_needed(gap, se, 50_000)
    caught = [policy.delong_test(*_two_models(n, rng))[1] < 0.05 for _ in range(200)]
    assert 0.7 <= np.mean(caught) <= 0.9, (n, np.mean(caught))


def test_the_canary_reports_the_standard_error_of_its_auc_gap():
    worse = RNG.permutation(CHAMP)
    verdict = policy.canary_verdict(paired(cand=worse, labels=_labels_for(CHAMP)), P, days=3)
    m = verdict.metrics
    assert 0 < m["auc_diff_se"] < abs(m["auc_diff"])  # a clear gap: many standard errors wide


def test_a_p_value_reads_as_what_the_test_concluded():
    assert policy.format_p(0.99999) == "> 0.999"  # never "p = 1": a better candidate, not a bug
    assert policy.format_p(2.3e-14) == "< 0.0001"
    assert policy.format_p(0.0024) == "= 0.0024"
    assert policy.format_p(0.9961) == "= 0.996"  # ".2g" would round it up to 1
    labels = _labels_for(CHAMP)
    # a candidate that knows the outcomes ranks far better than the champion: p near 1
    knows = np.where(labels == 1, 0.8, 0.2) + RNG.normal(0, 0.01, len(labels))
    verdict = policy.canary_verdict(paired(cand=knows, labels=labels), P, days=3)
    assert verdict.action == PROMOTE, verdict.reasons
    assert verdict.metrics["p_value"] > 0.999
    assert "p > 0.999 >= 0.05: no sign it is worse" in verdict.reasons[0], verdict.reasons
