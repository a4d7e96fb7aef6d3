"""The Level 2 rules, as pure functions: when to retrain, and what a shadow or a canary proved.

Every function takes plain numbers (what the controller measured) and the params of params.yaml
(sections ``retrain`` and ``rollout``) and returns a verdict with its reasons, so each decision is
a row of a table in tests/unit/test_loop_policy.py and a line of the event log. Nothing here does
I/O; numpy and scipy only for the statistics.

::

    retrain_decision   drift share, live quality drop, or the schedule; cooldown; new data needed
    training_split     the split a retrain at a given moment may use (no month from the future)
    shadow_verdict     errors, latency, the score distribution against the champion's
    canary_verdict     the same, plus live AUC on the same flights (DeLong's paired test)
    labels_needed      how many labelled flights that test needs to see a given AUC gap
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference.config import RetrainParams, RolloutParams

WAIT, PASS, PROMOTE, ROLLBACK, RETRAIN = "wait", "pass", "promote", "rollback", "retrain"


@dataclass(frozen=True)
class Verdict:
    """A decision (``action``: wait, pass, promote, rollback, retrain), its reasons and numbers."""

    action: str  # wait | pass | promote | rollback | retrain
    reasons: tuple[str, ...]
    metrics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"action": self.action, "reasons": list(self.reasons), "metrics": self.metrics}


# ------------------------------------------------------------------------------------- retrain
@dataclass(frozen=True)
class Health:
    """What a check measured on the recent window of live traffic."""

    drift_share: float | None  # share of drifted features (None: not measured)
    drifted: tuple[str, ...] = ()
    live_auc: float | None = None  # of the champion on the labelled rows of the window
    labelled: int = 0
    champion_auc: float | None = None  # the champion's AUC on its gate holdout
    days_since_retrain: int | None = None  # None: never retrained by the loop
    champion_data_age_days: int = 0  # days since the last month the champion trained on
    new_month_landed: bool = False  # a labelled month the champion's training never saw
    reference: str = ""  # what the drift was judged against, e.g. "v2's months 5-6"


def retrain_decision(h: Health, p: RetrainParams) -> Verdict:
    """Retrain when the data moved, the live quality dropped, or the schedule says so; but not
    inside the cooldown, and not without a month of new labelled data to learn from."""
    triggers = []
    if h.drift_share is not None and h.drift_share >= p.drift_share:
        moved = f" ({', '.join(h.drifted)})" if h.drifted else ""
        against = f" against {h.reference}" if h.reference else ""
        triggers.append(f"drift share {h.drift_share:.2f} >= {p.drift_share}{moved}{against}")
    if h.live_auc is not None and h.champion_auc is not None:
        if h.labelled < p.min_labelled:
            pass  # too few labels: the AUC is noise (reported below, not acted on)
        elif h.live_auc <= h.champion_auc - p.quality_drop:
            triggers.append(
                f"live AUC {h.live_auc:.3f} is {h.champion_auc - h.live_auc:.3f} under the "
                f"champion's holdout {h.champion_auc:.3f} (>= {p.quality_drop}, {h.labelled} labels)"
            )
    if h.champion_data_age_days >= p.schedule_days:
        triggers.append(
            f"schedule: the champion's data is {h.champion_data_age_days} days old (>= {p.schedule_days})"
        )
    metrics = {
        "drift_share": h.drift_share,
        "live_auc": h.live_auc,
        "labelled": h.labelled,
        "champion_auc": h.champion_auc,
    }
    if not triggers:
        notes = []
        if h.live_auc is not None and h.labelled < p.min_labelled:
            notes.append(
                f"live AUC {h.live_auc:.3f} on {h.labelled} labels: too few to act on "
                f"(min_labelled {p.min_labelled})"
            )
        return Verdict(
            WAIT, ("no trigger: data, quality and schedule within policy", *notes), metrics
        )
    if h.days_since_retrain is not None and h.days_since_retrain < p.cooldown_days:
        return Verdict(
            WAIT,
            (
                *triggers,
                f"cooldown: last retrain {h.days_since_retrain} days ago (< {p.cooldown_days})",
            ),
            metrics,
        )
    if not h.new_month_landed:
        return Verdict(
            WAIT,
            (*triggers, "no new labelled month since the champion was trained: waiting for labels"),
            metrics,
        )
    return Verdict(RETRAIN, tuple(triggers), metrics)


def training_split(landed_month: int) -> dict[str, int]:
    """The split of a retrain when months 1..landed_month have landed with their labels: train on
    all but the last two, stop early on the one before last, and gate on the newest month. The
    gate's holdout is the past, never a month the replay has not reached yet."""
    if landed_month < 3:
        raise ValueError(
            f"need three landed months to train, validate and gate (have {landed_month})"
        )
    return {
        "split.train_start": 1,
        "split.train_end": landed_month - 2,
        "split.valid_months": 1,
        "split.holdout_months": 1,
        "ingest.landed_through": landed_month,
    }


# ------------------------------------------------------------------------------------- rollout
@dataclass(frozen=True)
class Paired:
    """Requests both models answered (shadow: all of them; canary: all of them when the router
    mirrors the champion's share to the candidate, else the candidate's share). Scores are per
    row; errors and latency per request."""

    requests: int
    candidate_errors: int  # failed, refused or timed out
    champion_latency_p95_ms: float
    candidate_latency_p95_ms: float
    champion_scores: np.ndarray
    candidate_scores: np.ndarray
    labels: np.ndarray | None = None  # per row, NaN where the outcome has not landed yet
    threshold: float = 0.5
    # days the labelled rows flew on (the canary's evidence must span canary_min_days of them);
    # None: not known, and that rule is not applied
    labelled_days: int | None = None


def _common(s: Paired, p: RolloutParams, min_requests: int, failures: list[str]) -> dict:
    error_rate = s.candidate_errors / s.requests if s.requests else 0.0
    ratio = (
        s.candidate_latency_p95_ms / s.champion_latency_p95_ms
        if s.champion_latency_p95_ms > 0
        else 1.0
    )
    if s.requests and error_rate > p.max_error_rate:
        failures.append(
            f"candidate errors {s.candidate_errors}/{s.requests} = {error_rate:.1%} > {p.max_error_rate:.1%}"
        )
    if s.requests >= min_requests and ratio > p.max_latency_ratio:
        failures.append(
            f"candidate p95 {s.candidate_latency_p95_ms:.1f} ms = {ratio:.1f}x the champion's "
            f"{s.champion_latency_p95_ms:.1f} ms (> {p.max_latency_ratio}x)"
        )
    return {
        "requests": s.requests,
        "error_rate": error_rate,
        "latency_ratio": ratio,
        "champion_p95_ms": s.champion_latency_p95_ms,
        "candidate_p95_ms": s.candidate_latency_p95_ms,
    }


def shadow_verdict(s: Paired, p: RolloutParams, days: int = 0) -> Verdict:
    """A shadow proves the candidate runs on live traffic: it answers, in time, with scores of
    the kind a model gives. Users never see its answers, so it cannot prove it is *better*."""
    failures: list[str] = []
    metrics = _common(s, p, p.shadow_min_requests, failures)
    if len(s.candidate_scores) and s.requests >= p.shadow_min_requests:
        metrics |= _distribution(s, p, failures)
    if failures:
        return Verdict(ROLLBACK, tuple(failures), metrics)
    if s.requests < p.shadow_min_requests or "spread_ratio" not in metrics:
        if days >= p.shadow_max_days:
            return Verdict(
                ROLLBACK,
                (
                    f"no shadow verdict after {days} days ({s.requests}/{p.shadow_min_requests} "
                    f"requests with two answers): the champion stays",
                ),
                metrics,
            )
        return Verdict(
            WAIT,
            (
                f"shadow: {s.requests}/{p.shadow_min_requests} requests, "
                f"{len(s.candidate_scores)} scored rows so far",
            ),
            metrics,
        )
    return Verdict(
        PASS,
        (
            f"shadow passed on {s.requests} requests: errors {metrics['error_rate']:.1%}, "
            f"p95 {metrics['latency_ratio']:.1f}x, score spread {metrics['spread_ratio']:.2f}x the "
            f"champion's, label agreement {metrics['agreement']:.1%}",
        ),
        metrics,
    )


def _distribution(s: Paired, p: RolloutParams, failures: list[str]) -> dict:
    """The candidate's scores against the champion's on the same rows. A better model may well
    score differently (a stale champion is often miscalibrated), so only what no useful model
    does fails: a collapsed spread (a constant) or a distribution of another kind altogether.
    Agreement and the mean difference are reported for people, not judged."""
    cand, champ = s.candidate_scores, s.champion_scores
    spread = float(np.std(cand) / np.std(champ)) if np.std(champ) > 0 else 1.0
    ks = ks_distance(cand, champ)
    if spread < p.min_spread_ratio:
        failures.append(
            f"scores collapsed: spread {spread:.2f}x the champion's (< {p.min_spread_ratio})"
        )
    if ks > p.max_score_ks:
        failures.append(f"score distribution moved: KS {ks:.3f} > {p.max_score_ks}")
    return {
        "rows": len(cand),
        "spread_ratio": spread,
        "score_ks": ks,
        "agreement": float(np.mean((cand >= s.threshold) == (champ >= s.threshold))),
        "mean_score_diff": float(np.mean(np.abs(cand - champ))),
    }


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the two score distributions."""
    if not len(a) or not len(b):
        return 0.0
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def log_loss_diff(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> float:
    """Mean per-row log loss, candidate minus champion (reported: it mixes calibration in)."""
    eps = 1e-7
    pc, pk = np.clip(candidate, eps, 1 - eps), np.clip(champion, eps, 1 - eps)
    loss_c = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    loss_k = -(y * np.log(pk) + (1 - y) * np.log(1 - pk))
    return float(np.mean(loss_c - loss_k))


def _delong(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> tuple[float, float]:
    """The AUC difference (candidate - champion) on the same rows and its variance (DeLong's
    covariance of two correlated AUCs); variance NaN when a class has fewer than two rows."""
    from scipy import stats

    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m < 2 or n < 2:
        return 0.0, float("nan")
    aucs, v10, v01 = [], [], []
    for scores in (np.asarray(candidate, float), np.asarray(champion, float)):
        pos, neg = scores[y], scores[~y]
        tz = stats.rankdata(np.concatenate([pos, neg]))
        tx, ty = stats.rankdata(pos), stats.rankdata(neg)
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)  # per delayed flight: share of on-time ones ranked below
        v01.append(1 - (tz[m:] - ty) / m)  # per on-time flight: share of delayed ranked above
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return float(aucs[0] - aucs[1]), float(var)


def delong_test(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> tuple[float, float]:
    """DeLong's test of two correlated AUCs (both models scored the very same flights): the AUC
    difference (candidate - champion) and the one-sided p-value of "the candidate ranks worse".

    Ranking, not log loss: a retrain on summer months is miscalibrated for a quiet September
    (measured: its log loss was worse by 0.011 per flight while its AUC was 0.674 against the
    champion's 0.564). Calibration is the gate's and the positive-rate band's concern."""
    from scipy import stats

    diff, var = _delong(y, candidate, champion)
    if np.isnan(var):
        return 0.0, 1.0
    if var <= 1e-12:
        return diff, 1.0 if diff >= 0 else 0.0
    return diff, float(stats.norm.cdf(diff / np.sqrt(var)))


def format_p(p_value: float) -> str:
    """A p-value as a learner should read it: "= 0.0024", "< 0.0001", "> 0.999" (a one-sided
    test of a better candidate gives p near 1, which printed as "p = 1" looks like a bug)."""
    if p_value > 0.999:
        return "> 0.999"
    if p_value < 1e-4:
        return "< 0.0001"
    return f"= {p_value:.3f}" if p_value >= 0.01 else f"= {p_value:.2g}"  # 0.996, not "1"


def auc_diff_se(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> float:
    """The standard error of the paired AUC difference on these rows (DeLong): how precisely a
    canary's labels pin the gap down. NaN when a class has fewer than two rows."""
    _, var = _delong(y, candidate, champion)
    return float(np.sqrt(max(var, 0.0))) if not np.isnan(var) else float("nan")


def labels_needed(
    gap: float, se: float, labelled: int, alpha: float = 0.05, power: float = 0.8
) -> int:
    """How many labelled flights the canary's one-sided test at ``alpha`` needs to roll back a
    candidate whose live AUC is ``gap`` under the champion's, with probability ``power``.

    ``se`` is the standard error of the AUC difference measured on ``labelled`` flights (e.g.
    :func:`auc_diff_se` on a canary, or a shadow's scores with labels that landed later). A
    standard error shrinks as 1/sqrt(n), so the test sees the gap once se * sqrt(labelled / n)
    is ``gap / (z_alpha + z_power)``: n = labelled * (se * (z_alpha + z_power) / gap) ** 2.
    Half the gap takes four times the labels."""
    from scipy import stats

    if not gap > 0 or not se > 0 or not labelled > 0:
        raise ValueError(
            f"gap, se and labelled must be positive (got gap={gap}, se={se}, labelled={labelled})"
        )
    if not (0 < alpha < 0.5 and 0.5 <= power < 1):
        raise ValueError(f"need 0 < alpha < 0.5 and 0.5 <= power < 1 (got {alpha}, {power})")
    z = stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)
    return int(np.ceil(labelled * (se * z / gap) ** 2))


def canary_verdict(s: Paired, p: RolloutParams, days: int) -> Verdict:
    """A canary proves the candidate is at least as good *on live labels*: errors and latency at
    once, the score distribution once there are enough requests, and DeLong's paired test of
    the two AUCs once enough canary rows, flown on enough days, have outcomes. No verdict in
    canary_max_days: roll back."""
    from reference.metrics import roc_auc

    failures: list[str] = []
    metrics = _common(s, p, p.canary_min_requests, failures)
    metrics["days"] = days
    if len(s.candidate_scores) and s.requests >= p.canary_min_requests:
        metrics |= _distribution(s, p, failures)
    labels = s.labels if s.labels is not None else np.full(len(s.candidate_scores), np.nan)
    known = ~np.isnan(labels)
    n = int(known.sum())
    metrics["labelled"] = n
    if n >= 2 and len(np.unique(labels[known])) == 2:
        y = labels[known]
        metrics["candidate_auc"] = roc_auc(y, s.candidate_scores[known])
        metrics["champion_auc"] = roc_auc(y, s.champion_scores[known])
    if failures:
        return Verdict(ROLLBACK, tuple(failures), metrics)
    if s.labelled_days is not None:
        metrics["labelled_days"] = s.labelled_days
    enough_days = s.labelled_days is None or s.labelled_days >= p.canary_min_days
    if n >= p.canary_min_labelled and s.requests >= p.canary_min_requests and enough_days:
        y = labels[known]
        cand, champ = s.candidate_scores[known], s.champion_scores[known]
        diff, p_value = delong_test(y, cand, champ)
        metrics |= {
            "auc_diff": diff,
            "auc_diff_se": auc_diff_se(y, cand, champ),
            "p_value": p_value,
            "log_loss_diff": log_loss_diff(y, cand, champ),
        }
        aucs = f"AUC {metrics['candidate_auc']:.3f} vs the champion's {metrics['champion_auc']:.3f}"
        shown = format_p(p_value)
        if p_value < p.alpha:
            return Verdict(
                ROLLBACK,
                (
                    f"worse on live labels: {aucs} on the same {n} flights (DeLong's one-sided "
                    f"test: p {shown} < {p.alpha}: "
                    "a gap this large is unlikely to be chance)",
                ),
                metrics,
            )
        words = (
            "no sign it is worse: the candidate ranked the flights better"
            if diff >= 0
            else "the candidate ranked a little worse, within what chance gives"
        )
        return Verdict(
            PROMOTE,
            (
                f"not worse on live labels: {aucs} on the same {n} flights (DeLong's one-sided "
                f"test: p {shown} >= {p.alpha}: {words})",
            ),
            metrics,
        )
    labelled = f"{n}/{p.canary_min_labelled} labelled rows"
    if s.labelled_days is not None:  # the days are part of the rule: say how far they are
        labelled += f" from {s.labelled_days}/{p.canary_min_days} days"
    if days >= p.canary_max_days:
        return Verdict(
            ROLLBACK,
            (
                f"no verdict after {days} days ({s.requests}/{p.canary_min_requests} requests, "
                f"{labelled}): the champion stays",
            ),
            metrics,
        )
    return Verdict(WAIT, (f"canary: {s.requests} requests, {labelled} so far",), metrics)
