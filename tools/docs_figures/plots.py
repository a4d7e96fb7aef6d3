"""The figures' style and saving, and the Level 0/1 figures: probabilistic, alerting, drift,
working-vs-healthy."""

from __future__ import annotations

from pathlib import Path

from common import (
    BLUE,
    FALSE_ALARM_COST,
    GREEN,
    GREY,
    MISS_COST,
    NAIVE_PAGE,
    ORANGE,
    OUT,
    PURPLE,
    ROOT,
    SKY,
    VERMILION,
    say,
)


# -------------------------------------------------------------------------------- the figures
def _style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "DejaVu Sans",
            "font.size": 10,
            "axes.titlesize": 10.5,
            "axes.labelsize": 10,
            "legend.fontsize": 8.5,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "axes.grid": True,
            "grid.color": "#e6e6e6",
            "axes.axisbelow": True,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 100,
        }
    )
    return plt


def _save(fig, name: str) -> Path:
    """Lay the figure out, write docs/_static/figures/<name>.png, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    # no Software/date metadata: the same run gives the same bytes
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    plt.close(fig)
    # 256 colours are plenty for a chart and a third of the bytes (no metadata: same run, same file)
    Image.open(buffer).convert("RGB").quantize(256).save(path, optimize=True)
    kb = path.stat().st_size / 1024
    say(
        f"wrote {path.relative_to(ROOT)} ({kb:.0f} KB)"
        + ("  TOO BIG (> 150 KB)" if kb > 150 else "")
    )
    return path


def _dates(strings):
    import datetime as dt

    return [dt.date.fromisoformat(s) for s in strings]


def plot_probabilistic(d: dict) -> None:
    import matplotlib.dates as mdates

    plt = _style()
    fig = plt.figure(figsize=(7.7, 6.4))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.1), width_ratios=(1.25, 1))
    a, b, c = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    a.plot(d["grid"], d["cost"], color=VERMILION)
    a.axvline(
        d["cheapest"],
        color=VERMILION,
        ls="--",
        lw=1,
        label=f"cheapest: {d['cheapest']:.2f} ({d['cheapest_cost']:.0f} a day)",
    )
    a.axvline(0.5, color=GREY, ls=":", label=f"the default 0.5 ({d['cost_at_05']:.0f} a day)")
    a.axhline(
        d["flag_nothing_cost"],
        color=BLUE,
        ls="-.",
        lw=1,
        label=f"flag nothing ({d['flag_nothing_cost']:.0f} a day)",
    )
    a.set(
        xlabel="threshold t (flag when score >= t)",
        ylabel=f"cost a day ({MISS_COST} x miss + {FALSE_ALARM_COST} x false alarm)",
        title="A threshold has a cost",
    )
    a.legend(loc="lower right", fontsize=8)
    names = list(d["auc"])
    values = [d["auc"][n] for n in names]
    bars = b.barh(names, values, color=[GREY, SKY, BLUE])
    for bar, v in zip(bars, values, strict=True):
        b.text(v + 0.004, bar.get_y() + bar.get_height() / 2, f"{v:.3f}", va="center", fontsize=9)
    b.set_xlim(0.45, 0.8)
    b.invert_yaxis()
    b.set_yticks(
        range(len(names)), [n.replace(" (", "\n(").replace(" regr", "\nregr") for n in names]
    )
    b.set(xlabel="AUC on August (0.5 = a coin)", title="Good means: beats a baseline")
    b.grid(axis="y", visible=False)
    days, auc = _dates(d["daily_dates"]), d["daily_auc"]
    low, high = d["daily_band"]
    c.plot(days, auc, ".-", color=GREEN, lw=0.8, ms=4, label="AUC of one day")
    c.axhspan(low, high, color=GREEN, alpha=0.12, label=f"90% of days: {low:.2f}-{high:.2f}")
    c.axhline(
        d["pooled_auc"],
        color=GREEN,
        ls="--",
        lw=1,
        label=f"the three months pooled: {d['pooled_auc']:.2f}",
    )
    c.axhline(NAIVE_PAGE, color=VERMILION, ls=":", lw=1.2, label=f"a naive page below {NAIVE_PAGE}")
    pages = [(t, v) for t, v in zip(days, auc, strict=True) if v < NAIVE_PAGE]
    c.plot(
        [t for t, _ in pages],
        [v for _, v in pages],
        "o",
        color=VERMILION,
        ms=4,
        label=f"it would page: {len(pages)} of {len(days)} days",
    )
    c.set(
        ylabel="AUC of the day",
        ylim=(0.4, 0.9),
        title="Healthy is a spread: one model, unbroken data, Aug-Oct 2013",
    )
    c.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    c.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    _save(fig, "probabilistic")


def plot_alerting(d: dict) -> None:
    import matplotlib.dates as mdates
    import numpy as np

    plt = _style()
    fig, (a, b) = plt.subplots(2, 1, figsize=(7.7, 6.2), gridspec_kw={"height_ratios": (1.2, 1)})
    low, mean, high = d["band"]
    days, daily = np.array(_dates(d["days"])), np.array(d["daily"])
    seen = np.array([t.month <= 6 for t in days])
    a.axhspan(low, high, color=BLUE, alpha=0.1, label=f"band: mean +/- 3 sd = {low:.0%}-{high:.0%}")
    a.axhline(mean, color=BLUE, lw=1, ls="--", label=f"reference mean {mean:.1%}")
    a.plot(days[seen], daily[seen], ".", color=BLUE, ms=4, label="January-June (the reference)")
    a.plot(days[~seen], daily[~seen], "s", color=ORANGE, ms=2.8, label="July-December (served)")
    a.set(
        ylabel="share flagged late (score >= 0.5)",
        ylim=(-0.03, 1.0),
        title="The predicted-positive band, one point a day",
    )
    a.xaxis.set_major_locator(mdates.MonthLocator())
    a.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
    a.legend(loc="upper left", fontsize=8, ncol=2)
    spreads = np.array(d["spreads"])
    b.hist(
        spreads,
        bins=np.arange(0, spreads.max() + 0.02, 0.01),
        color=GREEN,
        alpha=0.8,
        label=f"{len(spreads):,} windows of 300 flights:\nmin {d['spread_min']:.3f}, "
        f"median {d['spread_median']:.2f}",
    )
    b.axvline(0.05, color=VERMILION, ls="--", label="the alert: under 0.05")
    b.axvline(
        d["constant_spread"],
        color=VERMILION,
        lw=3,
        alpha=0.5,
        label=f"a constant score: {d['constant_spread']:.2f}",
    )
    b.set(
        xlabel="score spread p90 - p10, from 0.05-wide buckets",
        ylabel="windows",
        title="The score spread of real traffic: windows of 300 flights, all of 2013",
    )
    b.legend(loc="upper right", fontsize=8)
    _save(fig, "alerting")


def plot_drift(d: dict) -> None:
    import numpy as np

    plt = _style()
    months = ["Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    rows = [d["by_month"][str(m)] for m in d["months"]]
    features = list(rows[0]["scores"])
    x = np.arange(len(rows))
    fig = plt.figure(figsize=(7.7, 7.8))
    grid = fig.add_gridspec(3, 2, width_ratios=(1.1, 1))
    a = fig.add_subplot(grid[:, 0])
    b, c, e = (fig.add_subplot(grid[i, 1]) for i in range(3))
    scores = np.array([[r["scores"][f] for r in rows] for f in features])
    a.imshow(np.minimum(scores, 1.0), cmap="cividis", vmin=0, vmax=1.0, aspect="auto")
    for i, f in enumerate(features):
        for j, r in enumerate(rows):
            v, drifted = r["scores"][f], r["scores"][f] >= r["threshold"][f]
            a.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold" if drifted else "normal",
                color="black" if v > 0.55 else "white",
            )
            if drifted:  # a frame as well as bold: visible at any zoom and in grey print
                a.add_patch(
                    plt.Rectangle(
                        (j - 0.46, i - 0.44), 0.92, 0.88, fill=False, edgecolor=ORANGE, lw=1.6
                    )
                )
    a.set_xticks(x, [f"{m}\n{r['drift_share']:.2f}" for m, r in zip(months, rows, strict=True)])
    a.set_yticks(np.arange(len(features)), features)
    a.tick_params(length=0)
    a.grid(False)
    a.set_title("Data drift: each input's distance\nfrom Jan-Jun (framed: drifted)")
    a.set_xlabel("month; under it, the drift share")
    b.plot(x, [r["prediction_drift"] for r in rows], "o-", color=PURPLE, label="scores' distance")
    b.axhline(0.1, color=VERMILION, ls="--", lw=1, label="alert: 0.1")
    b.set(ylim=(0, 0.55), ylabel="Wasserstein", title="Prediction drift: the scores moved")
    b.legend(loc="upper left", fontsize=8, ncol=2)
    c.plot(x, [r["auc"] for r in rows], "o-", color=GREEN, label="AUC, the month's labels")
    c.axhline(
        d["holdout_auc"], color=GREEN, ls="--", lw=1, label=f"holdout AUC {d['holdout_auc']:.2f}"
    )
    c.axhline(0.6, color=VERMILION, ls=":", lw=1.2, label="alert floor 0.6")
    c.set(ylim=(0.45, 0.82), ylabel="AUC", title="Concept drift: does the ranking hold?")
    c.legend(loc="lower left", fontsize=8)
    e.plot(x, [r["late_share"] for r in rows], "o-", color=VERMILION, label="late share (labels)")
    e.plot(x, [r["mean_score"] for r in rows], "s--", color=BLUE, label="mean score (model)")
    e.axhline(d["reference_late_share"], color=GREY, ls=":", lw=1, label="late share, Jan-Jun")
    e.set(ylim=(0, 0.45), ylabel="share of flights", title="Label shift: the base rate moved")
    e.legend(loc="lower right", fontsize=8)
    for ax in (b, c, e):
        ax.set_xticks(x, months if ax is e else [""] * len(months))
    _save(fig, "drift")


def plot_working(d: dict) -> None:
    import numpy as np

    from reference.serve.telemetry import SCORE_BUCKETS

    plt = _style()
    fig = plt.figure(figsize=(7.7, 6.4))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.1))
    a, b, c = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    broken, healthy = d["constant"], d["none"]
    minutes = np.arange(1, len(broken["minutes"]["ok"]) + 1)
    a.plot(
        minutes,
        healthy["minutes"]["ok"],
        "-",
        color=BLUE,
        lw=3,
        alpha=0.5,
        label="healthy: 200 OK per minute",
    )
    a.plot(
        minutes, broken["minutes"]["ok"], "--", color=VERMILION, label="broken: 200 OK per minute"
    )
    a.plot(
        minutes,
        np.array(broken["minutes"]["other"]) + np.array(healthy["minutes"]["other"]),
        ":",
        color=GREY,
        label="errors per minute (both): 0",
    )
    a.set(
        ylim=(0, max(healthy["minutes"]["ok"]) * 1.6),
        xlabel="minute of the replay",
        ylabel="requests",
        title="Working: all 200 OK, both ready",
    )
    a.legend(loc="upper left", fontsize=8)
    b.plot(minutes, healthy["minutes"]["spread"], "-", color=BLUE, label="healthy")
    b.plot(minutes, broken["minutes"]["spread"], "--", color=VERMILION, label="broken (constant)")
    b.axhline(0.05, color=VERMILION, ls=":", lw=1.2, label="alert under 0.05")
    b.set(
        ylim=(0, 0.7),
        xlabel="minute of the replay",
        ylabel="p90 - p10 of scores (10 min)",
        title="Healthy? The spread says no",
    )
    b.legend(loc="upper right", fontsize=8, ncol=2)
    for ax in (a, b):
        ax.set_xticks([1, 5, 10, 15, 20])
    extra = sorted(set(broken["alerts"] or []) - set(healthy["alerts"] or []))
    lows = np.array(SCORE_BUCKETS) - 0.05
    fires = f",\nfires {', '.join(extra)}" if extra else ""
    for r, color, off, label, tail in (
        (healthy, BLUE, -0.0125, "healthy", ""),
        (broken, VERMILION, 0.0125, "broken (--fault constant)", fires),
    ):
        counts = np.array([r["scores"].get(str(b), 0.0) for b in SCORE_BUCKETS])
        c.bar(
            lows + 0.025 + off,
            counts / r["rows"],
            width=0.024,
            color=color,
            label=f"{label}: predicted late {r['positive_rate']:.1%}{tail}",
        )
    c.set(
        xlim=(0, 0.95),
        xlabel="score bucket (0.05 wide)",
        ylabel="share of November's rows",
        title=f"The same {broken['rows']:,} November flights: where the scores fell",
    )
    c.legend(loc="center right", fontsize=8)
    _save(fig, "working-vs-healthy")
