"""`make demo`: the Level 1 story in the terminal, on a fresh workspace of its own.

1. The first pipeline run trains on January-June; the gate checks the floors; it becomes champion.
2. A second run trains on January-August: a challenger; the gate compares it with the champion on
   the same, later holdout and decides, printing why.
3. A drill: an upstream system switches temperatures to Celsius. Validation stops the pipeline;
   nothing is registered; the champion stays.
4. Serving: the champion behind KServe, November replayed as traffic, the monitoring summary.
5. A drill: a broken deployment that answers 200 OK with a constant score. Status codes and
   readiness stay green; the score distribution and the alert rules catch it.
6. Level 2, by itself: a champion trained on January-May meets the late summer; drift triggers a
   retrain once August's labels land; the gate; a shadow; a canary; promoted on live labels.
7. Level 2 again, from the same start: this time the challenger passes the gate and the shadow but
   is served with a skew; the canary's live labels show it is worse; rolled back by itself.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

from reference.config import MARKER, Settings


def _banner(text: str) -> None:
    from rich.console import Console

    Console().rule(f"[bold]{text}")


def run_demo(
    settings: Settings, fresh: bool = True, serve: bool = True, level2: bool = True
) -> int:
    from reference.pipeline import failing_checks, run_pipeline
    from reference.registry import CHAMPION, version_by_alias

    demo_ws = settings.workspace / "demo"
    tracking = settings.tracking_uri
    if tracking.startswith("sqlite:///") and str(settings.workspace) in tracking:
        tracking = f"sqlite:///{demo_ws / 'mlflow' / 'mlflow.db'}"
    ws = replace(settings, workspace=demo_ws, tracking_uri=tracking)
    if fresh and demo_ws.exists():
        if not (demo_ws / MARKER).exists():
            raise RuntimeError(f"{demo_ws} exists but is not a demo workspace; move it away first")
        shutil.rmtree(demo_ws)
    from reference.logs import quiet_libraries

    quiet_libraries(demo_ws)  # run_demo called from Python, not the CLI: still no INFO lines
    print(
        f"demo workspace: {demo_ws}\nMLflow store: {tracking}  (browse it with `mlops-lab --workspace {demo_ws} ui`)"
    )

    steps = [
        (
            "1/7  Level 1, first run: train Jan-Jun, gate on Aug-Oct",
            ["split.train_end=6", "ingest.inject_fault=none"],
        ),
        (
            "2/7  New data landed: train Jan-Aug, meet the champion on Oct-Dec",
            ["split.train_end=8"],
        ),
        (
            "3/7  Drill: upstream switches temperature to Celsius in September",
            ["ingest.inject_fault=celsius", "ingest.fault_month=9"],
        ),
    ]
    for title, overrides in steps:
        _banner(title)
        before = version_by_alias(ws, CHAMPION)
        result = run_pipeline(ws, overrides)
        after = version_by_alias(ws, CHAMPION)
        if result.ok:
            print(f"pipeline done in {result.seconds:.1f} s")
        else:
            for message in failing_checks(ws.project):
                print(f"stopped by: {message}")
            print(
                f"pipeline stopped at {result.failed_stage} after {result.seconds:.1f} s: nothing registered"
            )
        was = f"v{before.version}" if before else "none"
        now = f"v{after.version}" if after else "none"
        print(f"champion: {was} -> {now}" + ("  (unchanged)" if was == now else "  (promoted)"))
    # leave the project clean for a learner who explores it next
    run_pipeline(ws, ["ingest.inject_fault=none"])
    if serve:
        from reference.watch import render, watch

        _banner("4/7  Serve the champion, replay November as traffic, watch it both ways")
        render(watch(ws, month=11), "the champion on November's flights")
        _banner("5/7  Drill: a deployment answers 200 OK with garbage (a constant score)")
        render(watch(ws, month=11, fault="constant"), "the same traffic, a silently broken model")
        print("The classic view is green in both; the prediction view is not. That is the point.")
    if level2:
        run_level2(ws)
    _banner("done")
    print(
        "Next: `mlops-lab --workspace",
        demo_ws,
        "status`, or open the MLflow UI with `mlops-lab ui`.",
    )
    return 0


def run_level2(ws: Settings) -> None:
    """Steps 6 and 7: the two Level 2 stories (``<demo>/level2``, ``<demo>/level2-rollback``)."""
    from rich.console import Console

    from reference.loop.controller import Controller, loop_settings
    from reference.loop.timeline import plot, table

    console = Console(width=140)
    for step, name, scenario in (
        ("6/7  Level 2 by itself: drift -> retrain -> shadow -> canary -> promote", "level2", "natural"),
        ("7/7  Level 2, same start: a skewed challenger -> canary -> rollback", "level2-rollback", "bad-challenger"),
    ):  # fmt: skip
        # each story in a workspace of its own: the same champion, the same retrain, one difference
        level2 = loop_settings(ws, name)
        _banner(step)
        print(f"workspace {level2.workspace}; every decision goes to {level2.workspace / 'loop'}")
        controller = Controller(level2, scenario)
        controller.run()
        console.print(table(controller.events.read(), f"Level 2 timeline: {scenario}"))
        print(f"timeline plot: {plot(controller.dir)}")
    print("Rerun either story: `mlops-lab loop --fresh --scenario natural` (or bad-challenger).")
