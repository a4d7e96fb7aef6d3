"""The bad-labels drill: a model learns a wrong label, is promoted, and the data must go back too.

::

    mlops-lab loop --fresh --scenario bad-labels    # the story, then the three rollbacks

1. **The story** (the Level 2 loop, scenario ``bad-labels``). From August 25 the upstream job that
   computes the arrival delay reads Chicago's arrivals on Eastern time: nearly every ORD flight is
   labelled late, in the months it lands and in the live labels the loop joins. Validation checks
   the features, and they are right: the retrain on September 1 learns "ORD is late", beats the
   champion on a holdout month that shares the defect, beats it again in the canary on live
   labels that share it, and is promoted.
2. **Three copies** of that workspace, one per response (reference/loop/rollback.py):

   - ``model``: the ``champion`` alias back to the version it replaced; the data left as it is;
   - ``data``: the last good data version restored (``rollback_data``, no retrain) and the
     upstream job fixed, so the months land again corrected; the bad champion keeps serving;
   - ``both``: the alias back, then the data as in ``data``.

3. In each copy, **the next retrain** the loop makes (when September lands: the controller's own
   pipeline overrides) and its gate against that copy's champion. The rollout after a passing
   gate is not replayed per copy: its canary judges on the same labels the gate does (defective
   while the feed is, the truth once it is fixed), and it promoted the first bad model.
4. Every model is scored against **the truth**: October's real outcomes, a month no model trained
   or was gated on; the AUC, and the ORD flights' predicted late rate against their real one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reference.config import Settings

SCENARIO = "bad-labels"
TRUTH_MONTH = 10  # judged on October: after every training window and holdout of the drill
# A model whose predicted late rate for the defect's airport is this far above the real one has
# learnt the defect. Measured on October: the models trained on the defect +0.84; the healthy
# ones +0.05 to +0.10 (trained through the summer, they expect more delays than October has).
MAX_GAP = 0.3


@dataclass(frozen=True)
class Truth:
    """One version scored on the real outcomes of TRUTH_MONTH (and on what the broken feed says)."""

    version: str
    auc: float  # on the real outcomes
    feed_auc: float  # on the labels the broken feed publishes for the same flights
    airport_predicted: float  # mean score of the flights to the defect's airport
    airport_actual: float  # their real late rate

    @property
    def gap(self) -> float:
        return self.airport_predicted - self.airport_actual

    @property
    def healthy(self) -> bool:
        return self.gap <= MAX_GAP


@dataclass(frozen=True)
class Response:
    """One rollback and what followed it in its copy of the workspace."""

    name: str  # model | data | both
    champion: Truth  # what serves right after the response
    candidate: Truth  # the next retrain
    gate_passed: bool  # against that champion, on the next month's holdout
    gate_detail: str
    feed_fixed: bool

    @property
    def after(self) -> Truth:
        """What serves after the next retrain: the candidate if the gate passed it."""
        return self.candidate if self.gate_passed else self.champion


@dataclass(frozen=True)
class DrillResult:
    good: Truth  # the champion before the defect
    bad: Truth  # the model the loop promoted
    story: list[str]  # the story's decisive events, in words
    responses: list[Response]


def _fork(settings: Settings, name: str) -> Settings:
    """A copy of the workspace beside it (``level2-model`` ...), paths rewritten."""
    from reference.labkit.checkpoint import relocate

    ws = settings.workspace.with_name(f"{settings.workspace.name}-{name}")
    shutil.rmtree(ws, ignore_errors=True)
    relocate(settings.workspace, ws)
    tracking = settings.tracking_uri.replace(str(settings.workspace), str(ws))
    return replace(settings, workspace=ws, tracking_uri=tracking)


class Judge:
    """Scores registered versions on TRUTH_MONTH's real outcomes: the drill's ground truth."""

    def __init__(self, plan):
        from reference import faults, ingest
        from reference.train import labelled

        month = ingest.build(*ingest.load_raw())
        month = month[month["month"] == TRUTH_MONTH]
        self.frame = labelled(month)
        self.truth = self.frame["delayed"].to_numpy()
        self.feed = faults.inject(self.frame, plan.traffic_fault)["delayed"].to_numpy()
        self.airport = (self.frame["dest"] == "ORD").to_numpy()
        self._seen: dict[tuple[str, str], Truth] = {}

    def __call__(self, settings: Settings, version: str) -> Truth:
        from reference import registry
        from reference.metrics import roc_auc
        from reference.model import load_bundle

        run_id = registry.client(settings).get_model_version(settings.model_name, version).run_id
        if (run_id, version) not in self._seen:  # a copied registry holds the same run ids
            with tempfile.TemporaryDirectory() as tmp:
                bundle = load_bundle(registry.download_bundle(settings, version, Path(tmp)))
                p = bundle.predict_proba(self.frame)
            self._seen[(run_id, version)] = Truth(
                version,
                roc_auc(self.truth, p),
                roc_auc(self.feed, p),
                float(np.mean(p[self.airport])),
                float(np.mean(self.truth[self.airport])),
            )
        return self._seen[(run_id, version)]


def _next_retrain(settings: Settings, landed: int, fault: list[str]) -> dict:
    """The controller's retrain when month ``landed`` lands, run as it runs it; the gate's JSON."""
    from reference.config import load_params
    from reference.loop import policy
    from reference.loop.controller import loop_overrides
    from reference.pipeline import run_pipeline

    params = load_params(settings.project / "params.yaml")
    split = policy.training_split(landed)
    overrides = [f"{k}={v}" for k, v in split.items()] + loop_overrides(params) + fault
    result = run_pipeline(settings, overrides, log=settings.workspace / "loop" / "pipeline.log")
    if not result.ok or result.gate is None:
        raise RuntimeError(
            f"the drill's retrain in {settings.workspace} stopped at {result.failed_stage}: "
            "see loop/pipeline.log there"
        )
    return result.gate


def _story(settings: Settings, first_day: str, log) -> tuple[str, str, list[str]]:
    """Run the loop to its promotion of the bad model (or reuse it): (bad, good, what happened)."""
    from reference.loop.controller import Controller
    from reference.loop.state import LoopState

    state = LoopState.load(settings.workspace / "loop" / "state.json")
    if state.day is not None and state.scenario != SCENARIO:
        raise RuntimeError(
            f"the Level 2 workspace holds a {state.scenario} run: start the drill over with "
            "`mlops-lab loop --fresh --scenario bad-labels`"
        )
    controller = Controller(settings, SCENARIO, log=log)
    if not state.decided:
        controller.run(first_day=first_day)
    events = controller.events.read()
    promoted = [e for e in events if e["kind"] == "promote"]
    if not promoted:
        raise RuntimeError(
            "the bad-labels story ended without promoting the retrain "
            f"({', '.join(e['kind'] for e in events[-3:])}): the drill needs the bad model in "
            "service; see `mlops-lab timeline`"
        )
    bad = promoted[0]["version"]
    story = [
        f"{e['day']} {e['kind']}: {'; '.join(e['reasons'])}"
        for e in events
        if e["kind"] in ("retrain", "gate-pass", "promote") and e["version"] in (None, bad)
    ]
    from reference import registry

    mv = registry.client(settings).get_model_version(settings.model_name, bad)
    return bad, mv.tags["previous_champion"], story


def run_drill(settings: Settings, first_day: str = "2013-08-01", log=print) -> DrillResult:
    """The story, then each response in its own copy of the workspace, scored on the truth."""
    from reference import registry
    from reference.loop.rollback import data_commit, rollback_data, rollback_model
    from reference.loop.traffic import day_of, scenario

    plan = scenario(SCENARIO)
    bad, good, story = _story(settings, first_day, log)
    judge = Judge(plan)
    landed = max(json.loads(registry.version_run(settings, bad).data.tags["split.holdout"]))
    good_data = data_commit(settings, good)
    broken_feed = [
        f"ingest.inject_fault={plan.traffic_fault}",
        f"ingest.fault_month={day_of(plan.fault_from).month}",
    ]
    responses = []
    for name in ("model", "data", "both"):
        log(f"drill: roll back the {name}, in a copy of the workspace; then the next retrain")
        ws = _fork(settings, name)
        if name in ("model", "both"):
            rollback_model(ws, to=good)
        if name in ("data", "both"):
            # the data as the good champion was trained on it; every later month lands from the
            # fixed job (the retrain below). Retraining from the restored version itself would
            # reproduce the good champion, which `both` already serves: nothing to learn there
            rollback_data(ws, to=good_data, retrain=False)
        champion = str(registry.version_by_alias(ws, registry.CHAMPION).version)
        fixed = name != "model"
        gate = _next_retrain(ws, landed + 1, ["ingest.inject_fault=none"] if fixed else broken_feed)
        rules = {r["name"]: r for r in gate["rules"]}
        responses.append(
            Response(
                name,
                judge(ws, champion),
                judge(ws, str(gate["candidate_version"])),
                bool(gate["promote"]),
                rules["auc_vs_champion"]["detail"],
                fixed,
            )
        )
    return DrillResult(judge(settings, good), judge(settings, bad), story, responses)


WHAT = {
    "model": "alias back; data and feed as they were",
    "data": "data restored, feed fixed; alias stays",
    "both": "alias back, data restored, feed fixed",
}


def _cell(t: Truth) -> str:
    verdict = "healthy" if t.healthy else "BAD"
    return (
        f"v{t.version} {verdict}: AUC {t.auc:.3f} (feed {t.feed_auc:.3f}), "
        f"ORD {t.airport_predicted:.2f} vs {t.airport_actual:.2f}"
    )


def render(result: DrillResult) -> str:
    """The drill's outcome in words: the story, then the three responses side by side."""
    lines = ["The story:", *(f"  {s}" for s in result.story)]
    lines += [
        f"Scored on 2013-{TRUTH_MONTH:02d}'s real outcomes (AUC on the truth, and on the broken "
        "feed's labels; ORD flights: predicted late rate vs real):",
        f"  before the defect  {_cell(result.good)}",
        f"  promoted           {_cell(result.bad)}",
    ]
    for r in result.responses:
        lines += [
            f"rollback {r.name} ({WHAT[r.name]}):",
            f"  right after        {_cell(r.champion)}",
            f"  next retrain       {_cell(r.candidate)}; gate "
            f"{'passed' if r.gate_passed else 'rejected'} ({r.gate_detail})",
            f"  then serving       {_cell(r.after)}",
        ]
    return "\n".join(lines)
