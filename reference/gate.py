"""gate: the automated validation gate that decides whether the challenger becomes champion.

Rules, each with its value, threshold and verdict (thresholds in params.yaml, section ``gate``)::

    floors (always)        beats the best baseline by a margin; calibration (ECE) bound;
                           single-row p95 latency budget; model size budget
    against the champion   holdout AUC not worse than the champion's by more than a tolerance;
                           no judged slice (origin, carrier) worse by more than a tolerance

Both models are scored on the *same* holdout (this run's), so the comparison is fair even when the
champion was trained on another window. The first model ever becomes champion only if it passes
the floors. Promotion is moving the `champion` alias; the decision is recorded in MLflow (tags on
the model version and the run, plus gate/decision.json) and in reports/gate.json.

::

    mlops-lab gate          # inside a workspace project
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from reference.config import GateParams, Settings

OUT = Path("reports/gate.json")


@dataclass(frozen=True)
class Rule:
    name: str
    value: float | None
    threshold: float | None
    op: str  # ">=" or "<="
    verdict: str  # pass, fail, n/a
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    promote: bool
    rules: list[Rule]
    candidate_version: str | None = None
    champion_version: str | None = None

    @property
    def failed(self) -> list[Rule]:
        return [r for r in self.rules if r.verdict == "fail"]

    def to_dict(self) -> dict:
        return {
            "promote": self.promote,
            "decision": "promote" if self.promote else "reject",
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "rules": [asdict(r) for r in self.rules],
        }


def _rule(name: str, value: float | None, threshold: float, op: str, detail: str = "") -> Rule:
    if value is None:
        return Rule(name, None, threshold, op, "fail", detail or "no value: cannot be judged")
    ok = value >= threshold if op == ">=" else value <= threshold
    return Rule(name, round(value, 5), round(threshold, 5), op, "pass" if ok else "fail", detail)


def decide(
    candidate: dict,
    baselines: dict,
    champion: dict | None,
    params: GateParams,
    latency_ms: float,
    size_mb: float,
) -> Decision:
    """Pure: metrics in, a decision with every rule's value, threshold and verdict out."""
    best_name, best = max(
        ((n, m) for n, m in baselines.items() if m.get("auc") is not None),
        key=lambda x: x[1]["auc"],
    )
    rules = [
        _rule(
            "auc_over_baseline",
            candidate["auc"],
            best["auc"] + params.min_auc_margin_over_baseline,
            ">=",
            f"best baseline {best_name} AUC {best['auc']:.4f} + margin {params.min_auc_margin_over_baseline}",
        ),
        _rule("calibration_error", candidate["ece"], params.max_calibration_error, "<="),
        _rule(
            "latency_ms_p95", latency_ms, params.max_latency_ms, "<=", "one row, transform included"
        ),
        _rule("model_size_mb", size_mb, params.max_model_size_mb, "<="),
    ]
    if champion is None:
        rules += [
            Rule("auc_vs_champion", None, None, ">=", "n/a", "no champion yet: floors decide"),
            Rule(
                "worst_slice_vs_champion", None, None, ">=", "n/a", "no champion yet: floors decide"
            ),
        ]
    else:
        rules.append(
            _rule(
                "auc_vs_champion",
                candidate["auc"] - champion["auc"],
                -params.max_auc_drop_vs_champion,
                ">=",
                f"candidate {candidate['auc']:.4f} vs champion {champion['auc']:.4f}",
            )
        )
        worst, where = None, ""
        for col, values in candidate["slices"].items():
            for key, m in values.items():
                ref = champion["slices"].get(col, {}).get(key)
                if not (m["judged"] and ref and ref["judged"]):
                    continue
                delta = m["auc"] - ref["auc"]
                if worst is None or delta < worst:
                    worst, where = delta, f"{col}={key}: {m['auc']:.4f} vs {ref['auc']:.4f}"
        if worst is None:
            rules.append(
                Rule(
                    "worst_slice_vs_champion",
                    None,
                    None,
                    ">=",
                    "n/a",
                    "no slice large enough to judge",
                )
            )
        else:
            rules.append(
                _rule("worst_slice_vs_champion", worst, -params.max_slice_auc_drop, ">=", where)
            )
    return Decision(promote=not any(r.verdict == "fail" for r in rules), rules=rules)


def render(decision: Decision, title: str = "Gate"):
    """A rich table: rule, value, threshold, verdict, detail; and the decision in the caption."""
    from rich.table import Table

    verdict = "[bold green]PROMOTE[/]" if decision.promote else "[bold red]REJECT[/]"
    table = Table(title=title, caption=f"decision: {verdict}", caption_justify="left")
    for col in ("rule", "value", "threshold", "verdict", "detail"):
        table.add_column(col, justify="right" if col in ("value", "threshold") else "left")
    style = {"pass": "green", "fail": "bold red", "n/a": "dim"}
    for r in decision.rules:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        table.add_row(
            r.name,
            fmt(r.value),
            f"{r.op} {fmt(r.threshold)}" if r.threshold is not None else "-",
            f"[{style[r.verdict]}]{r.verdict}[/]",
            r.detail,
        )
    return table


def markdown(result: dict) -> str:
    """A reports/gate.json as markdown: for a CI job summary or a pull-request comment."""

    def num(value):
        return "-" if value is None else f"{value:.4f}"

    versus = (
        f"v{result['champion_version']}" if result.get("champion_version") else "no champion yet"
    )
    lines = [
        f"### Gate: v{result['candidate_version']} (challenger) vs {versus}: "
        f"**{result['decision'].upper()}**",
        "",
        "| rule | value | threshold | verdict | detail |",
        "|---|---:|---:|---|---|",
    ]
    for r in result["rules"]:
        threshold = "-" if r["threshold"] is None else f"{r['op']} {r['threshold']:.4f}"
        lines.append(
            f"| {r['name']} | {num(r['value'])} | {threshold} | {r['verdict']} | {r['detail']} |"
        )
    return "\n".join(lines) + "\n"


def record(settings: Settings, decision: Decision, run_id: str) -> None:
    """Tags on the model version and the run, and the full decision as a JSON artifact."""
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=settings.tracking_uri)
    tags = {"gate.decision": "promote" if decision.promote else "reject"}
    tags.update({f"gate.{r.name}": r.verdict for r in decision.rules})
    for key, value in tags.items():
        c.set_model_version_tag(settings.model_name, decision.candidate_version, key, value)
        c.set_tag(run_id, key, value)
    c.log_dict(run_id, decision.to_dict(), "gate/decision.json")


def run(params, settings: Settings, out: Path = OUT) -> Decision:
    """The stage: score the champion on this holdout, decide, record, and move the alias."""
    from rich.console import Console

    from reference import evaluate, ingest, registry

    candidate_info = json.loads(registry.OUT.read_text())
    evaluation = json.loads(evaluate.OUT.read_text())
    champion_mv = registry.version_by_alias(settings, registry.CHAMPION)
    champion_metrics = None
    if champion_mv is not None and str(champion_mv.version) != candidate_info["version"]:
        # torch only when there is a champion to score: the first run skips its import
        from reference.model import load_bundle
        from reference.train import labelled

        holdout = labelled(ingest.read_months(params.split.months()["holdout"]))
        with tempfile.TemporaryDirectory() as tmp:
            bundle = load_bundle(registry.download_bundle(settings, champion_mv.version, Path(tmp)))
            champion_metrics = evaluate.evaluate_scores(
                holdout, bundle.predict_proba(holdout), params.evaluate
            )
    decision = decide(
        evaluation["candidate"],
        evaluation["baselines"],
        champion_metrics,
        params.gate,
        evaluation["latency_ms_p95"],
        evaluation["model_size_mb"],
    )
    champion_version = str(champion_mv.version) if champion_mv is not None else None
    decision = Decision(
        decision.promote, decision.rules, candidate_info["version"], champion_version
    )
    record(settings, decision, candidate_info["run_id"])
    c = registry.client(settings)
    if decision.promote and not params.gate.auto_promote:
        # Level 2: the candidate keeps `challenger`; shadow and canary on live traffic decide
        print(
            f"gate passed: version {candidate_info['version']} stays '{registry.CHALLENGER}' "
            "(gate.auto_promote is false: a rollout or a person promotes it)"
        )
    elif decision.promote:
        c.set_registered_model_alias(
            settings.model_name, registry.CHAMPION, candidate_info["version"]
        )
        if champion_version:
            c.set_model_version_tag(
                settings.model_name,
                candidate_info["version"],
                "previous_champion",
                champion_version,
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    result = decision.to_dict()
    result["champion_metrics"] = {
        k: v for k, v in (champion_metrics or {}).items() if k != "slices"
    } or None
    out.write_text(json.dumps(result, indent=2) + "\n")
    title = f"Gate: {settings.model_name} v{candidate_info['version']} (challenger) vs " + (
        f"v{champion_version} (champion)" if champion_version else "no champion yet"
    )
    Console(width=140).print(render(decision, title))
    if decision.promote and params.gate.auto_promote:
        print(f"'{registry.CHAMPION}' -> version {candidate_info['version']}")
    elif not decision.promote:
        kept = f"version {champion_version}" if champion_version else "no model"
        print(
            f"rejected: {', '.join(r.name for r in decision.failed)}; '{registry.CHAMPION}' stays on {kept}"
        )
    return decision
