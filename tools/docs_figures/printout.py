"""The numbers the Concepts pages quote, printed once per figure (numbers()). Not numbers.py:
this folder is on sys.path, and that name would hide the standard library's numbers module."""

from __future__ import annotations

from common import FALSE_ALARM_COST, MISS_COST, NAIVE_PAGE, say


# ------------------------------------------------------------------------------ the numbers
def numbers(name: str, d: dict) -> None:
    """What the pages quote, printed once per figure."""
    say(f"\n== numbers: {name}")
    if name == "probabilistic":
        say(
            f"Level 0 test AUC (Aug-Oct) {d['test_auc']:.4f}; August {d['august_flights']:,} "
            f"flights, {d['august_late_share']:.1%} late; 'always on time' accuracy "
            f"{d['always_on_time_accuracy']:.3f}"
        )
        say("AUC on August:", ", ".join(f"{k} {v:.3f}" for k, v in d["auc"].items()))
        say(
            f"cost {MISS_COST}x miss + {FALSE_ALARM_COST}x false alarm: cheapest t "
            f"{d['cheapest']:.2f} = {d['cheapest_cost']:.0f}/day; at 0.5 {d['cost_at_05']:.0f}; "
            f"flag nothing {d['flag_nothing_cost']:.0f}"
        )
        say(
            f"daily AUC: median {d['daily_median']:.2f}, 90% of days {d['daily_band'][0]:.2f}-"
            f"{d['daily_band'][1]:.2f}, pooled {d['pooled_auc']:.2f}; page < {NAIVE_PAGE}: "
            f"{d['pages']} of {d['days']} days"
        )
    elif name == "alerting":
        low, mean, high = d["band"]
        say(
            f"reference {d['reference_rows']:,} rows of months {d['train_months']}; band "
            f"{low:.1%}-{high:.1%}, mean {mean:.1%}; reference days outside {d['ref_outside']}; "
            f"July-December: {len(d['later_outside'])} of {d['later_days']} days outside "
            f"{d['later_outside']}, daily {d['later_range'][0]:.1%}-{d['later_range'][1]:.1%}"
        )
        say(
            f"{len(d['spreads']):,} windows of 300 of the year's {d['year_rows']:,} flights: "
            f"spread min {d['spread_min']:.3f}, median {d['spread_median']:.3f}, under 0.05: "
            f"{d['spread_under_005']}; 1st percentile {d['spread_p1']:.3f}; lowest window "
            f"{d['lowest_window']}; a constant: {d['constant_spread']:.3f}"
        )
    elif name == "drift":
        say(
            f"champion: trained {d['train_months']}, holdout {d['holdout']} AUC {d['holdout_auc']:.4f}; "
            f"reference late share {d['reference_late_share']:.3f}, mean score "
            f"{d['reference_mean_score']:.3f}"
        )
        for m, r in d["by_month"].items():
            say(
                f"  month {m:>2}: drift share {r['drift_share']:.2f} ({', '.join(r['drifted'])}); "
                f"prediction drift {r['prediction_drift']:.3f}; AUC {r['auc']:.3f}; late "
                f"{r['late_share']:.3f}, mean score {r['mean_score']:.3f}"
            )
        say(
            "validate's drift warnings (reference Jan-Mar):",
            "; ".join(f"{b}: {', '.join(c)}" for b, c in d["validate_drift_warnings"].items())
            or "none",
        )
    elif name == "working-vs-healthy":
        for fault, r in d.items():
            used = [k for k, v in r["scores"].items() if v]
            sp = r["minutes"]["spread"]
            say(
                f"{fault:9} requests {r['requests']:.0f} (2xx {r['ok']:.0f}), ready {r['ready']}, "
                f"rows {r['rows']:,}; buckets used {len(used)} (busiest up to "
                f"{max(r['scores'], key=r['scores'].get)}); predicted positive "
                f"{r['positive_rate']:.1%} (band {r['band'][0]:.1%}-{r['band'][2]:.1%}); spread "
                f"(10 min) {min(sp):.3f}-{max(sp):.3f}; drift share {r['drift_share']:.2f}, "
                f"prediction drift {r['prediction_drift']:.3f}; alerts {r['alerts']}"
            )
    elif name == "shadow-canary":
        s, m = d["shadow"], d["decision"]["metrics"]
        say("story:", " -> ".join(d["story"]), f"(loop {d['loop_seconds']:.0f} s)")
        say("gate:", "; ".join(d["gate"]))
        say(
            "shadow:",
            "; ".join(d["shadow_reasons"]),
            "| metrics",
            {k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()},
        )
        say(
            f"canary: {d['decision']['kind']} on {d['decision']['day']}: "
            + "; ".join(d["decision"]["reasons"])
        )
        say(
            f"  days {m.get('days')}, labelled {m['labelled']}, AUC {m['candidate_auc']:.3f} vs "
            f"{m['champion_auc']:.3f}, diff {m['auc_diff']:+.3f}, se {m['auc_diff_se']:.4f}, "
            f"p {m['p_value']:.2g}"
        )
        say(
            f"  canary requests {d['canary_requests']}, answered by the candidate "
            f"{d['canary_by_candidate']}; client requests {d['client_requests']}, errors "
            f"{d['client_errors']}"
        )
        say("  labels needed (gap: flights):", d["labels_needed"], "| rollout", d["rollout"])
    elif name == "rollback":
        say(
            f"rollback model v{d['model']['from']} -> v{d['model']['to']} in {d['model']['seconds']:.2f} s"
        )
        say(
            f"rollback data (restore {d['restore']['commit']}, the data of v{d['restore']['source']}) "
            f"in {d['restore']['seconds']:.1f} s"
        )
        r = d["retrain"]
        say(
            f"rollback data + retrain in {r['seconds']:.0f} s: v{r['version']} AUC {r['auc']:.4f} vs "
            f"v{d['restore']['source']} {r['source_auc']:.4f}, reproduced {r['reproduced']}"
        )
        for v in d["versions"]:
            say(
                f"  v{v['version']}: train {v['train']}, holdout {v['holdout']} AUC "
                f"{v['holdout_auc']:.4f}, data {v['data_commit']}"
            )
        say(f"  @champion after: v{d['champion_after']}")
