"""The Level 2 figures, from the loop's runs: shadow-canary and rollback."""

from __future__ import annotations

from common import BLUE, GREY, ORANGE, SKY, VERMILION
from plots import _dates, _save, _style


def plot_shadow_canary(d: dict) -> None:
    import numpy as np

    plt = _style()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.7, 6.6))
    bins = np.linspace(0, 1, 41)
    a.hist(
        d["shadow_champion_scores"],
        bins=bins,
        density=True,
        color=BLUE,
        alpha=0.55,
        label="champion v1 (answers the users)",
    )
    a.hist(
        d["shadow_candidate_scores"],
        bins=bins,
        density=True,
        color=ORANGE,
        alpha=0.55,
        label="candidate v2 (a copy, in shadow)",
    )
    s = d["shadow"]
    a.set(
        xlabel="score, on the same mirrored requests",
        ylabel="density",
        yticks=[],
        title="Shadow: no labels yet, so errors, latency and the scores' shape",
    )
    a.text(
        0.6,
        0.5,
        f"{s['requests']} requests mirrored\nerrors {s['error_rate']:.0%}\n"
        f"spread {s['spread_ratio']:.2f}x the champion's\nKS {s['score_ks']:.2f} (limit "
        f"{d['rollout']['max_score_ks']})\n-> passed",
        transform=a.transAxes,
        ha="right",
        va="center",
        fontsize=8.5,
        bbox={"facecolor": "white", "edgecolor": GREY, "alpha": 0.85},
    )
    a.legend(loc="upper right", fontsize=8)
    days = _dates(d["canary_days"])
    b.plot(
        days,
        d["canary_candidate_auc"],
        "s-",
        color=ORANGE,
        label="candidate v2, every canary flight (mirrored)",
    )
    b.plot(days, d["canary_champion_auc"], "o--", color=BLUE, label="champion v1, the same flights")
    m = d["decision"]["metrics"]
    b.text(
        0.97,
        0.05,
        f"{d['decision']['kind']} on {days[-1]:%b %d}: DeLong p = {m['p_value']:.2g}",
        transform=b.transAxes,
        ha="right",
        fontsize=8.5,
        color=VERMILION,
    )
    b.set(
        ylim=(0.35, 0.7),
        ylabel="AUC, same labelled flights",
        title=f"Canary ({d['rollout']['canary_percent']:g}% answered, every flight paired): live labels decide",
    )
    b.set_xticks(
        days, [f"{t:%b %d}\n{n:,}" for t, n in zip(days, d["canary_labelled"], strict=True)]
    )
    b.set_xlabel("day (under it: labelled canary flights so far)")
    b.legend(loc="upper left", fontsize=8)
    _save(fig, "shadow-canary")


def plot_rollback(d: dict) -> None:
    plt = _style()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.7, 5.2))
    calls = [
        ("rollback model\n(move the alias)", d["model"]["seconds"], BLUE),
        ("rollback data\n(git + dvc checkout)", d["restore"]["seconds"], ORANGE),
        ("rollback data\n(+ the retrain)", d["retrain"]["seconds"], VERMILION),
    ]
    bars = a.barh([c[0] for c in calls], [c[1] for c in calls], color=[c[2] for c in calls])
    for bar, (_, s, _) in zip(bars, calls, strict=True):
        a.text(
            s * 1.2,
            bar.get_y() + bar.get_height() / 2,
            f"{s:.1f} s" if s < 10 else f"{s:.0f} s",
            va="center",
            fontsize=9,
        )
    a.set_xscale("log")
    a.set_xlim(0.05, 3000)
    a.invert_yaxis()
    a.grid(axis="y", visible=False)
    a.set(xlabel="seconds (log scale)", title="How long each call took")
    v1, v2, v3 = d["versions"]

    names = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

    def months(v):
        return (
            f"trained {names[v['train'][0] - 1]}-{names[v['train'][-1] - 1]}, "
            f"holdout {names[v['holdout'][0] - 1]}"
        )

    rows = [
        (f"v{v1['version']}: the champion\n{months(v1)}", v1, BLUE),
        (f"v{v2['version']}: the bad challenger\n{months(v2)}", v2, VERMILION),
        (
            f"v{v3['version']}: v{v1['version']}'s data ({d['restore']['commit']})\n{months(v3)}",
            v3,
            SKY,
        ),
    ]
    bars = b.barh(
        [r[0] for r in rows],
        [r[1]["holdout_auc"] for r in rows],
        color=[r[2] for r in rows],
        height=0.6,
    )
    for bar, (_, v, _) in zip(bars, rows, strict=True):
        b.text(
            v["holdout_auc"] + 0.002,
            bar.get_y() + bar.get_height() / 2,
            f"{v['holdout_auc']:.4f}",
            va="center",
            fontsize=9,
        )
    b.set_xlim(0.65, 0.74)
    b.invert_yaxis()
    b.grid(axis="y", visible=False)
    b.set(
        xlabel="holdout AUC, as registered in MLflow", title="Same data, params, seed: same model"
    )
    _save(fig, "rollback")
